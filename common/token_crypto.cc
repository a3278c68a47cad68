#include "common/token_internal.h"

#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

namespace wsfleet::token_internal {

bool Drbg::seed() {
  static constexpr char kPersonalization[] = "wsfleet-token-sign";
  return mbedtls_ctr_drbg_seed(drbg_.get(), mbedtls_entropy_func, entropy_.get(),
                               reinterpret_cast<const unsigned char*>(kPersonalization),
                               sizeof(kPersonalization) - 1) == 0;
}

const mbedtls_ecp_keypair* p256Key(const PkContext& pk) {
  mbedtls_pk_type_t type = mbedtls_pk_get_type(pk.get());
  if (type != MBEDTLS_PK_ECKEY && type != MBEDTLS_PK_ECDSA) return nullptr;
  const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(*pk.get());
  if (ec == nullptr || ec->grp.id != MBEDTLS_ECP_DP_SECP256R1) return nullptr;
  return ec;
}

// mbedTLS wants PEM input NUL-terminated and the terminator counted in the length.
int parsePublicKeyPem(PkContext& pk, const std::string& pem) {
  return mbedtls_pk_parse_public_key(pk.get(), bytes(pem), pem.size() + 1);
}
int parsePrivateKeyPem(PkContext& pk, const std::string& pem) {
  return mbedtls_pk_parse_key(pk.get(), bytes(pem), pem.size() + 1, nullptr, 0);
}

bool sha256(std::string_view input, unsigned char out[kSha256Bytes]) {
  return mbedtls_md(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), bytes(input), input.size(),
                    out) == 0;
}

namespace {

constexpr size_t kSha256BlockBytes = 64;

}  // namespace

HmacSha256Key::HmacSha256Key(std::string_view secret) {
  mbedtls_sha256_init(&inner_);
  mbedtls_sha256_init(&outer_);
  // A key longer than one block is replaced by its hash; a shorter one is zero-padded.
  unsigned char block[kSha256BlockBytes] = {};
  if (secret.size() > kSha256BlockBytes) {
    if (!sha256(secret, block)) {
      mbedtls_platform_zeroize(block, sizeof(block));
      return;
    }
  } else {
    for (size_t i = 0; i < secret.size(); ++i) block[i] = static_cast<unsigned char>(secret[i]);
  }
  unsigned char pad[kSha256BlockBytes];
  for (size_t i = 0; i < kSha256BlockBytes; ++i) pad[i] = block[i] ^ 0x36;
  bool ok = mbedtls_sha256_starts_ret(&inner_, 0) == 0 &&
            mbedtls_sha256_update_ret(&inner_, pad, sizeof(pad)) == 0;
  for (size_t i = 0; i < kSha256BlockBytes; ++i) pad[i] = block[i] ^ 0x5c;
  ok = ok && mbedtls_sha256_starts_ret(&outer_, 0) == 0 &&
       mbedtls_sha256_update_ret(&outer_, pad, sizeof(pad)) == 0;
  mbedtls_platform_zeroize(block, sizeof(block));
  mbedtls_platform_zeroize(pad, sizeof(pad));
  ok_ = ok;
}

HmacSha256Key::~HmacSha256Key() {
  mbedtls_sha256_free(&inner_);  // zeroizes the key-derived states
  mbedtls_sha256_free(&outer_);
}

bool HmacSha256Key::mac(std::string_view input, unsigned char out[kSha256Bytes]) const {
  if (!ok_) return false;
  mbedtls_sha256_context ctx;
  mbedtls_sha256_init(&ctx);
  unsigned char inner_hash[kSha256Bytes];
  mbedtls_sha256_clone(&ctx, &inner_);
  bool ok = mbedtls_sha256_update_ret(&ctx, bytes(input), input.size()) == 0 &&
            mbedtls_sha256_finish_ret(&ctx, inner_hash) == 0;
  mbedtls_sha256_clone(&ctx, &outer_);
  ok = ok && mbedtls_sha256_update_ret(&ctx, inner_hash, sizeof(inner_hash)) == 0 &&
       mbedtls_sha256_finish_ret(&ctx, out) == 0;
  mbedtls_platform_zeroize(inner_hash, sizeof(inner_hash));
  mbedtls_sha256_free(&ctx);
  return ok;
}

bool hmacSha256(std::string_view secret, std::string_view input, unsigned char out[kSha256Bytes]) {
  return HmacSha256Key(secret).mac(input, out);
}

const char* algName(TokenAlg alg) {
  return alg == TokenAlg::kHS256 ? "HS256" : "ES256";
}

}  // namespace wsfleet::token_internal

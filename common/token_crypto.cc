#include "common/token_internal.h"

#include <mbedtls/md.h>

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

bool hmacSha256(std::string_view secret, std::string_view input, unsigned char out[kSha256Bytes]) {
  return mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), bytes(secret), secret.size(),
                         bytes(input), input.size(), out) == 0;
}

const char* algName(TokenAlg alg) {
  return alg == TokenAlg::kHS256 ? "HS256" : "ES256";
}

}  // namespace wsfleet::token_internal

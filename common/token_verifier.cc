#include "common/secure_compare.h"
#include "common/token.h"

#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include <mbedtls/ecdsa.h>
#include <mbedtls/platform_util.h>

#include "common/token_internal.h"

namespace wsfleet {
namespace {

using token_internal::bytes;
using token_internal::EcpGroup;
using token_internal::Header;
using token_internal::HmacSha256Key;
using token_internal::kEs256ScalarBytes;
using token_internal::kEs256SignatureBytes;
using token_internal::kMinHmacSecretBytes;
using token_internal::kSha256Bytes;
using token_internal::malformed;
using token_internal::Mpi;
using token_internal::p256Key;
using token_internal::parseClaims;
using token_internal::parseHeader;
using token_internal::parsePublicKeyPem;
using token_internal::PkContext;
using token_internal::RawClaims;
using token_internal::refuse;
using token_internal::sha256;

// Tokens are small flat objects; anything nested deeper is an attack, not a token.
constexpr size_t kTokenJsonDepth = 16;
constexpr size_t kHs256SignatureBytes = 32;

struct VerifyKey {
  std::string kid;
  TokenAlg alg = TokenAlg::kHS256;
  std::unique_ptr<HmacSha256Key> hmac;    // HS256 only; holds no copy of the secret
  std::unique_ptr<PkContext> public_key;  // ES256 only
};

struct Tenant {
  std::string issuer;
  std::vector<VerifyKey> keys;
};

Status configError(const std::string& tenant, const std::string& kid, std::string_view what) {
  std::string message = "tenant '" + tenant + "' token key";
  if (!kid.empty()) message += " '" + kid + "'";
  message += ": ";
  message += what;
  return Status(Code::kConfig, "token_key_invalid", std::move(message));
}

Result<VerifyKey> buildVerifyKey(const std::string& tenant, const TokenKey& key) {
  VerifyKey out;
  out.kid = key.kid;
  out.alg = key.alg;
  if (key.alg == TokenAlg::kHS256) {
    // Typed keys are what makes algorithm confusion impossible: an HS256 key never carries
    // a PEM, so a public key can never end up as an HMAC secret.
    if (!key.public_key_pem.empty() || !key.private_key_pem.empty()) {
      return configError(tenant, key.kid, "HS256 key must not carry a PEM key");
    }
    if (key.secret.size() < kMinHmacSecretBytes) {
      return configError(tenant, key.kid, "HS256 secret must be at least 32 bytes");
    }
    out.hmac = std::make_unique<HmacSha256Key>(key.secret);
    if (!out.hmac->ok()) return configError(tenant, key.kid, "HS256 secret could not be hashed");
    return out;
  }
  if (!key.secret.empty()) {
    return configError(tenant, key.kid, "ES256 key must not carry an HMAC secret");
  }
  auto pk = std::make_unique<PkContext>();
  if (key.public_key_pem.empty() || parsePublicKeyPem(*pk, key.public_key_pem) != 0) {
    return configError(tenant, key.kid, "ES256 public key is not a valid PEM public key");
  }
  if (p256Key(*pk) == nullptr) {
    return configError(tenant, key.kid, "ES256 public key is not an EC key on P-256");
  }
  out.public_key = std::move(pk);
  return out;
}

// One parser per thread, kept between tokens: a fresh simdjson parser allocates and clears
// its buffers, which was a visible part of every handshake. Rebuilt when the size limit
// changes (a reload).
JsonParser& tokenParser(size_t max_token_bytes) {
  thread_local std::optional<JsonParser> parser;
  if (!parser || parser->limits().max_bytes != max_token_bytes) {
    JsonLimits limits;
    limits.max_bytes = max_token_bytes;
    limits.max_depth = kTokenJsonDepth;
    parser.emplace(limits);
  }
  return *parser;
}

int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return sum;
}

bool verifyHs256(const VerifyKey& key, std::string_view signing_input, std::string_view signature) {
  if (signature.size() != kHs256SignatureBytes) return false;
  unsigned char mac[kSha256Bytes];
  if (!key.hmac->mac(signing_input, mac)) return false;
  // Timing must not reveal how many leading MAC bytes an attacker got right. (mbedTLS
  // 2.28's mbedtls_ct_memcmp header lacks C linkage guards, hence our own compare.)
  bool equal = constantTimeEquals(
      std::string_view(reinterpret_cast<const char*>(mac), kHs256SignatureBytes), signature);
  mbedtls_platform_zeroize(mac, sizeof(mac));
  return equal;
}

bool verifyEs256(const VerifyKey& key, std::string_view signing_input, std::string_view signature) {
  // JWS carries r||s (RFC 7518 3.4), not DER; any other length is not ES256.
  if (signature.size() != kEs256SignatureBytes) return false;
  const mbedtls_ecp_keypair* ec = p256Key(*key.public_key);
  if (ec == nullptr) return false;
  unsigned char hash[kSha256Bytes];
  if (!sha256(signing_input, hash)) return false;
  // A group per call: mbedtls_ecdsa_verify takes a mutable group and may cache
  // precomputed points in it, which would race between threads sharing the key.
  EcpGroup group;
  Mpi r;
  Mpi s;
  if (mbedtls_ecp_group_load(group.get(), MBEDTLS_ECP_DP_SECP256R1) != 0 ||
      mbedtls_mpi_read_binary(r.get(), bytes(signature), kEs256ScalarBytes) != 0 ||
      mbedtls_mpi_read_binary(s.get(), bytes(signature) + kEs256ScalarBytes, kEs256ScalarBytes) !=
          0) {
    return false;
  }
  return mbedtls_ecdsa_verify(group.get(), hash, sizeof(hash), &ec->Q, r.get(), s.get()) == 0;
}

bool verifyWith(const VerifyKey& key, std::string_view signing_input, std::string_view signature) {
  return key.alg == TokenAlg::kHS256 ? verifyHs256(key, signing_input, signature)
                                     : verifyEs256(key, signing_input, signature);
}

Status checkPolicy(const TokenPolicy& policy, const Tenant& tenant, const RawClaims& raw,
                   int64_t now_s) {
  const TokenClaims& c = raw.claims;
  if (!raw.have_sub) return refuse("token_missing_claim", "token has no sub");
  if (!raw.have_exp) return refuse("token_missing_claim", "token has no exp");
  const int64_t leeway = policy.leeway_s;
  if (now_s > saturatingAdd(c.exp, leeway)) {
    return refuse("token_expired", "token expired at " + std::to_string(c.exp) + " (now " +
                                       std::to_string(now_s) + ")");
  }
  if (c.nbf && saturatingAdd(now_s, leeway) < *c.nbf) {
    return refuse("token_not_yet_valid", "token not valid before " + std::to_string(*c.nbf) +
                                             " (now " + std::to_string(now_s) + ")");
  }
  if (c.iat && *c.iat > saturatingAdd(now_s, leeway)) {
    return refuse("token_issued_in_future", "token issued at " + std::to_string(*c.iat) + " (now " +
                                                std::to_string(now_s) + ")");
  }
  if (!policy.audience.empty()) {
    bool found = false;
    for (const std::string& aud : raw.aud) found = found || aud == policy.audience;
    if (!found) return refuse("token_bad_audience", "token audience does not match");
  }
  if (!tenant.issuer.empty() && c.iss != tenant.issuer) {
    return refuse("token_bad_issuer", "token issuer does not match tenant '" + c.tnt + "'");
  }
  return Status::ok();
}

}  // namespace

struct TokenVerifier::Impl {
  TokenPolicy policy;
  std::map<std::string, Tenant, std::less<>> tenants;
};

TokenVerifier::TokenVerifier(TokenPolicy policy) : impl_(std::make_unique<Impl>()) {
  impl_->policy = std::move(policy);
}
TokenVerifier::~TokenVerifier() = default;
TokenVerifier::TokenVerifier(TokenVerifier&&) noexcept = default;
TokenVerifier& TokenVerifier::operator=(TokenVerifier&&) noexcept = default;

Status TokenVerifier::addTenant(const std::string& tenant, const TenantTokenConfig& config) {
  if (tenant.empty()) return Status(Code::kConfig, "token_tenant_invalid", "empty tenant name");
  if (impl_->tenants.count(tenant) != 0) {
    return Status(Code::kConfig, "token_tenant_invalid",
                  "tenant '" + tenant + "' has token keys already");
  }
  if (config.keys.empty()) {
    return Status(Code::kConfig, "token_tenant_invalid",
                  "tenant '" + tenant + "' has no token keys");
  }
  Tenant built;
  built.issuer = config.issuer;
  for (const TokenKey& key : config.keys) {
    if (!key.kid.empty()) {
      for (const VerifyKey& other : built.keys) {
        if (other.kid == key.kid) return configError(tenant, key.kid, "duplicate kid");
      }
    }
    WSF_ASSIGN_OR_RETURN(VerifyKey verify_key, buildVerifyKey(tenant, key));
    built.keys.push_back(std::move(verify_key));
  }
  impl_->tenants.emplace(tenant, std::move(built));
  return Status::ok();
}

Result<TokenClaims> TokenVerifier::verify(std::string_view token, int64_t now_s) const {
  const TokenPolicy& policy = impl_->policy;
  if (token.size() > policy.max_token_bytes) {
    return refuse("token_too_large", "token is " + std::to_string(token.size()) +
                                         " bytes, over the limit of " +
                                         std::to_string(policy.max_token_bytes));
  }
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return malformed("not three dot-separated parts");
  }
  std::string_view header_b64 = token.substr(0, dot1);
  std::string_view claims_b64 = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string_view signature_b64 = token.substr(dot2 + 1);
  std::optional<std::string> header_json = base64UrlDecode(header_b64);
  std::optional<std::string> claims_json = base64UrlDecode(claims_b64);
  std::optional<std::string> signature = base64UrlDecode(signature_b64);
  if (!header_json || !claims_json || !signature) return malformed("bad base64url");

  JsonParser& parser = tokenParser(policy.max_token_bytes);
  WSF_ASSIGN_OR_RETURN(Header header, parseHeader(parser, *header_json));
  WSF_ASSIGN_OR_RETURN(RawClaims raw, parseClaims(parser, *claims_json));
  if (raw.claims.tnt.empty()) return refuse("token_missing_claim", "token has no tnt");

  auto tenant_it = impl_->tenants.find(raw.claims.tnt);
  // Unknown tenant, unknown key and bad signature share one message, so that a caller
  // without a valid token learns nothing about which tenants and keys exist; the reason
  // (for metrics and logs) stays precise.
  constexpr const char* kNotVerified = "token signature cannot be verified";
  if (tenant_it == impl_->tenants.end()) return refuse("token_unknown_tenant", kNotVerified);
  const Tenant& tenant = tenant_it->second;

  // Keys are typed by algorithm, so only keys made for the header's alg are candidates:
  // an HS256 header can never be checked against an ES256 key's material.
  std::string_view signing_input = token.substr(0, dot2);
  bool any_candidate = false;
  bool verified = false;
  for (const VerifyKey& key : tenant.keys) {
    if (key.alg != header.alg) continue;
    if (!header.kid.empty() && key.kid != header.kid) continue;
    any_candidate = true;
    if (verifyWith(key, signing_input, *signature)) {
      verified = true;
      break;
    }
  }
  if (!any_candidate) {
    return refuse("token_unknown_kid", kNotVerified);
  }
  if (!verified) {
    return refuse("token_bad_signature", kNotVerified);
  }

  WSF_RETURN_IF_ERROR(checkPolicy(policy, tenant, raw, now_s));
  raw.claims.kid = std::move(header.kid);
  return std::move(raw.claims);
}

}  // namespace wsfleet

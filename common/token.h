#pragma once
// JWT verification (and, for development tooling and tests, signing) with mbedTLS.
// Pure logic: no I/O, the clock is passed in. Only HS256 and ES256 are accepted;
// "none" and every other algorithm are refused before any key is looked at.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace wsfleet {

enum class TokenAlg { kHS256, kES256 };

struct TokenKey {
  std::string kid;  // may be empty: then the key is tried for tokens without a kid
  TokenAlg alg = TokenAlg::kHS256;
  std::string secret;           // HS256: raw secret bytes (at least 32 bytes)
  std::string public_key_pem;   // ES256: P-256 public key, PEM (SubjectPublicKeyInfo)
  std::string private_key_pem;  // ES256 signing only (tools and tests); never needed to verify
};

struct TenantTokenConfig {
  std::string issuer;  // when non-empty, `iss` must equal it
  std::vector<TokenKey> keys;  // several active at once during rotation
};

struct TokenPolicy {
  std::string audience;         // when non-empty, `aud` (string or array) must contain it
  int64_t leeway_s = 30;        // applied to exp, nbf and iat
  size_t max_token_bytes = 4096;
};

struct TokenClaims {
  std::string sub;  // user id, required, 1..128 bytes
  std::string tnt;  // tenant, required
  std::string dev;  // optional device id
  std::string iss;
  std::string kid;  // from the header
  int64_t exp = 0;  // required, seconds since epoch
  std::optional<int64_t> nbf;
  std::optional<int64_t> iat;
  std::optional<std::vector<std::string>> subs;  // absent = tenant default
  std::optional<std::vector<std::string>> pubs;
};

// Verifies compact JWS tokens against per-tenant key sets. Thread-compatible: build it
// once, then verify() is const and may be called from any thread.
class TokenVerifier {
 public:
  explicit TokenVerifier(TokenPolicy policy);
  ~TokenVerifier();
  TokenVerifier(TokenVerifier&&) noexcept;
  TokenVerifier& operator=(TokenVerifier&&) noexcept;

  // Parses and checks the keys (PEM must be a P-256 public key, HS256 secret >= 32 bytes).
  // Errors: Code::kConfig.
  Status addTenant(const std::string& tenant, const TenantTokenConfig& config);

  // Verifies signature and claims at time `now_s`. Every failure is Code::kUnauthorized
  // with one of these reasons (stable, used as metric labels):
  //   token_too_large, token_malformed, token_alg_refused, token_unknown_tenant,
  //   token_unknown_kid, token_bad_signature, token_expired, token_not_yet_valid,
  //   token_issued_in_future, token_bad_audience, token_bad_issuer, token_missing_claim
  // Messages never contain the token itself.
  Result<TokenClaims> verify(std::string_view token, int64_t now_s) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Builds and signs a token (HS256 with key.secret, ES256 with key.private_key_pem).
// `aud` is written when non-empty. Used by `wsfleetctl token mint` and by tests.
struct TokenToSign {
  TokenClaims claims;
  std::string aud;
};
Result<std::string> signToken(const TokenKey& key, const TokenToSign& token);

// base64url without padding (RFC 7515 section 2). decode refuses padding, whitespace and
// any character outside the URL-safe alphabet, and non-canonical trailing bits.
std::string base64UrlEncode(std::string_view bytes);
std::optional<std::string> base64UrlDecode(std::string_view text);

}  // namespace wsfleet

#include "common/token.h"

#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>

#include "common/json.h"

namespace wsfleet {
namespace {

constexpr size_t kMaxSubBytes = 128;
constexpr size_t kMinHmacSecretBytes = 32;
constexpr size_t kHs256SignatureBytes = 32;
constexpr size_t kEs256ScalarBytes = 32;
constexpr size_t kEs256SignatureBytes = 2 * kEs256ScalarBytes;
constexpr size_t kSha256Bytes = 32;
// Tokens are small flat objects; anything nested deeper is an attack, not a token.
constexpr size_t kTokenJsonDepth = 16;

// ---- RAII over the mbedTLS contexts used here ----

class PkContext {
 public:
  PkContext() { mbedtls_pk_init(&ctx_); }
  ~PkContext() { mbedtls_pk_free(&ctx_); }
  PkContext(const PkContext&) = delete;
  PkContext& operator=(const PkContext&) = delete;
  mbedtls_pk_context* get() { return &ctx_; }
  const mbedtls_pk_context* get() const { return &ctx_; }

  // Null unless this holds an EC key on P-256.
  const mbedtls_ecp_keypair* p256() const {
    mbedtls_pk_type_t type = mbedtls_pk_get_type(&ctx_);
    if (type != MBEDTLS_PK_ECKEY && type != MBEDTLS_PK_ECDSA) return nullptr;
    const mbedtls_ecp_keypair* ec = mbedtls_pk_ec(ctx_);
    if (ec == nullptr || ec->grp.id != MBEDTLS_ECP_DP_SECP256R1) return nullptr;
    return ec;
  }

 private:
  mbedtls_pk_context ctx_;
};

class Mpi {
 public:
  Mpi() { mbedtls_mpi_init(&v_); }
  ~Mpi() { mbedtls_mpi_free(&v_); }
  Mpi(const Mpi&) = delete;
  Mpi& operator=(const Mpi&) = delete;
  mbedtls_mpi* get() { return &v_; }

 private:
  mbedtls_mpi v_;
};

class EcpGroup {
 public:
  EcpGroup() { mbedtls_ecp_group_init(&g_); }
  ~EcpGroup() { mbedtls_ecp_group_free(&g_); }
  EcpGroup(const EcpGroup&) = delete;
  EcpGroup& operator=(const EcpGroup&) = delete;
  mbedtls_ecp_group* get() { return &g_; }

 private:
  mbedtls_ecp_group g_;
};

class Drbg {
 public:
  Drbg() {
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
  }
  ~Drbg() {
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }
  Drbg(const Drbg&) = delete;
  Drbg& operator=(const Drbg&) = delete;

  bool seed() {
    static constexpr char kPersonalization[] = "wsfleet-token-sign";
    return mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_,
                                 reinterpret_cast<const unsigned char*>(kPersonalization),
                                 sizeof(kPersonalization) - 1) == 0;
  }
  mbedtls_ctr_drbg_context* get() { return &drbg_; }

 private:
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
};

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
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

// ---- verification keys ----

struct VerifyKey {
  std::string kid;
  TokenAlg alg = TokenAlg::kHS256;
  std::string secret;                     // HS256 only
  std::unique_ptr<PkContext> public_key;  // ES256 only

  VerifyKey() = default;
  VerifyKey(VerifyKey&&) noexcept = default;
  VerifyKey& operator=(VerifyKey&&) noexcept = default;
  ~VerifyKey() {
    if (!secret.empty()) mbedtls_platform_zeroize(secret.data(), secret.size());
  }
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
    out.secret = key.secret;
    return out;
  }
  if (!key.secret.empty()) {
    return configError(tenant, key.kid, "ES256 key must not carry an HMAC secret");
  }
  auto pk = std::make_unique<PkContext>();
  if (key.public_key_pem.empty() || parsePublicKeyPem(*pk, key.public_key_pem) != 0) {
    return configError(tenant, key.kid, "ES256 public key is not a valid PEM public key");
  }
  if (pk->p256() == nullptr) {
    return configError(tenant, key.kid, "ES256 public key is not an EC key on P-256");
  }
  out.public_key = std::move(pk);
  return out;
}

// ---- parsing helpers ----

Status refuse(const char* reason, std::string message) {
  return Status(Code::kUnauthorized, reason, std::move(message));
}

Status malformed(std::string_view what) {
  return refuse("token_malformed", "malformed token: " + std::string(what));
}

// JSON numbers for times: integers, or floats with no fractional part (some issuers
// write 1.7e9), within int64.
std::optional<int64_t> jsonInteger(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::INT64:
      return e.get_int64().value_unsafe();
    case simdjson::dom::element_type::UINT64: {
      uint64_t u = e.get_uint64().value_unsafe();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(u);
    }
    case simdjson::dom::element_type::DOUBLE: {
      double d = e.get_double().value_unsafe();
      constexpr double kTwo63 = 9223372036854775808.0;
      if (!std::isfinite(d) || d != std::trunc(d) || d < -kTwo63 || d >= kTwo63) {
        return std::nullopt;
      }
      return static_cast<int64_t>(d);
    }
    default:
      return std::nullopt;
  }
}

std::optional<std::string> jsonString(simdjson::dom::element e) {
  std::string_view s;
  if (e.get_string().get(s) != simdjson::SUCCESS) return std::nullopt;
  return std::string(s);
}

std::optional<std::vector<std::string>> jsonStringArray(simdjson::dom::element e) {
  simdjson::dom::array array;
  if (e.get_array().get(array) != simdjson::SUCCESS) return std::nullopt;
  std::vector<std::string> out;
  for (simdjson::dom::element item : array) {
    std::optional<std::string> s = jsonString(item);
    if (!s) return std::nullopt;
    out.push_back(std::move(*s));
  }
  return out;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return sum;
}

// Records each known member once; a repeated member is refused because two parsers may
// disagree on which copy wins, which is how "alg" or "aud" smuggling works.
class SeenMembers {
 public:
  bool firstTime(size_t index) {
    uint32_t bit = 1u << index;
    if ((seen_ & bit) != 0) return false;
    seen_ |= bit;
    return true;
  }

 private:
  uint32_t seen_ = 0;
};

struct Header {
  TokenAlg alg = TokenAlg::kHS256;
  std::string kid;
};

Result<Header> parseHeader(JsonParser& parser, std::string_view json) {
  Result<simdjson::dom::element> doc = parser.parse(json);
  if (!doc) return malformed("header is not valid JSON");
  simdjson::dom::object object;
  if (doc->get_object().get(object) != simdjson::SUCCESS) {
    return malformed("header is not a JSON object");
  }
  // Members are collected first so that the algorithm is judged before anything else,
  // whatever order the header lists them in.
  std::optional<simdjson::dom::element> alg_value;
  std::optional<simdjson::dom::element> typ_value;
  std::optional<simdjson::dom::element> kid_value;
  bool has_crit = false;
  for (simdjson::dom::key_value_pair member : object) {
    std::string_view key = member.key;
    std::optional<simdjson::dom::element>* slot = key == "alg"   ? &alg_value
                                                  : key == "typ" ? &typ_value
                                                  : key == "kid" ? &kid_value
                                                                 : nullptr;
    if (slot != nullptr) {
      if (slot->has_value()) return malformed("header repeats a member");
      *slot = member.value;
    }
    has_crit = has_crit || key == "crit";
  }

  Header header;
  std::string_view alg;
  if (!alg_value || alg_value->get_string().get(alg) != simdjson::SUCCESS) {
    return refuse("token_alg_refused", "token header has no alg string");
  }
  if (alg == "HS256") {
    header.alg = TokenAlg::kHS256;
  } else if (alg == "ES256") {
    header.alg = TokenAlg::kES256;
  } else {
    return refuse("token_alg_refused", "token alg is not HS256 or ES256");
  }
  if (typ_value) {
    std::string_view typ;
    if (typ_value->get_string().get(typ) != simdjson::SUCCESS || !equalsIgnoreCase(typ, "JWT")) {
      return malformed("header typ is not JWT");
    }
  }
  if (kid_value) {
    std::optional<std::string> kid = jsonString(*kid_value);
    if (!kid) return malformed("header kid is not a string");
    header.kid = std::move(*kid);
  }
  // RFC 7515 4.1.11: extensions we do not implement must make the token invalid.
  if (has_crit) return malformed("header has critical extensions");
  return header;
}

// Claims as read from the JSON, before any policy is applied.
struct RawClaims {
  TokenClaims claims;
  bool have_sub = false;
  bool have_exp = false;
  std::vector<std::string> aud;
};

Result<RawClaims> parseClaims(JsonParser& parser, std::string_view json) {
  Result<simdjson::dom::element> doc = parser.parse(json);
  if (!doc) return malformed("claims are not valid JSON");
  simdjson::dom::object object;
  if (doc->get_object().get(object) != simdjson::SUCCESS) {
    return malformed("claims are not a JSON object");
  }
  RawClaims raw;
  TokenClaims& c = raw.claims;
  SeenMembers seen;
  for (simdjson::dom::key_value_pair member : object) {
    std::string_view key = member.key;
    simdjson::dom::element value = member.value;
    if (key == "sub") {
      if (!seen.firstTime(0)) return malformed("claims repeat sub");
      std::optional<std::string> s = jsonString(value);
      if (!s) return malformed("sub is not a string");
      if (s->size() > kMaxSubBytes) return malformed("sub is longer than 128 bytes");
      c.sub = std::move(*s);
      raw.have_sub = !c.sub.empty();
    } else if (key == "tnt") {
      if (!seen.firstTime(1)) return malformed("claims repeat tnt");
      std::optional<std::string> s = jsonString(value);
      if (!s) return malformed("tnt is not a string");
      c.tnt = std::move(*s);
    } else if (key == "exp" || key == "nbf" || key == "iat") {
      size_t index = key == "exp" ? 2 : key == "nbf" ? 3 : 4;
      if (!seen.firstTime(index)) return malformed("claims repeat a time claim");
      std::optional<int64_t> t = jsonInteger(value);
      if (!t) return malformed("exp, nbf and iat must be integers");
      if (index == 2) {
        c.exp = *t;
        raw.have_exp = true;
      } else if (index == 3) {
        c.nbf = *t;
      } else {
        c.iat = *t;
      }
    } else if (key == "dev" || key == "iss") {
      bool is_dev = key == "dev";
      if (!seen.firstTime(is_dev ? 5 : 6)) return malformed("claims repeat dev or iss");
      std::optional<std::string> s = jsonString(value);
      if (!s) return malformed("dev and iss must be strings");
      (is_dev ? c.dev : c.iss) = std::move(*s);
    } else if (key == "aud") {
      if (!seen.firstTime(7)) return malformed("claims repeat aud");
      if (std::optional<std::string> s = jsonString(value)) {
        raw.aud.push_back(std::move(*s));
      } else if (auto list = jsonStringArray(value)) {
        raw.aud = std::move(*list);
      } else {
        return malformed("aud is neither a string nor an array of strings");
      }
    } else if (key == "subs" || key == "pubs") {
      bool is_subs = key == "subs";
      if (!seen.firstTime(is_subs ? 8 : 9)) return malformed("claims repeat subs or pubs");
      auto list = jsonStringArray(value);
      if (!list) return malformed("subs and pubs must be arrays of strings");
      (is_subs ? c.subs : c.pubs) = std::move(*list);
    }
  }
  return raw;
}

// Timing must not reveal how many leading MAC bytes an attacker got right. (mbedTLS 2.28's
// mbedtls_ct_memcmp header lacks C linkage guards, hence this small loop.)
bool constantTimeEqual(const unsigned char* a, const char* b, size_t n) {
  unsigned char diff = 0;
  for (size_t i = 0; i < n; ++i)
    diff |= static_cast<unsigned char>(a[i] ^ static_cast<unsigned char>(b[i]));
  return diff == 0;
}

bool verifyHs256(const VerifyKey& key, std::string_view signing_input, std::string_view signature) {
  if (signature.size() != kHs256SignatureBytes) return false;
  unsigned char mac[kSha256Bytes];
  if (!hmacSha256(key.secret, signing_input, mac)) return false;
  bool equal = constantTimeEqual(mac, signature.data(), kHs256SignatureBytes);
  mbedtls_platform_zeroize(mac, sizeof(mac));
  return equal;
}

bool verifyEs256(const VerifyKey& key, std::string_view signing_input, std::string_view signature) {
  // JWS carries r||s (RFC 7518 3.4), not DER; any other length is not ES256.
  if (signature.size() != kEs256SignatureBytes) return false;
  const mbedtls_ecp_keypair* ec = key.public_key->p256();
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

constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> makeDecodeTable() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kBase64UrlAlphabet[i])] = i;
  return table;
}
constexpr std::array<int8_t, 256> kBase64UrlDecode = makeDecodeTable();

}  // namespace

// ---- base64url ----

std::string base64UrlEncode(std::string_view input) {
  std::string out;
  out.reserve((input.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : input) {
    acc = ((acc << 8) | static_cast<unsigned char>(ch)) & 0xFFFF;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64UrlAlphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kBase64UrlAlphabet[(acc << (6 - bits)) & 0x3F]);
  return out;
}

std::optional<std::string> base64UrlDecode(std::string_view text) {
  // One leftover character carries only 6 bits: never a whole byte.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    int8_t v = kBase64UrlDecode[static_cast<unsigned char>(ch)];
    if (v < 0) return std::nullopt;
    acc = ((acc << 6) | static_cast<uint32_t>(v)) & 0x3FFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Unused trailing bits must be zero, so that each byte string has exactly one encoding.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// ---- TokenVerifier ----

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

  JsonLimits limits;
  limits.max_bytes = policy.max_token_bytes;
  limits.max_depth = kTokenJsonDepth;
  JsonParser parser(limits);
  WSF_ASSIGN_OR_RETURN(Header header, parseHeader(parser, *header_json));
  WSF_ASSIGN_OR_RETURN(RawClaims raw, parseClaims(parser, *claims_json));
  if (raw.claims.tnt.empty()) return refuse("token_missing_claim", "token has no tnt");

  auto tenant_it = impl_->tenants.find(raw.claims.tnt);
  // The tenant name came from an unverified token: not echoed into the message.
  if (tenant_it == impl_->tenants.end()) return refuse("token_unknown_tenant", "unknown tenant");
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
    return refuse("token_unknown_kid", std::string("tenant '") + tenant_it->first + "' has no " +
                                           algName(header.alg) + " key for this token's kid");
  }
  if (!verified) {
    return refuse("token_bad_signature",
                  "token signature does not verify for tenant '" + tenant_it->first + "'");
  }

  WSF_RETURN_IF_ERROR(checkPolicy(policy, tenant, raw, now_s));
  raw.claims.kid = std::move(header.kid);
  return std::move(raw.claims);
}

// ---- signing ----

namespace {

Result<std::string> signEs256(const TokenKey& key, std::string_view signing_input) {
  auto signError = [&](std::string_view what) {
    std::string message = "cannot sign with ES256 key";
    if (!key.kid.empty()) message += " '" + key.kid + "'";
    message += ": ";
    message += what;
    return Status(Code::kConfig, "token_key_invalid", std::move(message));
  };
  PkContext pk;
  if (key.private_key_pem.empty() || parsePrivateKeyPem(pk, key.private_key_pem) != 0) {
    return signError("private key is not a valid PEM key");
  }
  if (pk.p256() == nullptr) return signError("private key is not an EC key on P-256");
  mbedtls_ecp_keypair* ec = mbedtls_pk_ec(*pk.get());
  unsigned char hash[kSha256Bytes];
  Drbg drbg;
  Mpi r;
  Mpi s;
  if (!sha256(signing_input, hash) || !drbg.seed()) {
    return Status(Code::kInternal, "token_sign_failed", "cannot prepare ES256 signing");
  }
  // Deterministic nonces (RFC 6979); the DRBG only blinds the computation.
  if (mbedtls_ecdsa_sign_det_ext(&ec->grp, r.get(), s.get(), &ec->d, hash, sizeof(hash),
                                 MBEDTLS_MD_SHA256, mbedtls_ctr_drbg_random, drbg.get()) != 0) {
    return Status(Code::kInternal, "token_sign_failed", "ES256 signing failed");
  }
  std::string signature(kEs256SignatureBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(signature.data());
  if (mbedtls_mpi_write_binary(r.get(), out, kEs256ScalarBytes) != 0 ||
      mbedtls_mpi_write_binary(s.get(), out + kEs256ScalarBytes, kEs256ScalarBytes) != 0) {
    return Status(Code::kInternal, "token_sign_failed", "ES256 signature does not fit");
  }
  return signature;
}

void writeStringArray(JsonWriter& writer, std::string_view name,
                      const std::vector<std::string>& items) {
  writer.key(name).beginArray();
  for (const std::string& item : items) writer.string(item);
  writer.endArray();
}

}  // namespace

Result<std::string> signToken(const TokenKey& key, const TokenToSign& token) {
  const TokenClaims& c = token.claims;
  if (c.sub.empty() || c.tnt.empty()) {
    return Status(Code::kBadRequest, "token_missing_claim", "sub and tnt are required");
  }
  std::string header;
  JsonWriter h(header);
  h.beginObject().field("alg", algName(key.alg)).field("typ", "JWT");
  if (!key.kid.empty()) h.field("kid", key.kid);
  h.endObject();

  std::string claims;
  JsonWriter w(claims);
  w.beginObject().field("sub", c.sub).field("tnt", c.tnt);
  if (!c.dev.empty()) w.field("dev", c.dev);
  if (!c.iss.empty()) w.field("iss", c.iss);
  if (!token.aud.empty()) w.field("aud", token.aud);
  w.fieldInt("exp", c.exp);
  if (c.nbf) w.fieldInt("nbf", *c.nbf);
  if (c.iat) w.fieldInt("iat", *c.iat);
  if (c.subs) writeStringArray(w, "subs", *c.subs);
  if (c.pubs) writeStringArray(w, "pubs", *c.pubs);
  w.endObject();

  std::string out = base64UrlEncode(header);
  out.push_back('.');
  out += base64UrlEncode(claims);
  std::string signature;
  if (key.alg == TokenAlg::kHS256) {
    if (key.secret.size() < kMinHmacSecretBytes) {
      return Status(Code::kConfig, "token_key_invalid", "HS256 secret must be at least 32 bytes");
    }
    unsigned char mac[kSha256Bytes];
    if (!hmacSha256(key.secret, out, mac)) {
      return Status(Code::kInternal, "token_sign_failed", "HMAC-SHA256 failed");
    }
    signature.assign(reinterpret_cast<const char*>(mac), sizeof(mac));
  } else {
    WSF_ASSIGN_OR_RETURN(signature, signEs256(key, out));
  }
  out.push_back('.');
  out += base64UrlEncode(signature);
  return out;
}

}  // namespace wsfleet

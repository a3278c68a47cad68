#pragma once
// Internals shared by the token sources (token_crypto, token_claims, token_verifier,
// token_signer); nothing outside common/token*.cc includes this. The public interface is
// common/token.h.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>

#include "common/json.h"
#include "common/token.h"

namespace wsfleet::token_internal {

constexpr size_t kMaxSubBytes = 128;
constexpr size_t kMinHmacSecretBytes = 32;
constexpr size_t kEs256ScalarBytes = 32;
constexpr size_t kEs256SignatureBytes = 2 * kEs256ScalarBytes;
constexpr size_t kSha256Bytes = 32;

// ---- RAII over the mbedTLS contexts, each set up and torn down in place by a pair of
// C functions.

template <class T, void (*Init)(T*), void (*Free)(T*)>
class MbedtlsObject {
 public:
  MbedtlsObject() { Init(&value_); }
  ~MbedtlsObject() { Free(&value_); }
  MbedtlsObject(const MbedtlsObject&) = delete;
  MbedtlsObject& operator=(const MbedtlsObject&) = delete;
  T* get() { return &value_; }
  const T* get() const { return &value_; }

 private:
  T value_;
};

using PkContext = MbedtlsObject<mbedtls_pk_context, mbedtls_pk_init, mbedtls_pk_free>;
using Mpi = MbedtlsObject<mbedtls_mpi, mbedtls_mpi_init, mbedtls_mpi_free>;
using EcpGroup = MbedtlsObject<mbedtls_ecp_group, mbedtls_ecp_group_init, mbedtls_ecp_group_free>;

// The random source ES256 signing uses for blinding.
class Drbg {
 public:
  bool seed();
  mbedtls_ctr_drbg_context* get() { return drbg_.get(); }

 private:
  // Declared first so that it is freed last: the DRBG draws from it.
  MbedtlsObject<mbedtls_entropy_context, mbedtls_entropy_init, mbedtls_entropy_free> entropy_;
  MbedtlsObject<mbedtls_ctr_drbg_context, mbedtls_ctr_drbg_init, mbedtls_ctr_drbg_free> drbg_;
};

// ---- crypto helpers (token_crypto.cc) ----

inline const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Null unless `pk` holds an EC key on P-256.
const mbedtls_ecp_keypair* p256Key(const PkContext& pk);

// mbedTLS return codes (0 = parsed).
int parsePublicKeyPem(PkContext& pk, const std::string& pem);
int parsePrivateKeyPem(PkContext& pk, const std::string& pem);

bool sha256(std::string_view input, unsigned char out[kSha256Bytes]);

// An HMAC-SHA256 key with its two key blocks already absorbed (RFC 2104: the inner and
// outer hash states after key ^ ipad and key ^ opad). Every token is checked against a
// key that rarely changes, so this saves two of the SHA-256 compressions of each MAC and
// the allocation mbedtls_md_hmac makes per call. Read-only once built: one key may be
// used from several threads at once.
class HmacSha256Key {
 public:
  explicit HmacSha256Key(std::string_view secret);
  ~HmacSha256Key();
  HmacSha256Key(const HmacSha256Key&) = delete;
  HmacSha256Key& operator=(const HmacSha256Key&) = delete;

  bool ok() const { return ok_; }  // false: hashing the key failed (mbedTLS error)
  bool mac(std::string_view input, unsigned char out[kSha256Bytes]) const;

 private:
  bool ok_ = false;
  mbedtls_sha256_context inner_;
  mbedtls_sha256_context outer_;
};

bool hmacSha256(std::string_view secret, std::string_view input, unsigned char out[kSha256Bytes]);

const char* algName(TokenAlg alg);

// ---- header and claims parsing (token_claims.cc) ----

// Code::kUnauthorized with `reason`; one of the reasons listed at TokenVerifier::verify.
Status refuse(const char* reason, std::string message);
// refuse("token_malformed", ...).
Status malformed(std::string_view what);

struct Header {
  TokenAlg alg = TokenAlg::kHS256;
  std::string kid;
};

// Only HS256 and ES256 pass; a refused alg is token_alg_refused, anything else malformed.
Result<Header> parseHeader(JsonParser& parser, std::string_view json);

// Claims as read from the JSON, before any policy is applied.
struct RawClaims {
  TokenClaims claims;
  bool have_sub = false;
  bool have_exp = false;
  std::vector<std::string> aud;
};

Result<RawClaims> parseClaims(JsonParser& parser, std::string_view json);

}  // namespace wsfleet::token_internal

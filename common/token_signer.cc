#include "common/token.h"

#include <utility>

#include <mbedtls/ecdsa.h>

#include "common/token_internal.h"

namespace wsfleet {
namespace {

using token_internal::algName;
using token_internal::Drbg;
using token_internal::hmacSha256;
using token_internal::kEs256ScalarBytes;
using token_internal::kEs256SignatureBytes;
using token_internal::kMinHmacSecretBytes;
using token_internal::kSha256Bytes;
using token_internal::Mpi;
using token_internal::p256Key;
using token_internal::parsePrivateKeyPem;
using token_internal::PkContext;
using token_internal::sha256;

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
  if (p256Key(pk) == nullptr) return signError("private key is not an EC key on P-256");
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

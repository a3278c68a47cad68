#pragma once
// OpenSSL ownership and the few checks the config loader needs. The OpenSSL types are
// only forward-declared here so that users of this header do not inherit OpenSSL's
// include tree; the deleters live in openssl.cc.

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

struct bio_st;
struct x509_st;
struct evp_pkey_st;

namespace wsfleet {

struct BioDeleter {
  void operator()(bio_st* bio) const;
};
struct X509Deleter {
  void operator()(x509_st* cert) const;
};
struct EvpPkeyDeleter {
  void operator()(evp_pkey_st* key) const;
};

using BioPtr = std::unique_ptr<bio_st, BioDeleter>;
using X509Ptr = std::unique_ptr<x509_st, X509Deleter>;
using EvpPkeyPtr = std::unique_ptr<evp_pkey_st, EvpPkeyDeleter>;

// Drains OpenSSL's thread-local error queue into one line ("" when it is empty). Every
// wrapper below calls it on failure so a stale error never leaks into a later call.
std::string takeOpensslErrors();

// A read-only memory BIO over `bytes`; the caller keeps `bytes` alive while it is used.
Result<BioPtr> memoryBio(std::string_view bytes);

// PEM readers. Errors: Code::kConfig, reasons "file_unreadable" / "pem_invalid". Messages
// name the file but never include its contents, so a private key cannot end up in a log.
Result<X509Ptr> readCertificatePemFile(const std::string& path);
Result<EvpPkeyPtr> readPrivateKeyPemFile(const std::string& path);
Result<X509Ptr> parseCertificatePem(std::string_view pem);
Result<EvpPkeyPtr> parsePrivateKeyPem(std::string_view pem);

// A public key (SubjectPublicKeyInfo PEM). Errors as above.
Result<EvpPkeyPtr> parsePublicKeyPem(std::string_view pem);

// True when `key` is the private key of `cert`'s public key.
bool keyMatchesCertificate(x509_st* cert, evp_pkey_st* key);
// True when both keys have the same public part (a private key and its public key do).
bool samePublicKey(const evp_pkey_st* a, const evp_pkey_st* b);

// Succeeds when both files parse and the private key belongs to the certificate's public
// key. Errors: Code::kConfig with reasons as above, or "tls_key_mismatch".
Status checkTlsKeyPair(const std::string& cert_file, const std::string& key_file);

}  // namespace wsfleet

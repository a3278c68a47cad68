#include "common/openssl.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

namespace wsfleet {

void BioDeleter::operator()(bio_st* bio) const {
  BIO_free_all(bio);
}
void X509Deleter::operator()(x509_st* cert) const {
  X509_free(cert);
}
void EvpPkeyDeleter::operator()(evp_pkey_st* key) const {
  EVP_PKEY_free(key);
}

std::string takeOpensslErrors() {
  std::string out;
  while (unsigned long err = ERR_get_error()) {  // NOLINT(runtime/int): OpenSSL's type
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

namespace {

std::string withDetail(std::string message) {
  std::string detail = takeOpensslErrors();
  if (!detail.empty()) message += " (" + detail + ")";
  return message;
}

Result<BioPtr> fileBio(const std::string& path) {
  // BIO_new_file reports a missing file only through the error queue; errno is clearer.
  errno = 0;
  BioPtr bio(BIO_new_file(path.c_str(), "rb"));
  if (!bio) {
    int err = errno;
    ERR_clear_error();
    return Status(Code::kConfig, "file_unreadable",
                  "cannot read '" + path + "': " + (err != 0 ? std::strerror(err) : "error"));
  }
  return bio;
}

Result<X509Ptr> readCertificate(BIO* bio, const std::string& what) {
  X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  if (!cert) {
    return Status(Code::kConfig, "pem_invalid",
                  withDetail(what + " does not contain a PEM certificate"));
  }
  return cert;
}

Result<EvpPkeyPtr> readPrivateKey(BIO* bio, const std::string& what) {
  // An empty passphrase callback: an encrypted key must fail instead of prompting on the
  // terminal of a daemon.
  auto no_passphrase = [](char*, int, int, void*) -> int { return -1; };
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, nullptr));
  if (!key) {
    return Status(Code::kConfig, "pem_invalid",
                  withDetail(what + " does not contain an unencrypted PEM private key"));
  }
  return key;
}

}  // namespace

Result<BioPtr> memoryBio(std::string_view bytes) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return Status(Code::kConfig, "pem_invalid", "PEM text too large");
  }
  BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  if (!bio) return Status(Code::kInternal, "openssl_alloc", withDetail("BIO_new_mem_buf failed"));
  return bio;
}

Result<X509Ptr> readCertificatePemFile(const std::string& path) {
  WSF_ASSIGN_OR_RETURN(BioPtr bio, fileBio(path));
  return readCertificate(bio.get(), "'" + path + "'");
}

Result<EvpPkeyPtr> readPrivateKeyPemFile(const std::string& path) {
  WSF_ASSIGN_OR_RETURN(BioPtr bio, fileBio(path));
  return readPrivateKey(bio.get(), "'" + path + "'");
}

Result<X509Ptr> parseCertificatePem(std::string_view pem) {
  WSF_ASSIGN_OR_RETURN(BioPtr bio, memoryBio(pem));
  return readCertificate(bio.get(), "the text");
}

Result<EvpPkeyPtr> parsePrivateKeyPem(std::string_view pem) {
  WSF_ASSIGN_OR_RETURN(BioPtr bio, memoryBio(pem));
  return readPrivateKey(bio.get(), "the text");
}

Result<EvpPkeyPtr> parsePublicKeyPem(std::string_view pem) {
  WSF_ASSIGN_OR_RETURN(BioPtr bio, memoryBio(pem));
  EvpPkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return Status(Code::kConfig, "pem_invalid",
                  withDetail("the text does not contain a PEM public key"));
  }
  return key;
}

bool keyMatchesCertificate(x509_st* cert, evp_pkey_st* key) {
  const bool match = X509_check_private_key(cert, key) == 1;
  ERR_clear_error();
  return match;
}

bool samePublicKey(const evp_pkey_st* a, const evp_pkey_st* b) {
  const bool same = EVP_PKEY_eq(a, b) == 1;
  ERR_clear_error();
  return same;
}

Status checkTlsKeyPair(const std::string& cert_file, const std::string& key_file) {
  WSF_ASSIGN_OR_RETURN(X509Ptr cert, readCertificatePemFile(cert_file));
  WSF_ASSIGN_OR_RETURN(EvpPkeyPtr key, readPrivateKeyPemFile(key_file));
  if (!keyMatchesCertificate(cert.get(), key.get())) {
    return Status(Code::kConfig, "tls_key_mismatch",
                  "private key '" + key_file + "' does not match certificate '" + cert_file + "'");
  }
  return Status::ok();
}

}  // namespace wsfleet

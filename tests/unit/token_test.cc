#include "common/token.h"
#include "common/token_internal.h"

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>

namespace wsfleet {
namespace {

constexpr int64_t kNow = 1'700'000'000;
constexpr int64_t kLeeway = 30;
const std::string kSecret = "0123456789abcdef0123456789abcdef-hs256-test";
const std::string kSecret2 = "another-secret-of-more-than-32-bytes-for-rotation";

// ---- mbedTLS helpers for the tests ----

struct KeyPair {
  std::string public_pem;
  std::string private_pem;
};

// Generates an EC key pair on `curve` and returns it as PEM.
KeyPair generateKeyPair(mbedtls_ecp_group_id curve) {
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_pk_context pk;
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  mbedtls_pk_init(&pk);
  KeyPair out;
  unsigned char buf[4096];
  bool ok = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, nullptr, 0) == 0 &&
            mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0 &&
            mbedtls_ecp_gen_key(curve, mbedtls_pk_ec(pk), mbedtls_ctr_drbg_random, &drbg) == 0;
  if (ok && mbedtls_pk_write_pubkey_pem(&pk, buf, sizeof(buf)) == 0) {
    out.public_pem = reinterpret_cast<const char*>(buf);
  }
  if (ok && mbedtls_pk_write_key_pem(&pk, buf, sizeof(buf)) == 0) {
    out.private_pem = reinterpret_cast<const char*>(buf);
  }
  mbedtls_pk_free(&pk);
  mbedtls_ctr_drbg_free(&drbg);
  mbedtls_entropy_free(&entropy);
  return out;
}

const KeyPair& p256KeyA() {
  static const KeyPair pair = generateKeyPair(MBEDTLS_ECP_DP_SECP256R1);
  return pair;
}
const KeyPair& p256KeyB() {
  static const KeyPair pair = generateKeyPair(MBEDTLS_ECP_DP_SECP256R1);
  return pair;
}

std::string hmacSha256(const std::string& secret, const std::string& input) {
  unsigned char mac[32];
  EXPECT_EQ(
      0, mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256),
                         reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
                         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac));
  return std::string(reinterpret_cast<const char*>(mac), sizeof(mac));
}

// A token from raw JSON texts, signed with HMAC-SHA256 over `secret` whatever the header
// says: lets tests forge every kind of bad token.
std::string rawHs256(const std::string& header_json, const std::string& claims_json,
                     const std::string& secret) {
  std::string input = base64UrlEncode(header_json) + "." + base64UrlEncode(claims_json);
  return input + "." + base64UrlEncode(hmacSha256(secret, input));
}

std::string validClaimsJson(const std::string& extra = "") {
  return R"({"sub":"user-1","tnt":"acme","exp":)" + std::to_string(kNow + 600) + extra + "}";
}

TokenKey hsKey(const std::string& kid, const std::string& secret = kSecret) {
  TokenKey key;
  key.kid = kid;
  key.alg = TokenAlg::kHS256;
  key.secret = secret;
  return key;
}

TokenKey esKey(const std::string& kid, const KeyPair& pair) {
  TokenKey key;
  key.kid = kid;
  key.alg = TokenAlg::kES256;
  key.public_key_pem = pair.public_pem;
  key.private_key_pem = pair.private_pem;
  return key;
}

TokenPolicy defaultPolicy() {
  TokenPolicy policy;
  policy.leeway_s = kLeeway;
  return policy;
}

TokenToSign basicToken() {
  TokenToSign t;
  t.claims.sub = "user-1";
  t.claims.tnt = "acme";
  t.claims.exp = kNow + 600;
  return t;
}

std::string sign(const TokenKey& key, const TokenToSign& t) {
  Result<std::string> token = signToken(key, t);
  EXPECT_TRUE(token.isOk()) << (token.isOk() ? "" : token.status().toString());
  return token.isOk() ? token.value() : std::string();
}

// Checks that `token` is refused with `reason`, and that the message leaks nothing of it.
void expectRefusedBy(const TokenVerifier& verifier, const std::string& token, int64_t now,
                     const char* reason) {
  Result<TokenClaims> result = verifier.verify(token, now);
  ASSERT_FALSE(result.isOk()) << "token accepted, expected " << reason;
  EXPECT_EQ(Code::kUnauthorized, result.status().code());
  EXPECT_STREQ(reason, result.status().reason()) << result.status().message();
  const std::string& message = result.status().message();
  size_t dot = token.rfind('.');
  if (dot != std::string::npos && token.size() - dot > 8) {
    EXPECT_EQ(std::string::npos, message.find(token.substr(dot + 1)));
  }
  if (token.size() > 8) {
    EXPECT_EQ(std::string::npos, message.find(token.substr(0, 8)));
  }
}

class TokenTest : public ::testing::Test {
 protected:
  TokenTest() : verifier_(defaultPolicy()) {
    TenantTokenConfig acme;
    acme.keys = {hsKey("hs1"), esKey("es1", p256KeyA())};
    EXPECT_TRUE(verifier_.addTenant("acme", acme).isOk());
  }

  void expectOk(const std::string& token, int64_t now = kNow) {
    Result<TokenClaims> result = verifier_.verify(token, now);
    EXPECT_TRUE(result.isOk()) << (result.isOk() ? "" : result.status().toString());
  }
  void expectRefused(const std::string& token, const char* reason, int64_t now = kNow) {
    expectRefusedBy(verifier_, token, now, reason);
  }

  TokenVerifier verifier_;
};

// ---- HMAC-SHA256 with a precomputed key ----

std::string hexOf(const unsigned char* data, size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xF]);
  }
  return out;
}

std::string precomputedMacHex(const std::string& key, const std::string& data) {
  token_internal::HmacSha256Key hmac(key);
  unsigned char mac[token_internal::kSha256Bytes];
  EXPECT_TRUE(hmac.mac(data, mac));
  return hexOf(mac, sizeof(mac));
}

// RFC 4231 test cases 2 (short key), 4 (binary key and data) and 6 (key longer than a
// block, so it is hashed first).
TEST(HmacSha256KeyTest, MatchesRfc4231Vectors) {
  EXPECT_EQ("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            precomputedMacHex("Jefe", "what do ya want for nothing?"));
  std::string key4;
  for (int i = 1; i <= 25; ++i) key4.push_back(static_cast<char>(i));
  EXPECT_EQ("82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            precomputedMacHex(key4, std::string(50, '\xcd')));
  EXPECT_EQ("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            precomputedMacHex(std::string(131, '\xaa'),
                              "Test Using Larger Than Block-Size Key - Hash Key First"));
}

// The same key object gives the same MAC every time (its states are copied, never
// advanced), and agrees with mbedTLS' one-shot HMAC at the block-size edges.
TEST(HmacSha256KeyTest, ReusableAndEqualToOneShotHmac) {
  for (size_t key_size : {32u, 63u, 64u, 65u, 200u}) {
    std::string key(key_size, 'k');
    token_internal::HmacSha256Key hmac(key);
    for (const std::string& data : {std::string(), std::string(55, 'x'), std::string(300, 'y')}) {
      unsigned char first[token_internal::kSha256Bytes];
      unsigned char second[token_internal::kSha256Bytes];
      ASSERT_TRUE(hmac.mac(data, first));
      ASSERT_TRUE(hmac.mac(data, second));
      EXPECT_EQ(hexOf(first, sizeof(first)), hexOf(second, sizeof(second)));
      const std::string expected = hmacSha256(key, data);
      EXPECT_EQ(hexOf(reinterpret_cast<const unsigned char*>(expected.data()), expected.size()),
                hexOf(first, sizeof(first)))
          << key_size << " " << data.size();
    }
  }
}

// ---- base64url ----

TEST(Base64UrlTest, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    std::string encoded = base64UrlEncode(bytes);
    EXPECT_EQ(std::string::npos, encoded.find_first_of("+/="));
    std::optional<std::string> decoded = base64UrlDecode(encoded);
    ASSERT_TRUE(decoded.has_value()) << n;
    EXPECT_EQ(bytes, *decoded);
    bytes.push_back(static_cast<char>(n * 37 + 251));
  }
}

TEST(Base64UrlTest, KnownVectors) {
  EXPECT_EQ("", base64UrlEncode(""));
  EXPECT_EQ("Zg", base64UrlEncode("f"));
  EXPECT_EQ("Zm8", base64UrlEncode("fo"));
  EXPECT_EQ("Zm9v", base64UrlEncode("foo"));
  EXPECT_EQ("-_8", base64UrlEncode("\xfb\xff"));
  EXPECT_EQ("\xfb\xff", base64UrlDecode("-_8").value());
}

TEST(Base64UrlTest, RefusesNonAlphabetPaddingAndWhitespace) {
  EXPECT_FALSE(base64UrlDecode("+_8").has_value());
  EXPECT_FALSE(base64UrlDecode("-/8").has_value());
  EXPECT_FALSE(base64UrlDecode("Zg==").has_value());
  EXPECT_FALSE(base64UrlDecode("Zm8=").has_value());
  EXPECT_FALSE(base64UrlDecode("Zm 9v").has_value());
  EXPECT_FALSE(base64UrlDecode("Zm9v\n").has_value());
  EXPECT_FALSE(base64UrlDecode(std::string("Zm\0v", 4)).has_value());
  EXPECT_FALSE(base64UrlDecode("Zm9vY").has_value());  // length 1 mod 4
}

TEST(Base64UrlTest, RefusesNonCanonicalTrailingBits) {
  // "Zg" is canonical for "f"; "Zh" decodes to the same byte with a stray low bit set.
  EXPECT_TRUE(base64UrlDecode("Zg").has_value());
  EXPECT_FALSE(base64UrlDecode("Zh").has_value());
  EXPECT_FALSE(base64UrlDecode("Zv").has_value());
  EXPECT_TRUE(base64UrlDecode("Zm8").has_value());
  EXPECT_FALSE(base64UrlDecode("Zm9").has_value());
}

// ---- accepted tokens ----

TEST_F(TokenTest, Hs256RoundTripKeepsEveryClaim) {
  TokenToSign t = basicToken();
  t.claims.dev = "phone-7";
  t.claims.nbf = kNow - 10;
  t.claims.iat = kNow - 10;
  t.claims.subs = std::vector<std::string>{"chat:*", "live:>"};
  t.claims.pubs = std::vector<std::string>{};
  Result<TokenClaims> result = verifier_.verify(sign(hsKey("hs1"), t), kNow);
  ASSERT_TRUE(result.isOk()) << result.status().toString();
  EXPECT_EQ("user-1", result->sub);
  EXPECT_EQ("acme", result->tnt);
  EXPECT_EQ("phone-7", result->dev);
  EXPECT_EQ("hs1", result->kid);
  EXPECT_EQ(kNow + 600, result->exp);
  EXPECT_EQ(kNow - 10, result->nbf);
  EXPECT_EQ(kNow - 10, result->iat);
  ASSERT_TRUE(result->subs.has_value());
  EXPECT_EQ((std::vector<std::string>{"chat:*", "live:>"}), *result->subs);
  ASSERT_TRUE(result->pubs.has_value());
  EXPECT_TRUE(result->pubs->empty());
}

TEST_F(TokenTest, Es256RoundTrip) {
  std::string token = sign(esKey("es1", p256KeyA()), basicToken());
  Result<TokenClaims> result = verifier_.verify(token, kNow);
  ASSERT_TRUE(result.isOk()) << result.status().toString();
  EXPECT_EQ("es1", result->kid);
  EXPECT_FALSE(result->subs.has_value());
  EXPECT_FALSE(result->nbf.has_value());
  // r||s of P-256 is 64 bytes: 86 base64url characters.
  EXPECT_EQ(86u, token.size() - token.rfind('.') - 1);
}

TEST_F(TokenTest, TokensWithoutKidTryEveryKeyOfTheHeaderAlg) {
  expectOk(sign(hsKey(""), basicToken()));
  expectOk(sign(esKey("", p256KeyA()), basicToken()));
}

TEST_F(TokenTest, TypIsOptionalAndCaseInsensitive) {
  expectOk(rawHs256(R"({"alg":"HS256"})", validClaimsJson(), kSecret));
  expectOk(rawHs256(R"({"alg":"HS256","typ":"jwt"})", validClaimsJson(), kSecret));
  expectRefused(rawHs256(R"({"alg":"HS256","typ":"JWS"})", validClaimsJson(), kSecret),
                "token_malformed");
  expectRefused(rawHs256(R"({"alg":"HS256","typ":1})", validClaimsJson(), kSecret),
                "token_malformed");
}

TEST_F(TokenTest, IntegralFloatTimesAccepted) {
  std::string claims = R"({"sub":"u","tnt":"acme","exp":1.7000006e9,"iat":1699999990.0})";
  Result<TokenClaims> result =
      verifier_.verify(rawHs256(R"({"alg":"HS256"})", claims, kSecret), kNow);
  ASSERT_TRUE(result.isOk()) << result.status().toString();
  EXPECT_EQ(1'700'000'600, result->exp);
  EXPECT_EQ(1'699'999'990, result->iat);
}

// ---- time and leeway ----

TEST_F(TokenTest, ExpiryAtTheLeewayEdge) {
  std::string token = sign(hsKey("hs1"), basicToken());
  const int64_t exp = kNow + 600;
  expectOk(token, exp);
  expectOk(token, exp + kLeeway);
  expectRefused(token, "token_expired", exp + kLeeway + 1);
  expectRefused(token, "token_expired", exp + 100000);
}

TEST_F(TokenTest, NotBeforeAtTheLeewayEdge) {
  TokenToSign t = basicToken();
  t.claims.nbf = kNow + 100;
  std::string token = sign(hsKey("hs1"), t);
  expectOk(token, kNow + 100 - kLeeway);
  expectRefused(token, "token_not_yet_valid", kNow + 100 - kLeeway - 1);
  expectRefused(token, "token_not_yet_valid", kNow);
}

TEST_F(TokenTest, IssuedInTheFutureAtTheLeewayEdge) {
  TokenToSign t = basicToken();
  t.claims.iat = kNow + kLeeway;
  expectOk(sign(hsKey("hs1"), t));
  t.claims.iat = kNow + kLeeway + 1;
  expectRefused(sign(hsKey("hs1"), t), "token_issued_in_future");
}

TEST_F(TokenTest, ExtremeTimesDoNotOverflow) {
  std::string max_exp = R"({"sub":"u","tnt":"acme","exp":9223372036854775807})";
  expectOk(rawHs256(R"({"alg":"HS256"})", max_exp, kSecret));
  std::string min_exp = R"({"sub":"u","tnt":"acme","exp":-9223372036854775808})";
  expectRefused(rawHs256(R"({"alg":"HS256"})", min_exp, kSecret), "token_expired");
  std::string min_nbf = R"({"sub":"u","tnt":"acme","exp":1800000000,"nbf":-9223372036854775808})";
  expectOk(rawHs256(R"({"alg":"HS256"})", min_nbf, kSecret));
}

// ---- algorithms ----

TEST_F(TokenTest, AlgNoneRefusedWithAndWithoutSignature) {
  std::string unsigned_token =
      base64UrlEncode(R"({"alg":"none","typ":"JWT"})") + "." + base64UrlEncode(validClaimsJson());
  expectRefused(unsigned_token + ".", "token_alg_refused");
  expectRefused(rawHs256(R"({"alg":"none"})", validClaimsJson(), kSecret), "token_alg_refused");
  expectRefused(rawHs256(R"({"alg":"None"})", validClaimsJson(), kSecret), "token_alg_refused");
  // The algorithm is judged first, wherever it sits in the header.
  expectRefused(
      rawHs256(R"({"typ":"nonsense","crit":["x"],"alg":"none"})", validClaimsJson(), kSecret),
      "token_alg_refused");
  // Without the third part at all the token is not even a JWS.
  expectRefused(unsigned_token, "token_malformed");
}

TEST_F(TokenTest, OtherAlgorithmsRefused) {
  for (const char* header :
       {R"({"alg":"HS384"})", R"({"alg":"HS512"})", R"({"alg":"RS256"})", R"({"alg":"ES512"})",
        R"({"alg":"PS256"})", R"({"alg":"hs256"})", R"({"alg":"HS256 "})", R"({"alg":""})",
        R"({"alg":null})", R"({"alg":["HS256"]})", R"({"alg":256})", R"({"typ":"JWT"})", R"({})"}) {
    SCOPED_TRACE(header);
    expectRefused(rawHs256(header, validClaimsJson(), kSecret), "token_alg_refused");
  }
}

TEST_F(TokenTest, RepeatedOrCriticalHeaderMembersRefused) {
  expectRefused(rawHs256(R"({"alg":"HS256","alg":"none"})", validClaimsJson(), kSecret),
                "token_malformed");
  expectRefused(rawHs256(R"({"alg":"HS256","crit":["exp"]})", validClaimsJson(), kSecret),
                "token_malformed");
  expectRefused(rawHs256(R"({"alg":"HS256","kid":7})", validClaimsJson(), kSecret),
                "token_malformed");
}

// The classic confusion attack: take the server's public key text and use it as the HMAC
// secret of an HS256 token.
TEST(TokenConfusionTest, PublicKeyAsHmacSecretRefusedOnEs256OnlyTenant) {
  TokenVerifier verifier(defaultPolicy());
  TenantTokenConfig config;
  config.keys = {esKey("es1", p256KeyA())};
  ASSERT_TRUE(verifier.addTenant("acme", config).isOk());
  const std::string& pem = p256KeyA().public_pem;
  expectRefusedBy(verifier, rawHs256(R"({"alg":"HS256"})", validClaimsJson(), pem), kNow,
                  "token_unknown_kid");
  expectRefusedBy(verifier, rawHs256(R"({"alg":"HS256","kid":"es1"})", validClaimsJson(), pem),
                  kNow, "token_unknown_kid");
  // The same forgery with the PEM without its trailing newline, as some libraries strip it.
  std::string trimmed = pem.substr(0, pem.find_last_not_of('\n') + 1);
  expectRefusedBy(verifier, rawHs256(R"({"alg":"HS256"})", validClaimsJson(), trimmed), kNow,
                  "token_unknown_kid");
}

TEST_F(TokenTest, PublicKeyAsHmacSecretRefusedOnMixedTenant) {
  const std::string& pem = p256KeyA().public_pem;
  expectRefused(rawHs256(R"({"alg":"HS256","kid":"hs1"})", validClaimsJson(), pem),
                "token_bad_signature");
  expectRefused(rawHs256(R"({"alg":"HS256","kid":"es1"})", validClaimsJson(), pem),
                "token_unknown_kid");
  expectRefused(rawHs256(R"({"alg":"HS256"})", validClaimsJson(), pem), "token_bad_signature");
}

TEST(TokenConfusionTest, KeysAreTypedByAlg) {
  TokenVerifier verifier(defaultPolicy());
  // An HS256 key carrying a PEM, or an ES256 key carrying a secret, is a configuration error:
  // no key ever has material usable by both algorithms.
  TenantTokenConfig mixed;
  TokenKey hs = hsKey("k");
  hs.public_key_pem = p256KeyA().public_pem;
  mixed.keys = {hs};
  EXPECT_EQ(Code::kConfig, verifier.addTenant("a", mixed).code());
  TokenKey es = esKey("k", p256KeyA());
  es.secret = kSecret;
  mixed.keys = {es};
  EXPECT_EQ(Code::kConfig, verifier.addTenant("b", mixed).code());
}

TEST_F(TokenTest, Es256HeaderWithHs256KidIsUnknownKid) {
  // Signed by the ES256 key but claiming the HS256 key's kid.
  TokenKey key = esKey("hs1", p256KeyA());
  expectRefused(sign(key, basicToken()), "token_unknown_kid");
}

// ---- signatures ----

TEST_F(TokenTest, StrippedSignatureRefused) {
  for (const TokenKey& key : {hsKey("hs1"), esKey("es1", p256KeyA())}) {
    std::string token = sign(key, basicToken());
    expectRefused(token.substr(0, token.rfind('.') + 1), "token_bad_signature");
  }
}

TEST_F(TokenTest, TruncatedSignatureRefused) {
  for (const TokenKey& key : {hsKey("hs1"), esKey("es1", p256KeyA())}) {
    std::string token = sign(key, basicToken());
    size_t dot = token.rfind('.');
    std::string signature = base64UrlDecode(token.substr(dot + 1)).value();
    for (size_t keep : {signature.size() - 1, signature.size() / 2, size_t{1}}) {
      expectRefused(token.substr(0, dot + 1) + base64UrlEncode(signature.substr(0, keep)),
                    "token_bad_signature");
    }
  }
}

TEST_F(TokenTest, ExtendedSignatureRefused) {
  for (const TokenKey& key : {hsKey("hs1"), esKey("es1", p256KeyA())}) {
    std::string token = sign(key, basicToken());
    expectRefused(token + "AAAA", "token_bad_signature");
  }
}

TEST_F(TokenTest, EveryFlippedSignatureBitRefused) {
  for (const TokenKey& key : {hsKey("hs1"), esKey("es1", p256KeyA())}) {
    std::string token = sign(key, basicToken());
    size_t dot = token.rfind('.');
    std::string signature = base64UrlDecode(token.substr(dot + 1)).value();
    for (size_t bit = 0; bit < signature.size() * 8; bit += 7) {
      std::string flipped = signature;
      flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
      expectRefused(token.substr(0, dot + 1) + base64UrlEncode(flipped), "token_bad_signature");
    }
  }
}

TEST_F(TokenTest, TamperedClaimsRefused) {
  std::string token = sign(hsKey("hs1"), basicToken());
  size_t dot1 = token.find('.');
  size_t dot2 = token.rfind('.');
  std::string forged = R"({"sub":"admin","tnt":"acme","exp":)" + std::to_string(kNow + 600) + "}";
  expectRefused(token.substr(0, dot1 + 1) + base64UrlEncode(forged) + token.substr(dot2),
                "token_bad_signature");
}

TEST_F(TokenTest, Es256SignatureOutOfRangeRefused) {
  std::string token = sign(esKey("es1", p256KeyA()), basicToken());
  std::string input = token.substr(0, token.rfind('.') + 1);
  expectRefused(input + base64UrlEncode(std::string(64, '\0')), "token_bad_signature");
  expectRefused(input + base64UrlEncode(std::string(64, '\xff')), "token_bad_signature");
}

TEST_F(TokenTest, WrongKeyRefused) {
  expectRefused(sign(hsKey("hs1", kSecret2), basicToken()), "token_bad_signature");
  expectRefused(sign(esKey("es1", p256KeyB()), basicToken()), "token_bad_signature");
}

// ---- structure ----

TEST_F(TokenTest, BadBase64UrlRefused) {
  std::string token = sign(hsKey("hs1"), basicToken());
  size_t dot1 = token.find('.');
  size_t dot2 = token.rfind('.');
  for (const char* bad : {"+", "/", "=", " ", "\n", "\t", "%"}) {
    SCOPED_TRACE(bad);
    expectRefused(token.substr(0, 4) + bad + token.substr(5), "token_malformed");
    expectRefused(token.substr(0, dot1 + 3) + bad + token.substr(dot1 + 4), "token_malformed");
    expectRefused(token.substr(0, dot2 + 3) + bad + token.substr(dot2 + 4), "token_malformed");
  }
  expectRefused(token + "==", "token_malformed");
  expectRefused(" " + token, "token_malformed");
  expectRefused(token + "\n", "token_malformed");
}

TEST_F(TokenTest, WrongNumberOfPartsRefused) {
  std::string token = sign(hsKey("hs1"), basicToken());
  expectRefused("", "token_malformed");
  expectRefused("abc", "token_malformed");
  expectRefused(token.substr(0, token.rfind('.')), "token_malformed");
  expectRefused(token + ".", "token_malformed");
  expectRefused(token + ".AAAA", "token_malformed");
  expectRefused("..", "token_malformed");
  expectRefused("...", "token_malformed");
}

TEST_F(TokenTest, HeaderNotJsonRefused) {
  expectRefused(rawHs256("alg=HS256", validClaimsJson(), kSecret), "token_malformed");
  expectRefused(rawHs256("", validClaimsJson(), kSecret), "token_malformed");
  expectRefused(rawHs256(R"(["HS256"])", validClaimsJson(), kSecret), "token_malformed");
  expectRefused(rawHs256(R"({"alg":"HS256")", validClaimsJson(), kSecret), "token_malformed");
}

TEST_F(TokenTest, ClaimsNotAnObjectRefused) {
  for (const char* claims : {R"([])", R"("sub")", "42", "null", "", "{", R"({"sub":})"}) {
    SCOPED_TRACE(claims);
    expectRefused(rawHs256(R"({"alg":"HS256"})", claims, kSecret), "token_malformed");
  }
}

TEST(TokenJsonTest, DeepJsonRefused) {
  TokenPolicy policy = defaultPolicy();
  policy.max_token_bytes = 1 << 20;
  TokenVerifier verifier(policy);
  TenantTokenConfig config;
  config.keys = {hsKey("hs1")};
  ASSERT_TRUE(verifier.addTenant("acme", config).isOk());
  for (size_t depth : {size_t{20}, size_t{100'000}}) {
    std::string claims = R"({"sub":"u","tnt":"acme","exp":1800000000,"x":)" +
                         std::string(depth, '[') + std::string(depth, ']') + "}";
    expectRefusedBy(verifier, rawHs256(R"({"alg":"HS256"})", claims, kSecret), kNow,
                    "token_malformed");
  }
  std::string header = R"({"alg":"HS256","x":)" + std::string(100'000, '{');
  expectRefusedBy(verifier, rawHs256(header, validClaimsJson(), kSecret), kNow, "token_malformed");
}

TEST_F(TokenTest, OversizedTokenRefused) {
  TokenToSign t = basicToken();
  t.claims.dev = std::string(4000, 'd');
  std::string token = sign(hsKey("hs1"), t);
  ASSERT_GT(token.size(), 4096u);
  expectRefused(token, "token_too_large");
  expectRefused(std::string(100'000, 'A'), "token_too_large");
}

TEST(TokenSizeTest, LimitIsInclusive) {
  TenantTokenConfig config;
  config.keys = {hsKey("hs1")};
  std::string token = sign(hsKey("hs1"), basicToken());
  TokenPolicy policy = defaultPolicy();
  policy.max_token_bytes = token.size();
  TokenVerifier exact(policy);
  ASSERT_TRUE(exact.addTenant("acme", config).isOk());
  EXPECT_TRUE(exact.verify(token, kNow).isOk());
  policy.max_token_bytes = token.size() - 1;
  TokenVerifier smaller(policy);
  ASSERT_TRUE(smaller.addTenant("acme", config).isOk());
  expectRefusedBy(smaller, token, kNow, "token_too_large");
}

// ---- claims ----

TEST_F(TokenTest, MissingRequiredClaimsRefused) {
  const std::string exp = std::to_string(kNow + 600);
  const std::string h = R"({"alg":"HS256"})";
  expectRefused(rawHs256(h, R"({"tnt":"acme","exp":)" + exp + "}", kSecret), "token_missing_claim");
  expectRefused(rawHs256(h, R"({"sub":"","tnt":"acme","exp":)" + exp + "}", kSecret),
                "token_missing_claim");
  expectRefused(rawHs256(h, R"({"sub":"u","exp":)" + exp + "}", kSecret), "token_missing_claim");
  expectRefused(rawHs256(h, R"({"sub":"u","tnt":"","exp":)" + exp + "}", kSecret),
                "token_missing_claim");
  expectRefused(rawHs256(h, R"({"sub":"u","tnt":"acme"})", kSecret), "token_missing_claim");
}

TEST_F(TokenTest, MistypedClaimsRefused) {
  const std::string exp = std::to_string(kNow + 600);
  const std::string h = R"({"alg":"HS256"})";
  for (const std::string& claims : std::vector<std::string>{
           R"({"sub":"u","tnt":"acme","exp":")" + exp + R"("})",
           R"({"sub":"u","tnt":"acme","exp":1800000000.5})",
           R"({"sub":"u","tnt":"acme","exp":1e300})",
           R"({"sub":"u","tnt":"acme","exp":18446744073709551615})",
           R"({"sub":"u","tnt":"acme","exp":true})",
           R"({"sub":"u","tnt":"acme","exp":null})",
           R"({"sub":"u","tnt":"acme","exp":)" + exp + R"(,"nbf":"0"})",
           R"({"sub":"u","tnt":"acme","exp":)" + exp + R"(,"iat":[1]})",
           R"({"sub":7,"tnt":"acme","exp":)" + exp + "}",
           R"({"sub":"u","tnt":["acme"],"exp":)" + exp + "}",
           R"({"sub":")" + std::string(129, 's') + R"(","tnt":"acme","exp":)" + exp + "}",
           R"({"sub":"u","tnt":"acme","exp":)" + exp + R"(,"dev":1})",
           R"({"sub":"u","tnt":"acme","exp":)" + exp + R"(,"iss":{}})",
           R"({"sub":"u","tnt":"acme","exp":)" + exp + R"(,"aud":1})",
           R"({"sub":"u","tnt":"acme","exp":)" + exp + R"(,"aud":["a",1]})",
           R"({"sub":"u","tnt":"acme","exp":)" + exp + R"(,"subs":"chat:*"})",
           R"({"sub":"u","tnt":"acme","exp":)" + exp + R"(,"pubs":[null]})",
           R"({"sub":"u","tnt":"acme","exp":)" + exp + R"(,"exp":)" + exp + "}",
       }) {
    SCOPED_TRACE(claims);
    expectRefused(rawHs256(h, claims, kSecret), "token_malformed");
  }
  // 128 bytes is the longest sub.
  expectOk(rawHs256(
      h, R"({"sub":")" + std::string(128, 's') + R"(","tnt":"acme","exp":)" + exp + "}", kSecret));
}

TEST_F(TokenTest, UnknownClaimsIgnored) {
  expectOk(
      rawHs256(R"({"alg":"HS256"})", validClaimsJson(R"(,"jti":"x","extra":{"a":[1]})"), kSecret));
}

TEST(TokenAudienceTest, AudienceMustMatchWhenConfigured) {
  TokenPolicy policy = defaultPolicy();
  policy.audience = "wsfleet";
  TokenVerifier verifier(policy);
  TenantTokenConfig config;
  config.keys = {hsKey("hs1")};
  ASSERT_TRUE(verifier.addTenant("acme", config).isOk());
  const std::string h = R"({"alg":"HS256"})";
  auto token = [&](const std::string& aud) {
    return rawHs256(h, validClaimsJson(aud.empty() ? "" : R"(,"aud":)" + aud), kSecret);
  };
  EXPECT_TRUE(verifier.verify(token(R"("wsfleet")"), kNow).isOk());
  EXPECT_TRUE(verifier.verify(token(R"(["other","wsfleet"])"), kNow).isOk());
  expectRefusedBy(verifier, token(""), kNow, "token_bad_audience");
  expectRefusedBy(verifier, token(R"("other")"), kNow, "token_bad_audience");
  expectRefusedBy(verifier, token(R"("WSFLEET")"), kNow, "token_bad_audience");
  expectRefusedBy(verifier, token(R"(["other"])"), kNow, "token_bad_audience");
  expectRefusedBy(verifier, token(R"([])"), kNow, "token_bad_audience");

  TokenToSign t = basicToken();
  t.aud = "wsfleet";
  EXPECT_TRUE(verifier.verify(sign(hsKey("hs1"), t), kNow).isOk());
  t.aud = "wsfleet-staging";
  expectRefusedBy(verifier, sign(hsKey("hs1"), t), kNow, "token_bad_audience");
}

TEST_F(TokenTest, AudienceIgnoredWhenNotConfigured) {
  expectOk(rawHs256(R"({"alg":"HS256"})", validClaimsJson(R"(,"aud":"anything")"), kSecret));
  expectOk(rawHs256(R"({"alg":"HS256"})", validClaimsJson(R"(,"aud":["x","y"])"), kSecret));
}

TEST(TokenIssuerTest, IssuerMustMatchWhenConfigured) {
  TokenVerifier verifier(defaultPolicy());
  TenantTokenConfig config;
  config.issuer = "https://auth.acme.example";
  config.keys = {hsKey("hs1")};
  ASSERT_TRUE(verifier.addTenant("acme", config).isOk());
  TokenToSign t = basicToken();
  expectRefusedBy(verifier, sign(hsKey("hs1"), t), kNow, "token_bad_issuer");
  t.claims.iss = "https://auth.evil.example";
  expectRefusedBy(verifier, sign(hsKey("hs1"), t), kNow, "token_bad_issuer");
  t.claims.iss = "https://auth.acme.example";
  Result<TokenClaims> result = verifier.verify(sign(hsKey("hs1"), t), kNow);
  ASSERT_TRUE(result.isOk()) << result.status().toString();
  EXPECT_EQ("https://auth.acme.example", result->iss);
}

// ---- tenants and keys ----

TEST_F(TokenTest, UnknownTenantRefused) {
  TokenToSign t = basicToken();
  t.claims.tnt = "globex";
  expectRefused(sign(hsKey("hs1"), t), "token_unknown_tenant");
}

TEST_F(TokenTest, TenantsDoNotShareKeys) {
  TenantTokenConfig globex;
  globex.keys = {hsKey("hs1", kSecret2)};
  ASSERT_TRUE(verifier_.addTenant("globex", globex).isOk());
  TokenToSign t = basicToken();
  t.claims.tnt = "globex";
  // Signed with acme's secret but claiming globex: globex's own key must be used.
  expectRefused(sign(hsKey("hs1"), t), "token_bad_signature");
  expectOk(sign(hsKey("hs1", kSecret2), t));
}

TEST_F(TokenTest, UnknownKidRefused) {
  expectRefused(sign(hsKey("hs9"), basicToken()), "token_unknown_kid");
  expectRefused(sign(esKey("es9", p256KeyA()), basicToken()), "token_unknown_kid");
}

TEST(TokenRotationTest, BothKeysVerifyDuringOverlap) {
  TokenVerifier verifier(defaultPolicy());
  TenantTokenConfig config;
  config.keys = {hsKey("2024-01"), hsKey("2024-02", kSecret2), esKey("ec-old", p256KeyA()),
                 esKey("ec-new", p256KeyB())};
  ASSERT_TRUE(verifier.addTenant("acme", config).isOk());
  for (const TokenKey& key : config.keys) {
    SCOPED_TRACE(key.kid);
    Result<TokenClaims> result = verifier.verify(sign(key, basicToken()), kNow);
    ASSERT_TRUE(result.isOk()) << result.status().toString();
    EXPECT_EQ(key.kid, result->kid);
    // Without a kid every key of the alg is tried.
    TokenKey anonymous = key;
    anonymous.kid.clear();
    EXPECT_TRUE(verifier.verify(sign(anonymous, basicToken()), kNow).isOk());
  }
  // A kid names one key: the other key's signature under that kid is refused.
  expectRefusedBy(verifier, sign(hsKey("2024-01", kSecret2), basicToken()), kNow,
                  "token_bad_signature");
  expectRefusedBy(verifier, sign(esKey("ec-new", p256KeyA()), basicToken()), kNow,
                  "token_bad_signature");
}

TEST(TokenConfigTest, InvalidKeysRefusedWithoutLeakingThem) {
  TokenVerifier verifier(defaultPolicy());
  auto add = [&](const std::string& tenant, std::vector<TokenKey> keys) {
    TenantTokenConfig config;
    config.keys = std::move(keys);
    return verifier.addTenant(tenant, config);
  };
  const std::string short_secret = "short-secret-31-bytes-long-xxxx";
  ASSERT_EQ(31u, short_secret.size());
  Status s = add("t1", {hsKey("k1", short_secret)});
  EXPECT_EQ(Code::kConfig, s.code());
  EXPECT_NE(std::string::npos, s.message().find("t1"));
  EXPECT_NE(std::string::npos, s.message().find("k1"));
  EXPECT_EQ(std::string::npos, s.message().find(short_secret));

  TokenKey garbage = esKey("k2", p256KeyA());
  garbage.public_key_pem = "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n";
  s = add("t2", {garbage});
  EXPECT_EQ(Code::kConfig, s.code());
  EXPECT_NE(std::string::npos, s.message().find("k2"));

  TokenKey empty_pem = esKey("k3", p256KeyA());
  empty_pem.public_key_pem.clear();
  EXPECT_EQ(Code::kConfig, add("t3", {empty_pem}).code());

  // A private key where the public key belongs is not a public key.
  TokenKey private_as_public = esKey("k4", p256KeyA());
  private_as_public.public_key_pem = p256KeyA().private_pem;
  EXPECT_EQ(Code::kConfig, add("t4", {private_as_public}).code());

  KeyPair p384 = generateKeyPair(MBEDTLS_ECP_DP_SECP384R1);
  ASSERT_FALSE(p384.public_pem.empty());
  s = add("t5", {esKey("k5", p384)});
  EXPECT_EQ(Code::kConfig, s.code());
  EXPECT_NE(std::string::npos, s.message().find("P-256"));

  s = add("t6", {hsKey("dup"), hsKey("dup", kSecret2)});
  EXPECT_EQ(Code::kConfig, s.code());
  EXPECT_NE(std::string::npos, s.message().find("dup"));
  EXPECT_EQ(Code::kConfig, add("t7", {hsKey("dup"), esKey("dup", p256KeyA())}).code());

  EXPECT_EQ(Code::kConfig, add("t8", {}).code());
  EXPECT_EQ(Code::kConfig, add("", {hsKey("k")}).code());

  // None of the refused tenants exists afterwards.
  TokenToSign t = basicToken();
  t.claims.tnt = "t6";
  expectRefusedBy(verifier, sign(hsKey("dup"), t), kNow, "token_unknown_tenant");

  EXPECT_TRUE(add("ok", {hsKey(""), hsKey("", kSecret2)}).isOk());
  EXPECT_EQ(Code::kConfig, add("ok", {hsKey("x")}).code());
}

TEST(TokenVerifierTest, MoveKeepsTenants) {
  TokenVerifier original(defaultPolicy());
  TenantTokenConfig config;
  config.keys = {hsKey("hs1"), esKey("es1", p256KeyA())};
  ASSERT_TRUE(original.addTenant("acme", config).isOk());
  TokenVerifier moved(std::move(original));
  EXPECT_TRUE(moved.verify(sign(esKey("es1", p256KeyA()), basicToken()), kNow).isOk());
  TokenVerifier assigned(defaultPolicy());
  assigned = std::move(moved);
  EXPECT_TRUE(assigned.verify(sign(hsKey("hs1"), basicToken()), kNow).isOk());
}

TEST(TokenVerifierTest, ConcurrentVerifyFromManyThreads) {
  TokenVerifier verifier(defaultPolicy());
  TenantTokenConfig config;
  config.keys = {hsKey("hs1"), esKey("es1", p256KeyA())};
  ASSERT_TRUE(verifier.addTenant("acme", config).isOk());
  const std::string hs = sign(hsKey("hs1"), basicToken());
  const std::string es = sign(esKey("es1", p256KeyA()), basicToken());
  std::string bad = es;
  bad[bad.size() - 2] = bad[bad.size() - 2] == 'A' ? 'B' : 'A';
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < failures.size(); ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 25; ++round) {
        if (!verifier.verify(hs, kNow).isOk()) ++failures[i];
        if (!verifier.verify(es, kNow).isOk()) ++failures[i];
        if (verifier.verify(bad, kNow).isOk()) ++failures[i];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(std::vector<int>(4, 0), failures);
}

// ---- signing ----

TEST(SignTokenTest, RefusesBadKeysAndMissingIdentity) {
  EXPECT_EQ(Code::kConfig, signToken(hsKey("k", "too-short"), basicToken()).status().code());
  TokenKey no_private = esKey("k", p256KeyA());
  no_private.private_key_pem.clear();
  EXPECT_EQ(Code::kConfig, signToken(no_private, basicToken()).status().code());
  TokenKey public_only = esKey("k", p256KeyA());
  public_only.private_key_pem = p256KeyA().public_pem;
  EXPECT_EQ(Code::kConfig, signToken(public_only, basicToken()).status().code());
  KeyPair p384 = generateKeyPair(MBEDTLS_ECP_DP_SECP384R1);
  EXPECT_EQ(Code::kConfig, signToken(esKey("k", p384), basicToken()).status().code());
  TokenToSign no_sub = basicToken();
  no_sub.claims.sub.clear();
  EXPECT_FALSE(signToken(hsKey("k"), no_sub).isOk());
}

TEST(SignTokenTest, HeaderAndClaimsJson) {
  TokenToSign t = basicToken();
  t.aud = "wsfleet";
  t.claims.iss = "me";
  t.claims.subs = std::vector<std::string>{"chat:\"x\""};
  std::string token = sign(hsKey("kid-1"), t);
  size_t dot1 = token.find('.');
  size_t dot2 = token.rfind('.');
  EXPECT_EQ(R"({"alg":"HS256","typ":"JWT","kid":"kid-1"})",
            base64UrlDecode(token.substr(0, dot1)).value());
  std::string claims = base64UrlDecode(token.substr(dot1 + 1, dot2 - dot1 - 1)).value();
  EXPECT_NE(std::string::npos, claims.find(R"("aud":"wsfleet")"));
  EXPECT_NE(std::string::npos, claims.find(R"("iss":"me")"));
  EXPECT_NE(std::string::npos, claims.find(R"("subs":["chat:\"x\""])"));
  EXPECT_EQ(std::string::npos, claims.find("\"nbf\""));
  EXPECT_EQ(std::string::npos, claims.find("\"pubs\""));
  std::string es = sign(esKey("", p256KeyA()), t);
  EXPECT_EQ(R"({"alg":"ES256","typ":"JWT"})", base64UrlDecode(es.substr(0, es.find('.'))).value());
}

}  // namespace
}  // namespace wsfleet

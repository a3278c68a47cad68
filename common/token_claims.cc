#include "common/token_internal.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

namespace wsfleet::token_internal {

Status refuse(const char* reason, std::string message) {
  return Status(Code::kUnauthorized, reason, std::move(message));
}

Status malformed(std::string_view what) {
  return refuse("token_malformed", "malformed token: " + std::string(what));
}

namespace {

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

// `subject` opens the messages: "header is", "claims are".
Result<simdjson::dom::object> parseObject(JsonParser& parser, std::string_view json,
                                          std::string_view subject) {
  Result<simdjson::dom::element> doc = parser.parse(json);
  if (!doc) return malformed(std::string(subject) + " not valid JSON");
  simdjson::dom::object object;
  if (doc->get_object().get(object) != simdjson::SUCCESS) {
    return malformed(std::string(subject) + " not a JSON object");
  }
  return object;
}

}  // namespace

Result<Header> parseHeader(JsonParser& parser, std::string_view json) {
  WSF_ASSIGN_OR_RETURN(simdjson::dom::object object, parseObject(parser, json, "header is"));
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

Result<RawClaims> parseClaims(JsonParser& parser, std::string_view json) {
  WSF_ASSIGN_OR_RETURN(simdjson::dom::object object, parseObject(parser, json, "claims are"));
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

}  // namespace wsfleet::token_internal

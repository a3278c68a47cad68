#pragma once
// JSON for the wire: a bounded parser over simdjson (depth, size, strict UTF-8 and
// surrogates) and an allocation-light writer that appends into one std::string.

#include <cstdint>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "common/status.h"

namespace wsfleet {

struct JsonLimits {
  size_t max_bytes = 1 << 20;  // documents larger than this: Code::kTooLarge
  size_t max_depth = 32;       // deeper nesting: Code::kBadRequest, reason json_too_deep
};

// One parser per thread; reuses its buffers between documents. The returned element
// is valid until the next parse() on the same parser.
// Errors are Code::kBadRequest (reasons: json_invalid, json_too_deep, json_bad_number,
// json_bad_string) or Code::kTooLarge (json_too_large). Lone surrogates (\ud800 without
// its pair, or a bare \udc00) and invalid UTF-8 are refused as json_bad_string.
class JsonParser {
 public:
  explicit JsonParser(JsonLimits limits = {});
  Result<simdjson::dom::element> parse(std::string_view text);
  const JsonLimits& limits() const { return limits_; }

 private:
  JsonLimits limits_;
  simdjson::dom::parser parser_;
};

// Minified JSON text of an element (for re-embedding client `data` once, verbatim).
std::string jsonToString(simdjson::dom::element element);

// Appends `s` as a JSON string literal (with quotes). Invalid UTF-8 is replaced by U+FFFD
// so the output is always valid JSON in valid UTF-8.
void appendJsonString(std::string& out, std::string_view s);

// Streaming writer: inserts commas itself. Misuse (value without key inside an object)
// is a programming error and asserts.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}
  JsonWriter& beginObject();
  JsonWriter& endObject();
  JsonWriter& beginArray();
  JsonWriter& endArray();
  JsonWriter& key(std::string_view k);
  JsonWriter& string(std::string_view v);
  JsonWriter& uint(uint64_t v);
  JsonWriter& integer(int64_t v);
  JsonWriter& number(double v);  // non-finite values are written as null
  JsonWriter& boolean(bool v);
  JsonWriter& null();
  JsonWriter& raw(std::string_view json);  // already-valid JSON text
  // Shorthands for key+value.
  JsonWriter& field(std::string_view k, std::string_view v) { return key(k).string(v); }
  JsonWriter& field(std::string_view k, const char* v) { return key(k).string(v); }
  JsonWriter& fieldUint(std::string_view k, uint64_t v) { return key(k).uint(v); }
  JsonWriter& fieldInt(std::string_view k, int64_t v) { return key(k).integer(v); }
  JsonWriter& fieldBool(std::string_view k, bool v) { return key(k).boolean(v); }
  JsonWriter& fieldRaw(std::string_view k, std::string_view json) { return key(k).raw(json); }

 private:
  void beforeValue();
  std::string& out_;
  // One bit per open container: whether a value was written at this depth yet.
  uint64_t first_bits_ = 0;
  // One bit per open container: set for objects (keys required), clear for arrays.
  uint64_t object_bits_ = 0;
  int depth_ = 0;
  bool after_key_ = false;
};

}  // namespace wsfleet

#include "common/json.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <string>

#include "common/json_escape.h"
#include "common/utf8.h"

namespace wsfleet {

namespace {

// simdjson counts the document root as one level, so allowing N nested containers
// takes a parser depth of N + 1 (checked against 3.0.1: depth 3 accepts [[1]], not [[[1]]]).
size_t simdjsonDepth(const JsonLimits& limits) {
  return limits.max_depth + 1;
}

// The parser grows its buffers on demand up to max_bytes; start small so that idle
// connections do not each hold a full-size tape.
constexpr size_t kInitialCapacity = 4096;

Status translateError(simdjson::error_code error, const JsonLimits& limits) {
  switch (error) {
    case simdjson::DEPTH_ERROR:
      return Status(Code::kBadRequest, "json_too_deep",
                    "JSON nesting deeper than " + std::to_string(limits.max_depth));
    case simdjson::NUMBER_ERROR:
    case simdjson::NUMBER_OUT_OF_RANGE:
      // Integers beyond the 64-bit range and doubles that overflow (1e400) land here:
      // the parser refuses them rather than silently rounding a value we re-emit.
      return Status(Code::kBadRequest, "json_bad_number", "JSON number out of range or malformed");
    case simdjson::STRING_ERROR:
      // Includes lone or reversed UTF-16 surrogate escapes, which simdjson refuses.
      return Status(Code::kBadRequest, "json_bad_string",
                    "JSON string with a bad escape or lone surrogate");
    case simdjson::UTF8_ERROR:
      return Status(Code::kBadRequest, "json_bad_string", "JSON text is not valid UTF-8");
    case simdjson::UNESCAPED_CHARS:
      return Status(Code::kBadRequest, "json_bad_string",
                    "JSON string contains an unescaped control character");
    case simdjson::UNCLOSED_STRING:
      return Status(Code::kBadRequest, "json_bad_string", "JSON string is not closed");
    case simdjson::CAPACITY:
      return Status(Code::kTooLarge, "json_too_large",
                    "JSON document over " + std::to_string(limits.max_bytes) + " bytes");
    case simdjson::MEMALLOC:
      return Status(Code::kInternal, "json_alloc_failed", "out of memory parsing JSON");
    case simdjson::EMPTY:
      return Status(Code::kBadRequest, "json_invalid", "empty JSON document");
    default:
      return Status(Code::kBadRequest, "json_invalid",
                    std::string("invalid JSON: ") + simdjson::error_message(error));
  }
}

template <class Int>
void appendInteger(std::string& out, Int v) {
  char buf[24];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, res.ptr);
}

}  // namespace

JsonParser::JsonParser(JsonLimits limits) : limits_(limits), parser_(limits.max_bytes) {
  // A failure here (out of memory) is retried, and reported, by the first parse().
  const simdjson::error_code error =
      parser_.allocate(std::min(kInitialCapacity, limits_.max_bytes), simdjsonDepth(limits_));
  static_cast<void>(error);
}

Result<simdjson::dom::element> JsonParser::parse(std::string_view text) {
  if (text.size() > limits_.max_bytes) {
    return Status(Code::kTooLarge, "json_too_large",
                  "JSON document of " + std::to_string(text.size()) + " bytes over " +
                      std::to_string(limits_.max_bytes));
  }
  // Checked here so that a default string_view (null data) never reaches simdjson.
  if (text.empty()) return translateError(simdjson::EMPTY, limits_);
  // The depth must be in place before parsing: simdjson keeps it when it grows the
  // buffers, but a parser whose first allocation failed has none yet.
  if (parser_.max_depth() != simdjsonDepth(limits_)) {
    const simdjson::error_code error =
        parser_.allocate(std::min(std::max(kInitialCapacity, text.size()), limits_.max_bytes),
                         simdjsonDepth(limits_));
    if (error) return translateError(error, limits_);
  }
  simdjson::dom::element element;
  // parse(const char*, len) copies into the parser's own padded buffer, which it reuses.
  const simdjson::error_code error = parser_.parse(text.data(), text.size()).get(element);
  if (error) return translateError(error, limits_);
  return element;
}

std::string jsonToString(simdjson::dom::element element) {
  return simdjson::minify(element);
}

void appendJsonString(std::string& out, std::string_view s) {
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  size_t run_start = 0;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    uint32_t cp = 0;
    size_t len = 1;
    if (c >= 0x80) {
      len = decodeUtf8At(s, i, &cp);
      // U+2028/U+2029 are valid JSON but end a line in older JavaScript; escaping
      // them keeps frames safe to embed in script without changing their meaning.
      if (len != 0 && cp != 0x2028 && cp != 0x2029) {
        i += len;
        continue;
      }
    }
    out.append(s.data() + run_start, i - run_start);
    if (c >= 0x80) {
      if (len == 0) {
        out.append("\xEF\xBF\xBD");
        len = utf8IllFormedLength(s, i);
      } else {
        appendJsonUnicodeEscape(out, cp);
      }
    } else {
      appendJsonAsciiEscape(out, c);
    }
    i += len;
    run_start = i;
  }
  out.append(s.data() + run_start, s.size() - run_start);
  out.push_back('"');
}

// ---- JsonWriter ----

namespace {
constexpr int kMaxWriterDepth = 64;
}

void JsonWriter::beforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (depth_ == 0) return;
  const uint64_t bit = uint64_t{1} << (depth_ - 1);
  assert((object_bits_ & bit) == 0 && "JsonWriter: value without key inside an object");
  if ((first_bits_ & bit) != 0) {
    first_bits_ &= ~bit;
  } else {
    out_.push_back(',');
  }
}

JsonWriter& JsonWriter::beginObject() {
  beforeValue();
  assert(depth_ < kMaxWriterDepth && "JsonWriter: nesting deeper than 64");
  const uint64_t bit = uint64_t{1} << depth_;
  first_bits_ |= bit;
  object_bits_ |= bit;
  ++depth_;
  out_.push_back('{');
  return *this;
}

JsonWriter& JsonWriter::endObject() {
  assert(depth_ > 0 && !after_key_ && "JsonWriter: endObject without an open object");
  --depth_;
  const uint64_t bit = uint64_t{1} << depth_;
  assert((object_bits_ & bit) != 0 && "JsonWriter: endObject closes an array");
  object_bits_ &= ~bit;
  first_bits_ &= ~bit;
  out_.push_back('}');
  return *this;
}

JsonWriter& JsonWriter::beginArray() {
  beforeValue();
  assert(depth_ < kMaxWriterDepth && "JsonWriter: nesting deeper than 64");
  const uint64_t bit = uint64_t{1} << depth_;
  first_bits_ |= bit;
  object_bits_ &= ~bit;
  ++depth_;
  out_.push_back('[');
  return *this;
}

JsonWriter& JsonWriter::endArray() {
  assert(depth_ > 0 && !after_key_ && "JsonWriter: endArray without an open array");
  --depth_;
  const uint64_t bit = uint64_t{1} << depth_;
  assert((object_bits_ & bit) == 0 && "JsonWriter: endArray closes an object");
  first_bits_ &= ~bit;
  out_.push_back(']');
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  assert(depth_ > 0 && !after_key_ && "JsonWriter: key outside an object");
  const uint64_t bit = uint64_t{1} << (depth_ - 1);
  assert((object_bits_ & bit) != 0 && "JsonWriter: key inside an array");
  if ((first_bits_ & bit) != 0) {
    first_bits_ &= ~bit;
  } else {
    out_.push_back(',');
  }
  appendJsonString(out_, k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(std::string_view v) {
  beforeValue();
  appendJsonString(out_, v);
  return *this;
}

JsonWriter& JsonWriter::uint(uint64_t v) {
  beforeValue();
  appendInteger(out_, v);
  return *this;
}

JsonWriter& JsonWriter::integer(int64_t v) {
  beforeValue();
  appendInteger(out_, v);
  return *this;
}

JsonWriter& JsonWriter::number(double v) {
  beforeValue();
  if (!std::isfinite(v)) {
    out_.append("null");
    return *this;
  }
  // Shortest text that reads back as the same double; always valid JSON for finite v.
  char buf[32];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, res.ptr);
  return *this;
}

JsonWriter& JsonWriter::boolean(bool v) {
  beforeValue();
  out_.append(v ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::null() {
  beforeValue();
  out_.append("null");
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view json) {
  assert(!json.empty() && "JsonWriter: raw value is empty");
  beforeValue();
  if (json.empty()) {
    out_.append("null");  // keeps the output valid JSON if the assert is compiled out
  } else {
    out_.append(json);
  }
  return *this;
}

}  // namespace wsfleet

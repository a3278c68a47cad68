#include "common/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace wsfleet {
namespace {

std::string nested(size_t depth, std::string_view leaf = "1") {
  return std::string(depth, '[') + std::string(leaf) + std::string(depth, ']');
}

std::string nestedObjects(size_t depth) {
  std::string s;
  for (size_t i = 0; i < depth; ++i) s += "{\"k\":";
  s += "0";
  s += std::string(depth, '}');
  return s;
}

void expectRefused(JsonParser& parser, std::string_view text, Code code, std::string_view reason) {
  auto r = parser.parse(text);
  ASSERT_FALSE(r.isOk()) << "accepted: " << text.substr(0, 80);
  EXPECT_EQ(r.status().code(), code) << text.substr(0, 80);
  EXPECT_EQ(std::string_view(r.status().reason()), reason) << text.substr(0, 80);
}

TEST(JsonParserTest, ParsesAndMinifies) {
  JsonParser parser;
  auto r = parser.parse(R"( { "a" : [1, 2.5, "x", true, null, {"b": {}}] } )");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(jsonToString(*r), R"({"a":[1,2.5,"x",true,null,{"b":{}}]})");
}

TEST(JsonParserTest, DepthLimitExactlyAtAndOver) {
  JsonParser parser(JsonLimits{.max_bytes = 1 << 20, .max_depth = 32});
  EXPECT_TRUE(parser.parse(nested(32)).isOk());
  expectRefused(parser, nested(33), Code::kBadRequest, "json_too_deep");
  EXPECT_TRUE(parser.parse(nestedObjects(32)).isOk());
  expectRefused(parser, nestedObjects(33), Code::kBadRequest, "json_too_deep");
  // A scalar has depth 0 and one container depth 1.
  JsonParser shallow(JsonLimits{.max_bytes = 1024, .max_depth = 1});
  EXPECT_TRUE(shallow.parse("7").isOk());
  EXPECT_TRUE(shallow.parse("[7]").isOk());
  expectRefused(shallow, "[[7]]", Code::kBadRequest, "json_too_deep");
}

TEST(JsonParserTest, DepthLimitSurvivesBufferGrowth) {
  // The parser starts with small buffers; growing them must keep the configured depth.
  JsonParser parser(JsonLimits{.max_bytes = 1 << 20, .max_depth = 4});
  std::string padded = "[[[[" + std::string(100000, ' ') + "1]]]]";
  EXPECT_TRUE(parser.parse(padded).isOk());
  padded = "[[[[[" + std::string(200000, ' ') + "1]]]]]";
  expectRefused(parser, padded, Code::kBadRequest, "json_too_deep");
}

TEST(JsonParserTest, HundredThousandDeepRefusedWithoutCrash) {
  JsonParser parser(JsonLimits{.max_bytes = 1 << 20, .max_depth = 32});
  expectRefused(parser, nested(100000), Code::kBadRequest, "json_too_deep");
  expectRefused(parser, nestedObjects(100000), Code::kBadRequest, "json_too_deep");
  // Unbalanced, only openers: refused (simdjson sees the imbalance before the depth).
  auto r = parser.parse(std::string(100000, '['));
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), Code::kBadRequest);
  // The parser is still usable afterwards.
  EXPECT_TRUE(parser.parse("[1]").isOk());
}

TEST(JsonParserTest, SizeCapRefusedBeforeParsing) {
  JsonParser parser(JsonLimits{.max_bytes = 64, .max_depth = 8});
  const std::string at_cap = "\"" + std::string(62, 'a') + "\"";
  ASSERT_EQ(at_cap.size(), 64u);
  EXPECT_TRUE(parser.parse(at_cap).isOk());
  const std::string over = "\"" + std::string(63, 'a') + "\"";
  expectRefused(parser, over, Code::kTooLarge, "json_too_large");
  // Even garbage over the cap is "too large", not "invalid": size is checked first.
  expectRefused(parser, std::string(65, '{'), Code::kTooLarge, "json_too_large");
}

TEST(JsonParserTest, LoneSurrogatesRefused) {
  JsonParser parser;
  expectRefused(parser, R"(["\ud800"])", Code::kBadRequest, "json_bad_string");
  expectRefused(parser, R"(["\udc00"])", Code::kBadRequest, "json_bad_string");
  expectRefused(parser, R"(["\ud800\u0041"])", Code::kBadRequest, "json_bad_string");
  expectRefused(parser, R"(["\ud800x"])", Code::kBadRequest, "json_bad_string");
  expectRefused(parser, R"(["\udbff\ud800"])", Code::kBadRequest, "json_bad_string");
  // Reversed pair: low then high.
  expectRefused(parser, R"(["\ude00\ud83d"])", Code::kBadRequest, "json_bad_string");
  expectRefused(parser, R"({"\ud800":1})", Code::kBadRequest, "json_bad_string");
  expectRefused(parser, R"("abc\udfff")", Code::kBadRequest, "json_bad_string");
}

TEST(JsonParserTest, ValidSurrogatePairBecomesUtf8) {
  JsonParser parser;
  auto r = parser.parse(R"(["\ud83d\ude00","\u00e9"])");
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  EXPECT_EQ(jsonToString(*r), "[\"\xF0\x9F\x98\x80\",\"\xC3\xA9\"]");
}

TEST(JsonParserTest, InvalidUtf8Refused) {
  JsonParser parser;
  expectRefused(parser, "[\"\xFF\"]", Code::kBadRequest, "json_bad_string");
  expectRefused(parser, "[\"\xC3\"]", Code::kBadRequest, "json_bad_string");          // truncated
  expectRefused(parser, "[\"\xC0\xAF\"]", Code::kBadRequest, "json_bad_string");      // overlong
  expectRefused(parser, "[\"\xED\xA0\x80\"]", Code::kBadRequest, "json_bad_string");  // CESU
  expectRefused(parser, "[\"a\x01\"]", Code::kBadRequest, "json_bad_string");         // raw control
}

TEST(JsonParserTest, HugeNumbersRefused) {
  JsonParser parser;
  expectRefused(parser, "[1e400]", Code::kBadRequest, "json_bad_number");
  expectRefused(parser, "[-1e400]", Code::kBadRequest, "json_bad_number");
  expectRefused(parser, "[123456789012345678901234567890]", Code::kBadRequest, "json_bad_number");
  expectRefused(parser, "[18446744073709551616]", Code::kBadRequest, "json_bad_number");
  expectRefused(parser, "[-9223372036854775809]", Code::kBadRequest, "json_bad_number");
  expectRefused(parser, "[01]", Code::kBadRequest, "json_bad_number");
  // The extremes of the 64-bit ranges are fine.
  EXPECT_TRUE(parser.parse("[18446744073709551615,-9223372036854775808,1e308]").isOk());
}

TEST(JsonParserTest, MalformedRefusedAsInvalid) {
  JsonParser parser;
  for (std::string_view text :
       {"", "   ", "{", "[1,]", "{\"a\" 1}", "{\"a\":1} x", "nul", "{'a':1}", "[1]]"}) {
    auto r = parser.parse(text);
    ASSERT_FALSE(r.isOk()) << text;
    EXPECT_EQ(r.status().code(), Code::kBadRequest) << text;
  }
  expectRefused(parser, "", Code::kBadRequest, "json_invalid");
  expectRefused(parser, std::string_view(), Code::kBadRequest, "json_invalid");
  expectRefused(parser, "{\"a\":1} x", Code::kBadRequest, "json_invalid");
  expectRefused(parser, std::string_view("[1]\0", 4), Code::kBadRequest, "json_invalid");
}

TEST(JsonParserTest, MillionKeysWithinLimitParses) {
  std::string text;
  text.reserve(16 << 20);
  text += '{';
  for (int i = 0; i < 1000000; ++i) {
    if (i) text += ',';
    text += "\"k";
    text += std::to_string(i);
    text += "\":0";
  }
  text += '}';
  JsonParser big(JsonLimits{.max_bytes = 32 << 20, .max_depth = 8});
  auto r = big.parse(text);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  simdjson::dom::object obj;
  ASSERT_EQ(r->get_object().get(obj), simdjson::SUCCESS);
  EXPECT_EQ(obj.size(), 1000000u);
  // With the default 1 MiB cap the same document is refused cleanly.
  JsonParser small;
  expectRefused(small, text, Code::kTooLarge, "json_too_large");
}

TEST(JsonParserTest, ParserReusableAfterErrors) {
  JsonParser parser;
  EXPECT_FALSE(parser.parse("[\"\\ud800\"]").isOk());
  auto r = parser.parse("{\"ok\":true}");
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ(jsonToString(*r), "{\"ok\":true}");
}

std::string jsonQuoted(std::string_view s) {
  std::string out;
  appendJsonString(out, s);
  return out;
}

TEST(AppendJsonStringTest, EscapesSpecialsAndControls) {
  EXPECT_EQ(jsonQuoted(""), "\"\"");
  EXPECT_EQ(jsonQuoted("plain"), "\"plain\"");
  EXPECT_EQ(jsonQuoted("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(jsonQuoted("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(jsonQuoted(std::string_view("\x00\x01\x1f", 3)), R"("\u0000\u0001\u001f")");
  EXPECT_EQ(jsonQuoted("/\x7f"), "\"/\x7f\"");  // neither needs escaping in JSON
}

TEST(AppendJsonStringTest, PassesValidUtf8Through) {
  EXPECT_EQ(jsonQuoted("caf\xC3\xA9 \xF0\x9F\x98\x80 \xE2\x82\xAC"),
            "\"caf\xC3\xA9 \xF0\x9F\x98\x80 \xE2\x82\xAC\"");
  // Line and paragraph separators are escaped (safe to embed in script).
  EXPECT_EQ(jsonQuoted("a\xE2\x80\xA8"
                       "b\xE2\x80\xA9"),
            R"("a\u2028b\u2029")");
}

TEST(AppendJsonStringTest, ReplacesInvalidUtf8) {
  const std::string kFffd = "\xEF\xBF\xBD";
  EXPECT_EQ(jsonQuoted("a\xFF"
                       "b"),
            "\"a" + kFffd + "b\"");
  EXPECT_EQ(jsonQuoted("\xC3"), "\"" + kFffd + "\"");  // truncated at end
  EXPECT_EQ(jsonQuoted("\xE2\x82"
                       "x"),
            "\"" + kFffd + "x\"");                                             // one per broken seq
  EXPECT_EQ(jsonQuoted("\xC0\xAF"), "\"" + kFffd + kFffd + "\"");              // overlong
  EXPECT_EQ(jsonQuoted("\xED\xA0\x80"), "\"" + kFffd + kFffd + kFffd + "\"");  // surrogate
  EXPECT_EQ(jsonQuoted("\xF4\x90\x80\x80"), "\"" + kFffd + kFffd + kFffd + kFffd + "\"");
  // Whatever the input, the output parses back as JSON.
  JsonParser parser;
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(i));
  const std::string out = jsonQuoted(all_bytes);
  auto r = parser.parse(out);
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  std::string_view back;
  ASSERT_EQ(r->get_string().get(back), simdjson::SUCCESS);
  EXPECT_EQ(back.substr(0, 128), std::string_view(all_bytes).substr(0, 128));
}

TEST(JsonWriterTest, CommasAndNesting) {
  std::string out;
  JsonWriter w(out);
  w.beginObject()
      .field("a", "x")
      .fieldUint("b", 1)
      .key("c")
      .beginArray()
      .uint(1)
      .integer(-2)
      .beginObject()
      .endObject()
      .beginArray()
      .endArray()
      .string("s")
      .boolean(false)
      .null()
      .endArray()
      .fieldBool("d", true)
      .fieldInt("e", std::numeric_limits<int64_t>::min())
      .fieldRaw("f", R"({"x":[1,2]})")
      .key("g")
      .beginObject()
      .field("h", std::string_view("q\"uote"))
      .endObject()
      .endObject();
  EXPECT_EQ(out, R"({"a":"x","b":1,"c":[1,-2,{},[],"s",false,null],"d":true,)"
                 R"("e":-9223372036854775808,"f":{"x":[1,2]},"g":{"h":"q\"uote"}})");
  JsonParser parser;
  EXPECT_TRUE(parser.parse(out).isOk());
}

TEST(JsonWriterTest, EscapesKeys) {
  std::string out;
  JsonWriter(out).beginObject().field("k\"\n", "v").endObject();
  EXPECT_EQ(out, R"({"k\"\n":"v"})");
}

TEST(JsonWriterTest, Numbers) {
  std::string out;
  JsonWriter(out)
      .beginArray()
      .number(1.5)
      .number(-0.25)
      .number(1e300)
      .number(std::nan(""))
      .number(std::numeric_limits<double>::infinity())
      .uint(std::numeric_limits<uint64_t>::max())
      .endArray();
  EXPECT_EQ(out, "[1.5,-0.25,1e+300,null,null,18446744073709551615]");
  JsonParser parser;
  EXPECT_TRUE(parser.parse(out).isOk());
}

TEST(JsonWriterTest, SixtyFourLevels) {
  std::string out;
  JsonWriter w(out);
  for (int i = 0; i < 64; ++i) {
    if (i % 2 == 0) {
      w.beginArray();
    } else {
      w.beginObject().key("k");
    }
  }
  w.uint(7);
  for (int i = 63; i >= 0; --i) {
    if (i % 2 == 0) {
      w.endArray();
    } else {
      w.endObject();
    }
  }
  std::string expected;
  for (int i = 0; i < 64; ++i) expected += i % 2 == 0 ? "[" : "{\"k\":";
  expected += "7";
  for (int i = 63; i >= 0; --i) expected += i % 2 == 0 ? "]" : "}";
  EXPECT_EQ(out, expected);
  // Siblings after a deep close get their comma.
  out.clear();
  JsonWriter(out).beginArray().beginArray().uint(1).endArray().uint(2).endArray();
  EXPECT_EQ(out, "[[1],2]");
}

#ifndef NDEBUG
TEST(JsonWriterDeathTest, ValueWithoutKeyInObjectAsserts) {
  EXPECT_DEATH(
      {
        std::string out;
        JsonWriter(out).beginObject().uint(1);
      },
      "value without key");
  EXPECT_DEATH(
      {
        std::string out;
        JsonWriter(out).beginArray().key("k");
      },
      "key inside an array");
}
#endif

}  // namespace
}  // namespace wsfleet

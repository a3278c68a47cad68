#include "common/channel.h"

#include <gtest/gtest.h>

#include <string>

namespace wsfleet {
namespace {

void expectBadChannel(std::string_view name) {
  const Status s = validateChannelName(name);
  ASSERT_FALSE(s.isOk()) << "accepted: " << name;
  EXPECT_EQ(s.code(), Code::kBadRequest);
  EXPECT_STREQ(s.reason(), "bad_channel");
  // The message never carries a raw control character back to the peer or the log.
  for (const char c : s.message()) {
    EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7F) << s.message();
  }
}

TEST(ChannelNameTest, ValidNames) {
  for (std::string_view name : {"chat:room42", "chat:team-7:room-42", "live:a", "a:b:c:d:e:f",
                                "ns:user@example=x+y,z", "UPPER:lower_0-9", "chat:-", "x:_"}) {
    EXPECT_TRUE(validateChannelName(name).isOk()) << name;
  }
}

TEST(ChannelNameTest, InvalidClasses) {
  expectBadChannel("");
  expectBadChannel("chat");        // no second segment
  expectBadChannel("chat:");       // trailing ':'
  expectBadChannel(":chat");       // leading ':'
  expectBadChannel("chat::room");  // empty segment
  expectBadChannel(":");
  expectBadChannel("chat:room.42");                        // dot
  expectBadChannel("chat:*");                              // wildcard
  expectBadChannel("chat:>");                              // wildcard
  expectBadChannel("chat:room 42");                        // space
  expectBadChannel("chat:room\r\n42");                     // CRLF
  expectBadChannel(std::string_view("chat:room\0x", 11));  // NUL
  expectBadChannel("chat:room\t");
  expectBadChannel("chat:caf\xC3\xA9");  // non-ASCII
  expectBadChannel("chat:\xFF");         // invalid UTF-8
  expectBadChannel("chat:a/b");
  expectBadChannel("chat:\"x\"");
  expectBadChannel("chat:a\x7F");
}

TEST(ChannelNameTest, MessagesDescribeTheByte) {
  const Status crlf = validateChannelName("chat:a\r\n");
  EXPECT_NE(crlf.message().find("0x0d"), std::string::npos) << crlf.message();
  const Status dot = validateChannelName("chat:a.b");
  EXPECT_NE(dot.message().find("'.'"), std::string::npos) << dot.message();
  const Status empty = validateChannelName("chat::x");
  EXPECT_NE(empty.message().find("empty segment"), std::string::npos) << empty.message();
}

TEST(ChannelNameTest, TotalLengthEdge) {
  // "ns:" + 3 segments of 64 chars joined by ':' = 3 + 64*3 + 2 = 197; pad to 200 exactly.
  std::string name = "ns:" + std::string(64, 'a') + ":" + std::string(64, 'b') + ":" +
                     std::string(64, 'c') + ":xy";
  ASSERT_EQ(name.size(), 200u);
  EXPECT_TRUE(validateChannelName(name).isOk());
  name += "z";
  ASSERT_EQ(name.size(), 201u);
  expectBadChannel(name);
  // Very long input is refused on length alone.
  expectBadChannel("chat:" + std::string(10 << 20, 'a'));
}

TEST(ChannelNameTest, SegmentLengthEdge) {
  EXPECT_TRUE(validateChannelName("chat:" + std::string(64, 'r')).isOk());
  expectBadChannel("chat:" + std::string(65, 'r'));
  EXPECT_TRUE(validateChannelName(std::string(64, 'n') + ":r").isOk());
  expectBadChannel(std::string(65, 'n') + ":r");
}

TEST(ChannelNameTest, Namespace) {
  EXPECT_EQ(channelNamespace("chat:team-7:room-42"), "chat");
  EXPECT_EQ(channelNamespace("live:x"), "live");
}

TEST(UserIdTest, ValidAndInvalid) {
  for (std::string_view user :
       {"alice", "u-123", "a@b.c", "x", "caf\xC3\xA9", "\xE4\xB8\xAD\xE6\x96\x87", "a:b/c*d>"}) {
    EXPECT_TRUE(validateUserId(user).isOk()) << user;
  }
  EXPECT_TRUE(validateUserId(std::string(128, 'u')).isOk());
  for (std::string_view user : {"", "a b", "a\"b", "a\\b", "a\nb", "a\x7F", "\xFF", "\xC3",
                                "\xC2\x85" /* U+0085, a C1 control */}) {
    const Status s = validateUserId(user);
    EXPECT_FALSE(s.isOk()) << user;
    EXPECT_STREQ(s.reason(), "bad_user");
  }
  EXPECT_FALSE(validateUserId(std::string_view("a\0b", 3)).isOk());
  EXPECT_FALSE(validateUserId(std::string(129, 'u')).isOk());
}

ChannelPattern pattern(std::string_view text) {
  auto r = ChannelPattern::parse(text);
  EXPECT_TRUE(r.isOk()) << text << ": " << (r.isOk() ? "" : r.status().toString());
  return r.isOk() ? *r : *ChannelPattern::parse(">");
}

TEST(ChannelPatternTest, ParseAcceptsWildcards) {
  for (std::string_view text :
       {">", "chat:*", "chat:>", "*:*", "*:>", "chat:*:room", "chat:a", "chat:*:>"}) {
    auto r = ChannelPattern::parse(text);
    ASSERT_TRUE(r.isOk()) << text << ": " << r.status().toString();
    EXPECT_EQ(r->text(), text);
  }
}

TEST(ChannelPatternTest, ParseRefuses) {
  for (std::string_view text :
       {"", ">:chat", "chat:>:x", "chat:>:>", "chat::*", "chat:", ":chat", "chat:a*", "chat:>x",
        "chat:a.b", "chat", "*", "chat:a b", "chat:\r\n"}) {
    auto r = ChannelPattern::parse(text);
    ASSERT_FALSE(r.isOk()) << "accepted: " << text;
    EXPECT_EQ(r.status().code(), Code::kBadRequest);
    EXPECT_STREQ(r.status().reason(), "bad_pattern");
  }
  EXPECT_FALSE(ChannelPattern::parse("chat:" + std::string(300, 'a')).isOk());
}

TEST(ChannelPatternTest, MatchingTable) {
  struct Case {
    std::string_view pattern, channel;
    bool match;
  };
  const Case cases[] = {
      {">", "chat:room42", true},
      {">", "a:b:c:d", true},
      {"chat:*", "chat:room42", true},
      {"chat:*", "chat:team-7:room-42", false},
      {"chat:*", "live:room42", false},
      {"chat:>", "chat:room42", true},
      {"chat:>", "chat:team-7:room-42", true},
      {"chat:>", "live:room42", false},
      {"chat:>", "chatter:room42", false},
      {"*:room42", "chat:room42", true},
      {"*:room42", "live:room42", true},
      {"*:room42", "chat:room4", false},
      {"chat:*:room-42", "chat:team-7:room-42", true},
      {"chat:*:room-42", "chat:team-7:room-43", false},
      {"chat:*:room-42", "chat:room-42", false},
      {"chat:room42", "chat:room42", true},
      {"chat:room42", "chat:room421", false},
      {"chat:room42", "chat:room42:x", false},
      {"chat:room", "chat:room42", false},
      {"chat:*:>", "chat:a", false},
      {"chat:*:>", "chat:a:b", true},
      {"chat:*:>", "chat:a:b:c", true},
      {"*:*", "chat:a", true},
      {"*:*", "chat:a:b", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(pattern(c.pattern).matches(c.channel), c.match) << c.pattern << " vs " << c.channel;
  }
}

TEST(ChannelPatternTest, MatchesAny) {
  const std::vector<ChannelPattern> patterns = {pattern("chat:*"), pattern("live:>")};
  EXPECT_TRUE(matchesAny(patterns, "chat:x"));
  EXPECT_TRUE(matchesAny(patterns, "live:a:b"));
  EXPECT_FALSE(matchesAny(patterns, "chat:x:y"));
  EXPECT_FALSE(matchesAny(patterns, "ops:x"));
  EXPECT_FALSE(matchesAny({}, "chat:x"));
}

}  // namespace
}  // namespace wsfleet

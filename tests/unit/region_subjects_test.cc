#include "common/region_subjects.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace wsfleet {
namespace {

TEST(RegionSubjects, ValidNamesPassUnchanged) {
  EXPECT_EQ(channelSubject("eu", "demo", "chat:room-42"), "wsf.eu.ch.demo.chat:room-42");
  EXPECT_EQ(userSubject("eu", "demo", "alice@x.io"), "wsf.eu.user.demo.alice@x%2Eio");
  EXPECT_EQ(historySubject("us-east", "t1", "chat:a_b=c+d,e"),
            "wsf.us-east.hist.t1.chat:a_b=c+d,e");
  EXPECT_EQ(historyStreamName("eu"), "WSF_HIST_eu");
}

TEST(RegionSubjects, SubjectSyntaxNeverSurvives) {
  using namespace std::string_view_literals;
  for (std::string_view hostile : {"a.b"sv, "*"sv, ">"sv, "chat:>"sv, "a b"sv, "a\tb"sv,
                                   "a\r\nPUB x 1"sv, "a\0b"sv, "%41"sv, ".."sv, "chat:*.>"sv}) {
    const std::string token = subjectToken(hostile);
    SCOPED_TRACE(token);
    EXPECT_EQ(token.find_first_of(".*> \t\r\n"), std::string::npos);
    EXPECT_EQ(token.find('\0'), std::string::npos);
    EXPECT_FALSE(token.empty());
  }
  // Exactly four dots: wsf, region, kind, tenant, name.
  const std::string subject = channelSubject("eu", "de.mo", "chat:a.b.c");
  EXPECT_EQ(std::count(subject.begin(), subject.end(), '.'), 4);
}

TEST(RegionSubjects, DistinctNamesGetDistinctTokens) {
  std::set<std::string> tokens;
  const std::vector<std::string> names = {"a.b", "a%2Eb", "a%b", "%", "", "a b", "a+b", "A.B"};
  for (const auto& name : names) tokens.insert(subjectToken(name));
  EXPECT_EQ(tokens.size(), names.size());
}

TEST(RegionSubjects, ChannelTailsAreRecognised) {
  using namespace std::string_view_literals;
  // Whatever names channelTail() gets, the tail passes.
  const std::pair<std::string_view, std::string_view> names[] = {
      {"demo", "chat:room-42"}, {"de.mo", "a b*>"}, {"", ""}, {"t", "a\0b\r\n"sv}, {"%", "x.y.z"}};
  for (auto [tenant, channel] : names) {
    EXPECT_TRUE(isChannelTail(channelTail(tenant, channel))) << channelTail(tenant, channel);
  }
  for (std::string_view bad :
       {""sv, "demo"sv, "demo."sv, ".room"sv, "."sv, "demo..room"sv, "demo.room.x"sv, ">"sv,
        "*.*"sv, "demo.*"sv, "*.room"sv, "demo.>"sv, "demo.ro om"sv, "demo.room\r\n"sv,
        "de>mo.room"sv, "demo.ro\0om"sv, "demo.r\xC3\xA9"sv}) {
    EXPECT_FALSE(isChannelTail(bad)) << bad;
  }
}

}  // namespace
}  // namespace wsfleet

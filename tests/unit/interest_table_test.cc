#include "bridge/interest_table.h"

#include <algorithm>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

using Key = LocalInterest::Key;
using Tails = std::vector<std::string>;

constexpr int64_t kLinger = 1000;
// Monotonic times in the tests start well away from 0, as CLOCK_MONOTONIC does.
constexpr int64_t kT0 = 100000;
constexpr int64_t kForever = kT0 + 1000000;

Tails sorted(Tails tails) {
  std::sort(tails.begin(), tails.end());
  return tails;
}

// Changes of one owner, sorted, as "added" / "removed" lists.
struct OwnerChanges {
  Tails added;
  Tails removed;
};
OwnerChanges of(const LocalInterest::Changes& changes, const std::string& owner) {
  OwnerChanges out;
  if (auto it = changes.added.find(owner); it != changes.added.end())
    out.added = sorted(it->second);
  if (auto it = changes.removed.find(owner); it != changes.removed.end()) {
    out.removed = sorted(it->second);
  }
  return out;
}

// ---- LocalInterest

TEST(LocalInterest, DeltasAddAndRemoveAfterTheLinger) {
  LocalInterest interest(kLinger);
  interest.apply("w1", false, {{"us", "acme.a"}, {"us", "acme.b"}, {"ap", "acme.c"}}, {}, kForever,
                 kT0);
  LocalInterest::Changes changes = interest.takeChanges();
  EXPECT_EQ(of(changes, "us").added, (Tails{"acme.a", "acme.b"}));
  EXPECT_EQ(of(changes, "ap").added, (Tails{"acme.c"}));
  EXPECT_TRUE(changes.removed.empty());
  EXPECT_EQ(interest.size(), 3u);
  EXPECT_EQ(interest.sources(), 1u);
  EXPECT_TRUE(interest.takeChanges().empty()) << "changes are handed out once";

  interest.apply("w1", false, {}, {{"us", "acme.a"}}, kForever, kT0 + 10);
  interest.expire(kT0 + 10 + kLinger - 1);
  EXPECT_TRUE(interest.takeChanges().empty()) << "still lingering";
  EXPECT_EQ(sorted(interest.channelsOwnedBy("us")), (Tails{"acme.a", "acme.b"}))
      << "a lingering channel is still announced";

  interest.expire(kT0 + 10 + kLinger);
  changes = interest.takeChanges();
  EXPECT_EQ(of(changes, "us").removed, (Tails{"acme.a"}));
  EXPECT_TRUE(changes.added.empty());
  EXPECT_EQ(interest.channelsOwnedBy("us"), (Tails{"acme.b"}));
  EXPECT_EQ(interest.size(), 2u);
}

TEST(LocalInterest, RepeatedDeltasCountOnce) {
  LocalInterest interest(kLinger);
  interest.apply("w1", false, {{"us", "t.a"}}, {}, kForever, kT0);
  interest.apply("w1", false, {{"us", "t.a"}}, {}, kForever, kT0);
  interest.takeChanges();
  // One withdrawal undoes the repeated adds of one source: they were the same interest.
  interest.apply("w1", false, {}, {{"us", "t.a"}}, kForever, kT0);
  interest.expire(kT0 + kLinger);
  EXPECT_EQ(of(interest.takeChanges(), "us").removed, (Tails{"t.a"}));
  // Withdrawing what the source never held changes nothing.
  interest.apply("w1", false, {}, {{"us", "t.zzz"}}, kForever, kT0 + kLinger);
  interest.expire(kT0 + 3 * kLinger);
  EXPECT_TRUE(interest.takeChanges().empty());
  EXPECT_EQ(interest.size(), 0u);
}

TEST(LocalInterest, SnapshotReplacesTheSourcesSet) {
  LocalInterest interest(kLinger);
  interest.apply("w1", false, {{"us", "t.a"}, {"us", "t.b"}}, {}, kForever, kT0);
  interest.apply("w2", false, {{"us", "t.b"}}, {}, kForever, kT0);
  interest.takeChanges();

  // w1's snapshot: b and c. a goes (w1 was its only source), c comes, b stays.
  interest.apply("w1", true, {{"us", "t.b"}, {"us", "t.c"}}, {}, kForever, kT0 + 5);
  LocalInterest::Changes changes = interest.takeChanges();
  EXPECT_EQ(of(changes, "us").added, (Tails{"t.c"}));
  EXPECT_TRUE(changes.removed.empty()) << "a lingers first";
  interest.expire(kT0 + 5 + kLinger);
  changes = interest.takeChanges();
  EXPECT_EQ(of(changes, "us").removed, (Tails{"t.a"}));
  EXPECT_EQ(sorted(interest.channelsOwnedBy("us")), (Tails{"t.b", "t.c"}));

  // An empty snapshot of w1 leaves b, which w2 still holds.
  interest.apply("w1", true, {}, {}, kForever, kT0 + 2000);
  interest.expire(kT0 + 2000 + kLinger);
  changes = interest.takeChanges();
  EXPECT_EQ(of(changes, "us").removed, (Tails{"t.c"}));
  EXPECT_EQ(interest.channelsOwnedBy("us"), (Tails{"t.b"}));
  EXPECT_EQ(interest.sources(), 2u) << "an empty snapshot is still a live source";
}

TEST(LocalInterest, AChannelHeldByTwoSourcesLeavesWithTheLast) {
  LocalInterest interest(kLinger);
  interest.apply("w1", false, {{"us", "t.a"}}, {}, kForever, kT0);
  interest.apply("w2", false, {{"us", "t.a"}}, {}, kForever, kT0);
  LocalInterest::Changes changes = interest.takeChanges();
  EXPECT_EQ(of(changes, "us").added, (Tails{"t.a"})) << "announced once";

  interest.apply("w1", false, {}, {{"us", "t.a"}}, kForever, kT0 + 1);
  interest.expire(kT0 + 10 * kLinger);
  EXPECT_TRUE(interest.takeChanges().empty()) << "w2 still wants it";
  EXPECT_EQ(interest.size(), 1u);

  interest.apply("w2", false, {}, {{"us", "t.a"}}, kForever, kT0 + 10 * kLinger);
  interest.expire(kT0 + 11 * kLinger);
  EXPECT_EQ(of(interest.takeChanges(), "us").removed, (Tails{"t.a"}));
  EXPECT_EQ(interest.size(), 0u);
}

TEST(LocalInterest, ForgetDropsWhatTheSourceHeld) {
  LocalInterest interest(kLinger);
  interest.apply("w1", false, {{"us", "t.a"}, {"ap", "t.b"}}, {}, kForever, kT0);
  interest.apply("w2", false, {{"us", "t.a"}}, {}, kForever, kT0);
  interest.takeChanges();

  interest.forget("w1", kT0 + 1);
  EXPECT_EQ(interest.sources(), 1u);
  interest.expire(kT0 + 1 + kLinger);
  LocalInterest::Changes changes = interest.takeChanges();
  EXPECT_EQ(of(changes, "ap").removed, (Tails{"t.b"}));
  EXPECT_TRUE(of(changes, "us").removed.empty()) << "w2 holds t.a";
  EXPECT_EQ(interest.owners(), (std::set<std::string>{"us"}));

  interest.forget("nobody", kT0 + 2);  // unknown: nothing happens
  EXPECT_EQ(interest.sources(), 1u);
  EXPECT_EQ(interest.size(), 1u);
}

TEST(LocalInterest, ASilentSourceExpires) {
  LocalInterest interest(kLinger);
  interest.apply("w1", false, {{"us", "t.a"}}, {}, kT0 + 3000, kT0);
  interest.apply("w2", false, {{"us", "t.b"}}, {}, kT0 + 9000, kT0);
  interest.takeChanges();

  interest.expire(kT0 + 2999);
  EXPECT_EQ(interest.sources(), 2u);
  // w2 refreshes (an empty delta still extends its life); w1 says nothing more.
  interest.apply("w2", false, {}, {}, kT0 + 20000, kT0 + 2999);
  interest.expire(kT0 + 3000);
  EXPECT_EQ(interest.sources(), 1u) << "w1 is forgotten at its expiry";
  EXPECT_TRUE(interest.takeChanges().empty()) << "its channel lingers";
  interest.expire(kT0 + 3000 + kLinger);
  EXPECT_EQ(of(interest.takeChanges(), "us").removed, (Tails{"t.a"}));
  interest.expire(kT0 + 9000 + kLinger);
  EXPECT_TRUE(interest.takeChanges().empty()) << "w2's refresh kept t.b";
  EXPECT_EQ(interest.channelsOwnedBy("us"), (Tails{"t.b"}));
}

TEST(LocalInterest, AChannelBackBeforeTheLingerEndsCausesNoChange) {
  LocalInterest interest(kLinger);
  interest.apply("w1", false, {{"us", "t.a"}}, {}, kForever, kT0);
  interest.takeChanges();

  interest.apply("w1", false, {}, {{"us", "t.a"}}, kForever, kT0 + 100);
  interest.expire(kT0 + 500);
  // Another worker's subscriber (a reconnect) wants it again within the linger.
  interest.apply("w2", false, {{"us", "t.a"}}, {}, kForever, kT0 + 600);
  EXPECT_TRUE(interest.takeChanges().empty());
  interest.expire(kT0 + 100 + 5 * kLinger);
  EXPECT_TRUE(interest.takeChanges().empty()) << "the linger was cancelled, not left running";
  EXPECT_EQ(interest.channelsOwnedBy("us"), (Tails{"t.a"}));

  // A linger that runs out after a re-add and a second drop counts from the second drop.
  interest.apply("w2", false, {}, {{"us", "t.a"}}, kForever, kT0 + 10000);
  interest.expire(kT0 + 10000 + kLinger - 1);
  EXPECT_TRUE(interest.takeChanges().empty());
  interest.expire(kT0 + 10000 + kLinger);
  EXPECT_EQ(of(interest.takeChanges(), "us").removed, (Tails{"t.a"}));
}

TEST(LocalInterest, RemovalThenAddBeforeTakeChangesNetsToNothing) {
  LocalInterest interest(kLinger);
  interest.apply("w1", false, {{"us", "t.a"}}, {}, kForever, kT0);
  interest.takeChanges();  // announced
  interest.apply("w1", false, {}, {{"us", "t.a"}}, kForever, kT0);
  interest.expire(kT0 + kLinger);  // its removal is pending now...
  interest.apply("w1", false, {{"us", "t.a"}}, {}, kForever, kT0 + kLinger + 1);  // ...and undone
  EXPECT_TRUE(interest.takeChanges().empty());
  EXPECT_EQ(interest.channelsOwnedBy("us"), (Tails{"t.a"}));

  // The other way round: an add that goes before anyone heard of it is no change either.
  interest.apply("w1", false, {{"us", "t.new"}}, {}, kForever, kT0 + 5000);
  interest.apply("w1", false, {}, {{"us", "t.new"}}, kForever, kT0 + 5000);
  interest.expire(kT0 + 5000 + kLinger);
  EXPECT_TRUE(interest.takeChanges().empty());
  EXPECT_EQ(interest.channelsOwnedBy("us"), (Tails{"t.a"}));
}

TEST(LocalInterest, NoLingerRemovesAtTheNextExpiry) {
  LocalInterest interest(0);
  interest.apply("w1", false, {{"us", "t.a"}}, {}, kForever, kT0);
  interest.takeChanges();
  interest.apply("w1", false, {}, {{"us", "t.a"}}, kForever, kT0 + 7);
  interest.expire(kT0 + 7);
  EXPECT_EQ(of(interest.takeChanges(), "us").removed, (Tails{"t.a"}));
  EXPECT_EQ(interest.size(), 0u);
}

TEST(LocalInterest, UsersDoNotLinger) {
  // A user gone is offline at once: its home region must not route direct messages to
  // where nobody holds the user any more.
  LocalInterest t(kLinger);
  t.apply("w1", false, {{"eu", "@demo.bob"}, {"eu", "demo.room"}}, {}, kForever, kT0);
  t.takeChanges();
  t.apply("w1", false, {}, {{"eu", "@demo.bob"}, {"eu", "demo.room"}}, kForever, kT0 + 10);
  t.expire(kT0 + 10);
  OwnerChanges c = of(t.takeChanges(), "eu");
  EXPECT_EQ(c.removed, Tails{"@demo.bob"});  // the channel lingers
  EXPECT_TRUE(t.has("eu", "demo.room"));
  EXPECT_FALSE(t.has("eu", "@demo.bob"));
}

TEST(LocalInterest, ExtendToKeepsSilentSourcesAlive) {
  LocalInterest t(kLinger);
  t.apply("w1", false, {{"eu", "demo.room"}}, {}, kT0 + 100, kT0);
  t.extendTo(kT0 + 5000);
  t.expire(kT0 + 4000);
  EXPECT_TRUE(t.has("eu", "demo.room"));
  t.expire(kT0 + 5000);           // the source is forgotten; its channel lingers
  EXPECT_TRUE(t.has("eu", "demo.room"));
  t.expire(kT0 + 5000 + kLinger);
  EXPECT_FALSE(t.has("eu", "demo.room"));
}

TEST(LocalInterest, ChannelsOwnedByAndOwners) {
  LocalInterest interest(kLinger);
  EXPECT_TRUE(interest.owners().empty());
  EXPECT_TRUE(interest.channelsOwnedBy("us").empty());
  // Owner names that prefix each other stay apart.
  interest.apply("w1", false, {{"us", "t.b"}, {"us", "t.a"}, {"us-2", "t.z"}, {"ap", "t.a"}}, {},
                 kForever, kT0);
  EXPECT_EQ(interest.owners(), (std::set<std::string>{"ap", "us", "us-2"}));
  EXPECT_EQ(sorted(interest.channelsOwnedBy("us")), (Tails{"t.a", "t.b"}));
  EXPECT_EQ(interest.channelsOwnedBy("us-2"), (Tails{"t.z"}));
  EXPECT_EQ(interest.channelsOwnedBy("ap"), (Tails{"t.a"}));
  EXPECT_TRUE(interest.channelsOwnedBy("u").empty());
  EXPECT_EQ(interest.size(), 4u);

  // An owner stays listed while its last channel lingers, and goes with it.
  interest.apply("w1", false, {}, {{"ap", "t.a"}}, kForever, kT0 + 1);
  EXPECT_EQ(interest.owners().count("ap"), 1u);
  interest.expire(kT0 + 1 + kLinger);
  EXPECT_EQ(interest.owners(), (std::set<std::string>{"us", "us-2"}));
}

// ---- RemoteInterest

struct Pair {
  std::string tail;
  std::string region;
  bool operator<(const Pair& o) const {
    return std::tie(tail, region) < std::tie(o.tail, o.region);
  }
  bool operator==(const Pair& o) const { return tail == o.tail && region == o.region; }
};
using Pairs = std::vector<Pair>;
void PrintTo(const Pair& p, std::ostream* os) {
  *os << "(" << p.tail << ", " << p.region << ")";
}

Pairs sortedPairs(const std::vector<RemoteInterest::Change>& changes) {
  Pairs out;
  for (const auto& c : changes) out.push_back({c.tail, c.region});
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> regionsOf(const RemoteInterest& interest, const std::string& tail) {
  std::vector<std::string> out;
  if (const auto* regions = interest.regionsOf(tail)) {
    for (const auto& [name, expires] : *regions) out.push_back(name);
  }
  return out;
}

TEST(RemoteInterest, AddAndDel) {
  RemoteInterest interest;
  EXPECT_EQ(interest.size(), 0u);
  EXPECT_EQ(interest.regionsOf("t.a"), nullptr);

  interest.apply("eu", false, {"t.a", "t.b"}, {}, kForever);
  interest.apply("ap", false, {"t.a"}, {}, kForever);
  RemoteInterest::Changes changes = interest.takeChanges();
  EXPECT_EQ(sortedPairs(changes.added), (Pairs{{"t.a", "ap"}, {"t.a", "eu"}, {"t.b", "eu"}}));
  EXPECT_TRUE(changes.removed.empty());
  EXPECT_EQ(interest.size(), 3u);
  EXPECT_EQ(regionsOf(interest, "t.a"), (std::vector<std::string>{"ap", "eu"}));

  // A repeated add only refreshes.
  interest.apply("eu", false, {"t.a"}, {}, kForever);
  changes = interest.takeChanges();
  EXPECT_TRUE(changes.added.empty() && changes.removed.empty());
  EXPECT_EQ(interest.size(), 3u);

  interest.apply("eu", false, {}, {"t.a", "t.never"}, kForever);
  changes = interest.takeChanges();
  EXPECT_TRUE(changes.added.empty());
  EXPECT_EQ(sortedPairs(changes.removed), (Pairs{{"t.a", "eu"}}));
  EXPECT_EQ(regionsOf(interest, "t.a"), (std::vector<std::string>{"ap"}));
  EXPECT_EQ(interest.size(), 2u);

  interest.apply("ap", false, {}, {"t.a"}, kForever);
  interest.takeChanges();
  EXPECT_EQ(interest.regionsOf("t.a"), nullptr) << "a channel nobody wants is gone";
  EXPECT_EQ(interest.all().size(), 1u);
  EXPECT_EQ(interest.size(), 1u);
}

TEST(RemoteInterest, SnapshotReplacesOnlyThatRegionsSet) {
  RemoteInterest interest;
  interest.apply("eu", false, {"t.a", "t.b"}, {}, kForever);
  interest.apply("ap", false, {"t.a", "t.b"}, {}, kForever);
  interest.takeChanges();

  interest.apply("eu", true, {"t.b", "t.c"}, {}, kForever);
  RemoteInterest::Changes changes = interest.takeChanges();
  EXPECT_EQ(sortedPairs(changes.added), (Pairs{{"t.c", "eu"}}));
  EXPECT_EQ(sortedPairs(changes.removed), (Pairs{{"t.a", "eu"}}));
  EXPECT_EQ(regionsOf(interest, "t.a"), (std::vector<std::string>{"ap"}));
  EXPECT_EQ(regionsOf(interest, "t.b"), (std::vector<std::string>{"ap", "eu"}));
  EXPECT_EQ(interest.size(), 4u);

  // An empty snapshot withdraws everything of the region.
  interest.apply("eu", true, {}, {}, kForever);
  changes = interest.takeChanges();
  EXPECT_EQ(sortedPairs(changes.removed), (Pairs{{"t.b", "eu"}, {"t.c", "eu"}}));
  EXPECT_EQ(interest.regionsOf("t.c"), nullptr);
  EXPECT_EQ(interest.size(), 2u);
}

TEST(RemoteInterest, ExpiryIsPerRegionAndASnapshotRefreshesTheWholeSet) {
  RemoteInterest interest;
  interest.apply("eu", false, {"t.a"}, {}, kT0 + 100);
  interest.apply("eu", false, {"t.b"}, {}, kT0 + 500);
  interest.apply("ap", false, {"t.a"}, {}, kT0 + 1000);
  interest.takeChanges();

  interest.expire(kT0 + 99);
  EXPECT_EQ(interest.size(), 3u);
  interest.expire(kT0 + 100);
  RemoteInterest::Changes changes = interest.takeChanges();
  EXPECT_EQ(sortedPairs(changes.removed), (Pairs{{"t.a", "eu"}})) << "ap's interest in t.a stays";
  EXPECT_EQ(regionsOf(interest, "t.a"), (std::vector<std::string>{"ap"}));

  // eu's snapshot holding t.b (already there) carries its expiry forward.
  interest.apply("eu", true, {"t.b"}, {}, kT0 + 5000);
  EXPECT_TRUE(interest.takeChanges().removed.empty());
  interest.expire(kT0 + 1000);
  changes = interest.takeChanges();
  EXPECT_EQ(sortedPairs(changes.removed), (Pairs{{"t.a", "ap"}}));
  EXPECT_EQ(regionsOf(interest, "t.b"), (std::vector<std::string>{"eu"}));
  interest.expire(kT0 + 5000);
  EXPECT_EQ(sortedPairs(interest.takeChanges().removed), (Pairs{{"t.b", "eu"}}));
  EXPECT_EQ(interest.size(), 0u);
  EXPECT_TRUE(interest.all().empty());
}

TEST(RemoteInterest, ChangesAreHandedOutOnceInOrder) {
  RemoteInterest interest;
  interest.apply("eu", false, {"t.a"}, {}, kForever);
  interest.apply("eu", false, {}, {"t.a"}, kForever);
  RemoteInterest::Changes changes = interest.takeChanges();
  // Both are reported: the bridge subscribes for the add and drops the subscription
  // for the removal, in that order.
  EXPECT_EQ(sortedPairs(changes.added), (Pairs{{"t.a", "eu"}}));
  EXPECT_EQ(sortedPairs(changes.removed), (Pairs{{"t.a", "eu"}}));
  EXPECT_EQ(interest.size(), 0u);
  changes = interest.takeChanges();
  EXPECT_TRUE(changes.added.empty() && changes.removed.empty());
}

}  // namespace
}  // namespace wsfleet

#include "bridge/peer_set.h"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

constexpr int64_t kT0 = 100000;
constexpr int kKeys = 5000;

std::string keyOf(int i) {
  return "tenant-" + std::to_string(i % 7) + ".chan-" + std::to_string(i);
}

// The set as bridge `self` sees it when every name in `live` is heard.
PeerSet viewOf(const std::string& self, const std::vector<std::string>& live) {
  PeerSet set(self);
  for (const std::string& name : live) set.heard(name, kT0 + 60000);
  return set;
}

TEST(PeerSet, HeardForgetExpire) {
  PeerSet set("b1");
  EXPECT_EQ(set.size(), 1u);
  EXPECT_FALSE(set.empty());
  EXPECT_EQ(set.instances(), (std::vector<std::string>{"b1"}));

  EXPECT_TRUE(set.heard("b2", kT0 + 1000)) << "new";
  EXPECT_FALSE(set.heard("b2", kT0 + 2000)) << "known: only refreshed";
  EXPECT_FALSE(set.heard("b1", kT0 + 10)) << "itself is always alive, never a peer";
  EXPECT_TRUE(set.heard("b3", kT0 + 1500));
  EXPECT_EQ(set.size(), 3u);

  EXPECT_FALSE(set.expire(kT0 + 1499));
  EXPECT_TRUE(set.expire(kT0 + 1500)) << "b3 expires at its time";
  EXPECT_EQ(set.instances(), (std::vector<std::string>{"b1", "b2"}));
  EXPECT_FALSE(set.expire(kT0 + 1999)) << "b2's refresh moved its expiry";
  EXPECT_EQ(set.size(), 2u);

  EXPECT_TRUE(set.forget("b2"));
  EXPECT_FALSE(set.forget("b2"));
  EXPECT_FALSE(set.forget("b1")) << "itself cannot be forgotten";
  EXPECT_EQ(set.instances(), (std::vector<std::string>{"b1"}));
  EXPECT_FALSE(set.expire(kT0 + 1000000));
  EXPECT_EQ(set.size(), 1u);
}

TEST(PeerSet, EmptySet) {
  PeerSet remote;  // another region's bridges: no self
  EXPECT_TRUE(remote.empty());
  EXPECT_EQ(remote.size(), 0u);
  EXPECT_EQ(remote.choose("t.a"), "");
  EXPECT_FALSE(remote.isSelfChosen("t.a"));
  EXPECT_TRUE(remote.instances().empty());

  EXPECT_TRUE(remote.heard("x1", kT0 + 100));
  EXPECT_FALSE(remote.empty());
  EXPECT_EQ(remote.choose("t.a"), "x1");
  EXPECT_FALSE(remote.isSelfChosen("t.a")) << "a set without self never chooses itself";
  EXPECT_TRUE(remote.expire(kT0 + 100));
  EXPECT_TRUE(remote.empty());
  EXPECT_EQ(remote.choose("t.a"), "");
}

TEST(PeerSet, AloneItChoosesItselfForEverything) {
  PeerSet set("only");
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(set.choose(keyOf(i)), "only");
    EXPECT_TRUE(set.isSelfChosen(keyOf(i)));
  }
}

// The forwarding relies on this: every bridge of a region computes the same choice from
// the same live instances, whichever of them it is, and exactly one of them acts.
TEST(PeerSet, ViewsFromDifferentSelvesAgree) {
  const std::vector<std::string> live = {"eu-b1", "eu-b2", "eu-b3", "host-17-4242"};
  std::vector<PeerSet> views;
  for (const std::string& self : live) {
    std::vector<std::string> others;
    for (const std::string& name : live) {
      if (name != self) others.push_back(name);
    }
    views.push_back(viewOf(self, others));
  }
  PeerSet outside;  // how another region sees them
  for (const std::string& name : live) outside.heard(name, kT0 + 60000);

  std::map<std::string, int> share;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = keyOf(i);
    const std::string chosen = views[0].choose(key);
    int self_chosen = 0;
    for (const PeerSet& view : views) {
      ASSERT_EQ(view.choose(key), chosen) << key;
      self_chosen += view.isSelfChosen(key) ? 1 : 0;
    }
    ASSERT_EQ(outside.choose(key), chosen) << key;
    ASSERT_EQ(self_chosen, 1) << key << ": exactly one bridge acts";
    ++share[chosen];
  }
  // Every bridge takes a fair part (expected 1250 each; far more than chance allows).
  ASSERT_EQ(share.size(), live.size());
  for (const auto& [name, count] : share) {
    EXPECT_GT(count, kKeys / 4 - 250) << name;
    EXPECT_LT(count, kKeys / 4 + 250) << name;
  }
}

TEST(PeerSet, ADepartedInstanceMovesOnlyItsKeys) {
  PeerSet before = viewOf("b1", {"b2", "b3", "b4"});
  PeerSet after = viewOf("b1", {"b2", "b3", "b4"});
  ASSERT_TRUE(after.forget("b3"));

  int moved = 0;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = keyOf(i);
    const std::string was = before.choose(key);
    const std::string now = after.choose(key);
    if (was == "b3") {
      EXPECT_NE(now, "b3");
      ++moved;
    } else {
      EXPECT_EQ(now, was) << key << " moved although its bridge stayed";
    }
  }
  EXPECT_GT(moved, kKeys / 4 - 250);
  EXPECT_LT(moved, kKeys / 4 + 250);

  // The same holds when the departure is noticed by expiry, and when it comes back the
  // keys return to it.
  PeerSet expiring("b1");
  expiring.heard("b2", kT0 + 60000);
  expiring.heard("b3", kT0 + 10);
  expiring.heard("b4", kT0 + 60000);
  EXPECT_TRUE(expiring.expire(kT0 + 10));
  for (int i = 0; i < kKeys; ++i) ASSERT_EQ(expiring.choose(keyOf(i)), after.choose(keyOf(i)));
  expiring.heard("b3", kT0 + 60000);
  for (int i = 0; i < kKeys; ++i) ASSERT_EQ(expiring.choose(keyOf(i)), before.choose(keyOf(i)));
}

}  // namespace
}  // namespace wsfleet

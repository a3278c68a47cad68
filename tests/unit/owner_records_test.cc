#include "common/owner_records.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace wsfleet {
namespace {

OwnerRecord owned() {
  OwnerRecord r;
  r.tenant = "demo";
  r.channel = "chat:room.1";
  r.owner = "eu";
  r.gen = 3;
  r.state = OwnerState::kOwned;
  r.from = "us";
  r.fence = 120;
  r.base = 45;
  r.at_ms = 1764300000123;
  return r;
}

TEST(OwnerRecords, RecordsRoundTrip) {
  JsonParser parser;
  const OwnerRecord r = owned();
  auto back = parseOwnerRecord(parser, encodeOwnerRecord(r));
  ASSERT_TRUE(back.isOk()) << back.status().message();
  EXPECT_EQ(back->tenant, r.tenant);
  EXPECT_EQ(back->channel, r.channel);
  EXPECT_EQ(back->owner, "eu");
  EXPECT_EQ(back->gen, 3u);
  EXPECT_EQ(back->state, OwnerState::kOwned);
  EXPECT_EQ(back->from, "us");
  EXPECT_EQ(back->fence, 120u);
  EXPECT_EQ(back->base, 45u);
  EXPECT_EQ(back->at_ms, r.at_ms);
  EXPECT_FALSE(back->forced);
  OwnerRecord forced = r;
  forced.forced = true;
  EXPECT_TRUE(parseOwnerRecord(parser, encodeOwnerRecord(forced))->forced);
}

TEST(OwnerRecords, WhileMovingReadsStayWithTheOldOwner) {
  OwnerRecord r = owned();
  EXPECT_EQ(r.readOwner(), "eu");
  EXPECT_EQ(r.readGen(), 3u);
  r.state = OwnerState::kMoving;
  EXPECT_EQ(r.readOwner(), "us");
  EXPECT_EQ(r.readGen(), 2u);
}

TEST(OwnerRecords, RefusesIncompleteRecords) {
  JsonParser parser;
  for (const char* bad :
       {"", "[]", "{}", R"({"tenant":"t","channel":"c","owner":"eu","gen":0,"state":"owned",
          "from":"us","fence":1,"base":1})",
        R"({"tenant":"t","channel":"c","owner":"eu","gen":1,"state":"gone","from":"us",
          "fence":1,"base":1})",
        R"({"tenant":"t","channel":"c","owner":"","gen":1,"state":"owned","from":"us",
          "fence":1,"base":1})",
        R"({"tenant":"t","channel":"c","owner":"eu","gen":"1","state":"owned","from":"us",
          "fence":1,"base":1})"}) {
    auto r = parseOwnerRecord(parser, bad);
    EXPECT_FALSE(r.isOk()) << bad;
    if (!r.isOk()) {
      EXPECT_STREQ(r.status().reason(), "owner_record_invalid");
    }
  }
}

TEST(OwnerRecords, KeysAreValidAndDistinct) {
  // A dot in a channel name cannot split or merge keys: each name is one base64url token.
  const std::string a = ownerRecordKey("demo", "chat:a.b");
  const std::string b = ownerRecordKey("demo.chat:a", "b");
  EXPECT_NE(a, b);
  for (const std::string& key : {a, b}) {
    EXPECT_EQ(key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789-_."),
              std::string::npos)
        << key;
    EXPECT_EQ(std::count(key.begin(), key.end(), '.'), 1) << key;
  }
  EXPECT_EQ(ownerRecordSubject("demo", "chat:a.b"), "$KV.WSF_OWNERS." + a);
}

TEST(OwnerRecords, MarkersRoundTrip) {
  JsonParser parser;
  auto plain = parseGenerationMarker(parser, encodeGenerationMarker({2, "eu", "", 0}));
  ASSERT_TRUE(plain.isOk());
  EXPECT_EQ(plain->gen, 2u);
  EXPECT_EQ(plain->owner, "eu");
  EXPECT_TRUE(plain->from.empty());
  EXPECT_EQ(plain->fence, 0u);
  auto fenced = parseGenerationMarker(parser, encodeGenerationMarker({2, "eu", "us", 99}));
  ASSERT_TRUE(fenced.isOk());
  EXPECT_EQ(fenced->from, "us");
  EXPECT_EQ(fenced->fence, 99u);
  EXPECT_FALSE(parseGenerationMarker(parser, R"({"gen":0,"owner":"eu"})").isOk());
  EXPECT_FALSE(parseGenerationMarker(parser, R"({"gen":1})").isOk());
}

TEST(OwnerRecords, StoresAreJudgedByTheLatestMarker) {
  // Never moved: generation 0 only.
  EXPECT_EQ(judgeStore(nullptr, 0, "us", 5), StoreVerdict::kConfirmed);
  EXPECT_EQ(judgeStore(nullptr, 1, "us", 5), StoreVerdict::kRefused);
  // The owner of the current generation.
  GenerationMarker current{2, "us", "eu", 0};
  EXPECT_EQ(judgeStore(&current, 2, "us", 5), StoreVerdict::kConfirmed);
  EXPECT_EQ(judgeStore(&current, 2, "eu", 5), StoreVerdict::kRefused);
  EXPECT_EQ(judgeStore(&current, 1, "us", 5), StoreVerdict::kRefused);
  EXPECT_EQ(judgeStore(&current, 0, "us", 5), StoreVerdict::kRefused);
  // The old owner, fenced: waits for the fence, then confirms what readers deliver.
  GenerationMarker fencing{3, "ap", "us", 0};
  EXPECT_EQ(judgeStore(&fencing, 2, "us", 100), StoreVerdict::kUndecided);
  GenerationMarker fenced{3, "ap", "us", 100};
  EXPECT_EQ(judgeStore(&fenced, 2, "us", 100), StoreVerdict::kConfirmed);
  EXPECT_EQ(judgeStore(&fenced, 2, "us", 99), StoreVerdict::kConfirmed);
  EXPECT_EQ(judgeStore(&fenced, 2, "us", 101), StoreVerdict::kRefused);
  // Older generations than the one just fenced, or another region's claim: refused.
  EXPECT_EQ(judgeStore(&fenced, 1, "us", 50), StoreVerdict::kRefused);
  EXPECT_EQ(judgeStore(&fenced, 2, "eu", 50), StoreVerdict::kRefused);
}

TEST(OwnerRecords, EpochsNameTheGeneration) {
  EXPECT_EQ(channelEpoch("0123456789abcdef", 0), "0123456789abcdef");
  EXPECT_EQ(channelEpoch("0123456789abcdef", 2), "0123456789abcdef-2");
  EXPECT_EQ(channelEpoch("", 2), "");  // not known yet
}

TEST(OwnerRecords, RegionRecordsCarryTheFailure) {
  JsonParser parser;
  RegionRecord failing{"eu", true, RegionFailure::kFailing, 1764300000123};
  auto back = parseRegionRecord(parser, encodeRegionRecord(failing));
  ASSERT_TRUE(back.isOk()) << back.status().message();
  EXPECT_EQ(back->failure, RegionFailure::kFailing);
  EXPECT_STREQ(regionStateName(*back), "failing");
  // Records written before region failure existed have no `failure`.
  back = parseRegionRecord(parser, R"({"region":"eu","drained":true,"at_ms":1})");
  ASSERT_TRUE(back.isOk());
  EXPECT_EQ(back->failure, RegionFailure::kNone);
  EXPECT_STREQ(regionStateName(*back), "drained");
  // A failed region is drained whatever the record says.
  back = parseRegionRecord(parser, R"({"region":"eu","drained":false,"failure":"failed"})");
  ASSERT_TRUE(back.isOk());
  EXPECT_TRUE(back->drained);
  EXPECT_STREQ(regionStateName(*back), "failed");
  EXPECT_FALSE(parseRegionRecord(parser, R"({"region":"eu","drained":true,"failure":"gone"})")
                   .isOk());
  EXPECT_STREQ(regionStateName(RegionRecord{"us", false, RegionFailure::kNone, 0}), "active");
}

TEST(OwnerRecords, StoresNeedAFreshCopyWithinTheLease) {
  const int64_t fresh = kOwnerViewFreshMs - 1;
  const int64_t leased = kOwnerLeaseMs - 1;
  // Never moved, at its topology owner.
  EXPECT_EQ(judgeByView(nullptr, "us", 0, false, fresh, "us", 0), ViewVerdict::kConfirmed);
  EXPECT_EQ(judgeByView(nullptr, "us", 0, false, kOwnerViewFreshMs, "us", 0),
            ViewVerdict::kAskMarker);
  EXPECT_EQ(judgeByView(nullptr, "us", 0, false, leased, "us", 0), ViewVerdict::kAskMarker);
  // Out of the lease (or never proven): nothing is confirmed, not even by a marker.
  EXPECT_EQ(judgeByView(nullptr, "us", 0, false, kOwnerLeaseMs, "us", 0), ViewVerdict::kStale);
  EXPECT_EQ(judgeByView(nullptr, "us", 0, false, -1, "us", 0), ViewVerdict::kStale);
  // The owner is failing: refused however fresh.
  EXPECT_EQ(judgeByView(nullptr, "us", 0, true, 0, "us", 0), ViewVerdict::kOwnerFailed);
}

TEST(OwnerRecords, ForcedMovesRefuseWhatOrdinaryMovesLeaveToTheFence) {
  OwnerRecord moving = owned();  // us -> eu, generation 3
  moving.state = OwnerState::kMoving;
  EXPECT_EQ(judgeByView(&moving, "us", 2, false, 0, "us", 2), ViewVerdict::kAskMarker);
  OwnerRecord done = owned();
  EXPECT_EQ(judgeByView(&done, "eu", 3, false, 0, "us", 2), ViewVerdict::kAskMarker);
  EXPECT_EQ(judgeByView(&done, "eu", 3, false, 0, "eu", 3), ViewVerdict::kConfirmed);
  // Two generations on, or a store made under another owner's name: refused.
  EXPECT_EQ(judgeByView(&done, "eu", 3, false, 0, "us", 1), ViewVerdict::kMoved);
  EXPECT_EQ(judgeByView(&done, "eu", 3, false, 0, "ap", 2), ViewVerdict::kMoved);
  // Forced: the old owner's marker was never written, so it cannot refuse anything.
  moving.forced = true;
  done.forced = true;
  EXPECT_EQ(judgeByView(&moving, "us", 2, false, 0, "us", 2), ViewVerdict::kMoved);
  EXPECT_EQ(judgeByView(&done, "eu", 3, false, 0, "us", 2), ViewVerdict::kMoved);
  EXPECT_EQ(judgeByView(&done, "eu", 3, false, 0, "eu", 3), ViewVerdict::kConfirmed);
}

}  // namespace
}  // namespace wsfleet

#pragma once
// Ownership moves: who owns a channel once an operator moved it, and the fence that keeps
// its old owner from ever sequencing it again.
//
// The owner of a channel nobody moved is the topology's choice (regions/ownership.h), at
// generation 0. A move writes three kinds of things (tools/ctl/owner_command.cc does it):
//
//  - The channel's **record** in the fleet's ownership bucket (a JetStream KV bucket,
//    stream KV_WSF_OWNERS, one subject per channel, changed only by compare-and-set on
//    its revision): owner, generation, state (`moving`, then `owned`), the region it came
//    from, the last offset of the old generation in the old owner's history (`fence`)
//    and where the new generation starts in the new owner's (`base`). Edges read and
//    watch the bucket to route publishes and reads.
//  - A **generation marker** in the old owner's and then in the new owner's
//    WSF_GEN_<region> stream (the latest marker per channel, also compare-and-set):
//    "from here on, generation G, owned by R". Every store an edge makes carries its
//    generation, and is acknowledged to the client only after the owner's marker was read
//    again and still names that generation and that owner. A store that lands in the old
//    owner after its marker changed is therefore never acknowledged, and every
//    acknowledged store is at or below the fence the mover read after writing the marker:
//    readers deliver the old generation up to the fence, then the new one from its base.
//  - Nothing else per store: the bucket is on the publish path only as a lease (every
//    edge looks at it once a second while it stores and confirms nothing when its last
//    look is kOwnerLeaseMs old), so losing the region that holds it stops moves at once
//    and durable publishes after the lease.
//
// Readers tell generations apart by the generation each stored message carries
// (edge/peer_message.h); a channel's epoch names its owner's stream and its generation.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"

namespace wsfleet {

inline constexpr std::string_view kOwnersBucket = "WSF_OWNERS";
inline constexpr std::string_view kOwnersStream = "KV_WSF_OWNERS";
// Every record's subject starts with this; "$KV.WSF_OWNERS.>" is the whole bucket.
inline constexpr std::string_view kOwnersSubjectPrefix = "$KV.WSF_OWNERS.";

// A mover waits at least kMoveGraceMs between setting a record to `moving` and writing the
// old owner's marker. An edge whose copy of the bucket was complete less than
// kOwnerViewFreshMs before a store was acknowledged, and shows the channel neither moving
// nor moved since the store left, knows no marker can have fenced that store (any move
// begun after its look fences later than the acknowledgement): it confirms the store
// without reading the marker. Otherwise it reads it.
inline constexpr int64_t kMoveGraceMs = 3000;
inline constexpr int64_t kOwnerViewFreshMs = 2000;

// The lease behind region failure (wsfleetctl region fail). An edge confirms no store at
// all unless its copy of the bucket was proven complete less than kOwnerLeaseMs before:
// a region cut off from the bucket's region stops acknowledging stores within the lease.
// So once a region has been marked `failing` for kOwnerLeaseMs (plus kLeaseMarginMs for
// clock rates and scheduling, counted from the acknowledgement of that mark), no edge
// anywhere can acknowledge a store the region makes: every edge that looked after the mark
// refuses the region's stores, and every edge that looked before it has let its lease run
// out. Its channels can then be moved without writing its marker (a forced move).
inline constexpr int64_t kOwnerLeaseMs = 20000;
inline constexpr int64_t kLeaseMarginMs = 2000;

enum class OwnerState : uint8_t { kMoving, kOwned };

struct OwnerRecord {
  std::string tenant;
  std::string channel;
  std::string owner;     // the region that orders the channel from generation `gen` on
  uint64_t gen = 0;      // >= 1: 0 is "never moved" and has no record
  OwnerState state = OwnerState::kMoving;
  std::string from;      // the owner of generation gen - 1
  uint64_t fence = 0;    // kOwned: last offset of generation gen - 1 in `from`'s history
  uint64_t base = 0;     // kOwned: offsets of generation `gen` in `owner`'s history are > base
  // The move from `from` is forced: `from` had failed, its marker was never written and
  // there is no fence. Nothing of generation gen - 1 counts that readers had not
  // delivered; stores of it still waiting for a confirmation are refused.
  bool forced = false;
  int64_t at_ms = 0;     // wall clock of the last change (for operators)

  // While moving, reads still go to the old owner and stores are refused.
  const std::string& readOwner() const { return state == OwnerState::kOwned ? owner : from; }
  uint64_t readGen() const { return state == OwnerState::kOwned ? gen : gen - 1; }
};

// The record's key in the bucket: base64url of tenant and of channel, so any name is a
// valid key and two channels never share one.
std::string ownerRecordKey(std::string_view tenant, std::string_view channel);
std::string ownerRecordSubject(std::string_view tenant, std::string_view channel);
const char* ownerStateName(OwnerState state);

std::string encodeOwnerRecord(const OwnerRecord& record);
// kBadRequest (reason owner_record_invalid) for anything that is not a complete record.
Result<OwnerRecord> parseOwnerRecord(JsonParser& parser, std::string_view json);

// A region an operator drained (wsfleetctl region drain): it keeps no channel anyone uses.
// Its channels are moved away one by one with the protocol above, so the truth stays per
// channel: the edges move every channel of a drained region they have subscribers of at
// once, and any other on first use (common/ownership_mover.h), to the owner the topology
// gives with the drained regions counted unhealthy. Stored in the same bucket, one
// subject per region ("=" never starts a base64url key).
//
// A failed region (wsfleetctl region fail) is drained too, and first `failing`: no edge
// confirms a store it makes; after the lease it is `failed` and its channels are moved
// without it (forced moves, see kOwnerLeaseMs).
enum class RegionFailure : uint8_t { kNone, kFailing, kFailed };
struct RegionRecord {
  std::string region;
  bool drained = false;
  RegionFailure failure = RegionFailure::kNone;
  int64_t at_ms = 0;
};
const char* regionStateName(const RegionRecord& record);  // active, drained, failing, failed
inline constexpr std::string_view kRegionRecordPrefix = "$KV.WSF_OWNERS.=region.";
std::string regionRecordSubject(std::string_view region);
bool isRegionRecordSubject(std::string_view subject);
std::string encodeRegionRecord(const RegionRecord& record);
Result<RegionRecord> parseRegionRecord(JsonParser& parser, std::string_view json);

// "From here on, generation `gen` of the channel is owned by `owner`." In the old owner's
// stream the marker also says which region it moved from (this one) and, once the mover
// read it, the fence: the old generation's stores at or below it count, the rest never.
struct GenerationMarker {
  uint64_t gen = 0;
  std::string owner;
  std::string from;    // the owner of generation gen - 1 ("" for a marker of the new owner)
  uint64_t fence = 0;  // 0: not read yet
};
std::string encodeGenerationMarker(const GenerationMarker& marker);
Result<GenerationMarker> parseGenerationMarker(JsonParser& parser, std::string_view json);

// What becomes of a store of generation `gen` that `region`'s history acknowledged at
// offset `seq`, given the channel's latest marker in that region (nullptr: the region
// never had one, so only generation 0 is valid there). A store is confirmed exactly when
// the channel's readers deliver it: in the current generation of its owner, or in the
// old generation at or below the fence; undecided while a move has fenced the region but
// not yet published the fence (ask again shortly).
enum class StoreVerdict : uint8_t { kConfirmed, kRefused, kUndecided };
StoreVerdict judgeStore(const GenerationMarker* marker, uint64_t gen, std::string_view region,
                        uint64_t seq);

// What an edge's copy of the bucket says of a store of generation `gen` that `owner`
// acknowledged, before any marker is read:
//  - kStale: the copy was not proven complete within the lease (kOwnerLeaseMs): refused,
//    or asked again once the copy is fresh;
//  - kOwnerFailed: the owner is failing or failed: refused;
//  - kConfirmed: the channel is at (owner, gen) and the copy is fresh (kOwnerViewFreshMs);
//  - kAskMarker: the channel is at (owner, gen), or being moved or just moved from it by
//    an ordinary move: the owner's marker decides (judgeStore);
//  - kMoved: anything else (a forced move, or two moves on): refused.
// `record` is the channel's record in the copy (nullptr: never moved), `now_owner` and
// `now_gen` where the copy routes the channel, `view_age_ms` how long ago the copy was
// proven complete (negative: never).
enum class ViewVerdict : uint8_t { kStale, kOwnerFailed, kConfirmed, kAskMarker, kMoved };
ViewVerdict judgeByView(const OwnerRecord* record, std::string_view now_owner, uint64_t now_gen,
                        bool owner_failing, int64_t view_age_ms, std::string_view owner,
                        uint64_t gen);

// The epoch clients see: the owner stream's epoch, and the generation after a move (a
// channel moved back to a region it owned before must not reuse that epoch's offsets).
std::string channelEpoch(std::string_view stream_epoch, uint64_t gen);

// The stream configuration of the bucket (created at start by the edges of the
// topology's first region, or else by the first move or region command where it runs)
// and of a region's
// marker stream (created by the region's edges).
std::string ownersStreamConfigJson(int replicas);

}  // namespace wsfleet

#pragma once
// Reading the fleet's ownership bucket (common/owner_records.h) from wsfleetctl: `owner
// get | list` and the moves in progress of `status`.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/owner_records.h"
#include "common/ownership_mover.h"
#include "common/status.h"
#include "tools/ctl/fleet_client.h"

namespace wsfleet::ctl {

// JetStream requests of the owner commands wait this long at least (--timeout-ms is the
// control plane's collection window, shorter).
inline constexpr int64_t kBucketRequestTimeoutMs = 5000;

// OwnershipMove's requests answered one at a time, its grace slept: a move started with
// it is done when OwnershipMove::start returns. `fleet` must outlive it.
OwnershipMove::Io blockingMoveIo(FleetClient& fleet, int64_t grace_ms, int bucket_replicas);

// What an operator set for each region of the topology (not drained when never set).
Result<std::vector<RegionRecord>> readRegionRecords(FleetClient& fleet);
// One region's record and its revision in the bucket (0: never set).
Result<RegionRecord> readRegionRecord(FleetClient& fleet, const std::string& region,
                                      uint64_t* revision);
// Writes a region's record; with `expected` (the revision read before) only if nobody
// changed it since (reason changed_concurrently otherwise). The new revision.
Result<uint64_t> putRegionRecord(FleetClient& fleet, const RegionRecord& record,
                                 std::optional<uint64_t> expected);

// Every record, oldest change first; at most `limit` (then *truncated is set). No bucket
// yet is an empty list.
Result<std::vector<OwnerRecord>> readOwnerRecords(FleetClient& fleet, size_t limit,
                                                  bool* truncated);

}  // namespace wsfleet::ctl

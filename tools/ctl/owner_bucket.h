#pragma once
// Reading the fleet's ownership bucket (common/owner_records.h) from wsfleetctl: `owner
// get | list` and the moves in progress of `status`.

#include <cstddef>
#include <string>
#include <vector>

#include "common/owner_records.h"
#include "common/status.h"
#include "tools/ctl/fleet_client.h"

namespace wsfleet::ctl {

// JetStream requests of the owner commands wait this long at least (--timeout-ms is the
// control plane's collection window, shorter).
inline constexpr int64_t kBucketRequestTimeoutMs = 5000;

// Every record, oldest change first; at most `limit` (then *truncated is set). No bucket
// yet is an empty list.
Result<std::vector<OwnerRecord>> readOwnerRecords(FleetClient& fleet, size_t limit,
                                                  bool* truncated);

}  // namespace wsfleet::ctl

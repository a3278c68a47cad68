#include "tools/ctl/owner_bucket.h"

#include <algorithm>

#include "common/jetstream_api.h"

namespace wsfleet::ctl {

Result<std::vector<OwnerRecord>> readOwnerRecords(FleetClient& fleet, size_t limit,
                                                  bool* truncated) {
  std::vector<OwnerRecord> records;
  *truncated = false;
  const int64_t timeout_ms = std::max(fleet.windowMs(), kBucketRequestTimeoutMs);
  uint64_t next = 1;
  for (;;) {
    if (records.size() == limit) {
      *truncated = true;
      break;
    }
    WSF_ASSIGN_OR_RETURN(
        NatsInbound reply,
        fleet.nats().request(msgGetSubject(kOwnersStream),
                             msgGetNextBySubject(next, std::string(kOwnersSubjectPrefix) + ">"),
                             {}, timeout_ms));
    if (reply.status == "503") {
      return Status(Code::kUnavailable, "jetstream_unavailable",
                    "JetStream does not answer: the ownership bucket cannot be read");
    }
    JsError error;
    auto got = parseMsgGet(fleet.parser(), reply.data, &error);
    if (!got) {
      if (error.err_code == kJsNoMessageFound || error.err_code == kJsStreamNotFound) break;
      return got.takeStatus();
    }
    // The bucket keeps one message per channel: its latest record.
    auto record = parseOwnerRecord(fleet.parser(), got->data);
    if (record) records.push_back(std::move(*record));
    next = got->seq + 1;
  }
  return records;
}

}  // namespace wsfleet::ctl

#include "tools/ctl/owner_bucket.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/jetstream_api.h"

namespace wsfleet::ctl {

OwnershipMove::Io blockingMoveIo(FleetClient& fleet, int64_t grace_ms, int bucket_replicas) {
  OwnershipMove::Io io;
  io.request = [&fleet](std::string subject, std::string data, std::vector<NatsHeader> headers,
                        std::function<void(const NatsInbound*)> done) {
    auto reply = fleet.nats().request(std::move(subject), std::move(data), std::move(headers),
                                      std::max(fleet.windowMs(), kBucketRequestTimeoutMs));
    done(reply ? &*reply : nullptr);
  };
  io.after = [](int64_t ms, std::function<void()> fn) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    fn();
  };
  io.parser = &fleet.parser();
  io.grace_ms = grace_ms;
  io.bucket_replicas = bucket_replicas;
  return io;
}

Result<std::vector<RegionRecord>> readRegionRecords(FleetClient& fleet) {
  std::vector<RegionRecord> out;
  for (const RegionSpec& spec : fleet.topology().regions) {
    RegionRecord record;
    record.region = spec.name;
    WSF_ASSIGN_OR_RETURN(
        NatsInbound reply,
        fleet.nats().request(msgGetSubject(kOwnersStream),
                             msgGetLastBySubject(regionRecordSubject(spec.name)), {},
                             std::max(fleet.windowMs(), kBucketRequestTimeoutMs)));
    if (reply.status == "503") {
      return Status(Code::kUnavailable, "jetstream_unavailable",
                    "JetStream does not answer: the ownership bucket cannot be read");
    }
    JsError error;
    auto got = parseMsgGet(fleet.parser(), reply.data, &error);
    if (got) {
      WSF_ASSIGN_OR_RETURN(record, parseRegionRecord(fleet.parser(), got->data));
    } else if (error.err_code != kJsNoMessageFound && error.err_code != kJsStreamNotFound) {
      return got.takeStatus();
    }
    out.push_back(std::move(record));
  }
  return out;
}

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
    // The bucket keeps one message per channel (its latest record) and per region.
    if (!isRegionRecordSubject(got->subject)) {
      auto record = parseOwnerRecord(fleet.parser(), got->data);
      if (record) records.push_back(std::move(*record));
    }
    next = got->seq + 1;
  }
  return records;
}

}  // namespace wsfleet::ctl

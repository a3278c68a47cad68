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

Result<RegionRecord> readRegionRecord(FleetClient& fleet, const std::string& region,
                                      uint64_t* revision) {
  RegionRecord record;
  record.region = region;
  *revision = 0;
  WSF_ASSIGN_OR_RETURN(NatsInbound reply,
                       fleet.nats().request(msgGetSubject(kOwnersStream),
                                            msgGetLastBySubject(regionRecordSubject(region)), {},
                                            std::max(fleet.windowMs(), kBucketRequestTimeoutMs)));
  if (reply.status == "503") {
    return Status(Code::kUnavailable, "jetstream_unavailable",
                  "JetStream does not answer: the ownership bucket cannot be read");
  }
  JsError error;
  auto got = parseMsgGet(fleet.parser(), reply.data, &error);
  if (got) {
    WSF_ASSIGN_OR_RETURN(record, parseRegionRecord(fleet.parser(), got->data));
    *revision = got->seq;
  } else if (error.err_code != kJsNoMessageFound && error.err_code != kJsStreamNotFound) {
    return got.takeStatus();
  }
  return record;
}

Result<std::vector<RegionRecord>> readRegionRecords(FleetClient& fleet) {
  std::vector<RegionRecord> out;
  for (const RegionSpec& spec : fleet.topology().regions) {
    uint64_t revision = 0;
    WSF_ASSIGN_OR_RETURN(RegionRecord record, readRegionRecord(fleet, spec.name, &revision));
    out.push_back(std::move(record));
  }
  return out;
}

Result<uint64_t> putRegionRecord(FleetClient& fleet, const RegionRecord& record,
                                 std::optional<uint64_t> expected) {
  std::vector<NatsHeader> headers;
  if (expected) headers.push_back({"Nats-Expected-Last-Subject-Sequence", std::to_string(*expected)});
  WSF_ASSIGN_OR_RETURN(NatsInbound reply,
                       fleet.nats().request(regionRecordSubject(record.region),
                                            encodeRegionRecord(record), std::move(headers),
                                            std::max(fleet.windowMs(), kBucketRequestTimeoutMs)));
  if (reply.status == "503") {
    return Status(Code::kUnavailable, "jetstream_unavailable",
                  "the ownership bucket does not answer");
  }
  JsError error;
  auto ack = parsePubAck(fleet.parser(), reply.data, &error);
  if (ack) return ack->seq;
  if (error.err_code == kJsWrongLastSequence) {
    return Status(Code::kUnavailable, "changed_concurrently",
                  "the region's record changed meanwhile (another wsfleetctl?)");
  }
  return ack.takeStatus();
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

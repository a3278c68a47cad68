#include "common/owner_records.h"

#include "common/token.h"

namespace wsfleet {

namespace {

Status invalid(std::string what) {
  return Status(Code::kBadRequest, "owner_record_invalid", std::move(what));
}

}  // namespace

std::string ownerRecordKey(std::string_view tenant, std::string_view channel) {
  return base64UrlEncode(tenant) + "." + base64UrlEncode(channel);
}

std::string ownerRecordSubject(std::string_view tenant, std::string_view channel) {
  return std::string(kOwnersSubjectPrefix) + ownerRecordKey(tenant, channel);
}

const char* ownerStateName(OwnerState state) {
  return state == OwnerState::kOwned ? "owned" : "moving";
}

std::string encodeOwnerRecord(const OwnerRecord& r) {
  std::string out;
  JsonWriter(out)
      .beginObject()
      .field("tenant", r.tenant)
      .field("channel", r.channel)
      .field("owner", r.owner)
      .fieldUint("gen", r.gen)
      .field("state", ownerStateName(r.state))
      .field("from", r.from)
      .fieldUint("fence", r.fence)
      .fieldUint("base", r.base)
      .fieldBool("forced", r.forced)
      .fieldInt("at_ms", r.at_ms)
      .endObject();
  return out;
}

Result<OwnerRecord> parseOwnerRecord(JsonParser& parser, std::string_view json) {
  auto doc = parser.parse(json);
  if (!doc) return invalid("not JSON: " + doc.status().message());
  OwnerRecord r;
  std::string_view tenant, channel, owner, state, from;
  if ((*doc)["tenant"].get(tenant) || (*doc)["channel"].get(channel) ||
      (*doc)["owner"].get(owner) || (*doc)["gen"].get(r.gen) || (*doc)["state"].get(state) ||
      (*doc)["from"].get(from) || (*doc)["fence"].get(r.fence) || (*doc)["base"].get(r.base)) {
    return invalid("a field is missing or has the wrong type");
  }
  if ((*doc)["at_ms"].get(r.at_ms)) r.at_ms = 0;  // informational only
  if ((*doc)["forced"].get(r.forced)) r.forced = false;  // records from before forced moves
  if (tenant.empty() || channel.empty() || owner.empty() || from.empty() || r.gen == 0) {
    return invalid("tenant, channel, owner and from must be set and gen at least 1");
  }
  if (state == "owned") {
    r.state = OwnerState::kOwned;
  } else if (state == "moving") {
    r.state = OwnerState::kMoving;
  } else {
    return invalid("state must be moving or owned");
  }
  r.tenant = tenant;
  r.channel = channel;
  r.owner = owner;
  r.from = from;
  return r;
}

std::string regionRecordSubject(std::string_view region) {
  return std::string(kRegionRecordPrefix) + std::string(region);
}

bool isRegionRecordSubject(std::string_view subject) {
  return subject.substr(0, kRegionRecordPrefix.size()) == kRegionRecordPrefix;
}

namespace {

const char* failureName(RegionFailure failure) {
  switch (failure) {
    case RegionFailure::kFailing:
      return "failing";
    case RegionFailure::kFailed:
      return "failed";
    case RegionFailure::kNone:
      break;
  }
  return "";
}

}  // namespace

const char* regionStateName(const RegionRecord& record) {
  if (record.failure != RegionFailure::kNone) return failureName(record.failure);
  return record.drained ? "drained" : "active";
}

std::string encodeRegionRecord(const RegionRecord& record) {
  std::string out;
  JsonWriter j(out);
  j.beginObject().field("region", record.region).fieldBool("drained", record.drained);
  if (record.failure != RegionFailure::kNone) j.field("failure", failureName(record.failure));
  j.fieldInt("at_ms", record.at_ms).endObject();
  return out;
}

Result<RegionRecord> parseRegionRecord(JsonParser& parser, std::string_view json) {
  auto doc = parser.parse(json);
  if (!doc) return invalid("region record is not JSON: " + doc.status().message());
  RegionRecord record;
  std::string_view region;
  if ((*doc)["region"].get(region) || region.empty() || (*doc)["drained"].get(record.drained)) {
    return invalid("a region record needs region and drained");
  }
  if ((*doc)["at_ms"].get(record.at_ms)) record.at_ms = 0;
  std::string_view failure;
  if ((*doc)["failure"].get(failure)) failure = {};  // records from before region failure
  if (failure == "failing") {
    record.failure = RegionFailure::kFailing;
  } else if (failure == "failed") {
    record.failure = RegionFailure::kFailed;
  } else if (!failure.empty()) {
    return invalid("a region's failure is failing or failed");
  }
  // A failed region owns nothing new, whatever `drained` says.
  if (record.failure != RegionFailure::kNone) record.drained = true;
  record.region = region;
  return record;
}

std::string encodeGenerationMarker(const GenerationMarker& marker) {
  std::string out;
  JsonWriter j(out);
  j.beginObject().fieldUint("gen", marker.gen).field("owner", marker.owner);
  if (!marker.from.empty()) j.field("from", marker.from);
  if (marker.fence != 0) j.fieldUint("fence", marker.fence);
  j.endObject();
  return out;
}

Result<GenerationMarker> parseGenerationMarker(JsonParser& parser, std::string_view json) {
  auto doc = parser.parse(json);
  if (!doc) return invalid("marker is not JSON: " + doc.status().message());
  GenerationMarker marker;
  std::string_view owner, from;
  if ((*doc)["gen"].get(marker.gen) || (*doc)["owner"].get(owner) || owner.empty() ||
      marker.gen == 0) {
    return invalid("a marker needs gen (at least 1) and owner");
  }
  if ((*doc)["from"].get(from)) from = {};
  if ((*doc)["fence"].get(marker.fence)) marker.fence = 0;
  marker.owner = owner;
  marker.from = from;
  return marker;
}

StoreVerdict judgeStore(const GenerationMarker* marker, uint64_t gen, std::string_view region,
                        uint64_t seq) {
  if (marker == nullptr) return gen == 0 ? StoreVerdict::kConfirmed : StoreVerdict::kRefused;
  if (marker->gen == gen) {
    return marker->owner == region ? StoreVerdict::kConfirmed : StoreVerdict::kRefused;
  }
  // The generation this store was made under has just been moved away from this region.
  if (marker->gen == gen + 1 && marker->from == region) {
    if (marker->fence == 0) return StoreVerdict::kUndecided;
    return seq <= marker->fence ? StoreVerdict::kConfirmed : StoreVerdict::kRefused;
  }
  return StoreVerdict::kRefused;
}

ViewVerdict judgeByView(const OwnerRecord* record, std::string_view now_owner, uint64_t now_gen,
                        bool owner_failing, int64_t view_age_ms, std::string_view owner,
                        uint64_t gen) {
  if (view_age_ms < 0 || view_age_ms >= kOwnerLeaseMs) return ViewVerdict::kStale;
  if (owner_failing) return ViewVerdict::kOwnerFailed;
  const bool moving = record != nullptr && record->state == OwnerState::kMoving;
  if (now_owner == owner && now_gen == gen) {
    // A forced move writes no marker in the old owner: only the copy can refuse.
    if (moving) return record->forced ? ViewVerdict::kMoved : ViewVerdict::kAskMarker;
    return view_age_ms < kOwnerViewFreshMs ? ViewVerdict::kConfirmed : ViewVerdict::kAskMarker;
  }
  // Moved on by an ordinary move: the fence in the old owner's marker decides.
  if (record != nullptr && record->state == OwnerState::kOwned && record->gen == gen + 1 &&
      record->from == owner && !record->forced) {
    return ViewVerdict::kAskMarker;
  }
  return ViewVerdict::kMoved;
}

std::string channelEpoch(std::string_view stream_epoch, uint64_t gen) {
  if (gen == 0 || stream_epoch.empty()) return std::string(stream_epoch);
  return std::string(stream_epoch) + "-" + std::to_string(gen);
}

std::string ownersStreamConfigJson(int replicas) {
  // What a JetStream KV bucket is, spelled out: one message per key, kept forever,
  // changed by compare-and-set (Nats-Expected-Last-Subject-Sequence) only.
  std::string out;
  JsonWriter(out)
      .beginObject()
      .field("name", kOwnersStream)
      .key("subjects")
      .beginArray()
      .string(std::string(kOwnersSubjectPrefix) + ">")
      .endArray()
      .field("retention", "limits")
      .field("storage", "file")
      .field("discard", "new")
      .fieldInt("num_replicas", replicas)
      .fieldInt("max_msgs_per_subject", 1)
      .fieldInt("max_msgs", -1)
      .fieldInt("max_bytes", -1)
      .fieldInt("max_consumers", -1)
      .fieldBool("allow_rollup_hdrs", true)
      .fieldBool("deny_delete", true)
      .fieldBool("allow_direct", true)
      .endObject();
  return out;
}

}  // namespace wsfleet

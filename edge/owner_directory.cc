#include "edge/owner_directory.h"

#include <algorithm>
#include <tuple>

#include "common/clock.h"
#include "common/jetstream_api.h"
#include "common/log.h"
#include "edge/hub.h"
#include "edge/region.h"

namespace wsfleet {

namespace {

constexpr int64_t kLookMs = 10000;
// While the worker stores (a store in the last kStoringMs): every second, so the copy stays
// fresh enough to confirm stores by itself.
constexpr int64_t kStoringLookMs = 1000;
constexpr int64_t kStoringMs = 10000;
// Stretches of the bucket's revisions read at once while the copy catches up with it.
constexpr uint64_t kLoadWalkers = 64;

// A record replaces the one held only when it is newer: generations only grow, within
// one generation `owned` follows `moving`, and a move becomes forced while moving (and
// stays forced). Plain subscriptions and reloads may deliver them out of order.
bool newer(const OwnerRecord& incoming, const OwnerRecord& held) {
  auto order = [](const OwnerRecord& r) {
    const bool owned = r.state == OwnerState::kOwned;
    return std::make_tuple(r.gen, owned, !owned && r.forced);
  };
  return order(incoming) > order(held);
}

}  // namespace

OwnerDirectory::OwnerDirectory(Region& region, ChangedFn changed, RegionChangedFn region_changed,
                               bool creates_bucket, int replicas)
    : region_(region),
      creates_bucket_(creates_bucket),
      replicas_(replicas),
      changed_(std::move(changed)),
      region_changed_(std::move(region_changed)) {}

void OwnerDirectory::start() {
  region_.watch(std::string(kOwnersSubjectPrefix) + ">");
  look(nowMonoMs());
}

bool OwnerDirectory::onMessage(const NatsInbound& message) {
  if (message.subject.compare(0, kOwnersSubjectPrefix.size(), kOwnersSubjectPrefix) != 0) {
    return false;
  }
  // Only a hint: a compare-and-set the bucket refused was published all the same (and
  // anyone allowed to publish here could say anything). What the bucket stored is read.
  // A region's record only in the bucket's order (a look): seen ahead of the records
  // before it, a restore could hide a forced move that preceded it.
  if (isRegionRecordSubject(message.subject)) {
    lookSoon(nowMonoMs());
    return true;
  }
  refreshSubject(message.subject);
  return true;
}

void OwnerDirectory::onReconnected() { look(nowMonoMs()); }

void OwnerDirectory::noteStore(int64_t now_mono_ms) {
  const bool idle = last_store_ms_ < 0 || now_mono_ms - last_store_ms_ >= kStoringMs;
  last_store_ms_ = now_mono_ms;
  if (idle) next_look_ms_ = std::min(next_look_ms_, now_mono_ms);
}

void OwnerDirectory::tick(int64_t now_mono_ms) {
  if (now_mono_ms < next_look_ms_) return;
  // Every second too until the copy was read once: the worker is not ready before.
  const bool storing = last_store_ms_ >= 0 && now_mono_ms - last_store_ms_ < kStoringMs;
  next_look_ms_ = now_mono_ms + (storing || !loaded_ ? kStoringLookMs : kLookMs);
  look(now_mono_ms);
}

const OwnerRecord* OwnerDirectory::find(const std::string& tenant,
                                        const std::string& channel) const {
  if (records_.empty()) return nullptr;
  auto it = records_.find(scopedKey(tenant, channel));
  return it == records_.end() ? nullptr : &it->second;
}

void OwnerDirectory::refresh(const std::string& tenant, const std::string& channel) {
  refreshSubject(ownerRecordSubject(tenant, channel));
}

void OwnerDirectory::refreshSubject(const std::string& subject) {
  region_.getMessageFrom(std::string(kOwnersStream), msgGetLastBySubject(subject),
                         [this](const NatsInbound* r) {
                           if (r == nullptr || !r->status.empty()) return;
                           auto got = parseMsgGet(region_.parser(), r->data);
                           if (got) applyStored(*got);
                         });
}

void OwnerDirectory::applyStored(const JsStoredMessage& stored) {
  if (isRegionRecordSubject(stored.subject)) {
    auto region = parseRegionRecord(region_.parser(), stored.data);
    if (!region || stored.subject != regionRecordSubject(region->region)) {
      logWarn("owner_record_invalid", {{"subject", stored.subject}});
      return;
    }
    // Applied when the load is complete: halfway, the copy may hold a region's restore
    // without a forced move written before it whose revision was replaced by a later one
    // (the bucket keeps one per key), a state the bucket never was in.
    if (load_) {
      load_->regions.insert_or_assign(region->region, std::move(*region));
      return;
    }
    return applyRegion(*region);
  }
  auto record = parseOwnerRecord(region_.parser(), stored.data);
  if (!record || stored.subject != ownerRecordSubject(record->tenant, record->channel)) {
    logWarn("owner_record_invalid",
            {{"subject", stored.subject},
             {"error", record ? "the record names another channel" : record.status().message()}});
    return;
  }
  apply(std::move(*record));
}

void OwnerDirectory::applyRegion(const RegionRecord& region) {
  const std::string& name = region.region;
  const bool failing = region.failure != RegionFailure::kNone;
  const bool failed = region.failure == RegionFailure::kFailed;
  if ((drained_.count(name) != 0) == region.drained && (failing_.count(name) != 0) == failing &&
      (failed_.count(name) != 0) == failed) {
    return;
  }
  auto mark = [&name](std::set<std::string>& set, bool in) {
    if (in) {
      set.insert(name);
    } else {
      set.erase(name);
    }
  };
  mark(drained_, region.drained);
  mark(failing_, failing);
  mark(failed_, failed);
  logInfo("region_record", {{"region", name}, {"state", regionStateName(region)}});
  if (region_changed_) region_changed_(region);
}

void OwnerDirectory::apply(OwnerRecord record) {
  const std::string key = scopedKey(record.tenant, record.channel);
  auto it = records_.find(key);
  if (it != records_.end() && !newer(record, it->second)) return;
  OwnerRecord& held = records_[key];
  held = std::move(record);
  logInfo("owner_record", {{"tenant", held.tenant},
                           {"channel", held.channel},
                           {"owner", held.owner},
                           {"gen", held.gen},
                           {"state", ownerStateName(held.state)}});
  changed_(held);
}

void OwnerDirectory::loadTo(uint64_t last, int64_t asked_ms) {
  // The revisions after loaded_seq_ up to `last` (the look's) are split into kLoadWalkers
  // stretches, each walked with "next message from here" (revisions replaced since are
  // skipped: the bucket keeps one per key), all at once, and applied in order as the
  // stretches before them are known: a mass failover writes thousands of revisions, and
  // one request at a time across a gateway would let the lease run out first. Then the
  // tail after `last` is walked to the end: a revision replaced after the look by a later
  // one is found there, not in its stretch.
  loading_ = true;
  Load load;
  load.id = ++load_id_;
  load.last = last;
  load.asked_ms = asked_ms;
  const uint64_t first = loaded_seq_ + 1;
  const uint64_t span = last - loaded_seq_;
  load.stretch = std::max<uint64_t>(1, (span + kLoadWalkers - 1) / kLoadWalkers);
  for (uint64_t lo = first; lo <= last; lo += load.stretch) {
    load.walkers.push_back({lo, std::min(last, lo + load.stretch - 1), lo - 1});
  }
  load_ = std::move(load);
  const uint64_t id = load_->id;
  // A request that fails at once answers synchronously and may end the load.
  for (size_t i = 0; load_ && load_->id == id && i < load_->walkers.size(); ++i) walk(i);
}

void OwnerDirectory::walk(size_t i) {
  const Load::Walker& w = load_->walkers[i];
  region_.getMessageFrom(std::string(kOwnersStream),
                         msgGetNextBySubject(w.known_to + 1, std::string(kOwnersSubjectPrefix) + ">"),
                         [this, id = load_->id, i](const NatsInbound* r) { onLoaded(id, i, r); });
}

void OwnerDirectory::walkTail() {
  region_.getMessageFrom(std::string(kOwnersStream),
                         msgGetNextBySubject(loaded_seq_ + 1, std::string(kOwnersSubjectPrefix) + ">"),
                         [this, id = load_->id](const NatsInbound* r) { onTail(id, r); });
}

Result<std::optional<JsStoredMessage>> OwnerDirectory::revisionOf(const NatsInbound* r) {
  JsError error;
  auto got = r == nullptr || !r->status.empty()
                 ? Result<JsStoredMessage>(Status(Code::kUnavailable, "no_reply", ""))
                 : parseMsgGet(region_.parser(), r->data, &error);
  if (got) return std::optional<JsStoredMessage>(std::move(*got));
  if (error.err_code == kJsNoMessageFound) return std::optional<JsStoredMessage>();
  // The next look starts again from what was applied.
  load_.reset();
  loading_ = false;
  return got.takeStatus();
}

void OwnerDirectory::onLoaded(uint64_t id, size_t i, const NatsInbound* r) {
  if (!load_ || load_->id != id) return;  // a load given up on
  auto got = revisionOf(r);
  if (!got) return;
  Load::Walker& w = load_->walkers[i];
  const bool more = *got && (*got)->seq <= w.hi;
  if (more) {
    w.known_to = (*got)->seq;
    load_->arrived.emplace((*got)->seq, std::move(**got));
  } else {
    w.known_to = w.hi;  // nothing more in this stretch
  }
  // Apply what is known in order: a stretch's messages up to where it is walked, then the
  // next stretch once this one is done.
  while (loaded_seq_ < load_->last) {
    const Load::Walker& at = load_->walkers[(loaded_seq_ + 1 - load_->walkers.front().lo) /
                                            load_->stretch];
    if (at.known_to <= loaded_seq_) break;
    const uint64_t upto = at.known_to;
    while (!load_->arrived.empty() && load_->arrived.begin()->first <= upto) {
      auto next = load_->arrived.extract(load_->arrived.begin());
      loaded_seq_ = next.key();
      applyStored(next.mapped());
    }
    loaded_seq_ = std::max(loaded_seq_, upto);
  }
  if (loaded_seq_ >= load_->last) return walkTail();
  if (more) walk(i);
}

void OwnerDirectory::onTail(uint64_t id, const NatsInbound* r) {
  if (!load_ || load_->id != id) return;
  auto got = revisionOf(r);
  if (!got) return;
  if (*got) {
    loaded_seq_ = (*got)->seq;
    applyStored(**got);
    return walkTail();
  }
  // Every revision the look saw (or one that replaced it since) is here: the copy was
  // complete when the look was asked. The regions' records now, in the bucket's order.
  std::map<std::string, RegionRecord> regions = std::move(load_->regions);
  const int64_t asked_ms = load_->asked_ms;
  load_.reset();
  loading_ = false;
  for (const auto& [name, region] : regions) applyRegion(region);
  loaded_ = true;
  complete_as_of_ms_ = std::max(complete_as_of_ms_, asked_ms);
}

void OwnerDirectory::look(int64_t now_mono_ms) {
  if (looking_ || loading_) return;
  looking_ = true;
  region_.request(streamInfoSubject(kOwnersStream), "", {},
                  [this, asked_ms = now_mono_ms](const NatsInbound* r) {
                    looking_ = false;
                    if (r == nullptr || !r->status.empty()) return;
                    JsError error;
                    auto info = parseStreamInfo(region_.parser(), r->data, &error);
                    if (replaced_) return;  // no lease from it any more
                    if (!info) {
                      if (error.err_code == kJsStreamNotFound && !bucket_created_.empty()) {
                        return noteReplaced("gone");
                      }
                      if (error.err_code == kJsStreamNotFound) {  // nothing ever moved
                        loaded_ = true;
                        complete_as_of_ms_ = std::max(complete_as_of_ms_, asked_ms);
                        if (creates_bucket_) createBucket();
                      }
                      return;
                    }
                    if (bucket_created_.empty()) bucket_created_ = info->created;
                    if (info->created != bucket_created_ || info->last_seq < loaded_seq_) {
                      return noteReplaced("recreated");
                    }
                    if (info->last_seq > loaded_seq_) return loadTo(info->last_seq, asked_ms);
                    loaded_ = true;
                    complete_as_of_ms_ = std::max(complete_as_of_ms_, asked_ms);
                  });
}

void OwnerDirectory::createBucket() {
  if (creating_) return;
  creating_ = true;
  // Created in this region's cluster (a stream is placed where it is asked for). Another
  // worker creating it at the same time is harmless: the same configuration answers with
  // the existing stream.
  region_.request(streamCreateSubject(kOwnersStream), ownersStreamConfigJson(replicas_), {},
                  [this](const NatsInbound* r) {
                    creating_ = false;
                    if (r == nullptr || !r->status.empty()) return;  // the next look again
                    auto made = parseStreamInfo(region_.parser(), r->data);
                    if (made) {
                      logInfo("owner_bucket_created", {{"replicas", replicas_}});
                    } else {
                      logWarn("owner_bucket_not_created", {{"error", made.status().message()}});
                    }
                  });
}

void OwnerDirectory::noteReplaced(const char* how) {
  // Not the bucket this copy was read from (lost, or made again): what it says cannot
  // renew the lease, and this worker refuses durable stores until it is restarted (and
  // reads whatever an operator restored).
  replaced_ = true;
  logError("owner_bucket_replaced", {{"how", how}, {"loaded_seq", loaded_seq_}});
}

}  // namespace wsfleet

// EdgeService in a fleet: following a channel when an operator moves it to another
// region (common/owner_records.h has the protocol; tools/ctl/owner_command.cc the mover).
//
// Stores: each carries the generation this worker routes the channel under, and is
// acknowledged to the client only once the owner's generation marker, read after the
// owner acknowledged the store, still names that generation and owner. So a store that
// reaches the old owner after the move fenced it is refused ("owner_moved"; the client
// retries and the worker, having read the record again, stores at the new owner).
//
// Delivery: a channel's subscribers on this worker see the old generation up to the move's
// fence (the last offset the old owner acknowledged), then every message of the new
// generation from its base, with the new generation's epoch. Messages of any other
// generation (late stores the fence refused, the old owner's stream after the move) are
// skipped wherever they arrive from. A forced move (the old owner failed) has no fence: its
// subscribers here are closed with 4009, and their resume says recovered:false.
//
// Every confirmation also needs this worker's copy of the bucket proven within the lease
// (kOwnerLeaseMs), so that a region cut off from the bucket stops acknowledging before
// anyone can fail it over.
#include <algorithm>

#include "common/clock.h"
#include "common/jetstream_api.h"
#include "common/log.h"
#include "common/region_subjects.h"
#include "common/ownership_mover.h"
#include "edge/edge_service.h"

namespace wsfleet {

namespace {

// An undecided store is asked about for up to about five seconds: a mover reads the fence
// right after it writes the marker.
constexpr int kConfirmAttempts = 50;
constexpr int64_t kConfirmRetryMs = 100;
// A store waits this many retries (two seconds) for a look at the bucket that renews the
// lease before it is refused.
constexpr int kStaleAttempts = 20;
// A move away from a drained region that failed is not tried again by the worker before.
constexpr int64_t kMoveRetryMs = 5000;
// A move away from a drained region whose record says `moving` for this long (by the
// writer's wall clock) is taken for abandoned and finished by the worker that uses it.
constexpr int64_t kStalledMoveMs = 15000;

}  // namespace

std::string EdgeService::channelEpochOf(const std::string& owner, uint64_t gen) const {
  return channelEpoch(region_->epochOf(owner), gen);
}

std::string EdgeService::channelEpochOf(const RegionChannel& rc) const {
  return channelEpochOf(rc.owner, rc.gen);
}

bool EdgeService::deliverable(const RegionChannel& rc, const PeerMessage& stored,
                              uint64_t seq) const {
  if (stored.generation != rc.gen) return false;
  // A move waits: what the old owner stored after its fence was never acknowledged.
  return !(rc.move && seq > rc.move->fence);
}

void EdgeService::onOwnerRecord(const OwnerRecord& record) {
  if (owners_) metrics_.owner_records.set(static_cast<int64_t>(owners_->size()));
  const std::string key = scopedKey(record.tenant, record.channel);
  const std::string tail = channelTail(record.tenant, record.channel);
  // The interest goes where the channel is forwarded from now.
  if (region_->isWatched(channelSubject(config_.region, record.tenant, record.channel))) {
    auto announced = announced_owner_.find(key);
    const std::string before = announced == announced_owner_.end() ? "" : announced->second;
    const std::optional<std::string> now = interestOwner(record.tenant, record.channel);
    if (now.value_or("") != before) {
      if (!before.empty()) interest_->remove(before, tail);
      if (now) {
        interest_->add(*now, tail);
        announced_owner_[key] = *now;
      } else {
        announced_owner_.erase(key);
      }
    }
  }
  auto it = region_channels_.find(key);
  if (it == region_channels_.end()) return;
  RegionChannel& rc = *it->second;
  if (record.state != OwnerState::kOwned) {
    // A move away from the generation delivered here: publishes go on, but which of the
    // old owner's messages count is known only with the fence. Until then nothing more
    // of it is delivered (a message the fence refuses must never reach a subscriber).
    if (record.readOwner() == rc.owner && record.readGen() == rc.gen) rc.frozen = true;
    return;
  }
  rc.frozen = false;
  if (record.gen <= rc.gen || (rc.move && rc.move->gen >= record.gen)) return;
  // The next generation after the one delivered: the old one up to its fence first.
  // Generations skipped (this worker missed a move): nothing between can be put in
  // order; the subscribers see the new epoch and know they may have missed messages.
  // A forced move has no fence: nothing more of the old generation is delivered.
  // Nor does a fenced one whose old owner has failed since: its history is out of reach.
  const bool next = record.from == rc.owner && record.gen == rc.gen + 1 && !record.forced &&
                    !(owners_ && owners_->failed(record.from));
  rc.move = record;
  rc.move_ready = false;
  if (!next) rc.move->fence = 0;
  const uint64_t fence = rc.move->fence;
  std::erase_if(rc.held, [&rc, fence](const RegionChannel::Live& live) {
    if (live.seq <= fence) return false;
    rc.held_bytes -= live.frame->size();
    return true;
  });
  if (!next) return regionDropOldGeneration(rc);
  if (rc.busy) return;  // regionIdle goes on with it
  if (!rc.positioned) return regionSwitchOwner(rc);
  regionCatchUp(rc);  // up to the fence; regionIdle then switches
}

void EdgeService::regionDropOldGeneration(RegionChannel& rc) {
  // Nothing of the old generation is read any more (its owner may be gone for good), and
  // its subscribers here are told (regionSwitchOwner closes them). The switch waits only
  // for a fetch already on its way, whose answer must not land in the new generation
  // (regionCatchUp switches once it is back).
  rc.move->fence = 0;
  rc.move->forced = true;
  rc.move_ready = true;
  rc.held.clear();
  rc.held_bytes = 0;
  if (rc.busy && !rc.stalled) return;
  rc.busy = false;
  rc.stalled = false;
  regionSwitchOwner(rc);
}

void EdgeService::regionSwitchOwner(RegionChannel& rc) {
  OwnerRecord move = std::move(*rc.move);
  rc.move.reset();
  rc.move_ready = false;
  logInfo("owner_switched", {{"tenant", rc.tenant},
                             {"channel", rc.channel},
                             {"from", rc.owner},
                             {"to", move.owner},
                             {"gen", move.gen},
                             {"delivered", rc.cursor},
                             {"base", move.base},
                             {"forced", move.forced}});
  metrics_.ownership_moves.inc();
  const std::string from = std::move(rc.owner);
  const uint64_t gen = rc.gen;
  rc.owner = move.owner;
  rc.gen = move.gen;
  rc.base = move.base;
  rc.history_subject = historySubject(rc.owner, rc.tenant, rc.channel);
  rc.held.clear();
  rc.held_bytes = 0;
  rc.cursor_checked = false;
  rc.reposition = false;
  rc.catch_up_after = false;
  if (!rc.positioned) return regionPosition(rc);
  if (move.forced || move.from != from || move.gen != gen + 1) {
    // Messages of the old generation they had not received may never be delivered (the
    // failed owner's, or a generation this worker skipped): never a silent gap.
    closeSubscribersMissing(rc, "owner_failed_over",
                            "the channel's owner region changed and messages may have been "
                            "missed; resume");
  }
  // Subscribers go on with every message of the new generation, from its base (offsets
  // of the new owner's history; the epoch tells them apart).
  rc.cursor = rc.base;
  // A move of the new generation may have begun already (this switch waited on a
  // catch-up longer than that move's grace): hold it as if seen on its way.
  if (const OwnerRecord* next = owners_ ? owners_->find(rc.tenant, rc.channel) : nullptr) {
    rc.frozen = next->state == OwnerState::kMoving && next->readOwner() == rc.owner &&
                next->readGen() == rc.gen;
  }
  regionCatchUp(rc);
}

Status EdgeService::ownerRegionFailed() {
  metrics_.dropped("owner_region_failed");
  return Status(Code::kUnavailable, "owner_region_failed",
                "the region that owns this channel has failed and the channel is moving; retry "
                "with the same idempotency_key");
}

ViewVerdict EdgeService::viewVerdict(const std::string& owner, uint64_t gen,
                                     const std::string& tenant,
                                     const std::string& channel) const {
  if (!owners_) return ViewVerdict::kAskMarker;
  const StoreTarget now = storeTargetOf(tenant, channel);
  return judgeByView(owners_->find(tenant, channel), now.owner, now.gen, owners_->failing(owner),
                     owners_->viewAgeMs(nowMonoMs()), owner, gen);
}

void EdgeService::regionConfirmStore(const std::string& owner, uint64_t gen,
                                     const std::string& tenant, const std::string& channel,
                                     PublishOutcome outcome, PublishDone done, int attempt,
                                     int stale_waits) {
  switch (viewVerdict(owner, gen, tenant, channel)) {
    case ViewVerdict::kConfirmed:
      // The copy of the bucket was complete moments ago and the channel has not moved
      // since the store left: any move starting after that look fences only after the
      // mover's grace, later than this acknowledgement, so the store is below that fence.
      return done(std::move(outcome));
    case ViewVerdict::kAskMarker:
      return regionConfirmByMarker(owner, gen, tenant, channel, std::move(outcome),
                                   std::move(done), attempt, stale_waits);
    case ViewVerdict::kStale:
      if (stale_waits < kStaleAttempts) {
        // Looked at every second while storing: the next look usually renews the lease.
        owners_->lookSoon(nowMonoMs());
        later_.emplace(nowMonoMs() + kConfirmRetryMs,
                       [this, owner, gen, tenant, channel, attempt, stale_waits,
                        outcome = std::move(outcome), done = std::move(done)]() mutable {
                         regionConfirmStore(owner, gen, tenant, channel, std::move(outcome),
                                            std::move(done), attempt, stale_waits + 1);
                       });
        return;
      }
      // Cut off from the fleet's ownership bucket for longer than the lease: this region
      // may be being failed over, so nothing it stores is acknowledged (owner_records.h).
      metrics_.dropped("owner_view_stale");
      return done(Status(Code::kUnavailable, "owner_view_stale",
                         "the fleet's ownership records are unreachable from this edge; retry "
                         "with the same idempotency_key"));
    case ViewVerdict::kOwnerFailed:
      return done(ownerRegionFailed());
    case ViewVerdict::kMoved:
      break;
  }
  metrics_.dropped("owner_moved");
  logInfo("store_refused_moved",
          {{"tenant", tenant}, {"channel", channel}, {"owner", owner}, {"gen", gen}});
  if (owners_) owners_->refresh(tenant, channel);
  done(Status(Code::kUnavailable, "owner_moved",
              "the channel moved to another region; retry with the same idempotency_key"));
}

void EdgeService::regionConfirmByMarker(const std::string& owner, uint64_t gen,
                                        const std::string& tenant, const std::string& channel,
                                        PublishOutcome outcome, PublishDone done, int attempt,
                                        int stale_waits) {
  region_->streamApi(
      owner, "STREAM.MSG.GET." + generationStreamName(owner),
      msgGetLastBySubject(generationSubject(owner, tenant, channel)),
      [this, owner, gen, tenant, channel, attempt, stale_waits, outcome = std::move(outcome),
       done = std::move(done)](const NatsInbound* r) mutable {
        JsError error;
        auto got = r == nullptr || !r->status.empty()
                       ? Result<JsStoredMessage>(Status(Code::kUnavailable, "no_reply", ""))
                       : parseMsgGet(region_->parser(), r->data, &error);
        std::optional<GenerationMarker> marker;
        bool readable = got.isOk() || error.err_code == kJsNoMessageFound ||
                        error.err_code == kJsStreamNotFound;
        if (got.isOk()) {
          auto parsed = parseGenerationMarker(region_->parser(), got->data);
          if (parsed) marker = std::move(*parsed);
          readable = parsed.isOk();
        }
        if (!readable) {
          // Stored, but not confirmed: the client retries with the same key; the owner's
          // duplicate window answers with this same offset, and this check runs again.
          metrics_.dropped("owner_check_unavailable");
          return done(Status(Code::kUnavailable, "owner_check_unavailable",
                             "the channel's owner could not confirm the store; retry with the "
                             "same idempotency_key"));
        }
        const StoreVerdict verdict =
            judgeStore(marker ? &*marker : nullptr, gen, owner, outcome.position.offset);
        if (verdict == StoreVerdict::kConfirmed) {
          // The lease must still hold when the client is told (the read took a moment).
          const ViewVerdict view = viewVerdict(owner, gen, tenant, channel);
          if (view == ViewVerdict::kConfirmed || view == ViewVerdict::kAskMarker) {
            return done(std::move(outcome));
          }
          return regionConfirmStore(owner, gen, tenant, channel, std::move(outcome),
                                    std::move(done), attempt + 1, stale_waits);
        }
        if (verdict == StoreVerdict::kUndecided && attempt < kConfirmAttempts) {
          // A move is fencing the owner right now: its fence is read within moments.
          later_.emplace(
              nowMonoMs() + kConfirmRetryMs,
              [this, owner, gen, tenant, channel, attempt, stale_waits,
               outcome = std::move(outcome), done = std::move(done)]() mutable {
                regionConfirmByMarker(owner, gen, tenant, channel, std::move(outcome),
                                      std::move(done), attempt + 1, stale_waits);
              });
          return;
        }
        if (verdict == StoreVerdict::kUndecided) {
          // A mover stopped between its marker and its fence. Whoever finishes the move
          // reads the fence then, which may count this store after all: its outcome is
          // unknown, not refused (a retry may store it twice; see ARCHITECTURE.md).
          metrics_.dropped("owner_check_unavailable");
          return done(Status(Code::kUnavailable, "owner_check_unavailable",
                             "a move of the channel is unfinished; retry with the same "
                             "idempotency_key"));
        }
        // Above the fence: never delivered (readers stop at the fence), never acknowledged.
        metrics_.dropped("owner_moved");
        logInfo("store_refused_moved", {{"tenant", tenant},
                                        {"channel", channel},
                                        {"owner", owner},
                                        {"gen", gen},
                                        {"offset", outcome.position.offset},
                                        {"marker_owner", marker ? marker->owner : ""},
                                        {"marker_gen", marker ? marker->gen : 0}});
        if (owners_) owners_->refresh(tenant, channel);
        done(Status(Code::kUnavailable, "owner_moved",
                    "the channel moved to another region; retry with the same idempotency_key"));
      });
}

void EdgeService::runLater(int64_t now_mono_ms) {
  while (!later_.empty() && later_.begin()->first <= now_mono_ms) {
    auto fn = std::move(later_.begin()->second);
    later_.erase(later_.begin());
    fn();
  }
}

void EdgeService::onRegionRecord(const RegionRecord& record) {
  // Channels moved away stay where they are when a region is undrained or restored; a
  // failing region keeps its channels until its lease has run out (then it is failed).
  if (!record.drained || record.failure == RegionFailure::kFailing) return;
  std::vector<std::pair<std::string, std::string>> channels;
  std::vector<RegionChannel*> stranded;
  for (const auto& [key, rc] : region_channels_) {
    if (rc->owner == record.region) channels.emplace_back(rc->tenant, rc->channel);
    // Moved away before it failed, and still reading its old generation up to the
    // fence: that history is out of reach now.
    if (record.failure == RegionFailure::kFailed && rc->move && !rc->move_ready &&
        rc->owner == record.region) {
      stranded.push_back(rc.get());
    }
  }
  for (RegionChannel* rc : stranded) regionDropOldGeneration(*rc);
  logInfo("region_drained", {{"region", record.region},
                             {"state", regionStateName(record)},
                             {"channels_here", channels.size()}});
  for (const auto& [tenant, channel] : channels) moveFromDrained(tenant, channel);
}

void EdgeService::moveFromDrained(const std::string& tenant, const std::string& channel) {
  if (!owners_ || !config_.topology) return;
  const OwnerRecord* record = owners_->find(tenant, channel);
  const bool moving = record != nullptr && record->state == OwnerState::kMoving;
  if (!moving && owners_->drained().empty()) return;  // what nearly every store sees
  const StoreTarget now = storeTargetOf(tenant, channel);  // while moving: where from
  // Failing: its stores are refused, but only its marker or its lease can fence it, and
  // the lease has not run out yet (the region becomes failed then).
  if (owners_->failing(now.owner) && !owners_->failed(now.owner)) return;
  std::string target;
  if (now.moving) {
    // A move already runs; finished here only when it looks abandoned (its mover stopped
    // — an operator's, a drain's, a forced one — or the region failed halfway through a
    // drain: then it goes on forced), to where it was going, drained or not.
    const bool stalled = record->at_ms > 0 && nowWallMs() - record->at_ms >= kStalledMoveMs;
    if (!owners_->failed(now.owner) && !stalled) return;
    target = record->owner;
  } else {
    if (owners_->drained().count(now.owner) == 0) return;
    HealthySet healthy = healthy_regions_;
    for (const std::string& r : owners_->drained()) healthy.erase(r);
    auto to = decideOwner(*config_.topology, healthy, tenant, channel);
    if (!to || to->region == now.owner) return;  // every region drained: it stays
    target = to->region;
  }
  const std::string key = scopedKey(tenant, channel);
  if (!moving_away_.insert(key).second) return;
  OwnershipMove::Io io;
  io.request = [this](std::string subject, std::string data, std::vector<NatsHeader> headers,
                      std::function<void(const NatsInbound*)> done) {
    region_->request(std::move(subject), std::move(data), std::move(headers), std::move(done));
  };
  io.after = [this](int64_t ms, std::function<void()> fn) {
    later_.emplace(nowMonoMs() + ms, std::move(fn));
  };
  io.parser = &region_->parser();
  io.bucket_replicas = static_cast<int>(config_.history_replicas);
  auto finish = [this, key, tenant, channel, to = target](Result<OwnerRecord> moved) {
    if (!moved) {
      // Not tried again by this worker for a while: every store would otherwise start
      // another attempt while the region's NATS is in trouble.
      later_.emplace(nowMonoMs() + kMoveRetryMs, [this, key] { moving_away_.erase(key); });
      // Another worker or edge moving it too is the usual reason: it moves all the same.
      logInfo("drained_channel_not_moved", {{"tenant", tenant},
                                            {"channel", channel},
                                            {"to", to},
                                            {"reason", moved.status().reason()},
                                            {"error", moved.status().message()}});
      return;
    }
    moving_away_.erase(key);
    logInfo("drained_channel_moved",
            {{"tenant", tenant}, {"channel", channel}, {"to", moved->owner}, {"gen", moved->gen}});
  };
  const std::string default_owner = now.owner;
  const uint64_t gen = now.gen;
  OwnershipMove::readRecord(
      io, tenant, channel,
      [io, tenant, channel, default_owner, gen, to = target,
       finish = std::move(finish)](Result<OwnershipMove::Read> read) mutable {
        if (!read) return finish(read.takeStatus());
        OwnerRecord current;
        uint64_t revision = 0;
        if (read->found) {
          current = std::move(read->record);
          revision = read->revision;
        } else {
          current.tenant = tenant;
          current.channel = channel;
          current.owner = default_owner;
          current.gen = gen;
          current.state = OwnerState::kOwned;
        }
        OwnershipMove::start(std::move(io), std::move(current), revision, to, std::move(finish));
      });
}

}  // namespace wsfleet

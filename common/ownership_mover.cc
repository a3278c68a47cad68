#include "common/ownership_mover.h"

#include <algorithm>

#include "common/clock.h"
#include "common/jetstream_api.h"
#include "common/region_subjects.h"

namespace wsfleet {

namespace {


using Io = OwnershipMove::Io;

Status failure(std::string message) {
  return Status(Code::kUnavailable, "owner_move_failed", std::move(message));
}

// A request whose answer is wanted as text: the reply's data, or why there is none.
void ask(const Io& io, const std::string& subject, std::string data,
         std::vector<NatsHeader> headers, std::function<void(Result<std::string>)> then) {
  io.request(subject, std::move(data), std::move(headers),
             [subject, then = std::move(then)](const NatsInbound* r) {
               if (r == nullptr) return then(failure("no reply to " + subject + " in time"));
               if (r->status == "503") {
                 return then(failure("nobody answers on " + subject +
                                     " (JetStream down, or the stream does not exist)"));
               }
               then(r->data);
             });
}

// The latest message of `subject` in `stream` (found = false when there is none).
struct Last {
  bool found = false;
  JsStoredMessage message;
};
void lastMessage(const Io& io, std::string_view stream, const std::string& subject,
                 std::function<void(Result<Last>)> then) {
  ask(io, msgGetSubject(stream), msgGetLastBySubject(subject), {},
      [parser = io.parser, then = std::move(then)](Result<std::string> reply) {
        if (!reply) return then(reply.takeStatus());
        JsError error;
        auto got = parseMsgGet(*parser, *reply, &error);
        Last last;
        if (got) {
          last.found = true;
          last.message = std::move(*got);
          return then(std::move(last));
        }
        if (error.err_code == kJsNoMessageFound || error.err_code == kJsStreamNotFound) {
          return then(std::move(last));
        }
        then(got.takeStatus());
      });
}

// Stores `body` on `subject` only if its latest message is still the one at `expected`
// (0: none). The new message's sequence.
void compareAndSet(const Io& io, const std::string& subject, std::string body, uint64_t expected,
                   std::function<void(Result<uint64_t>)> then) {
  ask(io, subject, std::move(body),
      {{"Nats-Expected-Last-Subject-Sequence", std::to_string(expected)}},
      [parser = io.parser, subject, then = std::move(then)](Result<std::string> reply) {
        if (!reply) return then(reply.takeStatus());
        JsError error;
        auto ack = parsePubAck(*parser, *reply, &error);
        if (ack) return then(ack->seq);
        if (error.err_code == kJsWrongLastSequence) {
          return then(Status(Code::kUnavailable, "changed_concurrently",
                             subject + " changed meanwhile (another move?)"));
        }
        then(ack.takeStatus());
      });
}

void historyLastSeq(const Io& io, const std::string& region,
                    std::function<void(Result<uint64_t>)> then) {
  ask(io, streamInfoSubject(historyStreamName(region)), "", {},
      [parser = io.parser, then = std::move(then)](Result<std::string> reply) {
        if (!reply) return then(reply.takeStatus());
        auto info = parseStreamInfo(*parser, *reply);
        if (!info) return then(info.takeStatus());
        then(info->last_seq);
      });
}

class Mover : public std::enable_shared_from_this<Mover> {
 public:
  Mover(Io io, OwnerRecord current, uint64_t revision, std::string to, OwnershipMove::Done done)
      : io_(std::move(io)),
        current_(std::move(current)),
        revision_(revision),
        to_(std::move(to)),
        done_(std::move(done)) {}

  void run() {
    auto self = shared_from_this();
    OwnershipMove::ensureBucket(io_, [self](Status made) {
      if (!made) return self->finish(std::move(made));
      self->begin();
    });
  }

 private:
  // Step 1 (or finishing a move another mover began).
  void begin() {
    if (current_.state == OwnerState::kMoving) {
      if (current_.owner != to_) {
        return finish(failure("a move of this channel to " + current_.owner +
                              " is not finished; finish it (a move to " + current_.owner +
                              ") first"));
      }
      move_ = current_;
      return decideFence();
    }
    if (current_.owner == to_) return finish(current_);
    move_ = current_;
    move_.owner = to_;
    move_.gen = current_.gen + 1;
    move_.state = OwnerState::kMoving;
    move_.from = current_.owner;
    move_.fence = 0;
    move_.base = 0;
    move_.forced = false;
    move_.at_ms = nowWallMs();
    auto self = shared_from_this();
    compareAndSet(io_, ownerRecordSubject(move_.tenant, move_.channel), encodeOwnerRecord(move_),
                  revision_, [self](Result<uint64_t> seq) {
                    if (!seq) return self->finish(seq.takeStatus());
                    self->revision_ = *seq;
                    self->decideFence();
                  });
  }

  // A move away from a failed region is forced: the region's marker is not written (it
  // may be unreachable) and there is no fence; the lease keeps every edge from confirming
  // the region's stores (common/owner_records.h, kOwnerLeaseMs). The region's record is
  // read after this move's record says `moving`. Once the record says `forced` the move
  // stays forced (stores refused meanwhile as moved must never be delivered after all).
  void decideFence() {
    if (move_.forced) return confirmForced();
    auto self = shared_from_this();
    regionFailed([self](bool failed) {
      if (!failed) return self->afterGrace();
      self->move_.forced = true;
      self->move_.at_ms = nowWallMs();
      compareAndSet(self->io_, ownerRecordSubject(self->move_.tenant, self->move_.channel),
                    encodeOwnerRecord(self->move_), self->revision_,
                    [self](Result<uint64_t> seq) {
                      if (!seq) return self->finish(seq.takeStatus());
                      self->revision_ = *seq;
                      self->confirmForced();
                    });
    });
  }

  // The record says `forced`. Read after it, the old owner still failed means any
  // restore of the region comes later in the bucket, so every edge that sees the region
  // restored sees this record too and refuses the old owner's stores by it. Otherwise
  // (restored meanwhile) an edge may have seen the restore without this record: the
  // lease is waited out once more, after which every edge has looked again or stopped.
  void confirmForced() {
    auto self = shared_from_this();
    regionFailed([self](bool failed) {
      self->move_.fence = 0;
      if (failed) return self->markNewOwner();
      self->io_.after(kOwnerLeaseMs + kLeaseMarginMs, [self] { self->markNewOwner(); });
    });
  }

  // Whether the old owner is marked failed (its lease ran out) in the bucket now.
  void regionFailed(std::function<void(bool)> then) {
    auto self = shared_from_this();
    lastMessage(io_, kOwnersStream, regionRecordSubject(move_.from),
                [self, then = std::move(then)](Result<Last> last) {
                  if (!last) return self->finish(last.takeStatus());
                  if (!last->found) return then(false);
                  auto region = parseRegionRecord(*self->io_.parser, last->message.data);
                  if (!region) return self->finish(region.takeStatus());
                  then(region->failure == RegionFailure::kFailed);
                });
  }

  // Also when finishing an interrupted move: its first mover may have stopped before the
  // grace ran out.
  void afterGrace() {
    auto self = shared_from_this();
    io_.after(io_.grace_ms, [self] { self->fenceOldOwner(); });
  }

  // The latest marker of the channel in `region` and its sequence (0: none).
  struct MarkerAt {
    GenerationMarker marker;
    uint64_t seq = 0;
  };
  void markerIn(const std::string& region, std::function<void(Result<MarkerAt>)> then) {
    auto self = shared_from_this();
    lastMessage(io_, generationStreamName(region),
                generationSubject(region, move_.tenant, move_.channel),
                [self, region, then = std::move(then)](Result<Last> last) {
                  if (!last) return then(last.takeStatus());
                  MarkerAt at;
                  if (!last->found) return then(at);
                  auto marker = parseGenerationMarker(*self->io_.parser, last->message.data);
                  if (!marker) return then(marker.takeStatus());
                  at.marker = std::move(*marker);
                  at.seq = last->message.seq;
                  if (at.marker.gen > self->move_.gen) {
                    return then(failure(region + "'s marker is at generation " +
                                        std::to_string(at.marker.gen) + ", newer than this "
                                        "move's " + std::to_string(self->move_.gen)));
                  }
                  then(std::move(at));
                });
  }

  bool names(const MarkerAt& at) const {
    return at.seq != 0 && at.marker.gen == move_.gen && at.marker.owner == move_.owner;
  }

  // Step 2: the old owner's marker names the new generation, then the fence. A fence
  // already written is kept: stores above it were refused, and readers must agree.
  void fenceOldOwner() {
    auto self = shared_from_this();
    markerIn(move_.from, [self](Result<MarkerAt> at) {
      if (!at) return self->finish(at.takeStatus());
      if (self->names(*at) && at->marker.fence != 0) {
        self->move_.fence = at->marker.fence;
        return self->markNewOwner();
      }
      if (self->names(*at)) return self->readFence(at->seq);
      compareAndSet(self->io_, generationSubject(self->move_.from, self->move_.tenant,
                                                 self->move_.channel),
                    encodeGenerationMarker({self->move_.gen, self->move_.owner, self->move_.from, 0}),
                    at->seq, [self](Result<uint64_t> seq) {
                      if (!seq) return self->finish(seq.takeStatus());
                      self->readFence(*seq);
                    });
    });
  }

  void readFence(uint64_t marker_seq) {
    auto self = shared_from_this();
    historyLastSeq(io_, move_.from, [self, marker_seq](Result<uint64_t> last) {
      if (!last) return self->finish(last.takeStatus());
      // Every store the old owner confirms is at or below this; the ones above are
      // refused (an empty history: 1, above which nothing was stored yet).
      self->move_.fence = std::max<uint64_t>(*last, 1);
      compareAndSet(self->io_,
                    generationSubject(self->move_.from, self->move_.tenant, self->move_.channel),
                    encodeGenerationMarker({self->move_.gen, self->move_.owner, self->move_.from,
                                            self->move_.fence}),
                    marker_seq, [self](Result<uint64_t> seq) {
                      if (!seq) return self->finish(seq.takeStatus());
                      self->markNewOwner();
                    });
    });
  }

  // Step 3: the new owner's marker names the new generation; the base.
  void markNewOwner() {
    auto self = shared_from_this();
    markerIn(move_.owner, [self](Result<MarkerAt> at) {
      if (!at) return self->finish(at.takeStatus());
      if (self->names(*at)) return self->readBase();
      compareAndSet(self->io_,
                    generationSubject(self->move_.owner, self->move_.tenant, self->move_.channel),
                    encodeGenerationMarker({self->move_.gen, self->move_.owner, "", 0}), at->seq,
                    [self](Result<uint64_t> seq) {
                      if (!seq) return self->finish(seq.takeStatus());
                      self->readBase();
                    });
    });
  }

  void readBase() {
    auto self = shared_from_this();
    historyLastSeq(io_, move_.owner, [self](Result<uint64_t> last) {
      if (!last) return self->finish(last.takeStatus());
      self->move_.base = *last;
      self->markOwned();
    });
  }

  // Step 4.
  void markOwned() {
    move_.state = OwnerState::kOwned;
    move_.at_ms = nowWallMs();
    auto self = shared_from_this();
    compareAndSet(io_, ownerRecordSubject(move_.tenant, move_.channel), encodeOwnerRecord(move_),
                  revision_, [self](Result<uint64_t> seq) {
                    if (!seq) return self->finish(seq.takeStatus());
                    self->finish(self->move_);
                  });
  }

  void finish(Result<OwnerRecord> result) {
    if (!done_) return;
    OwnershipMove::Done done = std::move(done_);
    done_ = nullptr;
    done(std::move(result));
  }

  Io io_;
  OwnerRecord current_;
  uint64_t revision_;
  std::string to_;
  OwnershipMove::Done done_;
  OwnerRecord move_;
};

}  // namespace

void OwnershipMove::start(Io io, OwnerRecord current, uint64_t revision, std::string to,
                          Done done) {
  auto mover = std::make_shared<Mover>(std::move(io), std::move(current), revision, std::move(to),
                                       std::move(done));
  mover->run();
}

void OwnershipMove::ensureBucket(const Io& io, std::function<void(Status)> done) {
  ask(io, streamInfoSubject(kOwnersStream), "", {},
      [io, done = std::move(done)](Result<std::string> reply) {
        if (!reply) return done(reply.takeStatus());
        JsError error;
        auto info = parseStreamInfo(*io.parser, *reply, &error);
        if (info) return done(Status::ok());
        if (error.err_code != kJsStreamNotFound) return done(info.takeStatus());
        // Created where the mover is connected. Two movers creating it at once is harmless:
        // an identical create answers with the existing stream.
        ask(io, streamCreateSubject(kOwnersStream), ownersStreamConfigJson(io.bucket_replicas),
            {}, [parser = io.parser, done](Result<std::string> created) {
              if (!created) return done(created.takeStatus());
              done(toStatus(parseStreamInfo(*parser, *created)));
            });
      });
}

void OwnershipMove::readRecord(const Io& io, const std::string& tenant,
                               const std::string& channel, std::function<void(Result<Read>)> done) {
  lastMessage(io, kOwnersStream, ownerRecordSubject(tenant, channel),
              [parser = io.parser, done = std::move(done)](Result<Last> last) {
                if (!last) return done(last.takeStatus());
                Read read;
                if (!last->found) return done(read);
                auto record = parseOwnerRecord(*parser, last->message.data);
                if (!record) return done(record.takeStatus());
                read.found = true;
                read.record = std::move(*record);
                read.revision = last->message.seq;
                done(std::move(read));
              });
}

}  // namespace wsfleet

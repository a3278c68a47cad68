#pragma once
// One ownership move of one channel, the protocol of common/owner_records.h, driven by
// asynchronous NATS requests: `wsfleetctl owner move` runs it (waiting for each answer),
// and so do edges that move a drained region's channels on first use. Every write is a
// compare-and-set, so any number of movers of one channel may race: one wins each step,
// the others stop with `changed_concurrently`; and a move left half done is finished by
// running it again (each step sees what is done already).
//
// The steps:
//  1. the record becomes (new owner, generation + 1, moving);
//  2. after the grace (kMoveGraceMs), the old owner's marker names the new generation,
//     then its fence (the old owner's history's last sequence, kept once written); unless
//     the old owner has failed (wsfleetctl region fail): then the record says `forced` and
//     the old owner is left alone (its lease ran out, see kOwnerLeaseMs);
//  3. the new owner's marker names the new generation; its history's last sequence is
//     the base;
//  4. the record becomes owned (fence, base).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/nats_link.h"
#include "common/owner_records.h"
#include "common/status.h"

namespace wsfleet {

class OwnershipMove {
 public:
  // What the move needs from its host.
  struct Io {
    // A NATS request; `done(nullptr)` when no reply came in time.
    std::function<void(std::string subject, std::string data, std::vector<NatsHeader> headers,
                       std::function<void(const NatsInbound* reply)> done)>
        request;
    // Runs `fn` after `ms` milliseconds (the grace).
    std::function<void(int64_t ms, std::function<void()> fn)> after;
    JsonParser* parser = nullptr;
    int64_t grace_ms = kMoveGraceMs;
    int bucket_replicas = 3;  // when this move creates the ownership bucket
  };
  // The record as the move left it (owned), or why it stopped. Code kUnavailable with
  // reason "changed_concurrently" when another mover changed the record or a marker.
  using Done = std::function<void(Result<OwnerRecord> moved)>;

  // The channel's owner now: `current` is its record (revision = its sequence in the
  // bucket), or the topology's choice at generation 0 (revision 0). A record moving to
  // another region than `to` is refused; one moving to `to` is finished; a channel owned
  // by `to` already is answered as it is.
  static void start(Io io, OwnerRecord current, uint64_t revision, std::string to, Done done);

  // Reads the channel's record: the record and its revision, or nullopt-like revision 0
  // with `found` false when the channel was never moved (or no bucket exists yet).
  struct Read {
    bool found = false;
    OwnerRecord record;
    uint64_t revision = 0;
  };
  static void readRecord(const Io& io, const std::string& tenant, const std::string& channel,
                         std::function<void(Result<Read>)> done);

  // Creates the ownership bucket where `io` is connected unless it exists.
  static void ensureBucket(const Io& io, std::function<void(Status)> done);
};

}  // namespace wsfleet

#pragma once
// Requests over a NatsLink waiting for their replies, each with its own deadline. The
// link only correlates replies with request ids; who waits and for how long is the
// event loop's business, kept here.
//
// Single-threaded: every method runs on the loop that owns the link.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/nats_link.h"

namespace wsfleet {

class NatsRequests {
 public:
  // `reply` is null when none came in time (or the link dropped the request); otherwise
  // it may still be a 503 "no responders" (reply->status).
  using ReplyFn = std::function<void(const NatsInbound* reply)>;

  // Posts the request; `done` runs exactly once (at once, with null, when the link's
  // queue is full).
  void send(NatsLink& link, std::string subject, std::string data, std::vector<NatsHeader> headers,
            int64_t deadline_mono_ms, ReplyFn done);
  // A kReply item from the link: runs its callback. False when nobody waits for it any
  // more (it timed out).
  bool onReply(const NatsInbound& reply);
  // Runs the callbacks of the requests whose deadline passed, with null; their count.
  size_t expire(int64_t now_mono_ms);

  size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    int64_t deadline_ms;
    ReplyFn done;
  };
  std::unordered_map<uint64_t, Pending> pending_;
  std::multimap<int64_t, uint64_t> deadlines_;  // answered ones are skipped when expiring
  uint64_t next_id_ = 1;
};

}  // namespace wsfleet

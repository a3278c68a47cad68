#include "common/nats_requests.h"

#include <utility>

namespace wsfleet {

void NatsRequests::send(NatsLink& link, std::string subject, std::string data,
                        std::vector<NatsHeader> headers, int64_t deadline_mono_ms, ReplyFn done) {
  const uint64_t id = next_id_++;
  if (!link.request(id, std::move(subject), std::move(data), std::move(headers))) {
    done(nullptr);  // the queue to the NATS thread is full (counted by the link)
    return;
  }
  pending_.emplace(id, Pending{deadline_mono_ms, std::move(done)});
  deadlines_.emplace(deadline_mono_ms, id);
}

bool NatsRequests::onReply(const NatsInbound& reply) {
  auto it = pending_.find(reply.request_id);
  if (it == pending_.end()) return false;
  ReplyFn done = std::move(it->second.done);
  pending_.erase(it);
  done(&reply);
  return true;
}

size_t NatsRequests::expire(int64_t now_mono_ms) {
  size_t expired = 0;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_mono_ms) {
    const uint64_t id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;  // answered
    ReplyFn done = std::move(it->second.done);
    pending_.erase(it);
    ++expired;
    done(nullptr);
  }
  return expired;
}

}  // namespace wsfleet

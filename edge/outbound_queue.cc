#include "edge/outbound_queue.h"

#include <utility>

namespace wsfleet {

OutboundQueue::Outcome OutboundQueue::offer(FramePtr frame, const OutboundLimits& limits) {
  const size_t size = frame->size();
  if (frame->lowPriority()) {
    if (behind(limits)) {
      auto it = low_by_key_.find(frame->coalescingKey());
      if (it == low_by_key_.end()) return {Result::kDroppedLow, 0};
      FramePtr& old = *slot(it->second);
      const size_t old_size = old->size();
      // A larger replacement must not carry the queue past its byte cap.
      if (bytes_ - old_size + size > limits.max_bytes) return {Result::kDroppedLow, 0};
      bytes_ = bytes_ - old_size + size;
      low_bytes_ = low_bytes_ - old_size + size;
      // The map's key is a view into the queued frame: re-point it before the old one goes.
      auto node = low_by_key_.extract(it);
      old = std::move(frame);
      node.key() = old->coalescingKey();
      low_by_key_.insert(std::move(node));
      return {Result::kCoalesced, 0};
    }
    // A low frame never costs the connection its queue: without room it is dropped.
    if (count_ + 1 > limits.max_messages || bytes_ + size > limits.max_bytes) {
      return {Result::kDroppedLow, 0};
    }
    const uint64_t seq = popped_ + frames_.size();
    // The newest queued frame of a key is the one a later frame replaces: replacing an
    // older one would deliver the newest state before a stale one.
    low_by_key_.erase(frame->coalescingKey());
    low_by_key_.emplace(frame->coalescingKey(), seq);
    low_seqs_.push_back(seq);
    low_bytes_ += size;
    ++count_;
    bytes_ += size;
    frames_.push_back(std::move(frame));
    return {Result::kQueued, 0};
  }
  // Normal frame: when evicting every low frame would not make room, evict none.
  if (count_ - low_seqs_.size() + 1 > limits.max_messages ||
      bytes_ - low_bytes_ + size > limits.max_bytes) {
    return {Result::kOverCap, 0};
  }
  size_t evicted = 0;
  while (count_ + 1 > limits.max_messages || bytes_ + size > limits.max_bytes) {
    if (!evictOldestLow()) break;  // cannot happen after the check above
    ++evicted;
  }
  ++count_;
  bytes_ += size;
  frames_.push_back(std::move(frame));
  return {Result::kQueued, evicted};
}

bool OutboundQueue::evictOldestLow() {
  while (!low_seqs_.empty()) {
    const uint64_t seq = low_seqs_.front();
    low_seqs_.pop_front();
    FramePtr& frame = *slot(seq);
    if (!frame) continue;
    forgetLow(*frame, seq);
    low_bytes_ -= frame->size();
    bytes_ -= frame->size();
    --count_;
    frame.reset();
    return true;
  }
  return false;
}

void OutboundQueue::forgetLow(const OutFrame& frame, uint64_t seq) {
  auto it = low_by_key_.find(frame.coalescingKey());
  if (it != low_by_key_.end() && it->second == seq) low_by_key_.erase(it);
}

void OutboundQueue::skipHoles() {
  while (!frames_.empty() && !frames_.front()) {
    frames_.pop_front();
    ++popped_;
  }
}

const OutFrame* OutboundQueue::front() {
  skipHoles();
  return frames_.empty() ? nullptr : frames_.front().get();
}

FramePtr OutboundQueue::pop() {
  skipHoles();
  if (frames_.empty()) return nullptr;
  FramePtr frame = std::move(frames_.front());
  frames_.pop_front();
  const uint64_t seq = popped_++;
  if (frame->lowPriority()) {
    // Low frames leave in order, so this one heads the FIFO of queued low frames.
    if (!low_seqs_.empty() && low_seqs_.front() == seq) low_seqs_.pop_front();
    forgetLow(*frame, seq);
    low_bytes_ -= frame->size();
  }
  --count_;
  bytes_ -= frame->size();
  return frame;
}

void OutboundQueue::clear() {
  frames_.clear();
  low_by_key_.clear();
  low_seqs_.clear();
  popped_ = 0;
  count_ = 0;
  bytes_ = 0;
  low_bytes_ = 0;
}

}  // namespace wsfleet

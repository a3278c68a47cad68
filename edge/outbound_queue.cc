#include "edge/outbound_queue.h"

#include <cassert>
#include <utility>

namespace wsfleet {

OutboundQueue::Outcome OutboundQueue::offer(FramePtr frame, const OutboundLimits& limits) {
  const size_t size = frame->size();
  if (frame->lowPriority()) {
    if (behind(limits)) {
      if (!low_) return {Result::kDroppedLow, 0};
      auto it = low_->by_key.find(frame->coalescingKey());
      if (it == low_->by_key.end()) return {Result::kDroppedLow, 0};
      FramePtr& old = *slot(it->second);
      const size_t old_size = old->size();
      // A larger replacement must not carry the queue past its byte cap.
      if (bytes_ - old_size + size > limits.max_bytes) return {Result::kDroppedLow, 0};
      bytes_ = bytes_ - old_size + size;
      low_->bytes = low_->bytes - old_size + size;
      // The map's key is a view into the queued frame: re-point it before the old one goes.
      auto node = low_->by_key.extract(it);
      old = std::move(frame);
      node.key() = old->coalescingKey();
      low_->by_key.insert(std::move(node));
      return {Result::kCoalesced, 0};
    }
    // A low frame never costs the connection its queue: without room it is dropped.
    if (count_ + 1 > limits.max_messages || bytes_ + size > limits.max_bytes) {
      return {Result::kDroppedLow, 0};
    }
    const uint64_t seq = popped_ + frames_.size();
    if (!low_) low_ = std::make_unique<LowFrames>();
    // The newest queued frame of a key is the one a later frame replaces: replacing an
    // older one would deliver the newest state before a stale one.
    low_->by_key.erase(frame->coalescingKey());
    low_->by_key.emplace(frame->coalescingKey(), seq);
    low_->seqs.push_back(seq);
    low_->bytes += size;
    ++count_;
    bytes_ += size;
    frames_.push_back(std::move(frame));
    return {Result::kQueued, 0};
  }
  // Normal frame: when evicting every low frame would not make room, evict none.
  if (count_ - lowCount() + 1 > limits.max_messages ||
      bytes_ - lowBytes() + size > limits.max_bytes) {
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
  while (low_ && !low_->seqs.empty()) {
    const uint64_t seq = low_->seqs.front();
    low_->seqs.pop_front();
    FramePtr& frame = *slot(seq);
    if (!frame) continue;
    forgetLow(*frame, seq);
    low_->bytes -= frame->size();
    bytes_ -= frame->size();
    --count_;
    frame.reset();
    return true;
  }
  return false;
}

void OutboundQueue::forgetLow(const OutFrame& frame, uint64_t seq) {
  auto it = low_->by_key.find(frame.coalescingKey());
  if (it != low_->by_key.end() && it->second == seq) low_->by_key.erase(it);
}

void OutboundQueue::releaseIdle() {
  // With nothing queued, no low frame is left to look up or evict.
  if (count_ == 0) low_.reset();
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
    assert(low_);  // created by the frame's offer, freed only when nothing is queued
    // Low frames leave in order, so this one heads the FIFO of queued low frames.
    if (!low_->seqs.empty() && low_->seqs.front() == seq) low_->seqs.pop_front();
    forgetLow(*frame, seq);
    low_->bytes -= frame->size();
  }
  --count_;
  bytes_ -= frame->size();
  return frame;
}

void OutboundQueue::clear() {
  frames_.clear();
  low_.reset();
  popped_ = 0;
  count_ = 0;
  bytes_ = 0;
}

}  // namespace wsfleet

#pragma once
// One connection's outbound queue with two priorities (docs/ARCHITECTURE.md,
// "Backpressure").
//
// Normal frames are queued in order and never dropped for low ones. Low-priority frames
// (namespaces with priority = "low", join/leave events) carry a coalescing key in their
// OutFrame. While the connection is over its high-water mark, a new low frame replaces the
// queued low frame with the same key (the client gets the latest state) or, without one,
// is dropped; at the hard cap, queued low frames are evicted to make room for a normal
// frame before the connection counts as a slow consumer.
//
// Design: one deque keeps the exact order the frames were queued in, so a connection that
// is not behind sees the same stream as without priorities, and writes stay a walk from
// the front (the coalescer takes several frames per send). Each queued frame has a
// sequence number (its position is seq - popped_), which makes both look-ups O(1): a map
// from coalescing key to the seq of the queued low frame with that key (the replacement
// goes into the older frame's slot: the newest state is delivered as early as the
// oldest unsent one would have been), and a FIFO of the seqs of queued low frames (the
// oldest is evicted first at the cap). An evicted slot becomes an empty FramePtr skipped
// by the writer: erasing from the middle of a deque would be O(n). Evictions happen
// only while the queue is at its cap, where new low frames are never appended, so such
// holes stay bounded by the number of low frames that were queued. The FramePtr itself
// stays shared: the key lives in the frame, encoded once for every recipient.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "edge/out_frame.h"
#include "edge/ring_queue.h"

namespace wsfleet {

struct OutboundLimits {
  size_t max_bytes = 0;  // hard caps: a normal frame over them makes a slow consumer
  size_t max_messages = 0;
  size_t high_water_bytes = 0;  // over either mark the connection is "behind"
  size_t high_water_messages = 0;
};

class OutboundQueue {
 public:
  enum class Result {
    kQueued,      // appended
    kCoalesced,   // a low frame replaced the queued one with its key
    kDroppedLow,  // a low frame was not queued (behind, or no room)
    kOverCap,     // a normal frame does not fit even without low frames: slow consumer
  };
  struct Outcome {
    Result result = Result::kQueued;
    size_t low_evicted = 0;  // queued low frames dropped to make room
  };

  OutboundQueue() = default;
  OutboundQueue(const OutboundQueue&) = delete;
  OutboundQueue& operator=(const OutboundQueue&) = delete;

  // Queues `frame` under `limits` (see the file comment). On kOverCap nothing changed
  // except that low frames may have been evicted (counted in low_evicted).
  Outcome offer(FramePtr frame, const OutboundLimits& limits);

  // Over the high-water mark (bytes or messages).
  bool behind(const OutboundLimits& limits) const {
    return bytes_ > limits.high_water_bytes || count_ > limits.high_water_messages;
  }

  // The next frame to write, or nullptr when empty; front() does not remove it.
  const OutFrame* front();
  FramePtr pop();
  void clear();

  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }  // frames queued (holes left by evictions excluded)
  size_t bytes() const { return bytes_; }
  size_t lowCount() const { return low_ ? low_->seqs.size() : 0; }
  // Frees the low-frame bookkeeping when nothing is queued. Called from the keepalive, not
  // whenever the queue empties: a stream of low frames would allocate it for every frame.
  void releaseIdle();

 private:
  FramePtr* slot(uint64_t seq) { return &frames_[static_cast<size_t>(seq - popped_)]; }
  void skipHoles();
  // Removes the oldest queued low frame; false when there is none.
  bool evictOldestLow();
  void forgetLow(const OutFrame& frame, uint64_t seq);

  RingQueue<FramePtr> frames_;  // empty FramePtr = evicted
  uint64_t popped_ = 0;         // seq of frames_.front()
  size_t count_ = 0;
  size_t bytes_ = 0;
  // Bookkeeping of the queued low frames, allocated by the first one and freed by
  // releaseIdle(): most connections never hold one, and an empty hash map alone is 56 bytes
  // on every connection.
  struct LowFrames {
    size_t bytes = 0;  // of the queued low frames
    // Coalescing key (a view into the queued frame's own key) -> seq of that frame.
    std::unordered_map<std::string_view, uint64_t> by_key;
    RingQueue<uint64_t> seqs;  // seqs of the queued low frames, oldest first
  };
  size_t lowBytes() const { return low_ ? low_->bytes : 0; }
  std::unique_ptr<LowFrames> low_;
};

}  // namespace wsfleet

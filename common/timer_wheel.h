#pragma once
// Hashed timing wheel: O(1) schedule and cancel, advance() costs O(expired + slots passed).
// Replaces per-connection libwebsockets timers, whose sorted-list insertion makes
// connection set-up O(n) (docs/ARCHITECTURE.md, "Timers"). Single-threaded.
//
// Nodes are intrusive: embed a TimerNode in the object that owns the timer. A node must be
// cancelled (or have fired) before its owner is destroyed; ~TimerNode asserts that.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace wsfleet {

struct TimerNode {
  TimerNode() = default;
  TimerNode(const TimerNode&) = delete;
  TimerNode& operator=(const TimerNode&) = delete;
  ~TimerNode();

  bool scheduled() const { return prev != nullptr; }
  uint64_t deadline_ms = 0;
  int tag = 0;             // owner-defined: which of the owner's timers this is
  void* owner = nullptr;   // owner-defined

  // Wheel-private links.
  TimerNode* prev = nullptr;
  TimerNode* next = nullptr;
};

class TimerWheel {
 public:
  // tick_ms: resolution (timers fire at most one tick late); slots: wheel size (a power
  // of two is not required). Deadlines beyond one revolution are kept in their slot and
  // skipped until due.
  TimerWheel(uint64_t tick_ms, size_t slots, uint64_t now_ms);
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // (Re)schedules `node` at `deadline_ms` (a past deadline fires on the next advance).
  void schedule(TimerNode* node, uint64_t deadline_ms);
  void cancel(TimerNode* node);  // no-op when not scheduled

  // Fires every node whose deadline is <= now_ms, in no particular order. The node is
  // unlinked before `fire(TimerNode*)` runs, so the callback may reschedule it, cancel
  // others or destroy owners of other nodes (cancelling them first).
  template <class F>
  void advance(uint64_t now_ms, F&& fire);

  size_t size() const { return size_; }
  uint64_t tickMs() const { return tick_ms_; }

 private:
  size_t slotFor(uint64_t deadline_ms) const;
  void link(size_t slot, TimerNode* node);
  static void unlink(TimerNode* node);
  TimerNode* popDue(size_t slot, uint64_t now_ms);

  uint64_t tick_ms_;
  std::vector<TimerNode> heads_;  // circular sentinel per slot
  uint64_t current_tick_;          // last tick processed
  size_t size_ = 0;
};

template <class F>
void TimerWheel::advance(uint64_t now_ms, F&& fire) {
  const uint64_t target_tick = now_ms / tick_ms_;
  // Visit each slot between the last processed tick and now at most once per revolution.
  uint64_t steps = target_tick >= current_tick_ ? target_tick - current_tick_ : 0;
  if (steps > heads_.size()) steps = heads_.size();
  for (uint64_t i = 0; i <= steps; ++i) {
    const size_t slot = (current_tick_ + i) % heads_.size();
    while (TimerNode* node = popDue(slot, now_ms)) fire(node);
  }
  if (target_tick > current_tick_) current_tick_ = target_tick;
}

}  // namespace wsfleet

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
  int tag = 0;            // owner-defined: which of the owner's timers this is
  void* owner = nullptr;  // owner-defined

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
  // A node (re)scheduled from inside `fire` is never fired by the same call, even when
  // already due: it fires on the next advance(). So a callback re-arming at `now` cannot
  // loop forever.
  template <class F>
  void advance(uint64_t now_ms, F&& fire);

  size_t size() const { return size_; }
  uint64_t tickMs() const { return tick_ms_; }

 private:
  // Restores the wheel's resting state when advance() ends, even if `fire` throws:
  // clears the walk cursor and links the nodes scheduled during the call.
  class AdvanceScope {
   public:
    explicit AdvanceScope(TimerWheel* wheel) : wheel_(wheel) { wheel_->beginAdvance(); }
    ~AdvanceScope() { wheel_->endAdvance(); }
    AdvanceScope(const AdvanceScope&) = delete;
    AdvanceScope& operator=(const AdvanceScope&) = delete;

   private:
    TimerWheel* wheel_;
  };

  size_t slotFor(uint64_t deadline_ms) const;
  void link(TimerNode* head, TimerNode* node);
  // Unlinks `node`, first stepping the walk cursor past it so a callback may cancel or
  // reschedule the node advance() would visit next.
  void detach(TimerNode* node);
  void beginAdvance();
  void endAdvance();

  uint64_t tick_ms_;
  std::vector<TimerNode> heads_;  // circular sentinel per slot
  // Nodes (re)scheduled from inside a fire callback wait here until advance() returns:
  // that is what keeps a callback re-arming a due timer from being fired again by the
  // same call (it fires on the next advance instead) and keeps the walked slot stable.
  TimerNode deferred_;
  TimerNode* cursor_ = nullptr;  // next node of the slot being walked, or its sentinel
  uint64_t current_tick_;        // last tick processed; its slot is walked again next time
  size_t size_ = 0;
  bool advancing_ = false;
};

template <class F>
void TimerWheel::advance(uint64_t now_ms, F&& fire) {
  const uint64_t target_tick = now_ms / tick_ms_;
  // Every pending node sits in the slot of max(its deadline tick, the tick current when
  // it was linked), so all due nodes lie in the slots of [current_tick_, target_tick].
  // A jump of a revolution or more therefore needs each slot once, not one visit per tick.
  const uint64_t span = target_tick > current_tick_ ? target_tick - current_tick_ : 0;
  const size_t visits = span >= heads_.size() ? heads_.size() : static_cast<size_t>(span) + 1;
  AdvanceScope scope(this);
  for (size_t i = 0; i < visits; ++i) {
    TimerNode* head = &heads_[(current_tick_ + i) % heads_.size()];
    cursor_ = head->next;
    while (cursor_ != head) {
      TimerNode* node = cursor_;
      cursor_ = node->next;
      // Later revolutions share the slot; they are skipped until due.
      if (node->deadline_ms > now_ms) continue;
      detach(node);
      --size_;
      fire(node);
    }
  }
  if (target_tick > current_tick_) current_tick_ = target_tick;
}

}  // namespace wsfleet

#include "common/timer_wheel.h"

#include <cassert>

namespace wsfleet {

TimerNode::~TimerNode() {
  // An owner destroyed while its timer is linked would leave a dangling node in a slot.
  assert(!scheduled());
}

namespace {

void makeEmpty(TimerNode* head) {
  head->prev = head;
  head->next = head;
}

}  // namespace

TimerWheel::TimerWheel(uint64_t tick_ms, size_t slots, uint64_t now_ms)
    : tick_ms_(tick_ms), heads_(slots), current_tick_(0) {
  assert(tick_ms > 0);
  assert(slots > 0);
  current_tick_ = now_ms / tick_ms_;
  for (TimerNode& head : heads_) makeEmpty(&head);
  makeEmpty(&deferred_);
}

TimerWheel::~TimerWheel() {
  assert(!advancing_);
  // Pending nodes are released, not fired: their owners may outlive the wheel (shutdown
  // order) and must then see them as unscheduled. Sentinels are reset for ~TimerNode.
  auto release_all = [](TimerNode* head) {
    TimerNode* node = head->next;
    while (node != head) {
      TimerNode* next = node->next;
      node->prev = nullptr;
      node->next = nullptr;
      node = next;
    }
    head->prev = nullptr;
    head->next = nullptr;
  };
  for (TimerNode& head : heads_) release_all(&head);
  release_all(&deferred_);
}

size_t TimerWheel::slotFor(uint64_t deadline_ms) const {
  uint64_t tick = deadline_ms / tick_ms_;
  // A past deadline goes to the current slot, which the next advance() always walks.
  if (tick < current_tick_) tick = current_tick_;
  return static_cast<size_t>(tick % heads_.size());
}

void TimerWheel::link(TimerNode* head, TimerNode* node) {
  node->next = head;
  node->prev = head->prev;
  head->prev->next = node;
  head->prev = node;
}

void TimerWheel::detach(TimerNode* node) {
  if (cursor_ == node) cursor_ = node->next;
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->prev = nullptr;
  node->next = nullptr;
}

void TimerWheel::schedule(TimerNode* node, uint64_t deadline_ms) {
  assert(node != nullptr);
  if (node->scheduled()) {
    detach(node);
  } else {
    ++size_;
  }
  node->deadline_ms = deadline_ms;
  link(advancing_ ? &deferred_ : &heads_[slotFor(deadline_ms)], node);
}

void TimerWheel::cancel(TimerNode* node) {
  if (node == nullptr || !node->scheduled()) return;
  detach(node);
  --size_;
}

void TimerWheel::beginAdvance() {
  // A nested advance() from a callback would walk slots under the outer walk's cursor.
  assert(!advancing_);
  advancing_ = true;
}

void TimerWheel::endAdvance() {
  cursor_ = nullptr;
  advancing_ = false;
  while (deferred_.next != &deferred_) {
    TimerNode* node = deferred_.next;
    detach(node);
    link(&heads_[slotFor(node->deadline_ms)], node);
  }
}

}  // namespace wsfleet

#pragma once
// A FIFO for the per-connection queues: one element lives inline, more go to a
// power-of-two ring on the heap, which is given back whenever the queue empties.
// std::deque allocates about 600 bytes when it is constructed, and an edge holds one or two
// queues per connection, nearly always empty or holding one frame. The inline slot is what
// a paced stream uses (a frame queued, then written, per message), so it allocates nothing
// per message; a burst grows the ring and the ring goes once the burst is written, so an
// idle connection holds no queue memory.

#include <cstddef>
#include <memory>
#include <utility>

namespace wsfleet {

template <class T>
class RingQueue {
 public:
  RingQueue() = default;
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // Slots on the heap (0 while the inline slot is enough).
  size_t capacity() const { return heap_ ? capacity_ : 0; }

  T& front() { return data()[head_]; }
  const T& front() const { return data()[head_]; }
  // The i-th element from the front.
  T& operator[](size_t i) { return data()[(head_ + i) & (capacity_ - 1)]; }

  void push_back(T value) {
    if (size_ == capacity_) grow();
    data()[(head_ + size_) & (capacity_ - 1)] = std::move(value);
    ++size_;
  }

  void pop_front() {
    data()[head_] = T();  // release what it holds (a shared frame) now
    head_ = (head_ + 1) & (capacity_ - 1);
    if (--size_ == 0) release();
  }

  void clear() {
    while (!empty()) pop_front();
    release();
  }

 private:
  T* data() { return heap_ ? heap_.get() : &inline_; }
  const T* data() const { return heap_ ? heap_.get() : &inline_; }

  void grow() {
    const size_t next = capacity_ * 2 < 4 ? 4 : capacity_ * 2;
    auto fresh = std::make_unique<T[]>(next);
    for (size_t i = 0; i < size_; ++i) fresh[i] = std::move((*this)[i]);
    heap_ = std::move(fresh);
    capacity_ = next;
    head_ = 0;
  }
  void release() {
    heap_.reset();
    capacity_ = 1;
    head_ = 0;
  }

  T inline_{};
  std::unique_ptr<T[]> heap_;
  size_t capacity_ = 1;  // a power of two: 1 (the inline slot) or the heap ring's size
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace wsfleet

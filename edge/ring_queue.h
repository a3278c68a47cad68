#pragma once
// A FIFO on a power-of-two ring that allocates nothing until the first push and gives its
// memory back when it empties while large. std::deque allocates about 600 bytes when it is
// constructed; an edge holds one or two queues per connection, nearly always empty.

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
  size_t capacity() const { return capacity_; }

  T& front() { return slots_[head_]; }
  const T& front() const { return slots_[head_]; }
  // The i-th element from the front.
  T& operator[](size_t i) { return slots_[(head_ + i) & (capacity_ - 1)]; }

  void push_back(T value) {
    if (size_ == capacity_) grow();
    slots_[(head_ + size_) & (capacity_ - 1)] = std::move(value);
    ++size_;
  }

  void pop_front() {
    slots_[head_] = T();  // release what it holds (a shared frame) now
    head_ = (head_ + 1) & (capacity_ - 1);
    if (--size_ == 0) {
      head_ = 0;
      // A burst grew it: do not keep the memory on an idle connection.
      if (capacity_ > kKeptCapacity) release();
    }
  }

  void clear() {
    while (!empty()) pop_front();
    release();
  }

 private:
  static constexpr size_t kKeptCapacity = 8;

  void grow() {
    const size_t next = capacity_ == 0 ? 4 : capacity_ * 2;
    auto fresh = std::make_unique<T[]>(next);
    for (size_t i = 0; i < size_; ++i) fresh[i] = std::move((*this)[i]);
    slots_ = std::move(fresh);
    capacity_ = next;
    head_ = 0;
  }
  void release() {
    slots_.reset();
    capacity_ = 0;
    head_ = 0;
  }

  std::unique_ptr<T[]> slots_;
  size_t capacity_ = 0;  // 0 or a power of two
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace wsfleet

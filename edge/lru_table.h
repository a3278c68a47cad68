#pragma once
// A string-keyed table with a hard cap on its size: when full, adding a key evicts the
// least recently used entry. The limiter tables use it so that memory stays bounded however
// many users, channels or addresses a peer can make up; idle entries are also swept early.

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace wsfleet {

template <class V>
class LruTable {
 public:
  explicit LruTable(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}
  LruTable(const LruTable&) = delete;
  LruTable& operator=(const LruTable&) = delete;

  // The entry for `key`, now the most recently used, or nullptr.
  V* find(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return &it->second->value;
  }

  // The entry for `key` without making it more recent, or nullptr.
  V* peek(std::string_view key) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &it->second->value;
  }

  // The entry for `key`, created by `make()` when absent. Creating into a full table first
  // evicts the least recently used entry, which `on_evict(value)` is shown.
  template <class Make, class OnEvict>
  V& obtain(std::string_view key, Make&& make, OnEvict&& on_evict) {
    if (V* found = find(key)) return *found;
    if (order_.size() >= capacity_) {
      on_evict(order_.back().value);
      eraseNode(std::prev(order_.end()));
      ++evictions_;
    }
    order_.push_front(Node{std::string(key), make()});
    index_.emplace(order_.front().key, order_.begin());
    return order_.front().value;
  }

  // Drops entries for which `idle(value)` holds, starting from the least recently used and
  // stopping at the first busy one or after `budget` entries: the sweep costs little and
  // looks where idle entries are. Returns how many were dropped.
  template <class Idle>
  size_t sweep(Idle&& idle, size_t budget) {
    size_t dropped = 0;
    while (!order_.empty() && budget-- > 0) {
      auto last = std::prev(order_.end());
      if (!idle(last->value)) break;
      eraseNode(last);
      ++dropped;
    }
    return dropped;
  }

  size_t size() const { return order_.size(); }
  size_t capacity() const { return capacity_; }
  uint64_t evictions() const { return evictions_; }

 private:
  struct Node {
    std::string key;
    V value;
  };
  using Iter = typename std::list<Node>::iterator;

  void eraseNode(Iter it) {
    index_.erase(std::string_view(it->key));
    order_.erase(it);
  }

  size_t capacity_;
  std::list<Node> order_;  // most recently used first
  // Keys view the nodes' own strings: list nodes never move.
  std::unordered_map<std::string_view, Iter> index_;
  uint64_t evictions_ = 0;
};

}  // namespace wsfleet

#pragma once
// The channels one connection holds, as flat vectors. A connection holds a handful of
// channels (never more than websocket.max_channels_per_connection), and an edge holds
// hundreds of thousands of connections: an empty std::unordered_map is 56 bytes and its
// first entry another ~170 (bucket array and node), which was the largest part of an
// idle subscriber's memory after libwebsockets' own. A linear search over a few short
// strings also costs less than hashing one; with the cap raised to thousands, a subscribe
// costs a scan of what the connection holds (commands are rate-limited).

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsfleet {

// Channel name -> the connection's index in the hub's subscriber vector of that channel.
class ChannelSlots {
 public:
  using Entry = std::pair<std::string, size_t>;
  using iterator = std::vector<Entry>::iterator;
  using const_iterator = std::vector<Entry>::const_iterator;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  iterator begin() { return entries_.begin(); }
  iterator end() { return entries_.end(); }
  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }

  // From the back: the newest subscriptions, and the order unsubscribeAll leaves in.
  iterator find(std::string_view name) {
    for (auto it = entries_.end(); it != entries_.begin();) {
      --it;
      if (it->first == name) return it;
    }
    return entries_.end();
  }
  const_iterator find(std::string_view name) const {
    return const_cast<ChannelSlots*>(this)->find(name);
  }
  size_t count(std::string_view name) const { return find(name) == end() ? 0 : 1; }

  // Adds a channel the caller knows is not there yet.
  void add(const std::string& name, size_t index) { entries_.emplace_back(name, index); }
  // Adds the channel, or updates its index when already there.
  void set(const std::string& name, size_t index) {
    auto it = find(name);
    if (it != end()) {
      it->second = index;
      return;
    }
    entries_.emplace_back(name, index);
  }
  // Order is not kept: the last entry takes the erased one's place. Invalidates iterators.
  void erase(iterator it) {
    if (it != entries_.end() - 1) *it = std::move(entries_.back());
    entries_.pop_back();
    if (entries_.empty()) entries_.shrink_to_fit();
  }

 private:
  std::vector<Entry> entries_;
};

// Channel names without a value: the durable subscribes still waiting for the region.
class ChannelSet {
 public:
  size_t size() const { return names_.size(); }
  size_t count(std::string_view name) const {
    for (const std::string& n : names_) {
      if (n == name) return 1;
    }
    return 0;
  }
  void insert(const std::string& name) {
    if (count(name) == 0) names_.push_back(name);
  }
  // Returns how many were erased (0 or 1), like std::unordered_set::erase.
  size_t erase(std::string_view name) {
    for (auto it = names_.begin(); it != names_.end(); ++it) {
      if (*it != name) continue;
      if (it != names_.end() - 1) *it = std::move(names_.back());
      names_.pop_back();
      if (names_.empty()) names_.shrink_to_fit();
      return 1;
    }
    return 0;
  }

 private:
  std::vector<std::string> names_;
};

}  // namespace wsfleet

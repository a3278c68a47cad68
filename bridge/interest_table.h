#pragma once
// Who wants which channel, as a bridge sees it. Pure bookkeeping, no I/O.
//
// LocalInterest: the channels its region's edge workers have subscribers for, whose
// owner is another region. Each worker (a "source") announces deltas and, periodically,
// its whole set with a time to live; a source that stops announcing is forgotten. A
// channel leaves the set only `linger` after its last source dropped it (hysteresis:
// a subscriber that reconnects at once does not cost a withdraw and a new announce).
//
// RemoteInterest: on the owner side, the other regions interested in each channel this
// region owns, each with its own time to live, refreshed by that region's snapshots.
//
// Channels are "<tenant token>.<channel token>" (channelTail), owners and regions are
// region names.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wsfleet {

class LocalInterest {
 public:
  using Key = std::pair<std::string, std::string>;  // (owner region, channel tail)

  explicit LocalInterest(int64_t linger_ms) : linger_ms_(linger_ms) {}

  // One announcement of `source`. A snapshot replaces everything the source held.
  void apply(const std::string& source, bool snapshot, const std::vector<Key>& add,
             const std::vector<Key>& del, int64_t expires_ms, int64_t now_ms);
  // The source said goodbye: all it held is dropped (and lingers).
  void forget(const std::string& source, int64_t now_ms);
  // Forgets sources past their expiry and ends lingers that ran out.
  void expire(int64_t now_ms);
  // Every source lives at least until `expires_ms` (when this bridge was the one that
  // could not hear them: see Bridge::onWake).
  void extendTo(int64_t expires_ms);

  // What changed for each owner since the last call: channels that entered the set and
  // channels that left it.
  struct Changes {
    std::map<std::string, std::vector<std::string>> added;    // owner -> tails
    std::map<std::string, std::vector<std::string>> removed;  // owner -> tails
    bool empty() const { return added.empty() && removed.empty(); }
  };
  Changes takeChanges();

  // The current set of `owner` (lingering channels included).
  std::vector<std::string> channelsOwnedBy(const std::string& owner) const;
  std::set<std::string> owners() const;
  bool has(const std::string& owner, const std::string& tail) const {
    return counts_.count({owner, tail}) != 0;
  }
  size_t size() const { return counts_.size(); }
  size_t sources() const { return sources_.size(); }

 private:
  void addKey(const Key& key);
  void dropKey(const Key& key, int64_t now_ms);

  struct Source {
    std::set<Key> keys;
    int64_t expires_ms = 0;
  };
  struct Entry {
    int count = 0;
    int64_t linger_until_ms = 0;  // count == 0: removed at this time
  };
  int64_t linger_ms_;
  std::unordered_map<std::string, Source> sources_;
  std::map<Key, Entry> counts_;
  std::set<Key> added_;
  std::set<Key> removed_;
};

class RemoteInterest {
 public:
  // One announcement of `region`. A snapshot replaces the region's whole set.
  void apply(const std::string& region, bool snapshot, const std::vector<std::string>& add,
             const std::vector<std::string>& del, int64_t expires_ms);
  void expire(int64_t now_ms);
  void extendTo(int64_t expires_ms);  // as LocalInterest::extendTo

  struct Change {
    std::string tail;
    std::string region;
  };
  struct Changes {
    std::vector<Change> added;
    std::vector<Change> removed;
  };
  Changes takeChanges();

  // Regions interested in `tail` (nullptr: none).
  const std::map<std::string, int64_t>* regionsOf(const std::string& tail) const;
  // Every (tail, region) pair, for resending after a link or election change.
  const std::unordered_map<std::string, std::map<std::string, int64_t>>& all() const {
    return by_tail_;
  }
  size_t size() const { return pairs_; }

 private:
  void add(const std::string& region, const std::string& tail, int64_t expires_ms);
  void remove(const std::string& region, const std::string& tail);

  std::unordered_map<std::string, std::map<std::string, int64_t>> by_tail_;
  std::unordered_map<std::string, std::set<std::string>> by_region_;
  size_t pairs_ = 0;
  Changes changes_;
};

}  // namespace wsfleet

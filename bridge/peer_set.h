#pragma once
// Bridges that are alive, as heard from their heartbeats, and the per-channel choice
// among them. Every bridge of a region hears the same heartbeats, so each computes the
// same choice and exactly one of them acts for a channel (forwards it, republishes it)
// without any coordination beyond the heartbeats. While views differ (a bridge just
// died or came), a channel may be served twice or not at all for up to down_after_ms:
// receivers drop repeated offsets, and a missed one is fetched from the owner's history
// (see docs/ARCHITECTURE.md, "Across regions").

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace wsfleet {

class PeerSet {
 public:
  // `self` is always alive; empty for a set of another region's bridges.
  explicit PeerSet(std::string self = {}) : self_(std::move(self)) {}

  // True when the instance was not alive before.
  bool heard(const std::string& instance, int64_t expires_ms);
  // The bridge said goodbye.
  bool forget(const std::string& instance);
  // Forgets instances past their expiry; true when any went.
  bool expire(int64_t now_ms);
  // Every instance lives at least until `expires_ms`.
  void extendTo(int64_t expires_ms) {
    for (auto& [name, expires] : alive_) expires = std::max(expires, expires_ms);
  }

  bool empty() const { return self_.empty() && alive_.empty(); }
  size_t size() const { return alive_.size() + (self_.empty() ? 0 : 1); }
  // The instance that serves `key`: the highest rendezvous hash of key and instance
  // name. Empty when none is alive.
  std::string choose(std::string_view key) const;
  bool isSelfChosen(std::string_view key) const { return !self_.empty() && choose(key) == self_; }
  std::vector<std::string> instances() const;

 private:
  std::string self_;
  std::map<std::string, int64_t> alive_;  // other instances -> expiry
};

}  // namespace wsfleet

#include "bridge/peer_set.h"

#include "regions/ownership.h"

namespace wsfleet {

bool PeerSet::heard(const std::string& instance, int64_t expires_ms) {
  if (instance == self_) return false;
  auto [it, inserted] = alive_.emplace(instance, expires_ms);
  if (!inserted) it->second = expires_ms;
  return inserted;
}

bool PeerSet::forget(const std::string& instance) {
  return alive_.erase(instance) != 0;
}

bool PeerSet::expire(int64_t now_ms) {
  bool changed = false;
  for (auto it = alive_.begin(); it != alive_.end();) {
    if (it->second <= now_ms) {
      it = alive_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  return changed;
}

std::string PeerSet::choose(std::string_view key) const {
  std::string best;
  uint64_t best_hash = 0;
  auto consider = [&](const std::string& name) {
    const uint64_t h = rendezvousHash(key, name);
    if (best.empty() || h > best_hash || (h == best_hash && name < best)) {
      best = name;
      best_hash = h;
    }
  };
  if (!self_.empty()) consider(self_);
  for (const auto& [name, expires] : alive_) consider(name);
  return best;
}

std::vector<std::string> PeerSet::instances() const {
  std::vector<std::string> out;
  if (!self_.empty()) out.push_back(self_);
  for (const auto& [name, expires] : alive_) out.push_back(name);
  return out;
}

}  // namespace wsfleet

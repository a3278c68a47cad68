#include "bridge/interest_table.h"

#include <algorithm>

namespace wsfleet {

// ---- LocalInterest ----

void LocalInterest::addKey(const Key& key) {
  Entry& entry = counts_[key];
  if (entry.count++ == 0) {
    if (entry.linger_until_ms != 0) {
      entry.linger_until_ms = 0;  // back before the linger ran out: no change seen outside
    } else if (removed_.erase(key) == 0) {
      added_.insert(key);
    }
  }
}

void LocalInterest::dropKey(const Key& key, int64_t now_ms) {
  auto it = counts_.find(key);
  if (it == counts_.end() || it->second.count == 0) return;
  if (--it->second.count == 0) {
    // Users ('@' tails) do not linger: a user gone is offline at once, or a direct message
    // meanwhile would be routed to where nobody holds the user instead of to the inbox.
    const bool user = !key.second.empty() && key.second.front() == '@';
    it->second.linger_until_ms = now_ms + (user ? 0 : std::max<int64_t>(linger_ms_, 0));
  }
}

void LocalInterest::apply(const std::string& source, bool snapshot, const std::vector<Key>& add,
                          const std::vector<Key>& del, int64_t expires_ms, int64_t now_ms) {
  Source& s = sources_[source];
  s.expires_ms = expires_ms;
  if (snapshot) {
    std::set<Key> next(add.begin(), add.end());
    for (const Key& key : next) {
      if (s.keys.count(key) == 0) addKey(key);
    }
    for (const Key& key : s.keys) {
      if (next.count(key) == 0) dropKey(key, now_ms);
    }
    s.keys = std::move(next);
    return;
  }
  for (const Key& key : add) {
    if (s.keys.insert(key).second) addKey(key);
  }
  for (const Key& key : del) {
    if (s.keys.erase(key) != 0) dropKey(key, now_ms);
  }
}

void LocalInterest::forget(const std::string& source, int64_t now_ms) {
  auto it = sources_.find(source);
  if (it == sources_.end()) return;
  for (const Key& key : it->second.keys) dropKey(key, now_ms);
  sources_.erase(it);
}

void LocalInterest::extendTo(int64_t expires_ms) {
  for (auto& [name, source] : sources_) source.expires_ms = std::max(source.expires_ms, expires_ms);
}

void LocalInterest::expire(int64_t now_ms) {
  std::vector<std::string> gone;
  for (const auto& [name, source] : sources_) {
    if (source.expires_ms <= now_ms) gone.push_back(name);
  }
  for (const std::string& name : gone) forget(name, now_ms);
  for (auto it = counts_.begin(); it != counts_.end();) {
    const Entry& entry = it->second;
    if (entry.count == 0 && entry.linger_until_ms <= now_ms) {
      if (added_.erase(it->first) == 0) removed_.insert(it->first);
      it = counts_.erase(it);
    } else {
      ++it;
    }
  }
}

LocalInterest::Changes LocalInterest::takeChanges() {
  Changes out;
  for (const Key& key : added_) out.added[key.first].push_back(key.second);
  for (const Key& key : removed_) out.removed[key.first].push_back(key.second);
  added_.clear();
  removed_.clear();
  return out;
}

std::vector<std::string> LocalInterest::channelsOwnedBy(const std::string& owner) const {
  std::vector<std::string> out;
  for (auto it = counts_.lower_bound({owner, ""}); it != counts_.end() && it->first.first == owner;
       ++it) {
    out.push_back(it->first.second);
  }
  return out;
}

std::set<std::string> LocalInterest::owners() const {
  std::set<std::string> out;
  for (const auto& [key, entry] : counts_) out.insert(key.first);
  return out;
}

// ---- RemoteInterest ----

void RemoteInterest::add(const std::string& region, const std::string& tail, int64_t expires_ms) {
  auto& regions = by_tail_[tail];
  auto [it, inserted] = regions.emplace(region, expires_ms);
  if (!inserted) {
    it->second = expires_ms;
    return;
  }
  by_region_[region].insert(tail);
  ++pairs_;
  changes_.added.push_back({tail, region});
}

void RemoteInterest::remove(const std::string& region, const std::string& tail) {
  auto it = by_tail_.find(tail);
  if (it == by_tail_.end() || it->second.erase(region) == 0) return;
  if (it->second.empty()) by_tail_.erase(it);
  auto r = by_region_.find(region);
  if (r != by_region_.end()) {
    r->second.erase(tail);
    if (r->second.empty()) by_region_.erase(r);
  }
  --pairs_;
  changes_.removed.push_back({tail, region});
}

void RemoteInterest::apply(const std::string& region, bool snapshot,
                           const std::vector<std::string>& add_tails,
                           const std::vector<std::string>& del_tails, int64_t expires_ms) {
  if (snapshot) {
    std::set<std::string> next(add_tails.begin(), add_tails.end());
    std::vector<std::string> stale;
    if (auto r = by_region_.find(region); r != by_region_.end()) {
      for (const std::string& tail : r->second) {
        if (next.count(tail) == 0) stale.push_back(tail);
      }
    }
    for (const std::string& tail : stale) remove(region, tail);
  }
  for (const std::string& tail : add_tails) add(region, tail, expires_ms);
  for (const std::string& tail : del_tails) remove(region, tail);
  if (snapshot) {
    // Everything the region holds is as fresh as this snapshot.
    if (auto r = by_region_.find(region); r != by_region_.end()) {
      for (const std::string& tail : r->second) by_tail_[tail][region] = expires_ms;
    }
  }
}

void RemoteInterest::extendTo(int64_t expires_ms) {
  for (auto& [tail, regions] : by_tail_) {
    for (auto& [region, expires] : regions) expires = std::max(expires, expires_ms);
  }
}

void RemoteInterest::expire(int64_t now_ms) {
  std::vector<Change> stale;
  for (const auto& [tail, regions] : by_tail_) {
    for (const auto& [region, expires] : regions) {
      if (expires <= now_ms) stale.push_back({tail, region});
    }
  }
  for (const Change& c : stale) remove(c.region, c.tail);
}

RemoteInterest::Changes RemoteInterest::takeChanges() {
  Changes out = std::move(changes_);
  changes_ = {};
  return out;
}

const std::map<std::string, int64_t>* RemoteInterest::regionsOf(const std::string& tail) const {
  auto it = by_tail_.find(tail);
  return it == by_tail_.end() ? nullptr : &it->second;
}

}  // namespace wsfleet

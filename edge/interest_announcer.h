#pragma once
// Tells the region's bridges which channels owned by other regions this worker has
// subscribers for (wsf.<region>.interest.<node>.<instance>; bridge/interest_table.h is
// the other side). Changes go out in one batch per tick; the whole set goes out every
// refresh period, which also keeps it alive (a worker that stops announcing, because it
// died, is forgotten by the bridges after three periods). Stopping says goodbye.
//
// Single-threaded: the worker's loop.

#include <cstdint>
#include <set>
#include <string>
#include <utility>

namespace wsfleet {

class Region;

class InterestAnnouncer {
 public:
  InterestAnnouncer(Region& region, std::string subject, std::string source, int64_t refresh_ms);

  void add(const std::string& owner, const std::string& tail);
  void remove(const std::string& owner, const std::string& tail);
  // Sends what changed since the last tick, and the whole set when it is due.
  void tick(int64_t now_mono_ms);
  void goodbye();

 private:
  using Key = std::pair<std::string, std::string>;  // (owner region, channel tail)
  void send(bool snapshot, const std::set<Key>& add, const std::set<Key>& del);

  Region& region_;
  std::string subject_;
  std::string source_;
  int64_t refresh_ms_;
  int64_t next_snapshot_ms_ = 0;
  std::set<Key> current_;
  std::set<Key> added_;
  std::set<Key> removed_;
};

}  // namespace wsfleet

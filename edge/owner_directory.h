#pragma once
// One worker's copy of the fleet's ownership bucket (common/owner_records.h): the
// channels an operator moved, with their owner and generation. Channels without a record
// are owned by the topology's choice at generation 0.
//
// The copy is loaded when the link comes up (every record, oldest first), follows every
// change live (a plain subscription on the bucket's subjects sees each compare-and-set put
// as it is published, refused or not: the stored record is then read), and is compared with the bucket's last revision every 10 s, or every
// second while the worker stores: a look that finds nothing new proves the copy complete
// as of when it was asked, which lets stores be confirmed without a marker read (see
// kOwnerViewFreshMs). A worker whose copy is behind at worst stores under an old
// generation, and the owner's generation marker refuses that store before anyone
// acknowledges it.
//
// The bucket lives in one region; a worker elsewhere reads it across the gateways (its
// subjects are the fleet's, not a region's). While it is unreachable the copy stays as
// it was.
//
// Single-threaded: the worker's loop.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>
#include <set>
#include <string>
#include <unordered_map>

#include "common/jetstream_api.h"
#include "common/nats_link.h"
#include "common/owner_records.h"

namespace wsfleet {

class Region;

class OwnerDirectory {
 public:
  // Called for every record that changed what this copy holds.
  using ChangedFn = std::function<void(const OwnerRecord& record)>;
  // Called when a region is drained, failing, failed or active again (common/owner_records.h,
  // RegionRecord).
  using RegionChangedFn = std::function<void(const RegionRecord& record)>;
  // `creates_bucket`: this worker is in the topology's first region, which holds the
  // bucket: it creates it (with `replicas`) when it does not exist yet, so that every edge
  // has a bucket to hold its lease against from the start.
  OwnerDirectory(Region& region, ChangedFn changed, RegionChangedFn region_changed,
                 bool creates_bucket, int replicas);

  // Subscribes to the bucket and loads it.
  void start();
  // A message on the bucket's subjects (true: it was one, consumed).
  bool onMessage(const NatsInbound& message);
  void onReconnected();
  void tick(int64_t now_mono_ms);
  // The channel's record, or nullptr (never moved, or not known here yet).
  const OwnerRecord* find(const std::string& tenant, const std::string& channel) const;
  // Reads the channel's record again (a store was refused by a newer generation).
  void refresh(const std::string& tenant, const std::string& channel);
  size_t size() const { return records_.size(); }
  // The regions an operator drained, or failed: they own nothing new.
  const std::set<std::string>& drained() const { return drained_; }
  // Failing or failed: no store made there is confirmed.
  bool failing(const std::string& region) const { return failing_.count(region) != 0; }
  // Failed (the lease has run out): its channels are moved without it (forced).
  bool failed(const std::string& region) const { return failed_.count(region) != 0; }
  // A look now (a store waits for a copy proven within the lease).
  void lookSoon(int64_t now_mono_ms) { next_look_ms_ = std::min(next_look_ms_, now_mono_ms); }
  // How long ago the copy was proven complete; negative when never.
  int64_t viewAgeMs(int64_t now_mono_ms) const {
    return complete_as_of_ms_ > 0 ? now_mono_ms - complete_as_of_ms_ : -1;
  }
  bool loaded() const { return loaded_; }
  // A store was made: the copy is kept fresh (looked at every second) for a while.
  void noteStore(int64_t now_mono_ms);

 private:
  void apply(OwnerRecord record);
  // A message of the bucket: a channel's record or a region's.
  void applyStored(const JsStoredMessage& stored);
  void refreshSubject(const std::string& subject);
  // Reads the revisions after loaded_seq_ up to `last`; once they are all applied, the
  // copy is complete as of `asked_ms` (when the look that started it was sent).
  void loadTo(uint64_t last, int64_t asked_ms);
  void walk(size_t walker);
  void walkTail();
  void onLoaded(uint64_t id, size_t walker, const NatsInbound* reply);
  void onTail(uint64_t id, const NatsInbound* reply);
  // A revision asked for during a load: the message, none (the end, or replaced), or an
  // error (the load is given up).
  Result<std::optional<JsStoredMessage>> revisionOf(const NatsInbound* reply);
  void applyRegion(const RegionRecord& region);
  void noteReplaced(const char* how);
  void look(int64_t now_mono_ms);
  void createBucket();

  Region& region_;
  const bool creates_bucket_;
  const int replicas_;
  bool creating_ = false;
  ChangedFn changed_;
  RegionChangedFn region_changed_;
  std::set<std::string> drained_;
  std::set<std::string> failing_;
  std::set<std::string> failed_;
  std::unordered_map<std::string, OwnerRecord> records_;  // by scopedKey(tenant, channel)
  uint64_t loaded_seq_ = 0;  // the bucket's revisions up to here are in the copy
  struct Load {
    uint64_t id = 0;
    uint64_t last = 0;
    int64_t asked_ms = 0;
    struct Walker {
      uint64_t lo = 0;
      uint64_t hi = 0;
      uint64_t known_to = 0;  // every revision of [lo, known_to] has arrived or is gone
    };
    std::vector<Walker> walkers;  // consecutive stretches of `stretch` revisions
    uint64_t stretch = 1;
    std::map<uint64_t, JsStoredMessage> arrived;  // not applied yet
    std::map<std::string, RegionRecord> regions;  // applied when the load is complete
  };
  std::optional<Load> load_;
  uint64_t load_id_ = 0;
  std::string bucket_created_;  // the bucket's creation time when first read
  bool replaced_ = false;       // the bucket was lost or made again since
  bool loading_ = false;
  bool looking_ = false;
  bool loaded_ = false;
  int64_t next_look_ms_ = 0;
  int64_t last_store_ms_ = -1;
  int64_t complete_as_of_ms_ = 0;  // 0: never
};

}  // namespace wsfleet

#pragma once
// Per-channel bounded history in LMDB, for resume in standalone mode.
//
// Each channel has a meta record {epoch, last offset, first retained offset} and a ring of
// stored frames keyed by (tenant, channel, offset big-endian). Offsets start at 1 and
// strictly increase. The epoch is a random id made when the channel's meta is created;
// history that is lost (store wiped, channel meta dropped) therefore shows up as a new
// epoch. Trimming by size or age is not loss of the epoch: a client whose position was
// trimmed gets recovered=false with the current epoch.
//
// The stored value is the complete encoded `message` frame, so replay sends stored bytes
// as they are. Idempotency keys are remembered per channel for `dedup_window_ms`; a
// publish repeating one gets the original offset back and is not stored again.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/lmdb.h"
#include "common/protocol.h"
#include "common/status.h"

namespace wsfleet {

struct HistoryLimits {
  uint64_t max_messages = 100;  // per channel
  int64_t max_age_ms = 300000;  // 0 = no age limit
  int64_t dedup_window_ms = 120000;
};

struct StoredMessage {
  uint64_t offset = 0;
  int64_t ts_ms = 0;
  std::string frame;
};

struct AppendResult {
  StreamPosition position;  // epoch and the message's offset
  std::string frame;        // the stored frame (the original one when duplicate)
  bool duplicate = false;
};

struct ReplayResult {
  bool recovered = false;
  StreamPosition top;                   // current epoch and last offset (0 when empty)
  std::vector<StoredMessage> messages;  // offsets > since.offset, ascending
};

class HistoryStore {
 public:
  static Result<std::unique_ptr<HistoryStore>> open(LmdbEnv& env);
  ~HistoryStore();

  // Current epoch and last offset; creates the channel's meta (fresh epoch) if absent.
  Result<StreamPosition> position(const std::string& tenant, const std::string& channel);

  // Stores one message in its own write transaction (committed before returning, so the
  // caller may acknowledge). make_frame(epoch, offset) builds the frame to store. Trims to
  // the limits in the same transaction. Map full: Code::kUnavailable "lmdb_map_full",
  // nothing stored.
  using FrameBuilder = std::function<std::string(const std::string& epoch, uint64_t offset)>;
  Result<AppendResult> append(const std::string& tenant, const std::string& channel,
                              const std::string& idempotency_key, int64_t now_ms,
                              const HistoryLimits& limits, const FrameBuilder& make_frame);

  // Messages after `since`. recovered=true only when since.epoch is the current epoch,
  // since.offset <= last offset, and every offset after it is still retained (not trimmed
  // by size or by age at now_ms). Otherwise recovered=false and no messages; the client
  // starts from `top`. A future offset or a wrong epoch is recovered=false, never an error.
  Result<ReplayResult> replay(const std::string& tenant, const std::string& channel,
                              const StreamPosition& since, int64_t now_ms,
                              const HistoryLimits& limits);

  // Drops messages older than their channel's age limit and expired idempotency keys
  // (limits looked up per channel by the callback). Bounded work per call.
  using LimitsLookup =
      std::function<HistoryLimits(const std::string& tenant, const std::string& channel)>;
  Status trimExpired(int64_t now_ms, const LimitsLookup& limits, size_t max_channels);

 private:
  struct Impl;
  explicit HistoryStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wsfleet

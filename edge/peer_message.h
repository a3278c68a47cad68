#pragma once
// What one worker tells the host's other workers (over the host bus) or the region's
// other workers (over NATS): "deliver this frame to your local subscribers of a channel"
// or "... to your local connections of a user". Frames travel already encoded, so every
// worker sends the same bytes to its clients. Durable channel messages carry their
// (epoch, offset) so receivers deliver in offset order and fill gaps from history.
//
// kStored is a durable message on its way into the region's history stream: its offset
// does not exist yet (JetStream assigns it), so it carries the parts of the frame instead
// (`from`, `frame` = the data JSON, origin_ts_ms) and each receiver encodes the frame once
// it knows the offset.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsfleet {

struct PeerMessage {
  enum class Kind : uint8_t { kChannel = 1, kUser = 2, kStored = 3 };
  Kind kind = Kind::kChannel;
  std::string tenant;
  std::string target;  // the channel (kChannel) or the user (kUser)
  std::string epoch;   // durable channel messages only
  uint64_t offset = 0;  // 0: not sequenced (ordering "none", join/leave, direct)
  int64_t origin_ts_ms = 0;
  std::string frame;  // the encoded protocol frame, sent as is
  std::string coalescing_key;  // non-empty: low priority (edge/outbound_queue.h)
  std::string from;            // kStored: the publisher, stamped from its token
  // kStored: the channel's ownership generation the store was made under
  // (common/owner_records.h); readers deliver only their generation's messages.
  uint64_t generation = 0;
};

// Versioned binary encoding: magic byte, version, kind, then length-prefixed fields.
std::string encodePeerMessage(const PeerMessage& message);
// nullopt for anything malformed (wrong magic/version/kind, truncated, trailing bytes).
std::optional<PeerMessage> decodePeerMessage(std::string_view bytes);

}  // namespace wsfleet

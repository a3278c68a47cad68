#pragma once
// The unit of the outbound queues (edge/outbound_queue.h).

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace wsfleet {

// A frame encoded once and shared by every recipient: LWS_PRE bytes of headroom (where
// lws writes the WebSocket header in place) followed by the payload. A non-empty
// coalescing key makes it low priority: while a connection is behind, a newer frame with
// the same key replaces it, or it is dropped (edge/outbound_queue.h).
class OutFrame {
 public:
  OutFrame(std::string_view payload, size_t headroom, std::string coalescing_key = {});
  unsigned char* payload() const { return const_cast<unsigned char*>(data()) + headroom_; }
  size_t size() const { return bytes_.size() - headroom_; }
  std::string_view view() const { return {bytes_.data() + headroom_, size()}; }
  bool lowPriority() const { return !key_.empty(); }
  std::string_view coalescingKey() const { return key_; }

 private:
  const unsigned char* data() const {
    return reinterpret_cast<const unsigned char*>(bytes_.data());
  }
  std::string bytes_;
  size_t headroom_;
  std::string key_;
};
using FramePtr = std::shared_ptr<const OutFrame>;

}  // namespace wsfleet

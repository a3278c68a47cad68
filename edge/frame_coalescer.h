#pragma once
// Several queued frames in one write: a reader that is behind, or a burst of fan-out,
// leaves many small frames queued on a connection, and one send() for all of them costs a
// fraction of one send() each. The frames are framed here (server frames are unmasked, so
// the header is all there is) and handed to lws as raw bytes.

#include <cstddef>
#include <string>
#include <string_view>

#include "edge/outbound_queue.h"

namespace wsfleet {

// Appends one final, unmasked text frame (RFC 6455 5.2) carrying `payload`.
void appendTextFrame(std::string& out, std::string_view payload);

// Moves frames from the front of `queue` into `out` (which keeps its first `headroom`
// bytes) while the total stays within `max_bytes`; always takes at least one frame.
// Returns the number of frames.
size_t coalesceFrames(OutboundQueue& queue, std::string& out, size_t headroom, size_t max_bytes);

}  // namespace wsfleet

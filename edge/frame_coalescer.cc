#include "edge/frame_coalescer.h"

namespace wsfleet {

namespace {

size_t headerSize(size_t payload) { return payload < 126 ? 2 : payload < 65536 ? 4 : 10; }

}  // namespace

void appendTextFrame(std::string& out, std::string_view payload) {
  const size_t n = payload.size();
  out.push_back(static_cast<char>(0x81));  // FIN + text
  if (n < 126) {
    out.push_back(static_cast<char>(n));
  } else if (n < 65536) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      out.push_back(static_cast<char>((static_cast<uint64_t>(n) >> shift) & 0xff));
    }
  }
  out.append(payload);
}

size_t coalesceFrames(OutboundQueue& queue, std::string& out, size_t headroom, size_t max_bytes) {
  out.resize(headroom);
  size_t taken = 0;
  while (const OutFrame* frame = queue.front()) {
    const size_t framed = headerSize(frame->size()) + frame->size();
    if (taken > 0 && out.size() - headroom + framed > max_bytes) break;
    appendTextFrame(
        out, std::string_view(reinterpret_cast<const char*>(frame->payload()), frame->size()));
    queue.pop();
    ++taken;
  }
  return taken;
}

}  // namespace wsfleet

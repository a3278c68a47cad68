#include "edge/connection.h"

namespace wsfleet {

OutFrame::OutFrame(std::string_view payload, size_t headroom) : headroom_(headroom) {
  bytes_.reserve(headroom + payload.size());
  bytes_.append(headroom, '\0');
  bytes_.append(payload);
}

}  // namespace wsfleet

#include "edge/connection.h"

#include <utility>

namespace wsfleet {

OutFrame::OutFrame(std::string_view payload, size_t headroom, std::string coalescing_key)
    : headroom_(headroom), key_(std::move(coalescing_key)) {
  bytes_.reserve(headroom + payload.size());
  bytes_.append(headroom, '\0');
  bytes_.append(payload);
}

}  // namespace wsfleet

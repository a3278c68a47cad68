#include "edge/drain_schedule.h"

#include <algorithm>

namespace wsfleet {
namespace {

// floor(unit * span) for unit in [0, 1), never span itself (rounding of unit near 1).
uint64_t scale(double unit, uint64_t span) {
  if (span == 0) return 0;
  const double clamped = std::clamp(unit, 0.0, 1.0);
  const auto value = static_cast<uint64_t>(clamped * static_cast<double>(span));
  return std::min(value, span - 1);
}

// window * i / count without overflowing the product (r * i < count^2, and a process
// holds far fewer than 2^32 connections).
uint64_t slotStart(uint64_t i, uint64_t count, uint64_t window_ms) {
  const uint64_t q = window_ms / count;
  const uint64_t r = window_ms % count;
  return q * i + r * i / count;
}

}  // namespace

uint64_t drainHintOffsetMs(size_t index, size_t count, uint64_t window_ms, double unit) {
  if (count == 0 || window_ms == 0) return 0;
  index = std::min(index, count - 1);
  return slotStart(index, count, window_ms) +
         scale(unit, slotStart(index + 1, count, window_ms) - slotStart(index, count, window_ms));
}

uint64_t lateDrainHintOffsetMs(uint64_t elapsed_ms, uint64_t window_ms, double unit) {
  if (elapsed_ms >= window_ms) return elapsed_ms;
  return elapsed_ms + scale(unit, window_ms - elapsed_ms);
}

uint64_t drainHintAfterMs(uint64_t window_ms, double unit) {
  const uint64_t cap = std::min(kMaxHintAfterMs, window_ms / 10);
  return scale(unit, cap + 1);
}

}  // namespace wsfleet

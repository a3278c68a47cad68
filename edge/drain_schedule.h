#pragma once
// When each client hears about a drain. Pure arithmetic, so the spread can be tested
// without sockets; the engine feeds it uniform random numbers.
//
// The server spreads the hints, not the clients: the connections present when the drain
// starts get their `reconnect` frame at a send time stratified over the drain window (the
// window is cut into one slot per connection, each connection gets a uniformly random
// point of its own slot), and the frame's after_ms is only a small jitter. Sending every
// hint at once with a random after_ms would leave the spread to the clients: one that
// ignores after_ms (or a client library that reconnects on any close) would make the
// thundering herd the drain is meant to avoid, and the new edges would see every
// reconnect arrive in the same second. Stratifying (rather than drawing each send time
// independently) keeps the reconnect rate flat: exactly one hint per window/N.

#include <cstddef>
#include <cstdint>

namespace wsfleet {

// Upper bound of the after_ms jitter: the spread comes from the send times; this only
// breaks up the hints that one loop pass sends together.
inline constexpr uint64_t kMaxHintAfterMs = 1000;

// Send time, in ms after the drain started, of the index-th of `count` connections
// (index < count): in [window*index/count, window*(index+1)/count), or 0 when the window
// is 0. `unit` is uniform in [0, 1).
uint64_t drainHintOffsetMs(size_t index, size_t count, uint64_t window_ms, double unit);

// Send time of a connection that opened after the drain started (its handshake was
// already accepted), `elapsed_ms` into the drain: uniform over what is left of the
// window, at once when nothing is left.
uint64_t lateDrainHintOffsetMs(uint64_t elapsed_ms, uint64_t window_ms, double unit);

// The frame's after_ms: uniform in [0, min(kMaxHintAfterMs, window_ms / 10)].
uint64_t drainHintAfterMs(uint64_t window_ms, double unit);

}  // namespace wsfleet

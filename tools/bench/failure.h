#pragma once
// Why a connection did not get to (or stay in) the ready state. Fixed set so worker
// reports stay plain data.

#include <cstddef>
#include <cstdint>

namespace wsfleet::bench {

enum class Fail : uint8_t {
  kConnectRefused,
  kConnectError,
  kSourceAddress,    // no free port on the source address (EADDRNOTAVAIL / EADDRINUSE)
  kTooManyFiles,     // EMFILE / ENFILE
  kHttp400,
  kHttp401,
  kHttp403,
  kHttp404,
  kHttp426,
  kHttp429,
  kHttp503,
  kHttpOther,
  kBadHandshake,     // not an HTTP response or over the head limit
  kClosedBeforeReady,
  kSessionRefused,   // CONNACK code, socket.io connect error, NATS -ERR
  kSubscribeRefused,
  kProtocolError,    // undecodable frame or packet
  kSetupTimeout,     // not ready within the setup timeout
  kClosedByServer,   // closed after it was ready, before the run ended
  kCount,
};

constexpr size_t kFailCount = static_cast<size_t>(Fail::kCount);

const char* failName(Fail f);
Fail failForHttpStatus(int status);

}  // namespace wsfleet::bench

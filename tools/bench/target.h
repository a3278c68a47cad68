#pragma once
// Where the bench connects and from where: it only ever talks to loopback addresses, so
// a typo cannot turn it into a load generator against another machine.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace wsfleet::bench {

struct TargetUrl {
  std::string host;   // as written (for the Host header)
  uint16_t port = 0;
  std::string path;   // path and query, "/" when empty
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
};

// Parses ws://host[:port][/path[?query]] and resolves host; refused (bad_request /
// not_loopback) unless every resolved address is in 127.0.0.0/8 or is ::1.
Result<TargetUrl> resolveTarget(const std::string& url);

// "127.0.0.11-127.0.0.14" or "127.0.0.11,127.0.0.12" (or a mix) -> dotted addresses, each
// checked to be in 127.0.0.0/8.
Result<std::vector<std::string>> expandSourceIps(const std::string& spec);

bool isLoopback(const sockaddr* sa);

}  // namespace wsfleet::bench

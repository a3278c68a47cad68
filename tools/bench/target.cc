#include "tools/bench/target.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <charconv>
#include <cstring>

namespace wsfleet::bench {
namespace {

Status bad(const char* reason, std::string msg) {
  return Status(Code::kBadRequest, reason, std::move(msg));
}

std::optional<uint32_t> parseV4(const std::string& s) {
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string formatV4(uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

}  // namespace

bool isLoopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
  }
  return false;
}

Result<TargetUrl> resolveTarget(const std::string& url) {
  constexpr std::string_view kScheme = "ws://";
  if (url.rfind(kScheme, 0) != 0) return bad("bad_url", "the URL must start with ws://");
  std::string rest = url.substr(kScheme.size());
  TargetUrl t;
  const size_t slash = rest.find_first_of("/?");
  std::string authority = rest.substr(0, slash);
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (t.path[0] == '?') t.path = "/" + t.path;
  std::string port_text = "80";
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return bad("bad_url", "unterminated [ in the URL host");
    t.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad("bad_url", "junk after ] in the URL");
      port_text = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.rfind(':');
    t.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (t.host.empty()) return bad("bad_url", "the URL has no host");
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return bad("bad_url", "bad port in the URL");
  }
  t.port = static_cast<uint16_t>(port);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(t.host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
    return bad("unresolvable", "cannot resolve the URL host " + t.host);
  }
  bool all_loopback = true;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (!isLoopback(ai->ai_addr)) all_loopback = false;
  }
  if (all_loopback) {
    std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
    t.addr_len = res->ai_addrlen;
  }
  freeaddrinfo(res);
  if (!all_loopback) {
    return bad("not_loopback", "refusing target " + t.host +
                                   ": the bench only drives servers on 127.0.0.0/8 or ::1");
  }
  if (t.addr.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&t.addr)->sin_port = htons(t.port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&t.addr)->sin6_port = htons(t.port);
  }
  return t;
}

Result<std::vector<std::string>> expandSourceIps(const std::string& spec) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    std::string item = spec.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) continue;
    const size_t dash = item.find('-');
    auto lo = parseV4(item.substr(0, dash));
    auto hi = dash == std::string::npos ? lo : parseV4(item.substr(dash + 1));
    if (!lo || !hi || *hi < *lo) return bad("bad_source_ips", "bad source address range " + item);
    if ((*lo >> 24) != 127 || (*hi >> 24) != 127) {
      return bad("not_loopback", "source addresses must be in 127.0.0.0/8: " + item);
    }
    if (*hi - *lo > 255) return bad("bad_source_ips", "source range too long: " + item);
    for (uint32_t a = *lo; a <= *hi; ++a) out.push_back(formatV4(a));
  }
  if (out.empty()) return bad("bad_source_ips", "no source address in " + spec);
  return out;
}

}  // namespace wsfleet::bench

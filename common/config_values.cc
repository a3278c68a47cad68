#include "common/config_values.h"

#include <arpa/inet.h>

#include <algorithm>

#include "common/config_toml.h"
#include "common/ip_network.h"

namespace wsfleet {

namespace {

constexpr size_t kMaxNameBytes = 64;

bool isIpv4Literal(const std::string& host) {
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool isIpv6Literal(const std::string& host) {
  in6_addr addr{};
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

bool isNodeNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool isTenantChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool isSegmentChar(char c) {
  return isNodeNameChar(c) || c == '@' || c == '=' || c == '+' || c == ',';
}

}  // namespace

std::string checkName(std::string_view text, bool (*ok)(char), std::string_view allowed) {
  if (text.empty() || text.size() > kMaxNameBytes || !std::all_of(text.begin(), text.end(), ok)) {
    return quoteForError(text) + " must be 1.." + std::to_string(kMaxNameBytes) +
           " characters of " + std::string(allowed);
  }
  return "";
}

std::string checkTenantName(std::string_view text) {
  return checkName(text, isTenantChar, "[a-z0-9_-]");
}

std::string checkNamespaceName(std::string_view text) {
  return checkName(text, isSegmentChar, "[A-Za-z0-9_-@=+,]");
}

std::string checkNodeName(std::string_view text) {
  return checkName(text, isNodeNameChar, "[A-Za-z0-9_-]");
}

bool isHostChar(char c) {
  return isNodeNameChar(c) || c == '.';
}

std::optional<uint16_t> parsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port < 1 || port > 65535) return std::nullopt;
  return static_cast<uint16_t>(port);
}

std::string checkAuthority(std::string_view authority, bool port_required) {
  if (authority.empty()) return "has no host";
  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return "has an unterminated IPv6 host";
    IpAddress address;
    const std::string_view host = authority.substr(1, close - 1);
    if (!parseIpAddress(host, &address) || host.find(':') == std::string_view::npos ||
        host.find('%') != std::string_view::npos) {
      return "has a bad IPv6 host";
    }
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return "has junk after the host";
      port_text = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (host.empty() || !std::all_of(host.begin(), host.end(), isHostChar) || host.front() == '.' ||
        host.front() == '-') {
      return "has a bad host name";
    }
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port && !parsePort(port_text)) return "has a bad port (1..65535)";
  if (!has_port && port_required) return "has no port";
  return "";
}

std::string checkNatsUrl(std::string_view text) {
  const std::string shape = quoteForError(text) + " is not nats://host:port or tls://host:port";
  std::string_view rest = text;
  if (rest.rfind("nats://", 0) == 0) {
    rest.remove_prefix(7);
  } else if (rest.rfind("tls://", 0) == 0) {
    rest.remove_prefix(6);
  } else {
    return shape + ": it must start with nats:// or tls://";
  }
  if (rest.find('@') != std::string_view::npos) {
    return "credentials do not belong in the URL (each program has its own keys for them)";
  }
  const std::string problem = checkAuthority(rest, true);
  return problem.empty() ? "" : shape + ": it " + problem;
}

// "host:port" or "[v6]:port"; the host is an IP literal or "localhost" so that binding
// never depends on DNS at start-up.
std::string parseListen(std::string_view text, ListenAddress& out) {
  const std::string shape = quoteForError(text) +
                            " is not a listen address (\"IP:port\", \"[IPv6]:port\" or "
                            "\"localhost:port\", port 1..65535)";
  std::string host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return shape;
    }
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
    if (!isIpv6Literal(host)) return quoteForError(host) + " is not an IPv6 address";
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return shape;
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return quoteForError(text) + ": write an IPv6 address in brackets, \"[::1]:8080\"";
    }
    if (host != "localhost" && !isIpv4Literal(host)) {
      return quoteForError(host) + " is not an IP address or \"localhost\"";
    }
  }
  const std::optional<uint16_t> port = parsePort(port_text);
  if (!port) return shape;
  out.host = std::move(host);
  out.port = *port;
  return "";
}

}  // namespace wsfleet

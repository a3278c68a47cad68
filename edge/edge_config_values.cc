#include "edge/edge_config_internal.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace wsfleet::edge_config_detail {
namespace {

constexpr size_t kMinApiKeyBytes = 16;
constexpr size_t kMaxNameBytes = 64;

bool allOf(std::string_view text, bool (*ok)(char)) {
  return std::all_of(text.begin(), text.end(), ok);
}

bool isTenantChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool isSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '@' || c == '=' || c == '+' || c == ',';
}

// Node and region names end up in NATS subjects and metric labels: no dots, no wildcards.
bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool isHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

std::string checkName(std::string_view text, bool (*ok)(char), std::string_view allowed) {
  if (text.empty() || text.size() > kMaxNameBytes || !allOf(text, ok)) {
    return quoteForError(text) + " must be 1.." + std::to_string(kMaxNameBytes) +
           " characters of " + std::string(allowed);
  }
  return "";
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

bool isIpv4(const std::string& host) {
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool isIpv6(const std::string& host) {
  in6_addr addr{};
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

// "host[:port]" of a URL authority; "" when fine.
std::string checkAuthority(std::string_view authority) {
  if (authority.empty()) return "has no host";
  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return "has an unterminated IPv6 host";
    if (!isIpv6(std::string(authority.substr(1, close - 1)))) return "has a bad IPv6 host";
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return "has junk after the host";
      port_text = rest.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (host.empty() || !allOf(host, isHostChar) || host.front() == '.' || host.front() == '-') {
      return "has a bad host name";
    }
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port && !parsePort(port_text)) return "has a bad port";
  return "";
}

// Splits "scheme://rest"; false when there is no well-formed scheme.
bool splitScheme(std::string_view url, std::string_view& scheme, std::string_view& rest) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  scheme = url.substr(0, sep);
  auto scheme_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '-' || c == '.';
  };
  if (!(std::isalpha(static_cast<unsigned char>(scheme.front())) != 0) ||
      !std::all_of(scheme.begin(), scheme.end(), scheme_char)) {
    return false;
  }
  rest = url.substr(sep + 3);
  return true;
}

}  // namespace

std::string checkTenantName(std::string_view text) {
  return checkName(text, isTenantChar, "[a-z0-9_-]");
}
std::string checkNamespaceName(std::string_view text) {
  return checkName(text, isSegmentChar, "[A-Za-z0-9_-@=+,]");
}
std::string checkNodeName(std::string_view text) {
  return checkName(text, isNameChar, "[A-Za-z0-9_-]");
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
    if (!isIpv6(host)) return quoteForError(host) + " is not an IPv6 address";
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return shape;
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return quoteForError(text) + ": write an IPv6 address in brackets, \"[::1]:8080\"";
    }
    if (host != "localhost" && !isIpv4(host)) {
      return quoteForError(host) + " is not an IP address or \"localhost\"";
    }
  }
  const std::optional<uint16_t> port = parsePort(port_text);
  if (!port) return shape;
  out.host = std::move(host);
  out.port = *port;
  return "";
}

// Browsers send the Origin header lower-case (RFC 6454 serialisation), so the allowlist is
// stored lower-case and compared byte for byte.
std::string parseOrigin(std::string_view text, std::string& out) {
  const std::string shape = quoteForError(text) + " is not an origin \"scheme://host[:port]\"";
  std::string_view scheme;
  std::string_view authority;
  if (!splitScheme(text, scheme, authority)) return shape;
  if (authority.find_first_of("/?#@ ") != std::string_view::npos) {
    return shape + " (no path, query, user or trailing slash)";
  }
  const std::string problem = checkAuthority(authority);
  if (!problem.empty()) return shape + ": it " + problem;
  out.assign(text);
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return "";
}

std::string checkPublicUrl(std::string_view text) {
  if (text.empty()) return "";  // derived by the server
  const std::string shape = quoteForError(text) + " is not a URL \"ws[s]://host[:port][/path]\"";
  std::string_view scheme;
  std::string_view rest;
  if (!splitScheme(text, scheme, rest) || (scheme != "ws" && scheme != "wss")) return shape;
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  if (authority.find_first_of("?#@ ") != std::string_view::npos) return shape;
  const std::string problem = checkAuthority(authority);
  if (!problem.empty()) return shape + ": it " + problem;
  return "";
}

std::string checkWsPath(std::string_view text) {
  const bool printable = std::all_of(text.begin(), text.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '?' && c != '#';
  });
  if (text.empty() || text.front() != '/' || text.size() > 256 || !printable) {
    return quoteForError(text) +
           " must start with '/' and be at most 256 printable characters "
           "without spaces, '?' or '#'";
  }
  return "";
}

std::string checkNonEmpty(std::string_view text) {
  return text.empty() ? "must not be empty" : "";
}

// An API key travels in "Authorization: Bearer KEY": visible ASCII only. The key itself is
// never quoted back.
std::string checkApiKey(std::string_view text, std::string& out) {
  if (text.size() < kMinApiKeyBytes) {
    return "an API key must be at least " + std::to_string(kMinApiKeyBytes) + " characters";
  }
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return "an API key must be printable ASCII without spaces";
  }
  out.assign(text);
  return "";
}

std::string parseNatsUrl(std::string_view text, std::string& out) {
  std::string_view rest;
  if (text.rfind("nats://", 0) == 0) {
    rest = text.substr(7);
  } else if (text.rfind("tls://", 0) == 0) {
    rest = text.substr(6);
  } else {
    return quoteForError(text) + " must start with nats:// or tls://";
  }
  if (rest.find('@') != std::string_view::npos) {
    return "credentials do not belong in the URL (use nats.token or nats.user)";
  }
  const std::string shape = quoteForError(text) + " is not nats://host:port or tls://host:port";
  std::string_view host;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return shape;
    }
    host = rest.substr(1, close - 1);
    port_text = rest.substr(close + 2);
    if (!isIpv6(std::string(host))) return quoteForError(host) + " is not an IPv6 address";
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return shape;
    host = rest.substr(0, colon);
    port_text = rest.substr(colon + 1);
    for (char c : host) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '-';
      if (!ok) return shape;
    }
  }
  if (!parsePort(port_text)) return shape;
  out = std::string(text);
  return "";
}

std::string checkOperatorToken(std::string_view text) {
  if (text.empty()) return "";
  std::string ignored;
  const std::string problem = checkApiKey(text, ignored);
  // The same rules as an API key (it travels the same way); say which option it is.
  return problem.empty() ? "" : "an operator token " + problem.substr(problem.find("must"));
}

std::string convertPattern(std::string_view text, ChannelPattern& out) {
  Result<ChannelPattern> pattern = ChannelPattern::parse(text);
  if (!pattern) return pattern.status().message();
  out = std::move(pattern).value();
  return "";
}

std::optional<std::string> decodeAnyBase64(std::string_view text) {
  std::string url(text);
  while (!url.empty() && url.back() == '=') url.pop_back();
  for (char& c : url) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return base64UrlDecode(url);
}

std::string redact(std::string message, const TokenKey& key) {
  for (const std::string* secret : {&key.secret, &key.private_key_pem}) {
    if (secret->size() < 4) continue;
    for (size_t at = message.find(*secret); at != std::string::npos;
         at = message.find(*secret, at)) {
      message.replace(at, secret->size(), "<redacted>");
    }
  }
  return message;
}

}  // namespace wsfleet::edge_config_detail

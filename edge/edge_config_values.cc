#include "edge/edge_config_internal.h"

#include "common/config_values.h"

#include <algorithm>
#include <cctype>

namespace wsfleet::edge_config_detail {
namespace {

constexpr size_t kMinApiKeyBytes = 16;

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
  const std::string problem = checkAuthority(authority, false);
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
  const std::string problem = checkAuthority(authority, false);
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

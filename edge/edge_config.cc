#include "edge/edge_config.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "common/config_toml.h"
#include "common/openssl.h"

namespace wsfleet {
namespace {

constexpr int64_t kHourMs = 3600 * 1000;
constexpr int64_t kDayMs = 24 * kHourMs;
constexpr int64_t kMiB = 1 << 20;
constexpr size_t kMinApiKeyBytes = 16;
constexpr size_t kMinHmacSecretBytes = 32;
constexpr size_t kMaxNameBytes = 64;
constexpr size_t kMaxKeyFileBytes = 64 * 1024;

// ---- Value checks. Each returns "" when fine, else the problem.

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

std::string checkTenantName(std::string_view text) {
  return checkName(text, isTenantChar, "[a-z0-9_-]");
}
std::string checkNamespaceName(std::string_view text) {
  return checkName(text, isSegmentChar, "[A-Za-z0-9_-@=+,]");
}
std::string checkNodeName(std::string_view text) {
  return checkName(text, isNameChar, "[A-Za-z0-9_-]");
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

std::string convertPattern(std::string_view text, ChannelPattern& out) {
  Result<ChannelPattern> pattern = ChannelPattern::parse(text);
  if (!pattern) return pattern.status().message();
  out = std::move(pattern).value();
  return "";
}

// Standard base64 (padding optional) or base64url, as secrets are commonly written.
std::optional<std::string> decodeAnyBase64(std::string_view text) {
  std::string url(text);
  while (!url.empty() && url.back() == '=') url.pop_back();
  for (char& c : url) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return base64UrlDecode(url);
}

// Removes every occurrence of secret material from a message that came from elsewhere.
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

template <class C>
ConfigOption<C> listenOption(std::string key, ListenAddress C::*field, std::string def,
                             std::string doc) {
  std::string def_text = "\"" + def + "\"";
  auto set = [field, def](C& target, const toml::node* value, const std::string& full_key,
                          ConfigErrors& errors) {
    if (value == nullptr) {
      const std::string problem = parseListen(def, target.*field);
      (void)problem;  // our own default; a unit test proves it parses
      return;
    }
    const auto* str = value->as_string();
    if (str == nullptr) {
      errors.add(*value, full_key + ": " + config_detail::expectedType("a string", *value));
      return;
    }
    const std::string problem = parseListen(str->get(), target.*field);
    if (!problem.empty()) errors.add(*value, full_key + ": " + problem);
  };
  return customOption<C>(std::move(key), "string \"host:port\"", std::move(def_text),
                         std::move(doc), std::move(set));
}

#define WSF_FIELD(Type, expr) \
  [](Type & c) -> auto& {     \
    return c.expr;            \
  }

// ---- The option tables. Defaults here are the ones in force; conf/edge.toml repeats them
// with longer explanations.

using EdgeOption = ConfigOption<EdgeConfig>;

const std::vector<EdgeOption>& edgeOptions() {
  static const std::vector<EdgeOption> options = {
      // [node]
      stringOption<EdgeConfig>("node.name", WSF_FIELD(EdgeConfig, node_name), "",
                               "this node's name in logs, metrics and welcome frames; "
                               "empty = the host name"),
      stringOption<EdgeConfig>(
          "node.region", WSF_FIELD(EdgeConfig, region), "local", "the region this edge belongs to",
          [](std::string_view v) { return checkName(v, isNameChar, "[A-Za-z0-9_-]"); }),
      enumOption<EdgeConfig>(
          "node.log_level", WSF_FIELD(EdgeConfig, log_level),
          std::vector<std::pair<std::string, std::string>>{
              {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}},
          "info", "least severe log level written"),
      // [websocket]
      listenOption<EdgeConfig>("websocket.listen", &EdgeConfig::ws_listen, "127.0.0.1:8080",
                               "address the WebSocket listener binds"),
      stringOption<EdgeConfig>("websocket.path", WSF_FIELD(EdgeConfig, ws_path), "/ws",
                               "HTTP path of the WebSocket endpoint", checkWsPath),
      stringOption<EdgeConfig>("websocket.tls_cert", WSF_FIELD(EdgeConfig, tls_cert_file), "",
                               "PEM certificate chain; with tls_key enables wss"),
      stringOption<EdgeConfig>("websocket.tls_key", WSF_FIELD(EdgeConfig, tls_key_file), "",
                               "PEM private key of tls_cert"),
      listOption<EdgeConfig>(
          "websocket.allowed_origins", WSF_FIELD(EdgeConfig, allowed_origins), {},
          "Origin allowlist (scheme://host[:port]); empty = any",
          std::function<std::string(std::string_view, std::string&)>(parseOrigin)),
      stringOption<EdgeConfig>("websocket.public_url", WSF_FIELD(EdgeConfig, public_url), "",
                               "URL announced to clients; empty = derived from listen",
                               checkPublicUrl),
      intOption<EdgeConfig>("websocket.max_header_bytes", WSF_FIELD(EdgeConfig, max_header_bytes),
                            8192, 1024, kMiB, "cap on the handshake request head (431 above)"),
      intOption<EdgeConfig>("websocket.max_message_bytes", WSF_FIELD(EdgeConfig, max_message_bytes),
                            65536, 1, 64 * kMiB, "cap on one inbound message (close 1009 above)"),
      intOption<EdgeConfig>("websocket.ping_interval_ms", WSF_FIELD(EdgeConfig, ping_interval_ms),
                            25000, 1000, kHourMs, "server ping period"),
      intOption<EdgeConfig>("websocket.handshake_timeout_ms",
                            WSF_FIELD(EdgeConfig, handshake_timeout_ms), 10000, 100, 10 * 60000,
                            "time allowed for the HTTP upgrade"),
      intOption<EdgeConfig>("websocket.resume_window_ms", WSF_FIELD(EdgeConfig, resume_window_ms),
                            120000, 0, kDayMs, "how long a session can be resumed"),
      intOption<EdgeConfig>("websocket.refresh_notice_ms", WSF_FIELD(EdgeConfig, refresh_notice_ms),
                            30000, 0, kDayMs,
                            "refresh_required is sent this long before the token expires"),
      intOption<EdgeConfig>("websocket.outbound_max_bytes",
                            WSF_FIELD(EdgeConfig, outbound_max_bytes), 4 * kMiB, 1, 1024 * kMiB,
                            "per-connection send queue cap in bytes (close 4009 above)"),
      intOption<EdgeConfig>("websocket.outbound_max_messages",
                            WSF_FIELD(EdgeConfig, outbound_max_messages), 4096, 1, 1000000,
                            "per-connection send queue cap in messages"),
      intOption<EdgeConfig>("websocket.max_channels_per_connection",
                            WSF_FIELD(EdgeConfig, max_channels_per_connection), 256, 1, 100000,
                            "subscriptions one connection may hold"),
      // [admin]
      listenOption<EdgeConfig>("admin.listen", &EdgeConfig::admin_listen, "127.0.0.1:9090",
                               "address of /metrics, /healthz, /readyz and the backend API"),
      intOption<EdgeConfig>("admin.max_body_bytes", WSF_FIELD(EdgeConfig, max_body_bytes), kMiB, 1,
                            64 * kMiB, "cap on a backend API request body"),
      // [auth]
      stringOption<EdgeConfig>("auth.audience", WSF_FIELD(EdgeConfig, token_policy.audience),
                               "wsfleet", "required token `aud`; empty = not checked"),
      intOption<EdgeConfig>("auth.leeway_s", WSF_FIELD(EdgeConfig, token_policy.leeway_s), 30, 0,
                            3600, "clock skew tolerated on exp, nbf and iat"),
      intOption<EdgeConfig>("auth.max_token_bytes",
                            WSF_FIELD(EdgeConfig, token_policy.max_token_bytes), 4096, 256, 65536,
                            "longest token accepted"),
      // [storage]
      stringOption<EdgeConfig>("storage.dir", WSF_FIELD(EdgeConfig, storage_dir),
                               "/var/lib/wsfleet", "LMDB directory (relative: to this file)",
                               checkNonEmpty),
      intOption<EdgeConfig>("storage.map_size_mb", WSF_FIELD(EdgeConfig, map_size_mb), 256, 1,
                            1 << 20, "LMDB map size, the store's maximum size"),
      boolOption<EdgeConfig>("storage.sync_every_commit", WSF_FIELD(EdgeConfig, sync_every_commit),
                             false, "fsync each commit instead of periodically"),
      intOption<EdgeConfig>("storage.sync_interval_ms", WSF_FIELD(EdgeConfig, sync_interval_ms),
                            1000, 1, kHourMs, "period of the background fsync"),
      // [presence]
      intOption<EdgeConfig>("presence.ttl_ms", WSF_FIELD(EdgeConfig, presence_ttl_ms), 30000, 1000,
                            kDayMs, "a presence record without heartbeat expires after this"),
      intOption<EdgeConfig>("presence.heartbeat_ms", WSF_FIELD(EdgeConfig, presence_heartbeat_ms),
                            5000, 100, kHourMs, "how often live connections are refreshed"),
      intOption<EdgeConfig>("presence.flush_ms", WSF_FIELD(EdgeConfig, presence_flush_ms), 20, 1,
                            10000, "presence writes are batched for this long"),
  };
  return options;
}

const std::vector<ConfigOption<TenantConfig>>& tenantOptions() {
  static const std::vector<ConfigOption<TenantConfig>> options = {
      stringOption<TenantConfig>("issuer", WSF_FIELD(TenantConfig, tokens.issuer), "",
                                 "required token `iss`; empty = not checked"),
      listOption<TenantConfig>(
          "api_keys", WSF_FIELD(TenantConfig, api_keys), {}, "bearer keys of the backend HTTP API",
          std::function<std::string(std::string_view, std::string&)>(checkApiKey)),
      listOption<TenantConfig, ChannelPattern>(
          "default_subs", WSF_FIELD(TenantConfig, default_subs), {">"},
          "patterns a token without `subs` may subscribe to", convertPattern),
      listOption<TenantConfig, ChannelPattern>(
          "default_pubs", WSF_FIELD(TenantConfig, default_pubs), {">"},
          "patterns a token without `pubs` may publish to", convertPattern),
      boolOption<TenantConfig>("client_send", WSF_FIELD(TenantConfig, client_send), true,
                               "clients may send direct messages to users"),
  };
  return options;
}

// One [[tenants.NAME.keys]] entry as written; turned into a TokenKey after the files are read.
struct KeySpec {
  std::string kid;
  TokenAlg alg = TokenAlg::kHS256;
  std::string secret;
  std::string secret_base64;
  std::string public_key;
  std::string public_key_file;
  std::string private_key;
  std::string private_key_file;
};

const std::vector<ConfigOption<KeySpec>>& keyOptions() {
  static const std::vector<ConfigOption<KeySpec>> options = {
      stringOption<KeySpec>("kid", WSF_FIELD(KeySpec, kid), "",
                            "key id matched against the token header's kid"),
      enumOption<KeySpec>("alg", WSF_FIELD(KeySpec, alg),
                          std::vector<std::pair<std::string, TokenAlg>>{
                              {"HS256", TokenAlg::kHS256}, {"ES256", TokenAlg::kES256}},
                          "HS256", "signature algorithm"),
      stringOption<KeySpec>("secret", WSF_FIELD(KeySpec, secret), "",
                            "HS256 secret, raw (at least 32 bytes)"),
      stringOption<KeySpec>("secret_base64", WSF_FIELD(KeySpec, secret_base64), "",
                            "HS256 secret, base64 or base64url"),
      stringOption<KeySpec>("public_key", WSF_FIELD(KeySpec, public_key), "",
                            "ES256 P-256 public key, PEM"),
      stringOption<KeySpec>("public_key_file", WSF_FIELD(KeySpec, public_key_file), "",
                            "ES256 public key PEM file (relative: to this file)"),
      stringOption<KeySpec>("private_key", WSF_FIELD(KeySpec, private_key), "",
                            "ES256 private key, PEM; only for minting tokens"),
      stringOption<KeySpec>("private_key_file", WSF_FIELD(KeySpec, private_key_file), "",
                            "ES256 private key PEM file; only for minting tokens"),
  };
  return options;
}

const std::vector<ConfigOption<NamespaceConfig>>& namespaceOptions() {
  static const std::vector<ConfigOption<NamespaceConfig>> options = {
      intOption<NamespaceConfig>("history_size", WSF_FIELD(NamespaceConfig, history_size), 0, 0,
                                 1000000, "messages kept per channel for resume (0 = none)"),
      intOption<NamespaceConfig>("history_ttl_ms", WSF_FIELD(NamespaceConfig, history_ttl_ms), 0, 0,
                                 365 * kDayMs, "age limit of history (0 = none)"),
      boolOption<NamespaceConfig>("presence", WSF_FIELD(NamespaceConfig, presence), false,
                                  "track who is in each channel"),
      boolOption<NamespaceConfig>("join_leave", WSF_FIELD(NamespaceConfig, join_leave), false,
                                  "send join and leave events to subscribers"),
      intOption<NamespaceConfig>("max_message_bytes", WSF_FIELD(NamespaceConfig, max_message_bytes),
                                 0, 0, 64 * kMiB, "message cap (0 = websocket.max_message_bytes)"),
      enumOption<NamespaceConfig>("ordering", WSF_FIELD(NamespaceConfig, ordering),
                                  std::vector<std::pair<std::string, Ordering>>{
                                      {"owner", Ordering::kOwner}, {"none", Ordering::kNone}},
                                  "owner", "owner: sequenced and stored; none: at-most-once"),
      enumOption<NamespaceConfig>("priority", WSF_FIELD(NamespaceConfig, priority),
                                  std::vector<std::pair<std::string, Priority>>{
                                      {"normal", Priority::kNormal}, {"low", Priority::kLow}},
                                  "normal", "low: dropped first when a client lags"),
      boolOption<NamespaceConfig>("allow_publish", WSF_FIELD(NamespaceConfig, allow_publish), true,
                                  "clients may publish (the backend API always may)"),
  };
  return options;
}

#undef WSF_FIELD

// ---- Loading.

struct Loader {
  ConfigErrors& errors;
  const toml::table& root;
  std::string base_dir;
  EdgeConfig& config;
  std::map<std::string, std::string> api_key_owner;  // key -> "tenants.X.api_keys[i]"

  const toml::node* at(std::string_view path) const { return findPath(root, path); }

  void error(std::string_view path, const std::string& message) {
    // At the value when present, else at its section, else at the top of the file.
    const toml::node* node = at(path);
    if (node == nullptr) node = at(path.substr(0, path.rfind('.')));
    errors.addAt(node, std::string(path) + ": " + message);
  }

  void checkNode();
  void checkWebsocket();
  void checkTls();
  void checkOther();
  void loadTenants();
  void loadTenant(const std::string& name, const toml::table& table, const toml::node& where);
  std::optional<TokenKey> loadKey(const std::string& prefix, const toml::table& table,
                                  const toml::node& where);
  bool readKeyFile(const std::string& path_key, const std::string& file, const toml::table& table,
                   std::string& out);
  void loadNamespaces(const std::string& prefix, const toml::node& node, TenantConfig& tenant);
};

void Loader::checkNode() {
  if (config.node_name.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
      error("node.name", "the host name is unavailable; set node.name");
      return;
    }
    // A fully qualified host name has dots, which node names may not: keep the first label.
    std::string name(host);
    name = name.substr(0, name.find('.'));
    if (!checkNodeName(name).empty()) {
      error("node.name", "the host name " + quoteForError(name) +
                             " is not a valid node name ([A-Za-z0-9_-]); set node.name");
      return;
    }
    config.node_name = std::move(name);
    return;
  }
  const std::string problem = checkNodeName(config.node_name);
  if (!problem.empty()) error("node.name", problem);
}

void Loader::checkWebsocket() {
  if (config.outbound_max_bytes < config.max_message_bytes) {
    error("websocket.outbound_max_bytes",
          "must be at least websocket.max_message_bytes, or one message could never be queued");
  }
  if (config.token_policy.max_token_bytes >= config.max_header_bytes) {
    error("auth.max_token_bytes",
          "must be less than websocket.max_header_bytes, which must also hold the token");
  }
  if (config.ws_listen.host == config.admin_listen.host &&
      config.ws_listen.port == config.admin_listen.port) {
    error("admin.listen", "must differ from websocket.listen");
  }
}

void Loader::checkTls() {
  std::string& cert = config.tls_cert_file;
  std::string& key = config.tls_key_file;
  if (cert.empty() && key.empty()) return;
  if (cert.empty() || key.empty()) {
    error(cert.empty() ? "websocket.tls_key" : "websocket.tls_cert",
          "websocket.tls_cert and websocket.tls_key must be set together (both empty: plain ws)");
    return;
  }
  cert = resolveRelativePath(base_dir, cert);
  key = resolveRelativePath(base_dir, key);
  bool files_ok = true;
  for (auto [path_key, file] :
       {std::pair{"websocket.tls_cert", &cert}, std::pair{"websocket.tls_key", &key}}) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(*file, ec)) {
      error(path_key, "file '" + *file + "' does not exist or is not a regular file");
      files_ok = false;
    }
  }
  if (!files_ok) return;
  Result<X509Ptr> x509 = readCertificatePemFile(cert);
  if (!x509) error("websocket.tls_cert", x509.status().message());
  Result<EvpPkeyPtr> pkey = readPrivateKeyPemFile(key);
  if (!pkey) error("websocket.tls_key", pkey.status().message());
  if (x509 && pkey && !keyMatchesCertificate(x509->get(), pkey->get())) {
    error("websocket.tls_key", "the private key does not match the certificate '" + cert + "'");
  }
}

void Loader::checkOther() {
  if (config.presence_heartbeat_ms >= config.presence_ttl_ms) {
    error("presence.heartbeat_ms",
          "must be less than presence.ttl_ms, or live connections would expire");
  }
  config.storage_dir = resolveRelativePath(base_dir, config.storage_dir);
}

bool Loader::readKeyFile(const std::string& path_key, const std::string& file,
                         const toml::table& table, std::string& out) {
  const std::string resolved = resolveRelativePath(base_dir, file);
  Result<std::string> text = readConfigFile(resolved, kMaxKeyFileBytes);
  if (!text) {
    errors.addAt(table.get(path_key.substr(path_key.rfind('.') + 1)),
                 path_key + ": " + text.status().message());
    return false;
  }
  out = std::move(text).value();
  return true;
}

std::optional<TokenKey> Loader::loadKey(const std::string& prefix, const toml::table& table,
                                        const toml::node& where) {
  const size_t before = errors.size();
  rejectUnknownKeys(table, prefix, optionKeys(keyOptions()), errors);
  KeySpec spec;
  applyOptions(table, keyOptions(), prefix, spec, errors);
  if (errors.size() != before) return std::nullopt;

  auto fail = [&](const char* key, const std::string& message) {
    const toml::node* node = table.get(key);
    errors.addAt(node != nullptr ? node : &where, joinKey(prefix, key) + ": " + message);
  };
  TokenKey key;
  key.kid = spec.kid;
  key.alg = spec.alg;
  if (spec.alg == TokenAlg::kHS256) {
    for (const char* pem_key :
         {"public_key", "public_key_file", "private_key", "private_key_file"}) {
      if (table.contains(pem_key)) fail(pem_key, "is for ES256 keys, this key is HS256");
    }
    if (spec.secret.empty() == spec.secret_base64.empty()) {
      fail(spec.secret.empty() ? "alg" : "secret_base64",
           "an HS256 key needs exactly one of secret or secret_base64");
      return std::nullopt;
    }
    if (!spec.secret_base64.empty()) {
      std::optional<std::string> decoded = decodeAnyBase64(spec.secret_base64);
      if (!decoded) {
        fail("secret_base64", "is not valid base64");
        return std::nullopt;
      }
      key.secret = std::move(*decoded);
    } else {
      key.secret = spec.secret;
    }
    if (key.secret.size() < kMinHmacSecretBytes) {
      fail(spec.secret.empty() ? "secret_base64" : "secret",
           "an HS256 secret must be at least " + std::to_string(kMinHmacSecretBytes) + " bytes");
      return std::nullopt;
    }
  } else {
    for (const char* secret_key : {"secret", "secret_base64"}) {
      if (table.contains(secret_key)) fail(secret_key, "is for HS256 keys, this key is ES256");
    }
    if (spec.public_key.empty() == spec.public_key_file.empty()) {
      fail(spec.public_key.empty() ? "alg" : "public_key_file",
           "an ES256 key needs exactly one of public_key or public_key_file");
      return std::nullopt;
    }
    if (!spec.private_key.empty() && !spec.private_key_file.empty()) {
      fail("private_key_file", "set private_key or private_key_file, not both");
      return std::nullopt;
    }
    key.public_key_pem = spec.public_key;
    key.private_key_pem = spec.private_key;
    if (!spec.public_key_file.empty() &&
        !readKeyFile(joinKey(prefix, "public_key_file"), spec.public_key_file, table,
                     key.public_key_pem)) {
      return std::nullopt;
    }
    if (!spec.private_key_file.empty() &&
        !readKeyFile(joinKey(prefix, "private_key_file"), spec.private_key_file, table,
                     key.private_key_pem)) {
      return std::nullopt;
    }
    if (!key.private_key_pem.empty()) {
      // Catch a mismatched pair here, or `token mint` would sign tokens no edge accepts.
      const char* which = spec.private_key.empty() ? "private_key_file" : "private_key";
      Result<EvpPkeyPtr> priv = parsePrivateKeyPem(key.private_key_pem);
      Result<EvpPkeyPtr> pub = parsePublicKeyPem(key.public_key_pem);
      if (!priv) {
        fail(which, "is not an unencrypted PEM private key");
        return std::nullopt;
      }
      if (pub && !samePublicKey(priv->get(), pub->get())) {
        fail(which, "does not belong to the public key");
        return std::nullopt;
      }
    }
  }
  return key;
}

void Loader::loadNamespaces(const std::string& prefix, const toml::node& node,
                            TenantConfig& tenant) {
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    errors.add(node,
               prefix + ": expected a table of namespaces, got " + std::string(tomlTypeName(node)));
    return;
  }
  for (const auto& [ns_key, ns_node] : *table) {
    const std::string name(ns_key.str());
    const std::string ns_prefix = joinKey(prefix, name);
    const toml::source_region& where =
        ns_key.source().begin.line != 0 ? ns_key.source() : ns_node.source();
    const std::string bad_name = checkNamespaceName(name);
    if (!bad_name.empty()) {
      errors.add(where, ns_prefix + ": namespace name " + bad_name);
      continue;
    }
    const toml::table* ns_table = ns_node.as_table();
    if (ns_table == nullptr) {
      errors.add(ns_node, ns_prefix + ": " + config_detail::expectedType("a table", ns_node));
      continue;
    }
    NamespaceConfig ns;
    ns.name = name;
    rejectUnknownKeys(*ns_table, ns_prefix, optionKeys(namespaceOptions()), errors);
    applyOptions(*ns_table, namespaceOptions(), ns_prefix, ns, errors);
    if (ns.ordering == Ordering::kNone && ns.history_size > 0) {
      errors.addAt(ns_table->get("history_size"),
                   ns_prefix +
                       ".history_size: must be 0 with ordering = \"none\", which "
                       "stores nothing");
    }
    if (ns.max_message_bytes > config.max_message_bytes) {
      errors.addAt(ns_table->get("max_message_bytes"),
                   ns_prefix +
                       ".max_message_bytes: must not exceed "
                       "websocket.max_message_bytes (" +
                       std::to_string(config.max_message_bytes) + ")");
    }
    if (ns.join_leave && !ns.presence) {
      errors.addAt(ns_table->get("join_leave"), ns_prefix + ".join_leave: needs presence = true");
    }
    tenant.namespaces.emplace(name, std::move(ns));
  }
}

void Loader::loadTenant(const std::string& name, const toml::table& table,
                        const toml::node& where) {
  const std::string prefix = "tenants." + name;
  TenantConfig tenant;
  tenant.name = name;
  rejectUnknownKeys(table, prefix, optionKeys(tenantOptions(), {"keys", "namespaces"}), errors);
  applyOptions(table, tenantOptions(), prefix, tenant, errors);

  // API keys identify the tenant on the backend API, so one key may not serve two.
  const toml::node* api_node = table.get("api_keys");
  if (const toml::array* keys = api_node != nullptr ? api_node->as_array() : nullptr) {
    for (size_t i = 0; i < keys->size() && i < tenant.api_keys.size(); ++i) {
      const std::string this_key = prefix + ".api_keys[" + std::to_string(i) + "]";
      auto [it, inserted] = api_key_owner.emplace(tenant.api_keys[i], this_key);
      if (!inserted) {
        errors.add(*keys->get(i), this_key + ": the same API key is already " + it->second);
      }
    }
  }

  const toml::node* keys_node = table.get("keys");
  const toml::array* keys = keys_node != nullptr ? keys_node->as_array() : nullptr;
  if (keys_node != nullptr &&
      (keys == nullptr || (!keys->empty() && !keys->is_array_of_tables()))) {
    errors.add(*keys_node, prefix + ".keys: expected [[" + prefix + ".keys]] tables, got " +
                               std::string(tomlTypeName(*keys_node)));
  } else if (keys == nullptr || keys->empty()) {
    errors.add(where, prefix + ": a tenant needs at least one token key ([[" + prefix + ".keys]])");
  } else {
    std::set<std::string> kids;
    bool keys_ok = true;
    for (size_t i = 0; i < keys->size(); ++i) {
      const toml::node& key_node = *keys->get(i);
      const std::string key_prefix = prefix + ".keys[" + std::to_string(i) + "]";
      std::optional<TokenKey> key = loadKey(key_prefix, *key_node.as_table(), key_node);
      if (!key) {
        keys_ok = false;
        continue;
      }
      if (!kids.insert(key->kid).second) {
        errors.addAt(key_node.as_table()->get("kid"), key_prefix +
                                                          ".kid: " + quoteForError(key->kid) +
                                                          " is used by another key of this tenant");
        keys_ok = false;
        continue;
      }
      // The verifier is the authority on what a usable key is; ask it key by key so its
      // complaint points at the right table.
      TokenVerifier verifier(config.token_policy);
      Status added = verifier.addTenant(name, TenantTokenConfig{tenant.tokens.issuer, {*key}});
      if (!added) {
        errors.add(key_node, key_prefix + ": " + redact(added.message(), *key));
        keys_ok = false;
        continue;
      }
      tenant.tokens.keys.push_back(std::move(*key));
    }
    if (keys_ok) {
      TokenVerifier verifier(config.token_policy);
      Status added = verifier.addTenant(name, tenant.tokens);
      if (!added) {
        std::string message = added.message();
        for (const TokenKey& key : tenant.tokens.keys) message = redact(message, key);
        errors.add(*keys_node, prefix + ".keys: " + message);
      }
    }
  }

  if (const toml::node* namespaces = table.get("namespaces")) {
    loadNamespaces(prefix + ".namespaces", *namespaces, tenant);
  }
  config.tenants.emplace(name, std::move(tenant));
}

void Loader::loadTenants() {
  const toml::node* node = root.get("tenants");
  const toml::table* tenants = node != nullptr ? node->as_table() : nullptr;
  if (node != nullptr && tenants == nullptr) {
    errors.add(*node, "tenants: " + config_detail::expectedType("a table", *node));
    return;
  }
  if (tenants == nullptr || tenants->empty()) {
    errors.add(1, 1, "at least one tenant is required ([tenants.NAME])");
    return;
  }
  for (const auto& [key, value] : *tenants) {
    const std::string name(key.str());
    const toml::source_region& where = key.source().begin.line != 0 ? key.source() : value.source();
    const std::string bad_name = checkTenantName(name);
    if (!bad_name.empty()) {
      errors.add(where, "tenants." + name + ": tenant name " + bad_name);
      continue;
    }
    const toml::table* table = value.as_table();
    if (table == nullptr) {
      errors.add(value, "tenants." + name + ": " + config_detail::expectedType("a table", value));
      continue;
    }
    loadTenant(name, *table, value);
  }
}

Result<EdgeConfig> parseWithBase(std::string_view text, const std::string& source_name,
                                 const std::string& base_dir) {
  ConfigErrors errors(source_name);
  std::optional<toml::table> root = parseToml(text, errors);
  if (!root) return errors.toStatus();

  EdgeConfig config;
  config.source_path = source_name;
  rejectUnknownKeys(*root, "", optionKeys(edgeOptions(), {"tenants"}), errors);
  applyOptions(*root, edgeOptions(), "", config, errors);

  Loader loader{errors, *root, base_dir, config, {}};
  loader.checkNode();
  loader.checkWebsocket();
  loader.checkTls();
  loader.checkOther();
  loader.loadTenants();
  if (!errors.empty()) return errors.toStatus();
  return config;
}

}  // namespace

Result<EdgeConfig> loadEdgeConfig(const std::string& path) {
  Result<std::string> text = readConfigFile(path);
  if (!text) return text.takeStatus();
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) absolute = path;
  return parseWithBase(*text, path, absolute.parent_path().string());
}

Result<EdgeConfig> parseEdgeConfig(std::string_view text, const std::string& source_name) {
  return parseWithBase(text, source_name,
                       std::filesystem::path(source_name).parent_path().string());
}

const NamespaceConfig* findNamespace(const TenantConfig& tenant, std::string_view channel) {
  const std::string ns(channel.substr(0, channel.find(':')));
  const auto it = tenant.namespaces.find(ns);
  return it == tenant.namespaces.end() ? nullptr : &it->second;
}

}  // namespace wsfleet

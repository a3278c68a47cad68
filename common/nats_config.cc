#include "common/nats_config.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "common/config_values.h"

namespace wsfleet {

namespace {

constexpr int64_t kMiB = 1024 * 1024;
constexpr int64_t kHourMs = 3600 * 1000;

std::string parseNatsUrl(std::string_view text, std::string& out) {
  std::string problem = checkNatsUrl(text);
  if (problem.empty()) out = std::string(text);
  return problem;
}

}  // namespace

const std::vector<ConfigOption<NatsConfig>>& natsOptions() {
  using C = NatsConfig;
  static const std::vector<ConfigOption<C>> options = {
      listOption<C>("servers", WSF_FIELD(C, servers), {},
                    "the region's NATS servers (nats:// or tls://host:port); empty = standalone",
                    std::function<std::string(std::string_view, std::string&)>(parseNatsUrl)),
      stringOption<C>("token", WSF_FIELD(C, token), "", "token the NATS servers require"),
      stringOption<C>("user", WSF_FIELD(C, user), "",
                      "user name the NATS servers require (with password)"),
      stringOption<C>("password", WSF_FIELD(C, password), "", "password of nats.user"),
      stringOption<C>("creds_file", WSF_FIELD(C, creds_file), "",
                      "NATS credentials file (JWT + NKey seed)"),
      boolOption<C>("tls", WSF_FIELD(C, tls), false, "TLS to the NATS servers"),
      stringOption<C>("tls_ca", WSF_FIELD(C, tls_ca_file), "",
                      "PEM CA bundle the servers' certificates must chain to"),
      stringOption<C>("tls_cert", WSF_FIELD(C, tls_cert_file), "",
                      "PEM client certificate (servers that verify clients)"),
      stringOption<C>("tls_key", WSF_FIELD(C, tls_key_file), "",
                      "PEM private key of nats.tls_cert"),
      intOption<C>("reconnect_wait_ms", WSF_FIELD(C, reconnect_wait_ms), 250, 10, 60000,
                   "first reconnect delay (doubles, plus jitter)"),
      intOption<C>("reconnect_wait_max_ms", WSF_FIELD(C, reconnect_wait_max_ms), 5000, 10, 600000,
                   "longest reconnect delay"),
      intOption<C>("reconnect_buffer_bytes", WSF_FIELD(C, reconnect_buffer_bytes), 8 * kMiB, 0,
                   1024 * kMiB, "what is kept for the server while disconnected"),
      intOption<C>("ping_interval_ms", WSF_FIELD(C, ping_interval_ms), 5000, 100, kHourMs,
                   "how often a silent server is probed"),
      intOption<C>("max_pending_ops", WSF_FIELD(C, max_pending_ops), 65536, 16, 16 * kMiB,
                   "operations queued for the NATS thread (drops counted above)"),
      intOption<C>("max_pending_bytes", WSF_FIELD(C, max_pending_bytes), 64 * kMiB, kMiB,
                   4096 * kMiB, "payload bytes queued each way between the loop and NATS"),
      intOption<C>("request_timeout_ms", WSF_FIELD(C, request_timeout_ms), 5000, 100, 120000,
                   "how long a NATS request (a region publish) may take"),
  };
  return options;
}

void checkNatsConfig(NatsConfig& nats, std::string_view base_dir,
                     const std::function<void(const char* key, std::string message)>& error) {
  const int credentials = (nats.token.empty() ? 0 : 1) + (nats.user.empty() ? 0 : 1) +
                          (nats.creds_file.empty() ? 0 : 1);
  if (credentials > 1) {
    error("nats.token", "set at most one of nats.token, nats.user and nats.creds_file");
  }
  if (!nats.password.empty() && nats.user.empty()) {
    error("nats.password", "is set without nats.user");
  }
  if (nats.tls_cert_file.empty() != nats.tls_key_file.empty()) {
    error("nats.tls_cert", "nats.tls_cert and nats.tls_key go together");
  }
  if (nats.reconnect_wait_max_ms < nats.reconnect_wait_ms) {
    error("nats.reconnect_wait_max_ms", "must be at least nats.reconnect_wait_ms");
  }
  for (auto [key, file] :
       {std::pair{"nats.creds_file", &nats.creds_file}, std::pair{"nats.tls_ca", &nats.tls_ca_file},
        std::pair{"nats.tls_cert", &nats.tls_cert_file},
        std::pair{"nats.tls_key", &nats.tls_key_file}}) {
    if (file->empty()) continue;
    *file = resolveRelativePath(base_dir, *file);
    std::error_code ec;
    if (!std::filesystem::is_regular_file(*file, ec)) {
      error(key, "file '" + *file + "' does not exist or is not a regular file");
    }
  }
  bool any_tls_url = false;
  for (const std::string& url : nats.servers) any_tls_url |= url.rfind("tls://", 0) == 0;
  if (any_tls_url) nats.tls = true;
}

NatsLinkOptions natsLinkOptions(const NatsConfig& nats) {
  NatsLinkOptions options;
  options.servers = nats.servers;
  options.token = nats.token;
  options.user = nats.user;
  options.password = nats.password;
  options.creds_file = nats.creds_file;
  options.tls = nats.tls;
  options.tls_ca_file = nats.tls_ca_file;
  options.tls_cert_file = nats.tls_cert_file;
  options.tls_key_file = nats.tls_key_file;
  options.reconnect_wait_ms = static_cast<int64_t>(nats.reconnect_wait_ms);
  options.reconnect_wait_max_ms = static_cast<int64_t>(nats.reconnect_wait_max_ms);
  options.reconnect_buffer_bytes = static_cast<int64_t>(nats.reconnect_buffer_bytes);
  options.ping_interval_ms = static_cast<int64_t>(nats.ping_interval_ms);
  options.max_outbound_ops = nats.max_pending_ops;
  options.max_inbound_items = nats.max_pending_ops;
  options.max_queue_bytes = nats.max_pending_bytes;
  return options;
}

}  // namespace wsfleet

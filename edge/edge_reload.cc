// Configuration reload (EdgeService, continued): SIGHUP re-reads the file and applies it
// without dropping connections.
//
// Connections point into the config: Connection::tenant_config at their tenant, and the
// Permissions of connections whose token has no subs/pubs at that tenant's default
// patterns. So the tenants are updated in place (a std::map keeps its nodes where they
// are, and move-assigning a TenantConfig keeps its address and the address of its
// default pattern vectors): those pointers stay valid and read the new values. A removed
// tenant's object is moved out of the map as a node, so it stays where it is until its
// connections (closed with 4003) are gone.
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "edge/edge_service.h"

namespace wsfleet {

namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

void EdgeService::derivePublicUrl() {
  public_url_ = config_.public_url;
  if (public_url_.empty()) {
    const std::string& host = config_.ws_listen.host;
    public_url_ = std::string(config_.tls_cert_file.empty() ? "ws://" : "wss://") +
                  (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                  std::to_string(config_.ws_listen.port) + config_.ws_path;
  }
}

Status EdgeService::reload() {
  logInfo("config_reload", {{"file", config_.source_path}});
  Result<EdgeConfig> loaded = loadEdgeConfig(config_.source_path);
  if (!loaded.isOk()) {
    metrics_.configReload(false);
    // One line per FILE:LINE:COL problem, as --check-config prints them.
    const std::string& message = loaded.status().message();
    size_t count = 0;
    for (size_t start = 0; start < message.size();) {
      size_t end = message.find('\n', start);
      if (end == std::string::npos) end = message.size();
      if (end > start) {
        logError("config_reload_error", {{"error", message.substr(start, end - start)}});
        ++count;
      }
      start = end + 1;
    }
    logWarn("config_reload_failed", {{"errors", count}, {"action", "kept the running config"}});
    return loaded.takeStatus();
  }
  return applyConfig(std::move(loaded).value());
}

void EdgeService::dropStaleSubscriptions(Connection& conn, const TenantConfig& next) {
  // Subscriptions to a namespace the new config no longer has are ended now, while the
  // old namespace options still say whether presence and leave events apply to them. The
  // client is told with an error reply without id (as for a command it sent without
  // one): it may not resubscribe to a namespace that no longer exists.
  std::vector<std::string> gone;
  for (const auto& [channel, index] : conn.channels) {
    if (findNamespace(next, channel) == nullptr) gone.push_back(channel);
  }
  for (const auto& channel : gone) {
    leaveChannel(conn, channel);
    if (conn.close_code != 0) continue;
    enqueue(conn, makeFrame(encodeErrorReply(
                      std::nullopt, Code::kNotFound,
                      "unsubscribed from " + channel + ": its namespace is no longer configured")));
  }
}

Status EdgeService::applyConfig(EdgeConfig next) {
  const std::vector<std::string> restart = restartOnlyChanges(config_, next);
  if (!restart.empty()) {
    logWarn("config_reload_restart_required",
            {{"options", joined(restart)}, {"action", "kept the running values"}});
    keepRestartOnly(config_, next);
  }
  // Everything that can fail is built before anything changes, so a failure leaves the
  // running config whole.
  TokenVerifier verifier(next.token_policy);
  for (const auto& [name, tenant] : next.tenants) {
    Status added = verifier.addTenant(name, tenant.tokens);
    if (!added.isOk()) {
      metrics_.configReload(false);
      logError("config_reload_error", {{"error", added.message()}});
      return added;
    }
  }

  // Removed tenants: their clients are closed with 4003 (forbidden: do not retry here).
  size_t closed = 0;
  for (auto& [ptr, conn] : connections_) {
    auto it = next.tenants.find(conn->tenant);
    if (it == next.tenants.end()) {
      requestClose(*conn, 4003, "tenant removed");
      ++closed;
    } else {
      dropStaleSubscriptions(*conn, it->second);
    }
  }
  // Retired tenants nobody points at any more can go now.
  std::erase_if(retired_tenants_, [this](const auto& node) {
    for (const auto& [ptr, conn] : connections_) {
      if (conn->tenant_config == &node.mapped()) return false;
    }
    return true;
  });
  std::vector<std::string> removed;
  for (const auto& [name, tenant] : config_.tenants) {
    if (next.tenants.count(name) == 0) removed.push_back(name);
  }
  for (const auto& name : removed) retired_tenants_.push_back(config_.tenants.extract(name));
  for (auto& [name, tenant] : next.tenants) {
    auto it = config_.tenants.find(name);
    if (it == config_.tenants.end()) {
      config_.tenants.emplace(name, std::move(tenant));
    } else {
      it->second = std::move(tenant);  // in place: see the top of this file
    }
  }
  next.tenants.clear();
  std::map<std::string, TenantConfig> tenants = std::move(config_.tenants);  // nodes stay put
  config_ = std::move(next);
  config_.tenants = std::move(tenants);

  verifier_ = std::move(verifier);
  parser_ = JsonParser(JsonLimits{config_.max_message_bytes + 64, 32});
  outbound_limits_ = outboundLimits(config_);  // queued frames stay; new caps apply next
  derivePublicUrl();
  LogLevel level = LogLevel::kInfo;
  if (parseLogLevel(config_.log_level, &level)) setLogLevel(level);

  // Patterns: connections on the tenant defaults now read the new defaults; channels
  // they no longer grant are left, as when a refreshed token narrows them.
  for (auto& [ptr, conn] : connections_) {
    if (conn->close_code != 0) continue;
    std::vector<std::string> revoked;
    for (const auto& [channel, index] : conn->channels) {
      if (!conn->subs.allows(channel)) revoked.push_back(channel);
    }
    for (const auto& channel : revoked) {
      leaveChannel(*conn, channel);
      enqueue(*conn, makeFrame(encodeErrorReply(
                         std::nullopt, Code::kForbidden,
                         "unsubscribed from " + channel + ": no longer permitted")));
    }
  }

  metrics_.configReload(true);
  logInfo("config_reloaded", {{"tenants", config_.tenants.size()},
                              {"tenants_removed", removed.size()},
                              {"connections_closed", closed},
                              {"restart_required", joined(restart)}});
  return Status::ok();
}

}  // namespace wsfleet

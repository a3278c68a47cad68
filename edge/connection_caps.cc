// Host-wide connection caps (EdgeService, continued): open connections per client address
// and per tenant + user, summed over every worker of the host. The counts come from the
// presence store (committed records of all workers plus this worker's unflushed changes),
// so a worker that crashed stops counting as soon as its records are swept.
#include "common/ip_network.h"
#include "common/log.h"
#include "edge/edge_service.h"

namespace wsfleet {

PresenceConnection EdgeService::presenceRecord(const Connection& conn) {
  PresenceConnection record{conn.session, conn.tenant, conn.user, conn.device,
                            conn.connected_at_ms};
  record.address = ipLimitKey(conn.peer);
  return record;
}

namespace {

// The caps protect the host; they are not worth refusing everyone while storage cannot
// be read, so an unreadable count admits (and says so in the log).
bool atCap(const Result<uint64_t>& count, uint64_t cap, const char* which) {
  if (!count.isOk()) {
    logWarn("connection_cap_unchecked", {{"cap", which}, {"error", count.status().toString()}});
    return false;
  }
  return *count >= cap;
}

}  // namespace

bool EdgeService::overIpCap(std::string_view peer) {
  const uint64_t cap = config_.limits.max_connections_per_ip;
  if (cap == 0 || ip_guard_.exempt(peer)) return false;
  return atCap(presence_->connectionsFromAddress(ipLimitKey(peer)), cap, "ip");
}

bool EdgeService::overUserCap(const std::string& tenant, const std::string& user) {
  const uint64_t cap = config_.limits.max_connections_per_user;
  if (cap == 0) return false;
  return atCap(presence_->connectionsOfUser(tenant, user), cap, "user");
}

}  // namespace wsfleet

// EdgeService: this worker's presence changes, written to the host's LMDB and, in region
// mode, replicated to the region's other hosts (presence_replication.h).
#include <algorithm>

#include "edge/edge_service.h"

namespace wsfleet {

namespace {

PresenceOp makeOp(PresenceOp::Kind kind, PresenceConnection conn, std::string channel = {}) {
  PresenceOp op;
  op.kind = kind;
  op.conn = std::move(conn);
  op.conn.address.clear();
  op.channel = std::move(channel);
  return op;
}

PresenceConnection memberOf(const Connection& conn) {
  PresenceConnection c;
  c.conn_id = conn.session;
  c.tenant = conn.tenant;
  c.user = conn.user;
  return c;
}

}  // namespace

void EdgeService::presenceAdd(const Connection& conn) {
  PresenceConnection record = presenceRecord(conn);
  presence_->addConnection(record);
  if (replication_) replication_->record(makeOp(PresenceOp::Kind::kAdd, std::move(record)));
}

void EdgeService::presenceRemove(const Connection& conn) {
  presence_->removeConnection(presenceRecord(conn));
  if (replication_) replication_->record(makeOp(PresenceOp::Kind::kRemove, memberOf(conn)));
}

void EdgeService::presenceJoin(const Connection& conn, const std::string& channel) {
  presence_->joinChannel(conn.session, conn.tenant, channel, conn.user);
  if (replication_) replication_->record(makeOp(PresenceOp::Kind::kJoin, memberOf(conn), channel));
}

void EdgeService::presenceLeave(const Connection& conn, const std::string& channel) {
  presence_->leaveChannel(conn.session, conn.tenant, channel, conn.user);
  if (replication_) {
    replication_->record(makeOp(PresenceOp::Kind::kLeave, memberOf(conn), channel));
  }
}

bool EdgeService::userCountInChannelIs(const std::string& tenant, const std::string& channel,
                                       const std::string& user, uint64_t count, bool local,
                                       const NamespaceConfig& ns) {
  // Only when this worker says yes can the rest of the host or region say no.
  if (!ns.presence || !local) return local;
  auto found = presence_->userConnectionsInChannel(tenant, channel, user);
  if (!found.isOk()) return local;
  return *found == count;
}

PresenceMessage EdgeService::presenceSnapshot(uint64_t cursor, size_t max_bytes) const {
  // Pages in connection order (serials only grow), so a cursor stays valid while
  // connections come and go between two pages.
  std::vector<const Connection*> after;
  for (const auto& [ptr, conn] : connections_) {
    if (conn->serial > cursor) after.push_back(conn.get());
  }
  std::sort(after.begin(), after.end(),
            [](const Connection* a, const Connection* b) { return a->serial < b->serial; });
  PresenceMessage page;
  size_t bytes = 0;
  for (const Connection* conn : after) {
    if (bytes >= max_bytes && !page.ops.empty()) return page;  // not the last page
    page.ops.push_back(makeOp(PresenceOp::Kind::kAdd, presenceRecord(*conn)));
    bytes += 64 + conn->session.size() + conn->user.size() + conn->tenant.size();
    for (const auto& [channel, index] : conn->channels) {
      const NamespaceConfig* ns = findNamespace(*conn->tenant_config, channel);
      if (ns == nullptr || !ns->presence) continue;
      page.ops.push_back(makeOp(PresenceOp::Kind::kJoin, memberOf(*conn), channel));
      bytes += 64 + channel.size() + conn->session.size();
    }
    page.cursor = conn->serial;
  }
  page.last = true;
  return page;
}

}  // namespace wsfleet

// Inbound rate limits on client commands (EdgeService, continued). The limits themselves
// are in inbound_limits.cc; this is where a refusal becomes a reply or a close.
#include "common/clock.h"
#include "edge/edge_service.h"

namespace wsfleet {

void EdgeService::refuseCommand(Connection& conn, std::optional<uint64_t> id,
                                const LimitVerdict& verdict) {
  replyError(conn, id,
             Status(Code::kRateLimited, verdict.reason,
                    "rate limited; retry in " + std::to_string(verdict.retry_after_ms) + " ms"));
  // Refused again and again: replying costs as much as the flood, so the flood ends here.
  if (verdict.close) requestClose(conn, 4008, "rate limited");
}

bool EdgeService::admitCommand(Connection& conn, std::optional<uint64_t> id) {
  const LimitVerdict verdict = inbound_.onCommand(conn.limits, nowMonoMs());
  if (verdict.allowed) return true;
  refuseCommand(conn, id, verdict);
  return false;
}

bool EdgeService::admitPublish(Connection& conn, const ClientCommand& cmd) {
  const LimitVerdict verdict =
      inbound_.onClientPublish(conn.limits, conn.tenant, conn.user, cmd.channel, nowMonoMs());
  if (verdict.allowed) return true;
  refuseCommand(conn, cmd.id, verdict);
  return false;
}

}  // namespace wsfleet

#include "edge/operator_auth.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "common/secure_compare.h"

namespace wsfleet {

bool isLoopbackAddress(std::string_view address) {
  const std::string text(address);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

Status checkOperator(std::string_view configured_token, std::string_view bearer,
                     std::string_view peer) {
  if (configured_token.empty()) {
    if (isLoopbackAddress(peer)) return Status::ok();
    return Status(Code::kForbidden, "operator_loopback_only",
                  "operator routes answer loopback peers only (admin.operator_token is not set)");
  }
  // With a token configured it is required from every peer, loopback included: a local
  // proxy would otherwise make every request look local.
  if (bearer.empty()) {
    return Status(Code::kUnauthorized, "operator_token_missing",
                  "Authorization: Bearer <operator token> required");
  }
  if (!constantTimeEquals(configured_token, bearer)) {
    return Status(Code::kUnauthorized, "operator_token_invalid", "unknown operator token");
  }
  return Status::ok();
}

}  // namespace wsfleet

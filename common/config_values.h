#pragma once
// Value checks shared by every configuration file (the edge's, the topology): names that
// end up in NATS subjects and metric labels, URL authorities, ports, NATS server URLs.
// Each returns "" when the value is fine, else what is wrong with it (for a FILE:LINE
// message).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsfleet {

// 1..64 characters, each passing `ok`; `allowed` names the set in the message.
std::string checkName(std::string_view text, bool (*ok)(char), std::string_view allowed);
// Tenants: [a-z0-9_-]. Namespaces: a channel segment, [A-Za-z0-9_-@=+,]. Nodes and
// regions (NATS subject tokens, metric labels): [A-Za-z0-9_-].
std::string checkTenantName(std::string_view text);
std::string checkNamespaceName(std::string_view text);
std::string checkNodeName(std::string_view text);

bool isHostChar(char c);  // a DNS name's characters: [A-Za-z0-9.-]
std::optional<uint16_t> parsePort(std::string_view text);  // 1..65535
// "host[:port]" or "[IPv6][:port]".
std::string checkAuthority(std::string_view authority, bool port_required);
// nats://host:port or tls://host:port, without credentials (they have their own keys).
std::string checkNatsUrl(std::string_view text);

}  // namespace wsfleet

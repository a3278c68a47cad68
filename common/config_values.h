#pragma once
// Value checks shared by every configuration file (the edge's, the topology): names that
// end up in NATS subjects and metric labels, URL authorities, ports, NATS server URLs.
// Each returns "" when the value is fine, else what is wrong with it (for a FILE:LINE
// message).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/config_toml.h"

namespace wsfleet {

// 1..64 characters, each passing `ok`; `allowed` names the set in the message.
std::string checkName(std::string_view text, bool (*ok)(char), std::string_view allowed);
// Tenants: [a-z0-9_-]. Namespaces: a channel segment, [A-Za-z0-9_-@=+,]. Nodes and
// regions (NATS subject tokens, metric labels): [A-Za-z0-9_-].
std::string checkTenantName(std::string_view text);
std::string checkNamespaceName(std::string_view text);
std::string checkNodeName(std::string_view text);

bool isHostChar(char c);                                   // a DNS name's characters: [A-Za-z0-9.-]
std::optional<uint16_t> parsePort(std::string_view text);  // 1..65535
// "host[:port]" or "[IPv6][:port]".
std::string checkAuthority(std::string_view authority, bool port_required);
// nats://host:port or tls://host:port, without credentials (they have their own keys).
std::string checkNatsUrl(std::string_view text);

// Where a listener binds.
struct ListenAddress {
  std::string host = "127.0.0.1";  // IPv4 or IPv6 literal, or "localhost"
  uint16_t port = 0;
};
// "IP:port", "[IPv6]:port" or "localhost:port": the host is an IP literal or "localhost"
// so that binding never depends on DNS at start-up.
std::string parseListen(std::string_view text, ListenAddress& out);

// A listen address option of configuration C (see config_toml.h).
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

}  // namespace wsfleet

#pragma once
// Shared by edge_config.cc (the option tables and the cross-field checks of the top-level
// sections), edge_config_tenants.cc (loading tenants, their keys and namespaces) and
// edge_config_values.cc (the syntax of single values). Not part of the interface: that is
// edge/edge_config.h.

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_toml.h"
#include "common/config_values.h"
#include "edge/edge_config.h"

namespace wsfleet::edge_config_detail {

// ---- Value checks (edge_config_values.cc). Each returns "" when fine, else the problem.

using wsfleet::checkNamespaceName;  // common/config_values.h
using wsfleet::checkTenantName;
// Node and region names.
using wsfleet::checkNodeName;
std::string parseOrigin(std::string_view text, std::string& out);
std::string checkPublicUrl(std::string_view text);
std::string checkWsPath(std::string_view text);
std::string checkNonEmpty(std::string_view text);
std::string checkApiKey(std::string_view text, std::string& out);
// Empty (no token), or an API-key-like secret.
std::string checkOperatorToken(std::string_view text);
std::string convertPattern(std::string_view text, ChannelPattern& out);

// Standard base64 (padding optional) or base64url, as secrets are commonly written.
std::optional<std::string> decodeAnyBase64(std::string_view text);

// Removes every occurrence of secret material from a message that came from elsewhere.
std::string redact(std::string message, const TokenKey& key);

// ---- The option tables of the tenant sections (edge_config.cc).

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

const std::vector<ConfigOption<TenantConfig>>& tenantOptions();
const std::vector<ConfigOption<KeySpec>>& keyOptions();
const std::vector<ConfigOption<NamespaceConfig>>& namespaceOptions();

// ---- Loading: one Loader per file, its methods split between edge_config.cc (sections
// and cross-field checks) and edge_config_tenants.cc (tenants).

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
  void checkNats();
  void checkTopology();  // after checkNats
  void loadTenants();
  void checkOperatorToken();  // after loadTenants: compares with the API keys
  void loadTenant(const std::string& name, const toml::table& table, const toml::node& where);
  std::optional<TokenKey> loadKey(const std::string& prefix, const toml::table& table,
                                  const toml::node& where);
  bool readKeyFile(const std::string& path_key, const std::string& file, const toml::table& table,
                   std::string& out);
  void loadNamespaces(const std::string& prefix, const toml::node& node, TenantConfig& tenant);
};

}  // namespace wsfleet::edge_config_detail

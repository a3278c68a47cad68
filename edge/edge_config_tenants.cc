#include "edge/edge_config_internal.h"

#include <set>

#include "common/openssl.h"

namespace wsfleet::edge_config_detail {
namespace {

constexpr size_t kMinHmacSecretBytes = 32;
constexpr size_t kMaxKeyFileBytes = 64 * 1024;

}  // namespace

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
    if (ns.priority == Priority::kLow && ns.history_size > 0) {
      // Coalescing and dropping skip offsets; a client resuming from the last offset it
      // saw would then silently miss stored messages.
      errors.addAt(ns_table->get("priority"),
                   ns_prefix +
                       ".priority: \"low\" needs history_size = 0 (low-priority messages may "
                       "be coalesced or dropped, which resume cannot account for)");
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
    // The packaged configuration ships without one: say what is missing in the words
    // of the operator who just installed it.
    errors.add(1, 1,
               "at least one tenant is required ([tenants.NAME] with its token keys "
               "[[tenants.NAME.keys]]): no client can connect until keys are configured");
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

}  // namespace wsfleet::edge_config_detail

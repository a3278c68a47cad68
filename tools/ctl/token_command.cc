#include <ctime>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/channel.h"
#include "common/token.h"
#include "edge/edge_config.h"
#include "tools/ctl/commands.h"

namespace wsfleet::ctl {
namespace {

struct MintOptions {
  std::string config_path;
  std::string tenant;
  std::string user;
  int64_t ttl_s = 3600;
  std::string device;
  std::vector<std::string> subs;
  std::vector<std::string> pubs;
  bool has_subs = false;
  bool has_pubs = false;
  std::string kid;
};

bool canSign(const TokenKey& key) {
  return key.alg == TokenAlg::kHS256 || !key.private_key_pem.empty();
}

// The key to sign with: the one named by --kid, else the tenant's first key that can sign.
Result<const TokenKey*> pickKey(const TenantConfig& tenant, const std::string& kid) {
  if (!kid.empty()) {
    for (const TokenKey& key : tenant.tokens.keys) {
      if (key.kid != kid) continue;
      if (!canSign(key)) {
        return Status(Code::kConfig, "key_cannot_sign",
                      "key '" + kid + "' of tenant '" + tenant.name +
                          "' is ES256 without private_key or private_key_file");
      }
      return &key;
    }
    return Status(Code::kConfig, "unknown_kid",
                  "tenant '" + tenant.name + "' has no key with kid '" + kid + "'");
  }
  for (const TokenKey& key : tenant.tokens.keys) {
    if (canSign(key)) return &key;
  }
  return Status(
      Code::kConfig, "key_cannot_sign",
      "tenant '" + tenant.name + "' has no key that can sign (HS256, or ES256 with a private key)");
}

Status checkPatterns(const std::vector<std::string>& patterns, const char* flag) {
  for (const std::string& pattern : patterns) {
    Result<ChannelPattern> parsed = ChannelPattern::parse(pattern);
    if (!parsed) {
      return Status(Code::kBadRequest, "bad_pattern",
                    std::string(flag) + ": " + parsed.status().message());
    }
  }
  return Status::ok();
}

int mint(const MintOptions& options) {
  Result<EdgeConfig> config = loadEdgeConfig(options.config_path);
  if (!config) {
    std::cerr << config.status().message() << "\n";
    return kExitUsage;
  }
  auto tenant_it = config->tenants.find(options.tenant);
  if (tenant_it == config->tenants.end()) {
    std::cerr << "wsfleetctl: tenant '" << options.tenant << "' is not in " << options.config_path
              << "\n";
    return kExitUsage;
  }
  const TenantConfig& tenant = tenant_it->second;
  Status usage = validateUserId(options.user);
  if (usage.isOk() && options.has_subs) usage = checkPatterns(options.subs, "--subs");
  if (usage.isOk() && options.has_pubs) usage = checkPatterns(options.pubs, "--pubs");
  if (!usage) {
    std::cerr << "wsfleetctl: " << usage.message() << "\n";
    return kExitUsage;
  }
  Result<const TokenKey*> key = pickKey(tenant, options.kid);
  if (!key) {
    std::cerr << "wsfleetctl: " << key.status().message() << "\n";
    return kExitUsage;
  }

  const auto now = static_cast<int64_t>(std::time(nullptr));
  TokenToSign token;
  token.aud = config->token_policy.audience;
  token.claims.sub = options.user;
  token.claims.tnt = tenant.name;
  token.claims.dev = options.device;
  token.claims.iss = tenant.tokens.issuer;
  token.claims.kid = (*key)->kid;
  token.claims.iat = now;
  token.claims.exp = now + options.ttl_s;
  if (options.has_subs) token.claims.subs = options.subs;
  if (options.has_pubs) token.claims.pubs = options.pubs;

  Result<std::string> signed_token = signToken(**key, token);
  if (!signed_token) {
    std::cerr << "wsfleetctl: signing failed: " << signed_token.status().message() << "\n";
    return kExitFailure;
  }
  std::cout << *signed_token << "\n";
  return kExitOk;
}

}  // namespace

void addTokenCommands(CLI::App& app, int& exit_code) {
  CLI::App* token = app.add_subcommand("token", "Access tokens for clients");
  token->require_subcommand(1);

  CLI::App* mint_cmd = token->add_subcommand(
      "mint",
      "Print a signed token for a user (development and testing; production tokens "
      "come from your own backend)");
  auto options = std::make_shared<MintOptions>();
  mint_cmd->add_option("--config,-c", options->config_path, "edge configuration file (TOML)")
      ->required();
  mint_cmd->add_option("--tenant,-t", options->tenant, "tenant name")->required();
  mint_cmd->add_option("--user,-u", options->user, "user id (the `sub` claim)")->required();
  mint_cmd->add_option("--ttl", options->ttl_s, "lifetime in seconds")
      ->default_val(3600)
      ->check(CLI::Range(int64_t{1}, int64_t{366} * 24 * 3600));
  mint_cmd->add_option("--device,-d", options->device, "device id (the `dev` claim)");
  CLI::Option* subs = mint_cmd->add_option(
      "--subs", options->subs, "pattern the user may subscribe to (repeatable; default: tenant's)");
  CLI::Option* pubs = mint_cmd->add_option(
      "--pubs", options->pubs, "pattern the user may publish to (repeatable; default: tenant's)");
  subs->allow_extra_args(false);
  pubs->allow_extra_args(false);
  mint_cmd->add_option("--kid", options->kid,
                       "key id to sign with (default: the tenant's first key that can sign)");
  mint_cmd->callback([options, subs, pubs, &exit_code] {
    options->has_subs = subs->count() > 0;
    options->has_pubs = pubs->count() > 0;
    exit_code = mint(*options);
  });
}

}  // namespace wsfleet::ctl

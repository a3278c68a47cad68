#include "tools/ctl/fleet_client.h"

#include "common/control_subjects.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "bridge/bridge_config.h"
#include "common/nats_config.h"

namespace wsfleet::ctl {

namespace {

constexpr int64_t kConnectTimeoutMs = 5000;
constexpr int64_t kMaxWindowMs = 60000;

Status usage(std::string message) {
  return Status(Code::kConfig, "bad_arguments", std::move(message));
}

}  // namespace

void addFleetFlags(CLI::App* command, FleetArgs& args) {
  command->add_option("--config", args.config_path,
                      "a bridge conf (bridge.toml): its [nats] section and topology");
  command->add_option("--topology", args.topology_path, "topology file (TOML): the regions");
  command->add_option("--nats", args.servers, "a NATS server of the fleet (repeatable)");
  command->add_option("--creds", args.creds_file, "NATS credentials file");
  command->add_option("--token", args.token, "NATS token");
  command->add_option("--tls-ca", args.tls_ca_file, "CA file: connect with TLS");
  command
      ->add_option("--timeout-ms", args.timeout_ms, "how long answers are collected from the fleet")
      ->capture_default_str();
  command->add_flag("--json", args.json, "JSON output");
}

Result<std::unique_ptr<FleetClient>> FleetClient::open(const FleetArgs& args) {
  if (args.timeout_ms < 1 || args.timeout_ms > kMaxWindowMs) {
    return usage("--timeout-ms must be in 1.." + std::to_string(kMaxWindowMs));
  }
  NatsConfig nats;
  std::string topology_path = args.topology_path;
  if (!args.config_path.empty()) {
    WSF_ASSIGN_OR_RETURN(BridgeConfig conf, loadBridgeConfig(args.config_path));
    nats = conf.nats;
    if (topology_path.empty()) topology_path = conf.topology_path;
  }
  // Flags win over the conf, field by field.
  if (!args.servers.empty()) nats.servers = args.servers;
  if (!args.creds_file.empty() || !args.token.empty()) {
    nats.creds_file = args.creds_file;
    nats.token = args.token;
    nats.user.clear();
    nats.password.clear();
  }
  if (!args.tls_ca_file.empty()) {
    nats.tls = true;
    nats.tls_ca_file = args.tls_ca_file;
  }
  if (topology_path.empty()) return usage("no topology: give --topology FILE or --config FILE");
  std::unique_ptr<FleetClient> client(new FleetClient());
  client->window_ms_ = args.timeout_ms;
  WSF_ASSIGN_OR_RETURN(client->topology_, loadTopology(topology_path));
  // Without --nats or a conf: the servers the topology lists (any region's will do, the
  // supercluster routes the control subjects everywhere).
  if (nats.servers.empty()) {
    for (const RegionSpec& r : client->topology_.regions) {
      nats.servers.insert(nats.servers.end(), r.nats_urls.begin(), r.nats_urls.end());
    }
  }
  if (nats.servers.empty()) return usage("no NATS server: give --nats URL or --config FILE");
  if (!nats.creds_file.empty() && !nats.token.empty()) {
    return usage("give at most one of --creds and --token");
  }
  WSF_ASSIGN_OR_RETURN(client->nats_, BlockingNats::connect(nats, kConnectTimeoutMs));
  return client;
}

std::vector<std::string> FleetClient::regions() const {
  std::vector<std::string> out;
  for (const RegionSpec& r : topology_.regions) out.push_back(r.name);
  return out;
}

FleetClient::ProcessAnswers FleetClient::askEdgesAndBridges() {
  const std::vector<std::string> names = regions();
  std::vector<std::string> where;
  std::vector<BlockingNats::Ask> asks;
  for (const std::string& r : names) {
    where.push_back(r);
    asks.push_back({controlEdgesSubject(r), "{}"});
  }
  for (const std::string& r : names) {
    where.push_back(r);
    asks.push_back({controlBridgesSubject(r), "{}"});
  }
  auto answers = ask(where, asks);
  ProcessAnswers out;
  out.edges.assign(answers.begin(), answers.begin() + static_cast<std::ptrdiff_t>(names.size()));
  out.bridges.assign(answers.begin() + static_cast<std::ptrdiff_t>(names.size()), answers.end());
  return out;
}

std::vector<RegionAnswers> FleetClient::ask(const std::vector<std::string>& regions,
                                            const std::vector<BlockingNats::Ask>& asks) {
  auto gathered = nats_->gather(asks, window_ms_, kMaxAnswersPerRegion);
  std::vector<RegionAnswers> out;
  for (size_t i = 0; i < asks.size(); ++i) {
    RegionAnswers a;
    a.region = regions[i];
    a.replies = std::move(gathered[i].replies);
    a.answered = !a.replies.empty();
    a.over_limit = gathered[i].over_limit;
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<RegionAnswers> FleetClient::collect(const std::vector<BlockingNats::Ask>& asks) {
  return ask(regions(), asks);
}

int reportFailure(const Status& status) {
  std::cerr << "wsfleetctl: " << status.message() << "\n";
  return status.code() == Code::kConfig || status.code() == Code::kBadRequest ? 2 : 1;
}

std::string Table::render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string rate(double per_second) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", per_second);
  return buf;
}

}  // namespace wsfleet::ctl

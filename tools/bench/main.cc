// wsfleet-bench: a loopback-only load generator for wsfleet and its peer servers.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <map>

#include "tools/bench/adapter.h"
#include "tools/bench/options.h"
#include "tools/bench/report.h"
#include "tools/bench/runner.h"
#include "tools/bench/target.h"

namespace {

using wsfleet::bench::BenchOptions;
using wsfleet::bench::Scenario;

constexpr const char* kDescription = R"(wsfleet-bench: drive wsfleet and peer servers with the same scenarios.

Scenarios:
  idle     K connections, each subscribed to one of C channels, held --duration seconds.
           Reports the server's RSS growth per connection (VmRSS of --server-pid) and
           the kernel's TCP socket count and memory (/proc/net/sockstat).
  connect  K connections opened as fast as possible (--concurrency in flight per process),
           each with its own token. Reports handshakes/s, failures by reason and server
           CPU per handshake (utime+stime of --server-pid).
  fanout   K subscribers spread over C channels, --publishers connections publishing at
           --rate messages/s in total (or --burst: as fast as the sockets take them) for
           --duration seconds. Reports deliveries/s, the delivered fraction, end-to-end
           latency (send timestamp in the payload, CLOCK_MONOTONIC: same host) and server
           CPU per delivery.
  direct   K connections sending direct messages to random connected users at --rate in
           total (wsfleet: `send` to the user; peers: publish to the user's inbox topic).

Targets: wsfleet (protocol v1), nats (nats-server websocket), mqtt (MQTT 3.1.1 over WS),
ws (node ws peer), socketio (socket.io 4). The peer protocols are in PEER_PROTOCOL.md.
wsfleet publishes go over the WebSocket, like every peer's, so all targets are measured
on the same path. Only loopback targets and source addresses are accepted.)";

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  CLI::App app{kDescription, "wsfleet-bench"};
  app.get_formatter()->column_width(34);
  const std::map<std::string, Scenario> scenarios{{"idle", Scenario::kIdle},
                                                  {"connect", Scenario::kConnect},
                                                  {"fanout", Scenario::kFanout},
                                                  {"direct", Scenario::kDirect}};
  std::string source_ips;
  app.add_option("--target", o.target, "Server protocol: wsfleet, nats, mqtt, ws, socketio")
      ->check(CLI::IsMember({"wsfleet", "nats", "mqtt", "ws", "socketio"}))
      ->capture_default_str();
  app.add_option("--publish-url", o.publish_url,
                 "fanout: publishers connect here instead (another edge or region)");
  app.add_option("--url", o.url, "ws://HOST:PORT/PATH; HOST must resolve to loopback")
      ->required();
  app.add_option("--scenario", o.scenario_name, "idle, connect, fanout or direct")
      ->check(CLI::IsMember({"idle", "connect", "fanout", "direct"}))
      ->capture_default_str();
  app.add_option("--connections,-k", o.connections,
                 "Connections (subscribers for idle/fanout); at most 1000000")
      ->check(CLI::Range(1u, 1000000u))->capture_default_str();
  app.add_option("--channels,-c", o.channels, "Channels the subscribers are spread over")
      ->check(CLI::Range(1u, 1000000u))->capture_default_str();
  app.add_option("--publishers", o.publishers, "fanout: publisher connections (extra to K)")
      ->check(CLI::Range(1u, 10000u))->capture_default_str();
  app.add_option("--rate", o.rate, "Messages/s in total (publishes or direct sends), paced")
      ->check(CLI::Range(0.001, 1e8))->capture_default_str();
  app.add_flag("--burst", o.burst, "Send as fast as the sockets accept for --duration");
  app.add_option("--duration", o.duration_s, "Publish window or idle hold, seconds")
      ->check(CLI::Range(0.1, 3600.0))->capture_default_str();
  app.add_option("--drain", o.drain_s, "Max seconds to wait for deliveries after the window")
      ->check(CLI::Range(0.0, 600.0))->capture_default_str();
  app.add_option("--setup-timeout", o.setup_timeout_s,
                 "Seconds allowed to connect and subscribe (and for the connect scenario)")
      ->check(CLI::Range(1.0, 3600.0))->capture_default_str();
  app.add_option("--hard-deadline", o.hard_deadline_s,
                 "Kill everything after this many seconds (0: derived from the others)")
      ->check(CLI::Range(0.0, 86400.0))->capture_default_str();
  app.add_option("--payload-size", o.payload_bytes, "Payload bytes (min 20: the timestamp)")
      ->check(CLI::Range(20u, 1u << 20))->capture_default_str();
  app.add_option("--procs", o.procs, "Worker processes, each with a share of the connections")
      ->check(CLI::Range(1u, 256u))->capture_default_str();
  app.add_option("--source-ips", source_ips,
                 "Source addresses, e.g. 127.0.0.11-127.0.0.14 (worker i uses address i mod n)");
  app.add_option("--concurrency", o.concurrency, "Handshakes in flight per process")
      ->check(CLI::Range(1u, 100000u))->capture_default_str();
  app.add_option("--server-pid", o.server_pid, "Server process for CPU and RSS figures");
  app.add_flag("--json", o.json, "Print one JSON object instead of the table");
  app.add_option("--hs256-secret", o.hs256_secret, "wsfleet: mint HS256 tokens with this secret");
  app.add_option("--kid", o.kid, "wsfleet: key id in minted tokens");
  app.add_option("--tenant", o.tenant, "wsfleet: tenant claim")->capture_default_str();
  app.add_option("--audience", o.audience, "wsfleet: aud claim (empty: none)");
  app.add_option("--token-ttl", o.token_ttl_s, "wsfleet: token lifetime, seconds")
      ->capture_default_str();
  app.add_option("--token-file", o.token_file,
                 "wsfleet: tokens, one a line (connection i uses line i mod n)");
  app.add_option("--namespace", o.ns, "wsfleet: channel namespace")->capture_default_str();
  app.add_option("--header", o.headers, "Extra handshake header 'Name: value' (repeatable)");
  CLI11_PARSE(app, argc, argv);

  o.scenario = scenarios.at(o.scenario_name);
  auto target = wsfleet::bench::resolveTarget(o.url);
  if (!target.isOk()) {
    std::fprintf(stderr, "wsfleet-bench: %s\n", target.status().toString().c_str());
    return 2;
  }
  if (!o.publish_url.empty()) {
    if (auto publish = wsfleet::bench::resolveTarget(o.publish_url); !publish.isOk()) {
      std::fprintf(stderr, "wsfleet-bench: --publish-url: %s\n",
                   publish.status().toString().c_str());
      return 2;
    }
  }
  if (!source_ips.empty()) {
    auto ips = wsfleet::bench::expandSourceIps(source_ips);
    if (!ips.isOk()) {
      std::fprintf(stderr, "wsfleet-bench: %s\n", ips.status().toString().c_str());
      return 2;
    }
    o.source_ips = std::move(ips).value();
  }
  if (!o.token_file.empty()) {
    std::ifstream in(o.token_file);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty()) o.tokens.push_back(line);
    }
    if (o.tokens.empty()) {
      std::fprintf(stderr, "wsfleet-bench: no token in %s\n", o.token_file.c_str());
      return 2;
    }
  }
  if (o.target == "wsfleet" && o.tokens.empty() && o.hs256_secret.size() < 32) {
    std::fprintf(stderr,
                 "wsfleet-bench: --target wsfleet needs --hs256-secret (>= 32 bytes) or "
                 "--token-file\n");
    return 2;
  }
  if (auto a = wsfleet::bench::makeAdapter(o); !a.isOk()) {
    std::fprintf(stderr, "wsfleet-bench: %s\n", a.status().toString().c_str());
    return 2;
  }
  auto result = wsfleet::bench::runBench(o, *target);
  if (!result.isOk()) {
    std::fprintf(stderr, "wsfleet-bench: %s\n", result.status().toString().c_str());
    return 1;
  }
  const std::string text = o.json ? wsfleet::bench::renderJson(o, *result)
                                  : wsfleet::bench::renderTable(o, *result);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}

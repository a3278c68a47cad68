// wsfleetctl's fleet commands over the control plane (common/control_subjects.h):
// `status`, `edge list | drain | undrain`, `presence user | channel`, `conn kick`,
// `bridge links | pause | resume`. Every region is asked at once; answers are collected
// for --timeout-ms. A region from which nothing came back makes the answer partial
// (exit 3), and the output says which.
#include <algorithm>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/channel.h"
#include "common/config_values.h"
#include "common/control_subjects.h"
#include "common/jetstream_api.h"
#include "common/owner_records.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/fleet_client.h"
#include "tools/ctl/owner_bucket.h"
#include "tools/ctl/fleet_views.h"

namespace wsfleet::ctl {
namespace {

// Moved channels read from the ownership bucket by `status`, at most.
constexpr uint64_t kMaxOwnerRecords = 1000;
constexpr double kMaxDrainWindowS = 3600;

struct Args {
  FleetArgs fleet;
  std::string node;
  double window_s = -1;  // < 0: the edge's drain.window_ms
  std::string tenant;
  std::string user;
  std::string channel;
  std::string reason;
  std::string region;
};

Status usage(std::string message) {
  return Status(Code::kBadRequest, "bad_arguments", std::move(message));
}

std::vector<std::string> silentRegions(const std::vector<RegionAnswers>& answers) {
  std::vector<std::string> out;
  for (const RegionAnswers& a : answers) {
    if (!a.answered) out.push_back(a.region);
  }
  return out;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Warns about regions that did not answer; kExitPartial when there are any.
int partialCheck(const std::vector<std::string>& silent, const char* what) {
  if (silent.empty()) return kExitOk;
  std::cerr << "wsfleetctl: partial answer: no " << what << " answered in " << joined(silent)
            << "\n";
  return kExitPartial;
}

void writeArray(JsonWriter& w, const char* key, const std::vector<std::string>& items) {
  w.key(key).beginArray();
  for (const std::string& item : items) w.raw(item);
  w.endArray();
}

void writeStrings(JsonWriter& w, const char* key, const std::vector<std::string>& items) {
  w.key(key).beginArray();
  for (const std::string& item : items) w.string(item);
  w.endArray();
}

// The errors among the answers: a request every edge refused is the caller's mistake
// (exit 2), with the first message.
struct Refusals {
  size_t count = 0;
  size_t answers = 0;
  ControlError first;
};
Refusals refusalsOf(FleetClient& fleet, const std::vector<RegionAnswers>& answers) {
  Refusals r;
  for (const RegionAnswers& a : answers) {
    for (const std::string& reply : a.replies) {
      ++r.answers;
      if (auto e = controlErrorOf(fleet.parser(), reply)) {
        if (r.count++ == 0) r.first = *e;
      }
    }
  }
  return r;
}

int refused(const Refusals& r) {
  std::cerr << "wsfleetctl: refused (" << r.first.reason << "): " << r.first.message << "\n";
  const bool usage_error = r.first.reason == "unknown_tenant" || r.first.reason == "bad_user" ||
                           r.first.reason == "bad_channel" || r.first.reason == "bad_request" ||
                           r.first.reason == "bad_reason" || r.first.reason == "bad_window" ||
                           r.first.reason == "unknown_region";
  return usage_error ? kExitUsage : kExitFailure;
}

// ---- ownership moves in progress (the fleet's ownership bucket) ----

Result<std::vector<OwnerRecord>> movesInProgress(FleetClient& fleet, bool* truncated) {
  WSF_ASSIGN_OR_RETURN(std::vector<OwnerRecord> records,
                       readOwnerRecords(fleet, kMaxOwnerRecords, truncated));
  std::erase_if(records, [](const OwnerRecord& r) { return r.state != OwnerState::kMoving; });
  return records;
}

// ---- status ----

int runStatus(const Args& args) {
  auto opened = FleetClient::open(args.fleet);
  if (!opened) return reportFailure(opened.status());
  FleetClient& fleet = **opened;
  const std::vector<std::string> regions = fleet.regions();
  auto [edge_answers, bridge_answers] = fleet.askEdgesAndBridges();
  size_t bad = 0;
  const auto edges = parseEdges(fleet.parser(), edge_answers, &bad);
  const auto bridges = parseBridges(fleet.parser(), bridge_answers, &bad);
  const auto silent_edges = silentRegions(edge_answers);
  const auto silent_bridges = silentRegions(bridge_answers);
  std::set<std::string> silent_set(silent_edges.begin(), silent_edges.end());
  silent_set.insert(silent_bridges.begin(), silent_bridges.end());
  const std::vector<std::string> silent(silent_set.begin(), silent_set.end());
  bool moves_truncated = false;
  auto moves = movesInProgress(fleet, &moves_truncated);
  if (args.fleet.json) {
    std::string out;
    JsonWriter w(out);
    w.beginObject();
    writeStrings(w, "regions", regions);
    std::vector<std::string> e, b;
    for (const EdgeView& v : edges) e.push_back(v.json);
    for (const BridgeView& v : bridges) b.push_back(v.json);
    writeArray(w, "edges", e);
    writeArray(w, "bridges", b);
    writeStrings(w, "edges_silent", silent_edges);
    writeStrings(w, "bridges_silent", silent_bridges);
    w.key("moves").beginArray();
    if (moves) {
      for (const OwnerRecord& m : *moves) {
        w.beginObject()
            .field("tenant", m.tenant)
            .field("channel", m.channel)
            .field("from", m.from)
            .field("to", m.owner)
            .fieldUint("gen", m.gen)
            .fieldInt("at_ms", m.at_ms)
            .endObject();
      }
    }
    w.endArray();
    if (!moves) w.field("moves_error", moves.status().message());
    w.fieldBool("partial", !silent.empty()).endObject();
    std::cout << out << "\n";
  } else {
    std::cout << regionTable(regions, edges, bridges, silent).render() << "\n";
    std::cout << "EDGES\n" << edgeTable(edges).render() << "\n";
    std::cout << "BRIDGES\n" << bridgeTable(bridges).render() << "\n";
    std::cout << "OWNERSHIP MOVES IN PROGRESS\n";
    if (!moves) {
      std::cout << "unknown: " << moves.status().message() << "\n";
    } else if (moves->empty()) {
      std::cout << "none\n";
    } else {
      Table t({"TENANT", "CHANNEL", "FROM", "TO", "GENERATION"});
      for (const OwnerRecord& m : *moves) {
        t.add({m.tenant, m.channel, m.from, m.owner, std::to_string(m.gen)});
      }
      std::cout << t.render();
      if (moves_truncated)
        std::cout << "(only the first " << kMaxOwnerRecords << " records read)\n";
    }
  }
  if (bad > 0) std::cerr << "wsfleetctl: " << bad << " answers could not be read\n";
  return partialCheck(silent, "edge or bridge");
}

// The answers of one kind of process (edge workers, bridges): a JSON object with them and
// the regions that did not answer, or a table; the exit code says whether all answered.
template <typename View, typename MakeTable>
int printProcesses(const Args& args, const char* key, const std::vector<View>& views,
                   MakeTable make_table, const std::vector<std::string>& silent,
                   const char* what) {
  if (args.fleet.json) {
    std::string out;
    JsonWriter w(out);
    w.beginObject();
    std::vector<std::string> items;
    for (const View& v : views) items.push_back(v.json);
    writeArray(w, key, items);
    writeStrings(w, "silent_regions", silent);
    w.endObject();
    std::cout << out << "\n";
  } else {
    std::cout << make_table().render();
  }
  return partialCheck(silent, what);
}

// ---- edge ----

int runEdgeList(const Args& args) {
  auto opened = FleetClient::open(args.fleet);
  if (!opened) return reportFailure(opened.status());
  FleetClient& fleet = **opened;
  auto answers =
      fleet.askEveryRegion([](const std::string& r) { return controlEdgesSubject(r); }, "{}");
  const auto edges = parseEdges(fleet.parser(), answers, nullptr);
  return printProcesses(args, "edges", edges, [&] { return edgeTable(edges); },
                        silentRegions(answers), "edge");
}

int runEdgeDrain(const Args& args, bool drain) {
  if (std::string bad = checkNodeName(args.node); !bad.empty()) {
    return reportFailure(usage("node name " + bad));
  }
  if (drain && args.window_s > kMaxDrainWindowS) {
    return reportFailure(usage("--window must be in 0..3600 seconds"));
  }
  auto opened = FleetClient::open(args.fleet);
  if (!opened) return reportFailure(opened.status());
  FleetClient& fleet = **opened;
  // Where the node is, and how many workers it has.
  auto answers =
      fleet.askEveryRegion([](const std::string& r) { return controlEdgesSubject(r); }, "{}");
  const auto silent = silentRegions(answers);
  std::string region;
  size_t workers = 0;
  const std::vector<std::string> known = fleet.regions();
  for (const EdgeView& e : parseEdges(fleet.parser(), answers, nullptr)) {
    if (e.node != args.node) continue;
    // The region names a subject: only one of the topology's, whatever an answer says.
    if (std::find(known.begin(), known.end(), e.region) == known.end()) continue;
    region = e.region;
    ++workers;
  }
  if (region.empty()) {
    if (!silent.empty()) {
      std::cerr << "wsfleetctl: no edge node '" << args.node << "' answered, and no edge of "
                << joined(silent) << " answered at all\n";
      return kExitPartial;
    }
    return reportFailure(
        usage("no edge node '" + args.node + "' in the fleet (`wsfleetctl edge list` shows them)"));
  }
  std::string body = "{}";
  if (drain && args.window_s >= 0) {
    body.clear();
    JsonWriter(body)
        .beginObject()
        .fieldUint("window_ms", static_cast<uint64_t>(args.window_s * 1000))
        .endObject();
  }
  auto done = fleet.ask(
      {region}, {{controlNodeSubject(region, args.node, drain ? "drain" : "undrain"), body}});
  Refusals r = refusalsOf(fleet, done);
  if (r.count > 0) return refused(r);
  std::vector<std::string> replies;
  Table t({"REGION", "NODE", "WORKER", "DRAINING", "CHANGED", "WINDOW_MS", "CONNS"});
  for (const std::string& reply : done[0].replies) {
    auto doc = fleet.parser().parse(reply);
    if (!doc) continue;
    replies.push_back(jsonToString(*doc));
    auto s = [&](const char* f) {
      std::string_view v;
      return (*doc)[f].get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
    };
    auto u = [&](const char* f) { return std::to_string(uint(*doc, f)); };
    auto b = [&](const char* f) {
      bool v = false;
      return (*doc)[f].get(v) == simdjson::SUCCESS && v ? "yes" : "no";
    };
    t.add({s("region"), s("node"), u("worker"), b("draining"), b("changed"), u("window_ms"),
           u("connections")});
  }
  if (args.fleet.json) {
    std::string out;
    JsonWriter w(out);
    w.beginObject().field("node", args.node).field("region", region).fieldUint("workers", workers);
    writeArray(w, "workers_answered", replies);
    w.endObject();
    std::cout << out << "\n";
  } else {
    std::cout << t.render();
  }
  if (replies.size() < workers) {
    std::cerr << "wsfleetctl: partial answer: " << replies.size() << " of " << workers
              << " workers of " << args.node << " answered\n";
    return kExitPartial;
  }
  return kExitOk;
}

// ---- presence and kick ----

Status checkTenant(const std::string& tenant) {
  if (std::string bad = checkTenantName(tenant); !bad.empty()) {
    return usage("tenant name " + bad);
  }
  return Status::ok();
}

int runPresence(const Args& args, bool of_user) {
  if (Status ok = checkTenant(args.tenant); !ok) return reportFailure(ok);
  if (Status ok = of_user ? validateUserId(args.user) : validateChannelName(args.channel); !ok) {
    return reportFailure(ok);
  }
  auto opened = FleetClient::open(args.fleet);
  if (!opened) return reportFailure(opened.status());
  FleetClient& fleet = **opened;
  std::string body;
  JsonWriter(body)
      .beginObject()
      .field("tenant", args.tenant)
      .field(of_user ? "user" : "channel", of_user ? args.user : args.channel)
      .endObject();
  auto answers =
      fleet.askEveryRegion([](const std::string& r) { return controlPresenceSubject(r); }, body);
  Refusals r = refusalsOf(fleet, answers);
  if (r.count > 0 && r.count == r.answers) return refused(r);
  Table t({"REGION", "NODE", "WORKER", "USER", "SESSION", "DEVICE", "CHANNELS"});
  std::vector<std::string> found;
  bool truncated = false;
  size_t rows = 0;
  for (const RegionAnswers& a : answers) {
    for (const std::string& reply : a.replies) {
      auto doc = fleet.parser().parse(reply);
      simdjson::dom::array conns;
      if (!doc || (*doc)["connections"].get(conns) != simdjson::SUCCESS) continue;
      const std::string region = str(*doc, "region");
      const std::string node = str(*doc, "node");
      const int64_t worker = integer(*doc, "worker");
      bool more = false;
      if ((*doc)["truncated"].get(more) == simdjson::SUCCESS && more) truncated = true;
      for (simdjson::dom::element c : conns) {
        t.add({region, node, std::to_string(worker), str(c, "user"), str(c, "session"),
               str(c, "device"), std::to_string(uint(c, "channels"))});
        ++rows;
      }
      found.push_back(jsonToString(*doc));
    }
  }
  const auto silent = silentRegions(answers);
  if (args.fleet.json) {
    std::string out;
    JsonWriter w(out);
    w.beginObject().field("tenant", args.tenant);
    w.field(of_user ? "user" : "channel", of_user ? args.user : args.channel);
    w.fieldUint("connections", rows).fieldBool("truncated", truncated);
    writeArray(w, "edges", found);
    writeStrings(w, "silent_regions", silent);
    w.endObject();
    std::cout << out << "\n";
  } else if (rows > 0) {
    std::cout << t.render();
    if (truncated)
      std::cout << "(some edges listed only their first " << kControlMaxEntries << ")\n";
  } else {
    std::cout << "no connection found\n";
  }
  if (int partial = partialCheck(silent, "edge"); partial != kExitOk) return partial;
  return rows > 0 ? kExitOk : kExitFailure;
}

int runKick(const Args& args) {
  if (Status ok = checkTenant(args.tenant); !ok) return reportFailure(ok);
  if (Status ok = validateUserId(args.user); !ok) return reportFailure(ok);
  if (Status ok = validateCloseReason(args.reason); !ok) return reportFailure(ok);
  auto opened = FleetClient::open(args.fleet);
  if (!opened) return reportFailure(opened.status());
  FleetClient& fleet = **opened;
  std::string body;
  JsonWriter(body)
      .beginObject()
      .field("tenant", args.tenant)
      .field("user", args.user)
      .field("reason", args.reason)
      .endObject();
  auto answers =
      fleet.askEveryRegion([](const std::string& r) { return controlKickSubject(r); }, body);
  Refusals r = refusalsOf(fleet, answers);
  if (r.count > 0 && r.count == r.answers) return refused(r);
  uint64_t kicked = 0;
  Table t({"REGION", "NODE", "WORKER", "KICKED"});
  std::vector<std::string> replies;
  for (const RegionAnswers& a : answers) {
    for (const std::string& reply : a.replies) {
      auto doc = fleet.parser().parse(reply);
      uint64_t n = 0;
      if (!doc || (*doc)["kicked"].get(n) != simdjson::SUCCESS) continue;
      kicked += n;
      replies.push_back(jsonToString(*doc));
      if (n == 0) continue;
      const std::string region = str(*doc, "region");
      const std::string node = str(*doc, "node");
      const int64_t worker = integer(*doc, "worker");
      t.add({region, node, std::to_string(worker), std::to_string(n)});
    }
  }
  const auto silent = silentRegions(answers);
  if (args.fleet.json) {
    std::string out;
    JsonWriter w(out);
    w.beginObject()
        .field("tenant", args.tenant)
        .field("user", args.user)
        .fieldUint("kicked", kicked);
    writeArray(w, "edges", replies);
    writeStrings(w, "silent_regions", silent);
    w.endObject();
    std::cout << out << "\n";
  } else {
    if (kicked > 0) std::cout << t.render();
    std::cout << "closed " << kicked << " connection(s) of " << args.user << " with 4011\n";
  }
  if (int partial = partialCheck(silent, "edge"); partial != kExitOk) return partial;
  return kicked > 0 ? kExitOk : kExitFailure;
}

// ---- bridge ----

int runBridgeLinks(const Args& args) {
  auto opened = FleetClient::open(args.fleet);
  if (!opened) return reportFailure(opened.status());
  FleetClient& fleet = **opened;
  auto answers =
      fleet.askEveryRegion([](const std::string& r) { return controlBridgesSubject(r); }, "{}");
  const auto bridges = parseBridges(fleet.parser(), answers, nullptr);
  return printProcesses(args, "bridges", bridges, [&] { return bridgeTable(bridges); },
                        silentRegions(answers), "bridge");
}

int runBridgePause(const Args& args, bool pause) {
  auto opened = FleetClient::open(args.fleet);
  if (!opened) return reportFailure(opened.status());
  FleetClient& fleet = **opened;
  if (fleet.topology().findRegion(args.region) == nullptr) {
    return reportFailure(usage("'" + args.region + "' is not a region of the topology"));
  }
  std::string body;
  JsonWriter(body).beginObject().field("region", args.region).endObject();
  const char* verb = pause ? "pause" : "resume";
  auto answers = fleet.askEveryRegion(
      [verb](const std::string& r) { return controlBridgeSubject(r, verb); }, body);
  Refusals r = refusalsOf(fleet, answers);
  if (r.count > 0) return refused(r);
  Table t({"REGION", "BRIDGE", "CHANGED", "LINKS"});
  std::vector<std::string> replies;
  for (const RegionAnswers& a : answers) {
    for (const std::string& reply : a.replies) {
      auto doc = fleet.parser().parse(reply);
      simdjson::dom::array links;
      if (!doc || (*doc)["links"].get(links) != simdjson::SUCCESS) continue;
      replies.push_back(jsonToString(*doc));
      std::string states;
      for (simdjson::dom::element l : links) {
        states += (states.empty() ? "" : " ") + str(l, "region") + ":" +
                  (flag(l, "paused") ? "paused" : (flag(l, "up") ? "up" : "down"));
      }
      t.add({str(*doc, "region"), str(*doc, "instance"), std::to_string(uint(*doc, "changed")),
             states});
    }
  }
  const auto silent = silentRegions(answers);
  if (args.fleet.json) {
    std::string out;
    JsonWriter w(out);
    w.beginObject().field("region", args.region).field("action", verb);
    writeArray(w, "bridges", replies);
    writeStrings(w, "silent_regions", silent);
    w.endObject();
    std::cout << out << "\n";
  } else {
    std::cout << t.render();
  }
  return partialCheck(silent, "bridge");
}

}  // namespace

void addFleetCommands(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<Args>();

  CLI::App* status = app.add_subcommand(
      "status", "The fleet at a glance: regions, edges, bridges, links, rates, moves");
  addFleetFlags(status, args->fleet);
  status->callback([args, &exit_code] { exit_code = runStatus(*args); });

  CLI::App* edge = app.add_subcommand("edge", "Edge nodes: list, drain, undrain");
  edge->require_subcommand(1);
  CLI::App* list = edge->add_subcommand("list", "Every edge worker of every region");
  addFleetFlags(list, args->fleet);
  list->callback([args, &exit_code] { exit_code = runEdgeList(*args); });
  CLI::App* drain = edge->add_subcommand(
      "drain", "Drain an edge node (held: it stays up, readiness 503, until undrain)");
  drain->add_option("NODE", args->node, "the edge's node name")->required();
  drain
      ->add_option("--window", args->window_s,
                   "seconds over which clients are told to reconnect (default: the edge's "
                   "drain.window_ms)")
      ->check(CLI::Range(0.0, kMaxDrainWindowS));
  addFleetFlags(drain, args->fleet);
  drain->callback([args, &exit_code] { exit_code = runEdgeDrain(*args, true); });
  CLI::App* undrain =
      edge->add_subcommand("undrain", "End a held drain: the node takes clients again");
  undrain->add_option("NODE", args->node, "the edge's node name")->required();
  addFleetFlags(undrain, args->fleet);
  undrain->callback([args, &exit_code] { exit_code = runEdgeDrain(*args, false); });

  CLI::App* presence =
      app.add_subcommand("presence", "Where a user is connected, who is in a channel");
  presence->require_subcommand(1);
  CLI::App* user = presence->add_subcommand("user", "Every connection of a user, fleet-wide");
  user->add_option("TENANT", args->tenant, "tenant")->required();
  user->add_option("USER", args->user, "user id")->required();
  addFleetFlags(user, args->fleet);
  user->callback([args, &exit_code] { exit_code = runPresence(*args, true); });
  CLI::App* channel =
      presence->add_subcommand("channel", "Every subscribed connection of a channel");
  channel->add_option("TENANT", args->tenant, "tenant")->required();
  channel->add_option("CHANNEL", args->channel, "channel (ns:name)")->required();
  addFleetFlags(channel, args->fleet);
  channel->callback([args, &exit_code] { exit_code = runPresence(*args, false); });

  CLI::App* conn = app.add_subcommand("conn", "Client connections");
  conn->require_subcommand(1);
  CLI::App* kick = conn->add_subcommand(
      "kick", "Close every connection of a user in every region (close code 4011)");
  kick->add_option("TENANT", args->tenant, "tenant")->required();
  kick->add_option("USER", args->user, "user id")->required();
  kick->add_option("--reason", args->reason, "close reason the clients see (<= 123 bytes)");
  addFleetFlags(kick, args->fleet);
  kick->callback([args, &exit_code] { exit_code = runKick(*args); });

  CLI::App* bridge = app.add_subcommand("bridge", "Bridges and the links between regions");
  bridge->require_subcommand(1);
  CLI::App* links = bridge->add_subcommand("links", "Every bridge's links to other regions");
  addFleetFlags(links, args->fleet);
  links->callback([args, &exit_code] { exit_code = runBridgeLinks(*args); });
  CLI::App* pause = bridge->add_subcommand(
      "pause", "Cut a region off: every link to and from it counts as down until resume");
  pause->add_option("REGION", args->region, "region")->required();
  addFleetFlags(pause, args->fleet);
  pause->callback([args, &exit_code] { exit_code = runBridgePause(*args, true); });
  CLI::App* resume = bridge->add_subcommand("resume", "Undo `bridge pause REGION`");
  resume->add_option("REGION", args->region, "region")->required();
  addFleetFlags(resume, args->fleet);
  resume->callback([args, &exit_code] { exit_code = runBridgePause(*args, false); });
}

}  // namespace wsfleet::ctl

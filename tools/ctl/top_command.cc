// `wsfleetctl top`: the fleet's rates, refreshed every second (edges and bridges asked
// over the control plane each time; the rates are the edges' own, over their last 10 s).
// --once prints one frame without clearing the screen; Ctrl-C ends it cleanly.
#include <csignal>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/control_subjects.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/fleet_client.h"
#include "tools/ctl/fleet_views.h"

namespace wsfleet::ctl {
namespace {

constexpr int64_t kMinIntervalMs = 200;

volatile std::sig_atomic_t g_interrupted = 0;

void onInterrupt(int) {
  g_interrupted = 1;
}

struct TopArgs {
  FleetArgs fleet;
  bool once = false;
  int64_t interval_ms = 1000;
};

// One frame: the answers of this round, rendered.
int frame(FleetClient& fleet, const TopArgs& args, bool clear) {
  const std::vector<std::string> regions = fleet.regions();
  auto [edge_answers, bridge_answers] = fleet.askEdgesAndBridges();
  const auto edges = parseEdges(fleet.parser(), edge_answers, nullptr);
  const auto bridges = parseBridges(fleet.parser(), bridge_answers, nullptr);
  std::vector<std::string> silent;
  for (size_t i = 0; i < regions.size(); ++i) {
    if (!edge_answers[i].answered || !bridge_answers[i].answered) silent.push_back(regions[i]);
  }
  if (args.fleet.json) {
    std::string out;
    JsonWriter w(out);
    w.beginObject().fieldInt("at_ms", nowWallMs()).key("edges").beginArray();
    for (const EdgeView& e : edges) w.raw(e.json);
    w.endArray().key("bridges").beginArray();
    for (const BridgeView& b : bridges) w.raw(b.json);
    w.endArray().key("silent_regions").beginArray();
    for (const std::string& s : silent) w.string(s);
    w.endArray().endObject();
    std::cout << out << std::endl;
  } else {
    std::string text;
    if (clear) text += "\x1b[H\x1b[2J";
    const std::time_t now = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%H:%M:%S", std::localtime(&now));
    text += "wsfleet top  " + std::string(when) + "  (rates per second over the last 10 s)\n\n";
    text += regionTable(regions, edges, bridges, silent).render() + "\n";
    text += edgeTable(edges).render() + "\n";
    Table t({"REGION", "BRIDGE", "OUT/S", "IN/S", "PENDING PUBLISHES", "LINKS"});
    for (const BridgeView& b : bridges) {
      std::string links;
      for (const LinkView& l : b.links) {
        links += (links.empty() ? "" : " ") + l.region + ":" +
                 (l.paused ? "paused" : (l.up ? "up" : "down"));
      }
      t.add({b.region, b.instance, rate(b.messages_out_per_s), rate(b.messages_in_per_s),
             std::to_string(b.pending_publishes), links});
    }
    text += t.render();
    std::cout << text << std::flush;
  }
  return silent.empty() ? kExitOk : kExitPartial;
}

int runTop(const TopArgs& args) {
  if (args.interval_ms < kMinIntervalMs) {
    std::cerr << "wsfleetctl: --interval-ms must be at least " << kMinIntervalMs << "\n";
    return kExitUsage;
  }
  FleetArgs fleet_args = args.fleet;
  // Each frame collects answers for at most most of its interval.
  if (!args.once) fleet_args.timeout_ms = std::min(fleet_args.timeout_ms, args.interval_ms * 3 / 4);
  auto opened = FleetClient::open(fleet_args);
  if (!opened) return reportFailure(opened.status());
  if (args.once) return frame(**opened, args, false);
  struct sigaction sa {};
  sa.sa_handler = onInterrupt;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  int last = kExitOk;
  while (g_interrupted == 0) {
    const int64_t started = nowMonoMs();
    last = frame(**opened, args, true);
    while (g_interrupted == 0 && nowMonoMs() - started < args.interval_ms) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  if (!args.fleet.json) std::cout << "\n";
  (void)last;
  return kExitOk;  // the operator ended it
}

}  // namespace

void addTopCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<TopArgs>();
  CLI::App* top = app.add_subcommand("top", "Live view of the fleet's rates (Ctrl-C ends it)");
  addFleetFlags(top, args->fleet);
  top->add_flag("--once", args->once, "print one frame and exit (exit 3: partial)");
  top->add_option("--interval-ms", args->interval_ms, "refresh period")->capture_default_str();
  top->callback([args, &exit_code] { exit_code = runTop(*args); });
}

}  // namespace wsfleet::ctl

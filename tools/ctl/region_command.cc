// `wsfleetctl region drain | fail | undrain | list`: whole regions in and out of ownership.
//
// Draining a region marks it in the ownership bucket (common/owner_records.h,
// RegionRecord); then every channel it owns is moved away one by one with the fenced move
// of common/ownership_mover.h, to the owner the topology gives with the drained regions
// counted unhealthy: here, the channels an operator had moved to it; on the edges, every
// channel they have subscribers of (at once) and any other on first use. Undraining only
// clears the mark: channels moved away stay where they are, new ones may go to the region
// again. Draining also drains the region's edges (held, not stopping), their hints
// naming the failover region's public URL; undraining undrains them. Failing a region is
// draining it without its help, after its lease ran out (runFail).
#include <chrono>
#include <iostream>
#include <thread>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/control_subjects.h"
#include "common/jetstream_api.h"
#include "common/json.h"
#include "common/owner_records.h"
#include "common/ownership_mover.h"
#include "regions/ownership.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/fleet_client.h"
#include "tools/ctl/fleet_views.h"
#include "tools/ctl/owner_bucket.h"

namespace wsfleet::ctl {
namespace {

constexpr size_t kMaxRecordsScanned = 100000;

constexpr int64_t kMaxWindowS = 3600;  // as `edge drain`'s

struct RegionArgs {
  FleetArgs fleet;
  std::string region;
  int replicas = 3;
  int64_t window_s = -1;  // the edges' drain window; -1: their drain.window_ms
};

Status ensureBucket(FleetClient& fleet, const RegionArgs& args) {
  std::optional<Status> made;
  OwnershipMove::ensureBucket(blockingMoveIo(fleet, kMoveGraceMs, args.replicas),
                              [&made](Status s) { made = std::move(s); });
  if (!made) return Status(Code::kUnavailable, "no_answer", "the bucket was not reached");
  return *made;
}

Status markRegion(FleetClient& fleet, const RegionArgs& args, bool drained) {
  WSF_RETURN_IF_ERROR(ensureBucket(fleet, args));
  RegionRecord record{args.region, drained, RegionFailure::kNone, nowWallMs()};
  return toStatus(putRegionRecord(fleet, record, std::nullopt));
}
// The channels an operator moved to `region`: moved away now (the edges take care of the
// ones nobody moved, which follow the topology).
int moveRecordedChannels(FleetClient& fleet, const RegionArgs& args) {
  bool truncated = false;
  auto records = readOwnerRecords(fleet, kMaxRecordsScanned, &truncated);
  if (!records) return reportFailure(records.status());
  HealthySet healthy;
  std::vector<RegionRecord> marks;
  if (auto read = readRegionRecords(fleet)) marks = std::move(*read);
  for (const RegionSpec& r : fleet.topology().regions) healthy.insert(r.name);
  for (const RegionRecord& mark : marks) {
    if (mark.drained) healthy.erase(mark.region);
  }
  int failed = 0;
  for (const OwnerRecord& record : *records) {
    // A move away from the region that stopped halfway is finished where it was going
    // (forced, when the region has failed meanwhile).
    const bool stopped_away = record.state == OwnerState::kMoving && record.from == args.region;
    if (record.owner != args.region && !stopped_away) continue;
    auto to = stopped_away
                  ? Result<OwnerDecision>(OwnerDecision{record.owner, OwnerSource::kMove})
                  : decideOwner(fleet.topology(), healthy, record.tenant, record.channel);
    if (!to) {
      std::cerr << "wsfleetctl: " << record.channel << ": " << to.status().message() << "\n";
      ++failed;
      continue;
    }
    // The current record (not the listed one): the edges may have moved it meanwhile.
    std::optional<Result<OwnershipMove::Read>> read;
    OwnershipMove::readRecord(blockingMoveIo(fleet, kMoveGraceMs, args.replicas), record.tenant,
                              record.channel,
                              [&read](Result<OwnershipMove::Read> r) { read = std::move(r); });
    if (!read || !*read || !(*read)->found) continue;
    std::optional<Result<OwnerRecord>> moved;
    OwnershipMove::start(blockingMoveIo(fleet, kMoveGraceMs, args.replicas), (*read)->record,
                         (*read)->revision, to->region,
                         [&moved](Result<OwnerRecord> r) { moved = std::move(r); });
    if (moved && *moved) {
      std::cout << "moved " << record.tenant << " " << record.channel << " to "
                << (*moved)->owner << " (generation " << (*moved)->gen << ")\n";
    } else {
      std::cerr << "wsfleetctl: " << record.channel << " not moved: "
                << (moved ? moved->status().message() : std::string("no answer")) << "\n";
      ++failed;
    }
  }
  if (truncated) std::cerr << "(only the first " << kMaxRecordsScanned << " records read)\n";
  return failed == 0 ? kExitOk : kExitFailure;
}

// Where a drained region's clients go: the first region of its failover list that is not
// drained, else the first such region of the topology.
std::string failoverUrl(FleetClient& fleet, const std::string& region) {
  std::set<std::string> drained;
  if (auto marks = readRegionRecords(fleet)) {
    for (const RegionRecord& m : *marks) {
      if (m.drained) drained.insert(m.region);
    }
  }
  const Topology& topology = fleet.topology();
  std::vector<std::string> order = topology.findRegion(region)->failover;
  for (const RegionSpec& r : topology.regions) order.push_back(r.name);
  for (const std::string& name : order) {
    const RegionSpec* spec = topology.findRegion(name);
    if (name != region && drained.count(name) == 0 && spec != nullptr &&
        !spec->public_urls.empty()) {
      return spec->public_urls.front();
    }
  }
  return "";
}

// The region's clients: every edge of it drains (held: it stays up, ready again on
// undrain) with hints naming the failover region's public URL.
int steerClients(FleetClient& fleet, const RegionArgs& args, bool drain) {
  auto found = fleet.ask({args.region}, {{controlEdgesSubject(args.region), "{}"}});
  std::set<std::string> nodes;
  for (const EdgeView& e : parseEdges(fleet.parser(), found, nullptr)) {
    if (e.region == args.region) nodes.insert(e.node);
  }
  std::string body = "{}";
  const std::string url = drain ? failoverUrl(fleet, args.region) : "";
  if (drain) {
    body.clear();
    JsonWriter w(body);
    w.beginObject();
    if (!url.empty()) w.field("url", url);
    if (args.window_s >= 0) w.fieldUint("window_ms", static_cast<uint64_t>(args.window_s) * 1000);
    w.endObject();
  }
  std::vector<std::string> regions;
  std::vector<BlockingNats::Ask> asks;
  for (const std::string& node : nodes) {
    regions.push_back(args.region);
    asks.push_back({controlNodeSubject(args.region, node, drain ? "drain" : "undrain"), body});
  }
  size_t workers = 0;
  if (!asks.empty()) {
    for (const RegionAnswers& a : fleet.ask(regions, asks)) workers += a.replies.size();
  }
  std::cout << (drain ? "drained " : "undrained ") << nodes.size() << " edge(s) of "
            << args.region << " (" << workers << " worker(s))";
  if (!url.empty()) std::cout << ", clients sent to " << url;
  std::cout << "\n";
  return found.empty() || !found.front().answered ? kExitPartial : kExitOk;
}

// The fleet, once the arguments name a region of its topology and a valid window.
Result<std::unique_ptr<FleetClient>> openFor(const RegionArgs& args) {
  WSF_ASSIGN_OR_RETURN(auto fleet, FleetClient::open(args.fleet));
  if (fleet->topology().findRegion(args.region) == nullptr) {
    return Status(Code::kBadRequest, "unknown_region",
                  "'" + args.region + "' is not a region of the topology");
  }
  if (args.window_s < -1 || args.window_s > kMaxWindowS) {
    return Status(Code::kBadRequest, "bad_window",
                  "--window must be in 0.." + std::to_string(kMaxWindowS) + " (or left out)");
  }
  return fleet;
}

int runDrain(const RegionArgs& args, bool drain) {
  auto fleet = openFor(args);
  if (!fleet) return reportFailure(fleet.status());
  if (Status put = markRegion(**fleet, args, drain); !put) return reportFailure(put);
  std::cout << "region " << args.region << (drain ? " drained" : " undrained") << "\n";
  const int moved = drain ? moveRecordedChannels(**fleet, args) : kExitOk;
  const int steered = steerClients(**fleet, args, drain);
  return moved != kExitOk ? moved : steered;
}

// `region fail`: the region is marked failing (no edge confirms its stores from then on),
// the lease runs out (every edge that looked before the mark has stopped confirming
// anything), then it is marked failed: its channels are moved without it (forced moves,
// common/owner_records.h). Compare-and-set throughout: an undrain or a drain meanwhile
// stops it. Running it again finishes an interrupted one (the wait starts over).
int runFail(const RegionArgs& args) {
  auto fleet = openFor(args);
  if (!fleet) return reportFailure(fleet.status());
  FleetClient& f = **fleet;
  if (Status made = ensureBucket(f, args); !made) return reportFailure(made);
  uint64_t revision = 0;
  auto current = readRegionRecord(f, args.region, &revision);
  if (!current) return reportFailure(current.status());
  if (current->failure != RegionFailure::kFailed) {
    RegionRecord failing{args.region, true, RegionFailure::kFailing, nowWallMs()};
    auto marked = putRegionRecord(f, failing, revision);
    if (!marked) return reportFailure(marked.status());
    const int64_t wait_ms = kOwnerLeaseMs + kLeaseMarginMs;
    std::cout << "region " << args.region << " failing: its stores are refused; waiting "
              << wait_ms / 1000 << " s for every edge's lease to run out" << std::endl;
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
    RegionRecord failed{args.region, true, RegionFailure::kFailed, nowWallMs()};
    auto done = putRegionRecord(f, failed, *marked);
    if (!done) return reportFailure(done.status());
  }
  std::cout << "region " << args.region << " failed: its channels move to their next owners"
            << std::endl;
  const int moved = moveRecordedChannels(f, args);
  // Its edges are usually out of reach: they learn it from the bucket once they are back
  // (and send no client anywhere by themselves).
  const int steered = steerClients(f, args, true);
  if (steered == kExitPartial) {
    std::cout << "(" << args.region << "'s edges did not answer: expected while the region "
              << "is down)\n";
  }
  return moved;
}

int runList(const RegionArgs& args) {
  auto fleet = FleetClient::open(args.fleet);
  if (!fleet) return reportFailure(fleet.status());
  auto marks = readRegionRecords(**fleet);
  if (!marks) return reportFailure(marks.status());
  for (const RegionRecord& mark : *marks) {
    if (args.fleet.json) {
      std::string out;
      JsonWriter(out)
          .beginObject()
          .field("region", mark.region)
          .fieldBool("drained", mark.drained)
          .field("state", regionStateName(mark))
          .fieldInt("at_ms", mark.at_ms)
          .endObject();
      std::cout << out << "\n";
    } else {
      std::cout << mark.region << "  " << regionStateName(mark) << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

void addRegionCommands(CLI::App& app, int& exit_code) {
  CLI::App* region = app.add_subcommand("region", "Drain or fail whole regions: their channels move");
  region->require_subcommand(1);
  auto args = std::make_shared<RegionArgs>();

  CLI::App* drain = region->add_subcommand(
      "drain", "Mark a region drained: its channels move to their next owners, fenced");
  addFleetFlags(drain, args->fleet);
  drain->add_option("region", args->region, "the region")->required();
  drain->add_option("--replicas", args->replicas,
                    "replicas of the ownership bucket, when this command creates it")
      ->capture_default_str();
  drain->add_option("--window", args->window_s,
                    "seconds over which the region's clients are sent away (default: each "
                    "edge's drain.window_ms)");
  drain->callback([args, &exit_code] { exit_code = runDrain(*args, true); });

  CLI::App* undrain = region->add_subcommand(
      "undrain",
      "Clear the mark (drained or failed): new channels may be owned by the region again");
  addFleetFlags(undrain, args->fleet);
  undrain->add_option("region", args->region, "the region")->required();
  undrain->add_option("--replicas", args->replicas,
                      "replicas of the ownership bucket, when this command creates it")
      ->capture_default_str();
  undrain->callback([args, &exit_code] { exit_code = runDrain(*args, false); });

  CLI::App* fail = region->add_subcommand(
      "fail",
      "Take a lost region's channels without it: its stores are refused at once, and after "
      "the lease (22 s) its channels move to their next owners (forced)");
  addFleetFlags(fail, args->fleet);
  fail->add_option("region", args->region, "the region")->required();
  fail->add_option("--replicas", args->replicas,
                   "replicas of the ownership bucket, when this command creates it")
      ->capture_default_str();
  fail->add_option("--window", args->window_s,
                   "seconds over which the region's clients are sent away if its edges answer");
  fail->callback([args, &exit_code] { exit_code = runFail(*args); });

  CLI::App* list =
      region->add_subcommand("list", "Print each region's state: active, drained, failing, failed");
  addFleetFlags(list, args->fleet);
  list->callback([args, &exit_code] { exit_code = runList(*args); });
}

}  // namespace wsfleet::ctl

// `wsfleetctl owner get | list | move`: the channels an operator moved between regions.
//
// A move is common/ownership_mover.h's protocol, its requests answered one at a time.
// Interrupted, the same command finishes the move it started.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/channel.h"
#include "common/clock.h"
#include "common/jetstream_api.h"
#include "common/json.h"
#include "common/owner_records.h"
#include "common/ownership_mover.h"
#include "common/region_subjects.h"
#include "regions/ownership.h"
#include "regions/topology.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/fleet_client.h"
#include "tools/ctl/owner_bucket.h"

namespace wsfleet::ctl {
namespace {

constexpr size_t kMaxListedRecords = 100000;

struct OwnerArgs {
  FleetArgs fleet;
  std::string tenant;
  std::string channel;
  std::string to;
  int replicas = 3;
  int64_t grace_ms = kMoveGraceMs;
};

Status failure(std::string reason_message) {
  return Status(Code::kUnavailable, "owner_command_failed", std::move(reason_message));
}

struct CurrentOwner {
  OwnerRecord record;        // gen 0: nobody moved it (the topology's choice)
  uint64_t revision = 0;     // the record's sequence in the bucket; 0: no record
  std::string source;        // "moved" or the topology's reason
};

Result<CurrentOwner> currentOwner(FleetClient& fleet, const OwnerArgs& args) {
  std::optional<Result<OwnershipMove::Read>> read;
  OwnershipMove::readRecord(blockingMoveIo(fleet, args.grace_ms, args.replicas), args.tenant, args.channel,
                            [&read](Result<OwnershipMove::Read> r) { read = std::move(r); });
  if (!read) return failure("the bucket was not read");
  if (!*read) return read->takeStatus();
  CurrentOwner current;
  if ((*read)->found) {
    current.record = std::move((*read)->record);
    current.revision = (*read)->revision;
    current.source = "moved";
    return current;
  }
  HealthySet healthy;
  for (const RegionSpec& region : fleet.topology().regions) healthy.insert(region.name);
  WSF_ASSIGN_OR_RETURN(OwnerDecision decided,
                       decideOwner(fleet.topology(), healthy, args.tenant, args.channel));
  current.record.tenant = args.tenant;
  current.record.channel = args.channel;
  current.record.owner = decided.region;
  current.record.state = OwnerState::kOwned;
  current.source = ownerSourceName(decided.source);
  return current;
}

void print(const OwnerRecord& record, const std::string& source, bool json) {
  if (json) {
    std::string out;
    JsonWriter(out)
        .beginObject()
        .field("tenant", record.tenant)
        .field("channel", record.channel)
        .field("owner", record.owner)
        .fieldUint("gen", record.gen)
        .field("state", ownerStateName(record.state))
        .field("source", source)
        .field("from", record.from)
        .fieldUint("fence", record.fence)
        .fieldUint("base", record.base)
        .fieldBool("forced", record.forced)
        .endObject();
    std::cout << out << "\n";
    return;
  }
  std::cout << record.tenant << "  " << record.channel << "  owner " << record.owner
            << "  generation " << record.gen << "  " << ownerStateName(record.state) << "  ("
            << source;
  if (record.gen > 0 && record.forced) {
    std::cout << ": forced from failed " << record.from << ", base " << record.base;
  } else if (record.gen > 0) {
    std::cout << ": from " << record.from << ", fence " << record.fence << ", base "
              << record.base;
  }
  std::cout << ")\n";
}

int runGet(const OwnerArgs& args) {
  if (Status ok = validateChannelName(args.channel); !ok) return reportFailure(ok);
  auto fleet = FleetClient::open(args.fleet);
  if (!fleet) return reportFailure(fleet.status());
  auto current = currentOwner(**fleet, args);
  if (!current) return reportFailure(current.status());
  print(current->record, current->source, args.fleet.json);
  return kExitOk;
}

int runList(const OwnerArgs& args) {
  auto fleet = FleetClient::open(args.fleet);
  if (!fleet) return reportFailure(fleet.status());
  bool truncated = false;
  auto records = readOwnerRecords(**fleet, kMaxListedRecords, &truncated);
  if (!records) return reportFailure(records.status());
  for (const OwnerRecord& record : *records) print(record, "moved", args.fleet.json);
  if (truncated) std::cerr << "(only the first " << kMaxListedRecords << " records)\n";
  return kExitOk;
}

Status move(FleetClient& fleet, const OwnerArgs& args) {
  if (args.grace_ms < kMoveGraceMs) {
    // Edges rely on it (common/owner_records.h): a shorter wait could fence a store an edge
    // has already confirmed by its own copy of the bucket.
    return Status(Code::kBadRequest, "grace_too_short",
                  "--grace-ms must be at least " + std::to_string(kMoveGraceMs));
  }
  if (fleet.topology().findRegion(args.to) == nullptr) {
    return Status(Code::kBadRequest, "unknown_region",
                  "'" + args.to + "' is not a region of the topology");
  }
  WSF_ASSIGN_OR_RETURN(CurrentOwner current, currentOwner(fleet, args));
  if (current.record.state == OwnerState::kOwned && current.record.owner == args.to) {
    std::cerr << "already owned by " << args.to << "\n";
    return Status::ok();
  }
  std::optional<Result<OwnerRecord>> moved;
  OwnershipMove::start(blockingMoveIo(fleet, args.grace_ms, args.replicas), current.record, current.revision, args.to,
                       [&moved](Result<OwnerRecord> result) { moved = std::move(result); });
  if (!moved) return failure("the move stopped without an answer");
  if (!*moved) {
    const Status& why = moved->status();
    if (std::string_view(why.reason()) == "changed_concurrently") {
      return Status(why.code(), why.reason(), why.message() + "; run the command again");
    }
    return why;
  }
  print(**moved, "moved", args.fleet.json);
  return Status::ok();
}

int runMove(const OwnerArgs& args) {
  if (Status ok = validateChannelName(args.channel); !ok) return reportFailure(ok);
  auto fleet = FleetClient::open(args.fleet);
  if (!fleet) return reportFailure(fleet.status());
  Status moved = move(**fleet, args);
  return moved ? kExitOk : reportFailure(moved);
}

}  // namespace

void addOwnerCommands(CLI::App& app, int& exit_code) {
  CLI::App* owner = app.add_subcommand("owner", "Which region owns a channel; move channels");
  owner->require_subcommand(1);
  auto args = std::make_shared<OwnerArgs>();

  CLI::App* get = owner->add_subcommand("get", "Print a channel's owner region and generation");
  addFleetFlags(get, args->fleet);
  get->add_option("--tenant", args->tenant, "tenant")->required();
  get->add_option("--channel", args->channel, "channel (ns:name)")->required();
  get->callback([args, &exit_code] { exit_code = runGet(*args); });

  CLI::App* list = owner->add_subcommand("list", "Print every channel an operator moved");
  addFleetFlags(list, args->fleet);
  list->callback([args, &exit_code] { exit_code = runList(*args); });

  CLI::App* mv = owner->add_subcommand(
      "move", "Move a channel to another region, fenced: its old owner never sequences it again");
  addFleetFlags(mv, args->fleet);
  mv->add_option("--tenant", args->tenant, "tenant")->required();
  mv->add_option("--channel", args->channel, "channel (ns:name)")->required();
  mv->add_option("--to", args->to, "the new owner region")->required();
  mv->add_option("--replicas", args->replicas,
                 "replicas of the ownership bucket, when this move creates it")
      ->capture_default_str();
  mv->add_option("--grace-ms", args->grace_ms,
                 "wait between announcing the move and fencing the old owner (at least the "
                 "default)")
      ->capture_default_str();
  mv->callback([args, &exit_code] { exit_code = runMove(*args); });
}

}  // namespace wsfleet::ctl

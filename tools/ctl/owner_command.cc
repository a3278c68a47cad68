// `wsfleetctl owner get | list | move`: the channels an operator moved between regions.
//
// A move, step by step (common/owner_records.h says why each step is there):
//  1. the channel's record in the ownership bucket becomes (new owner, generation + 1,
//     moving), by compare-and-set on its revision: edges go on storing at the old owner
//     but confirm each store by reading its marker;
//  2. after the grace period (edges that confirm stores by their own copy of the bucket
//     have seen step 1; common/owner_records.h), the old owner's generation
//     marker names the new generation, by compare-and-set: from here on no store there
//     is confirmed before the fence is known;
//  3. the old owner's history's last sequence is the fence, written into that marker:
//     the old generation's stores at or below it are confirmed (and delivered), the
//     ones above it refused (and never delivered);
//  4. the new owner's marker names the new generation, and its history's last sequence is
//     the base: the new generation's offsets are above it;
//  5. the record becomes owned (fence, base), again by compare-and-set: edges follow.
// Interrupted, the same command finishes the move it started (each step sees what is
// done already).
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
#include "common/region_subjects.h"
#include "regions/ownership.h"
#include "regions/topology.h"
#include "tools/ctl/blocking_nats.h"
#include "tools/ctl/commands.h"

namespace wsfleet::ctl {
namespace {

constexpr int64_t kConnectTimeoutMs = 5000;
constexpr int kJsWrongLastSequence = 10071;

struct OwnerArgs {
  std::string topology_path;
  std::vector<std::string> servers;
  std::string creds_file;
  std::string token;
  std::string tls_ca_file;
  int64_t timeout_ms = 5000;
  std::string tenant;
  std::string channel;
  std::string to;
  int replicas = 3;
  int64_t grace_ms = kMoveGraceMs;
  bool json = false;
};

// What the command talks to: the topology (owners nobody moved) and the fleet's NATS.
struct Fleet {
  Topology topology;
  std::unique_ptr<BlockingNats> nats;
  JsonParser parser;
  int64_t timeout_ms = 5000;
};

Status failure(std::string reason_message) {
  return Status(Code::kUnavailable, "owner_command_failed", std::move(reason_message));
}

Result<std::unique_ptr<Fleet>> openFleet(const OwnerArgs& args) {
  auto fleet = std::make_unique<Fleet>();
  WSF_ASSIGN_OR_RETURN(fleet->topology, loadTopology(args.topology_path));
  NatsConfig nats;
  nats.servers = args.servers;
  nats.creds_file = args.creds_file;
  nats.token = args.token;
  if (!args.tls_ca_file.empty()) {
    nats.tls = true;
    nats.tls_ca_file = args.tls_ca_file;
  }
  fleet->timeout_ms = args.timeout_ms;
  WSF_ASSIGN_OR_RETURN(fleet->nats, BlockingNats::connect(nats, kConnectTimeoutMs));
  return fleet;
}

// A JetStream API call (or a store): the parsed reply document's text, or the failure.
Result<NatsInbound> ask(Fleet& fleet, std::string subject, std::string body,
                        std::vector<NatsHeader> headers = {}) {
  WSF_ASSIGN_OR_RETURN(NatsInbound reply, fleet.nats->request(subject, std::move(body),
                                                              std::move(headers), fleet.timeout_ms));
  if (reply.status == "503") {
    return failure("nobody answers on " + subject +
                   " (JetStream down, or the stream does not exist in the fleet)");
  }
  return reply;
}

// The latest message on `subject` in `stream`: nullopt when there is none.
Result<std::optional<JsStoredMessage>> lastMessage(Fleet& fleet, std::string_view stream,
                                                   const std::string& subject) {
  WSF_ASSIGN_OR_RETURN(NatsInbound reply,
                       ask(fleet, msgGetSubject(stream), msgGetLastBySubject(subject)));
  JsError error;
  auto got = parseMsgGet(fleet.parser, reply.data, &error);
  if (got) return std::optional<JsStoredMessage>(std::move(*got));
  if (error.err_code == kJsNoMessageFound) return std::optional<JsStoredMessage>();
  return got.status();
}

struct CurrentOwner {
  OwnerRecord record;        // gen 0: nobody moved it (the topology's choice)
  uint64_t revision = 0;     // the record's sequence in the bucket; 0: no record
  std::string source;        // "moved" or the topology's reason
};

Result<CurrentOwner> currentOwner(Fleet& fleet, const std::string& tenant,
                                  const std::string& channel) {
  CurrentOwner current;
  WSF_ASSIGN_OR_RETURN(NatsInbound reply,
                       ask(fleet, msgGetSubject(kOwnersStream),
                           msgGetLastBySubject(ownerRecordSubject(tenant, channel))));
  JsError error;
  auto got = parseMsgGet(fleet.parser, reply.data, &error);
  if (got) {
    WSF_ASSIGN_OR_RETURN(current.record, parseOwnerRecord(fleet.parser, got->data));
    current.revision = got->seq;
    current.source = "moved";
    return current;
  }
  if (error.err_code != kJsNoMessageFound && error.err_code != kJsStreamNotFound) {
    return got.status();
  }
  HealthySet healthy;
  for (const RegionSpec& region : fleet.topology.regions) healthy.insert(region.name);
  WSF_ASSIGN_OR_RETURN(OwnerDecision decided,
                       decideOwner(fleet.topology, healthy, tenant, channel));
  current.record.tenant = tenant;
  current.record.channel = channel;
  current.record.owner = decided.region;
  current.record.state = OwnerState::kOwned;
  current.source = ownerSourceName(decided.source);
  return current;
}

// Compare-and-set of `subject`'s latest message: stored only if that is still the message
// at `expected` (0: the subject has none). The new sequence.
Result<uint64_t> compareAndSet(Fleet& fleet, const std::string& subject, std::string body,
                               uint64_t expected) {
  WSF_ASSIGN_OR_RETURN(
      NatsInbound reply,
      ask(fleet, subject, std::move(body),
          {{"Nats-Expected-Last-Subject-Sequence", std::to_string(expected)}}));
  JsError error;
  auto ack = parsePubAck(fleet.parser, reply.data, &error);
  if (ack) return ack->seq;
  if (error.err_code == kJsWrongLastSequence) {
    return Status(Code::kUnavailable, "changed_concurrently",
                  subject + " changed meanwhile (another move?); run the command again");
  }
  return ack.status();
}

Result<uint64_t> ensureBucket(Fleet& fleet, int replicas) {
  WSF_ASSIGN_OR_RETURN(NatsInbound info, ask(fleet, streamInfoSubject(kOwnersStream), ""));
  JsError error;
  auto parsed = parseStreamInfo(fleet.parser, info.data, &error);
  if (parsed) return parsed->last_seq;
  if (error.err_code != kJsStreamNotFound) return parsed.status();
  // The bucket is created where this command is connected, with `replicas` servers.
  WSF_ASSIGN_OR_RETURN(NatsInbound created, ask(fleet, streamCreateSubject(kOwnersStream),
                                                ownersStreamConfigJson(replicas)));
  auto made = parseStreamInfo(fleet.parser, created.data);
  if (!made) return made.status();
  return made->last_seq;
}

Result<uint64_t> historyLastSeq(Fleet& fleet, const std::string& region) {
  WSF_ASSIGN_OR_RETURN(NatsInbound reply, ask(fleet, streamInfoSubject(historyStreamName(region)), ""));
  WSF_ASSIGN_OR_RETURN(StreamInfo info, parseStreamInfo(fleet.parser, reply.data));
  return info.last_seq;
}

// The latest marker of the channel in `region`'s marker stream, with its sequence.
struct MarkerAt {
  GenerationMarker marker;
  uint64_t seq = 0;  // 0: none
};

Result<MarkerAt> markerIn(Fleet& fleet, const std::string& region, const OwnerRecord& move) {
  WSF_ASSIGN_OR_RETURN(auto last,
                       lastMessage(fleet, generationStreamName(region),
                                   generationSubject(region, move.tenant, move.channel)));
  MarkerAt at;
  if (!last) return at;
  WSF_ASSIGN_OR_RETURN(at.marker, parseGenerationMarker(fleet.parser, last->data));
  at.seq = last->seq;
  if (at.marker.gen > move.gen) {
    return failure(region + "'s marker is at generation " + std::to_string(at.marker.gen) +
                   ", newer than this move's " + std::to_string(move.gen));
  }
  return at;
}

// Steps 2 and 3: the old owner's marker names the new generation, then the fence. A fence
// already written is kept: stores above it were refused, and readers must agree.
Result<uint64_t> fenceOldOwner(Fleet& fleet, const OwnerRecord& move) {
  const std::string subject = generationSubject(move.from, move.tenant, move.channel);
  WSF_ASSIGN_OR_RETURN(MarkerAt at, markerIn(fleet, move.from, move));
  GenerationMarker marker{move.gen, move.owner, move.from, 0};
  uint64_t seq = at.seq;
  const bool written = at.seq != 0 && at.marker.gen == move.gen && at.marker.owner == move.owner;
  if (written && at.marker.fence != 0) return at.marker.fence;
  if (!written) {
    WSF_ASSIGN_OR_RETURN(seq, compareAndSet(fleet, subject, encodeGenerationMarker(marker), seq));
  }
  // Every store the old owner confirms is at or below this; the ones above are refused
  // (an empty history: 1, above which nothing was stored yet).
  WSF_ASSIGN_OR_RETURN(uint64_t last, historyLastSeq(fleet, move.from));
  marker.fence = std::max<uint64_t>(last, 1);
  WSF_RETURN_IF_ERROR(
      toStatus(compareAndSet(fleet, subject, encodeGenerationMarker(marker), seq)));
  return marker.fence;
}

// Step 4: the new owner's marker names the new generation.
Status markNewOwner(Fleet& fleet, const OwnerRecord& move) {
  WSF_ASSIGN_OR_RETURN(MarkerAt at, markerIn(fleet, move.owner, move));
  if (at.seq != 0 && at.marker.gen == move.gen && at.marker.owner == move.owner) {
    return Status::ok();
  }
  return toStatus(compareAndSet(fleet, generationSubject(move.owner, move.tenant, move.channel),
                                encodeGenerationMarker({move.gen, move.owner, "", 0}), at.seq));
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
        .endObject();
    std::cout << out << "\n";
    return;
  }
  std::cout << record.tenant << "  " << record.channel << "  owner " << record.owner
            << "  generation " << record.gen << "  " << ownerStateName(record.state) << "  ("
            << source;
  if (record.gen > 0) {
    std::cout << ": from " << record.from << ", fence " << record.fence << ", base "
              << record.base;
  }
  std::cout << ")\n";
}

int report(const Status& status) {
  std::cerr << "wsfleetctl: " << status.message() << "\n";
  return status.code() == Code::kConfig || status.code() == Code::kBadRequest ? kExitUsage
                                                                               : kExitFailure;
}

int runGet(const OwnerArgs& args) {
  if (Status ok = validateChannelName(args.channel); !ok) return report(ok);
  auto fleet = openFleet(args);
  if (!fleet) return report(fleet.status());
  auto current = currentOwner(**fleet, args.tenant, args.channel);
  if (!current) return report(current.status());
  print(current->record, current->source, args.json);
  return kExitOk;
}

int runList(const OwnerArgs& args) {
  auto fleet = openFleet(args);
  if (!fleet) return report(fleet.status());
  Fleet& f = **fleet;
  uint64_t next = 1;
  for (;;) {
    auto reply = ask(f, msgGetSubject(kOwnersStream),
                     msgGetNextBySubject(next, std::string(kOwnersSubjectPrefix) + ">"));
    if (!reply) return report(reply.status());
    JsError error;
    auto got = parseMsgGet(f.parser, reply->data, &error);
    if (!got) {
      if (error.err_code == kJsNoMessageFound || error.err_code == kJsStreamNotFound) break;
      return report(got.status());
    }
    auto record = parseOwnerRecord(f.parser, got->data);
    if (record) print(*record, "moved", args.json);
    next = got->seq + 1;
  }
  return kExitOk;
}

Status move(Fleet& fleet, const OwnerArgs& args) {
  if (args.grace_ms < kMoveGraceMs) {
    // Edges rely on it (common/owner_records.h): a shorter wait could fence a store an edge
    // has already confirmed by its own copy of the bucket.
    return Status(Code::kBadRequest, "grace_too_short",
                  "--grace-ms must be at least " + std::to_string(kMoveGraceMs));
  }
  if (fleet.topology.findRegion(args.to) == nullptr) {
    return Status(Code::kBadRequest, "unknown_region",
                  "'" + args.to + "' is not a region of " + args.topology_path);
  }
  WSF_RETURN_IF_ERROR(toStatus(ensureBucket(fleet, args.replicas)));
  WSF_ASSIGN_OR_RETURN(CurrentOwner current, currentOwner(fleet, args.tenant, args.channel));
  OwnerRecord move;
  uint64_t revision = current.revision;
  if (current.record.state == OwnerState::kMoving) {
    if (current.record.owner != args.to) {
      return failure("a move of this channel to " + current.record.owner +
                     " is not finished; run `owner move` to " + current.record.owner + " first");
    }
    move = current.record;  // finish it
  } else {
    if (current.record.owner == args.to) {
      std::cerr << "already owned by " << args.to << "\n";
      return Status::ok();
    }
    move.tenant = args.tenant;
    move.channel = args.channel;
    move.owner = args.to;
    move.gen = current.record.gen + 1;
    move.state = OwnerState::kMoving;
    move.from = current.record.owner;
    move.at_ms = nowWallMs();
    WSF_ASSIGN_OR_RETURN(revision, compareAndSet(fleet, ownerRecordSubject(args.tenant, args.channel),
                                                 encodeOwnerRecord(move), revision));
  }
  // Also when finishing an interrupted move: its first mover may have stopped before the
  // grace ran out.
  std::this_thread::sleep_for(std::chrono::milliseconds(args.grace_ms));
  WSF_ASSIGN_OR_RETURN(move.fence, fenceOldOwner(fleet, move));
  WSF_RETURN_IF_ERROR(markNewOwner(fleet, move));
  WSF_ASSIGN_OR_RETURN(move.base, historyLastSeq(fleet, move.owner));
  move.state = OwnerState::kOwned;
  move.at_ms = nowWallMs();
  WSF_RETURN_IF_ERROR(toStatus(compareAndSet(
      fleet, ownerRecordSubject(args.tenant, args.channel), encodeOwnerRecord(move), revision)));
  print(move, "moved", args.json);
  return Status::ok();
}

int runMove(const OwnerArgs& args) {
  if (Status ok = validateChannelName(args.channel); !ok) return report(ok);
  auto fleet = openFleet(args);
  if (!fleet) return report(fleet.status());
  Status moved = move(**fleet, args);
  return moved ? kExitOk : report(moved);
}

void addFleetOptions(CLI::App* command, OwnerArgs& args) {
  command->add_option("--topology", args.topology_path, "topology file (TOML)")->required();
  command->add_option("--nats", args.servers, "a NATS server of the fleet (repeatable)")
      ->required();
  command->add_option("--creds", args.creds_file, "NATS credentials file");
  command->add_option("--token", args.token, "NATS token");
  command->add_option("--tls-ca", args.tls_ca_file, "CA file: connect with TLS");
  command->add_option("--timeout-ms", args.timeout_ms, "per request")->capture_default_str();
  command->add_flag("--json", args.json, "one JSON object per line");
}

}  // namespace

void addOwnerCommands(CLI::App& app, int& exit_code) {
  CLI::App* owner = app.add_subcommand("owner", "Which region owns a channel; move channels");
  owner->require_subcommand(1);
  auto args = std::make_shared<OwnerArgs>();

  CLI::App* get = owner->add_subcommand("get", "Print a channel's owner region and generation");
  addFleetOptions(get, *args);
  get->add_option("--tenant", args->tenant, "tenant")->required();
  get->add_option("--channel", args->channel, "channel (ns:name)")->required();
  get->callback([args, &exit_code] { exit_code = runGet(*args); });

  CLI::App* list = owner->add_subcommand("list", "Print every channel an operator moved");
  addFleetOptions(list, *args);
  list->callback([args, &exit_code] { exit_code = runList(*args); });

  CLI::App* mv = owner->add_subcommand(
      "move", "Move a channel to another region, fenced: its old owner never sequences it again");
  addFleetOptions(mv, *args);
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

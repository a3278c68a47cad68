#pragma once
// What wsfleetctl's fleet commands share (status, edge, presence, conn, bridge, top): the
// connection options, the fleet's regions, and scatter-gather over the control subjects
// (common/control_subjects.h) of every region.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/json.h"
#include "common/status.h"
#include "regions/topology.h"
#include "tools/ctl/blocking_nats.h"

namespace wsfleet::ctl {

struct FleetArgs {
  std::string config_path;  // a bridge conf: its [nats] section and its topology
  std::string topology_path;
  std::vector<std::string> servers;
  std::string creds_file;
  std::string token;
  std::string tls_ca_file;
  int64_t timeout_ms = 1500;  // how long answers are collected
  bool json = false;
};

// --config, --topology, --nats, --creds, --token, --tls-ca, --timeout-ms, --json.
void addFleetFlags(CLI::App* command, FleetArgs& args);

// One region's answers to one control request.
struct RegionAnswers {
  std::string region;
  std::vector<std::string> replies;  // JSON objects, one per answering process
  bool answered = false;             // at least one process answered
  size_t over_limit = 0;
};

class FleetClient {
 public:
  // kConfig (exit 2) for bad options; kUnavailable when no NATS server answered.
  static Result<std::unique_ptr<FleetClient>> open(const FleetArgs& args);

  const Topology& topology() const { return topology_; }
  std::vector<std::string> regions() const;
  JsonParser& parser() { return parser_; }
  int64_t windowMs() const { return window_ms_; }

  // Asks `subject_of(region)` with `body` in every region at once.
  template <typename SubjectOf>
  std::vector<RegionAnswers> askEveryRegion(SubjectOf subject_of, const std::string& body) {
    std::vector<BlockingNats::Ask> asks;
    for (const std::string& r : regions()) asks.push_back({subject_of(r), body});
    return collect(asks);
  }
  // Asks each of `asks` (one per region of `regions`, same order).
  std::vector<RegionAnswers> ask(const std::vector<std::string>& regions,
                                 const std::vector<BlockingNats::Ask>& asks);
  BlockingNats& nats() { return *nats_; }
  // Every region's edge workers and bridges, asked at once (status, top).
  struct ProcessAnswers {
    std::vector<RegionAnswers> edges;    // one per region, regions() order
    std::vector<RegionAnswers> bridges;  // likewise
  };
  ProcessAnswers askEdgesAndBridges();

 private:
  std::vector<RegionAnswers> collect(const std::vector<BlockingNats::Ask>& asks);

  Topology topology_;
  std::unique_ptr<BlockingNats> nats_;
  JsonParser parser_;
  int64_t window_ms_ = 1500;
};

// The most answers kept per region and request (edge workers or bridges).
inline constexpr size_t kMaxAnswersPerRegion = 4096;

// Prints `status` to stderr as "wsfleetctl: message" and returns its exit code: 2 for
// usage and configuration problems, 1 otherwise.
int reportFailure(const Status& status);

// Fixed-width text tables for the human output.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.size() == 1; }
  std::string render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// "12.3" (one decimal), for rates.
std::string rate(double per_second);

}  // namespace wsfleet::ctl

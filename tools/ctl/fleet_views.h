#pragma once
// The control plane's answers as wsfleetctl reads them (common/control_subjects.h), and
// their tables: edges, bridges and their links, per-region totals.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "tools/ctl/fleet_client.h"

namespace wsfleet::ctl {

struct EdgeView {
  std::string region;
  std::string node;
  int64_t worker = 0;
  std::string instance;
  uint64_t connections = 0;
  uint64_t subscriptions = 0;
  uint64_t channels = 0;
  bool draining = false;
  bool drain_held = false;
  bool ready = false;
  bool region_ready = false;
  double connects_per_s = 0;
  double messages_in_per_s = 0;
  double messages_out_per_s = 0;
  double drops_per_s = 0;
  uint64_t dropped = 0;
  std::string json;  // the answer, re-serialised (valid JSON whatever arrived)
};

struct LinkView {
  std::string region;
  bool up = false;
  bool paused = false;
  uint64_t bridges = 0;
  uint64_t messages_out = 0;
  uint64_t messages_in = 0;
};

struct BridgeView {
  std::string region;
  std::string instance;
  bool connected = false;
  bool stopping = false;
  uint64_t peers = 0;
  uint64_t pending_publishes = 0;
  std::vector<LinkView> links;
  double messages_out_per_s = 0;
  double messages_in_per_s = 0;
  std::string json;
};

// A field of an answer; empty, 0 or false when absent or of another type.
std::string str(simdjson::dom::element e, const char* field);
uint64_t uint(simdjson::dom::element e, const char* field);
int64_t integer(simdjson::dom::element e, const char* field);
bool flag(simdjson::dom::element e, const char* field);

// An answer {"error":{"reason","message"}}: that error; otherwise nullopt.
struct ControlError {
  std::string reason;
  std::string message;
};
std::optional<ControlError> controlErrorOf(JsonParser& parser, const std::string& reply);

// Answers that do not parse are skipped (counted in `bad`).
std::vector<EdgeView> parseEdges(JsonParser& parser, const std::vector<RegionAnswers>& answers,
                                 size_t* bad);
std::vector<BridgeView> parseBridges(JsonParser& parser, const std::vector<RegionAnswers>& answers,
                                     size_t* bad);
// Re-serialised answer (valid JSON), "" when it does not parse.
std::string canonicalJson(JsonParser& parser, const std::string& reply);

// Sorted by region, node, worker.
Table edgeTable(std::vector<EdgeView> edges);
Table bridgeTable(const std::vector<BridgeView>& bridges);
// One row per region: edges, workers, draining, connections, rates, bridges, links.
Table regionTable(const std::vector<std::string>& regions, const std::vector<EdgeView>& edges,
                  const std::vector<BridgeView>& bridges,
                  const std::vector<std::string>& silent_regions);

}  // namespace wsfleet::ctl

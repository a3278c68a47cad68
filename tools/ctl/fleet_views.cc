#include "tools/ctl/fleet_views.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace wsfleet::ctl {

namespace {

double number(simdjson::dom::element e, const char* field) {
  double v = 0;
  if (e[field].get(v) == simdjson::SUCCESS) return v;
  return static_cast<double>(uint(e, field));
}

const char* yes(bool b) {
  return b ? "yes" : "no";
}

}  // namespace

std::string str(simdjson::dom::element e, const char* field) {
  std::string_view v;
  return e[field].get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
}
uint64_t uint(simdjson::dom::element e, const char* field) {
  uint64_t v = 0;
  return e[field].get(v) == simdjson::SUCCESS ? v : 0;
}
int64_t integer(simdjson::dom::element e, const char* field) {
  int64_t v = 0;
  return e[field].get(v) == simdjson::SUCCESS ? v : 0;
}
bool flag(simdjson::dom::element e, const char* field) {
  bool v = false;
  return e[field].get(v) == simdjson::SUCCESS && v;
}
std::optional<ControlError> controlErrorOf(JsonParser& parser, const std::string& reply) {
  auto doc = parser.parse(reply);
  if (!doc) return ControlError{"bad_reply", "an answer that is not JSON"};
  simdjson::dom::element error;
  if ((*doc)["error"].get(error) != simdjson::SUCCESS) return std::nullopt;
  return ControlError{str(error, "reason"), str(error, "message")};
}

std::string canonicalJson(JsonParser& parser, const std::string& reply) {
  auto doc = parser.parse(reply);
  simdjson::dom::object object;
  if (!doc || doc->get_object().get(object) != simdjson::SUCCESS) return "";
  return jsonToString(*doc);
}

std::vector<EdgeView> parseEdges(JsonParser& parser, const std::vector<RegionAnswers>& answers,
                                 size_t* bad) {
  std::vector<EdgeView> out;
  for (const RegionAnswers& a : answers) {
    for (const std::string& reply : a.replies) {
      auto doc = parser.parse(reply);
      simdjson::dom::object object;
      if (!doc || doc->get_object().get(object) != simdjson::SUCCESS || str(*doc, "node").empty()) {
        if (bad != nullptr) ++*bad;
        continue;
      }
      EdgeView e;
      e.region = str(*doc, "region");
      e.node = str(*doc, "node");
      e.worker = integer(*doc, "worker");
      e.instance = str(*doc, "instance");
      e.connections = uint(*doc, "connections");
      e.subscriptions = uint(*doc, "subscriptions");
      e.channels = uint(*doc, "channels");
      e.draining = flag(*doc, "draining");
      e.drain_held = flag(*doc, "drain_held");
      e.ready = flag(*doc, "ready");
      e.region_ready = flag(*doc, "region_ready");
      simdjson::dom::element rates;
      if ((*doc)["rates"].get(rates) == simdjson::SUCCESS) {
        e.connects_per_s = number(rates, "connects_per_s");
        e.messages_in_per_s = number(rates, "messages_in_per_s");
        e.messages_out_per_s = number(rates, "messages_out_per_s");
        e.drops_per_s = number(rates, "drops_per_s");
      }
      simdjson::dom::element totals;
      if ((*doc)["totals"].get(totals) == simdjson::SUCCESS) e.dropped = uint(totals, "dropped");
      e.json = jsonToString(*doc);
      out.push_back(std::move(e));
    }
  }
  return out;
}

std::vector<BridgeView> parseBridges(JsonParser& parser, const std::vector<RegionAnswers>& answers,
                                     size_t* bad) {
  std::vector<BridgeView> out;
  for (const RegionAnswers& a : answers) {
    for (const std::string& reply : a.replies) {
      auto doc = parser.parse(reply);
      simdjson::dom::array links;
      if (!doc || str(*doc, "instance").empty() ||
          (*doc)["links"].get(links) != simdjson::SUCCESS) {
        if (bad != nullptr) ++*bad;
        continue;
      }
      BridgeView b;
      b.region = str(*doc, "region");
      b.instance = str(*doc, "instance");
      b.connected = flag(*doc, "connected");
      b.stopping = flag(*doc, "stopping");
      b.peers = uint(*doc, "peers");
      b.pending_publishes = uint(*doc, "pending_publishes");
      for (simdjson::dom::element l : links) {
        b.links.push_back({str(l, "region"), flag(l, "up"), flag(l, "paused"), uint(l, "bridges"),
                           uint(l, "messages_out"), uint(l, "messages_in")});
      }
      simdjson::dom::element rates;
      if ((*doc)["rates"].get(rates) == simdjson::SUCCESS) {
        b.messages_out_per_s = number(rates, "messages_out_per_s");
        b.messages_in_per_s = number(rates, "messages_in_per_s");
      }
      b.json = jsonToString(*doc);
      out.push_back(std::move(b));
    }
  }
  return out;
}

Table edgeTable(std::vector<EdgeView> edges) {
  std::sort(edges.begin(), edges.end(), [](const EdgeView& a, const EdgeView& b) {
    return std::tie(a.region, a.node, a.worker) < std::tie(b.region, b.node, b.worker);
  });
  Table t({"REGION", "NODE", "WORKER", "READY", "DRAINING", "CONNS", "SUBS", "CONN/S", "IN/S",
           "OUT/S", "DROPS/S"});
  for (const EdgeView& e : edges) {
    t.add({e.region, e.node, std::to_string(e.worker), yes(e.ready),
           e.draining ? (e.drain_held ? "held" : "stopping") : "no", std::to_string(e.connections),
           std::to_string(e.subscriptions), rate(e.connects_per_s), rate(e.messages_in_per_s),
           rate(e.messages_out_per_s), rate(e.drops_per_s)});
  }
  return t;
}

Table bridgeTable(const std::vector<BridgeView>& bridges) {
  Table t(
      {"REGION", "BRIDGE", "CONNECTED", "LINK", "STATE", "REMOTE BRIDGES", "MSGS OUT", "MSGS IN"});
  for (const BridgeView& b : bridges) {
    if (b.links.empty()) {
      t.add({b.region, b.instance, yes(b.connected), "-", "-", "-", "-", "-"});
    }
    for (const LinkView& l : b.links) {
      t.add({b.region, b.instance, yes(b.connected), b.region + " -> " + l.region,
             l.paused ? "paused" : (l.up ? "up" : "down"), std::to_string(l.bridges),
             std::to_string(l.messages_out), std::to_string(l.messages_in)});
    }
  }
  return t;
}

Table regionTable(const std::vector<std::string>& regions, const std::vector<EdgeView>& edges,
                  const std::vector<BridgeView>& bridges,
                  const std::vector<std::string>& silent_regions) {
  Table t({"REGION", "EDGES", "WORKERS", "DRAINING", "CONNS", "CONN/S", "IN/S", "OUT/S", "DROPS/S",
           "BRIDGES", "LINKS UP", "ANSWERED"});
  for (const std::string& r : regions) {
    std::set<std::string> nodes;
    size_t workers = 0, draining = 0;
    uint64_t conns = 0;
    double c = 0, in = 0, out = 0, drops = 0;
    for (const EdgeView& e : edges) {
      if (e.region != r) continue;
      nodes.insert(e.node);
      ++workers;
      draining += e.draining ? 1 : 0;
      conns += e.connections;
      c += e.connects_per_s;
      in += e.messages_in_per_s;
      out += e.messages_out_per_s;
      drops += e.drops_per_s;
    }
    size_t n_bridges = 0, up = 0, links = 0;
    for (const BridgeView& b : bridges) {
      if (b.region != r) continue;
      ++n_bridges;
      for (const LinkView& l : b.links) {
        ++links;
        up += l.up ? 1 : 0;
      }
    }
    const bool silent =
        std::find(silent_regions.begin(), silent_regions.end(), r) != silent_regions.end();
    t.add({r, std::to_string(nodes.size()), std::to_string(workers), std::to_string(draining),
           std::to_string(conns), rate(c), rate(in), rate(out), rate(drops),
           std::to_string(n_bridges), std::to_string(up) + "/" + std::to_string(links),
           silent ? "PARTIAL" : "yes"});
  }
  return t;
}

}  // namespace wsfleet::ctl

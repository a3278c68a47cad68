#include "regions/topology.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "common/channel.h"
#include "common/config_toml.h"
#include "common/config_values.h"

namespace wsfleet {

const RegionSpec* Topology::findRegion(std::string_view name) const {
  for (const RegionSpec& region : regions) {
    if (region.name == name) return &region;
  }
  return nullptr;
}

const NamespacePin* Topology::findPin(std::string_view tenant, std::string_view ns) const {
  for (const NamespacePin& pin : pins) {
    if (pin.tenant == tenant && pin.ns == ns) return &pin;
  }
  return nullptr;
}

const ChannelMove* Topology::findMove(std::string_view tenant, std::string_view channel) const {
  for (const ChannelMove& move : moves) {
    if (move.tenant == tenant && move.channel == channel) return &move;
  }
  return nullptr;
}

namespace {

std::string checkRegionName(std::string_view text) {
  // Region names become NATS subject tokens and metric labels, as node names do.
  return checkNodeName(text);
}

// Strips one of `schemes` ("nats://") from `text`; false when none matches.
bool stripScheme(std::string_view& text, std::initializer_list<std::string_view> schemes) {
  for (std::string_view scheme : schemes) {
    if (text.substr(0, scheme.size()) == scheme) {
      text.remove_prefix(scheme.size());
      return true;
    }
  }
  return false;
}

std::string checkPublicUrl(std::string_view text) {
  const std::string shape = quoteForError(text) + " is not a URL ws[s]://host[:port][/path]";
  std::string_view rest = text;
  if (!stripScheme(rest, {"ws://", "wss://"})) return shape;
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  if (authority.find_first_of("?#@ ") != std::string_view::npos) return shape;
  const std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  const bool printable = std::all_of(path.begin(), path.end(),
                                     [](char c) { return c > 0x20 && c < 0x7f && c != '#'; });
  if (!printable) return shape + ": the path must be printable, without spaces or '#'";
  const std::string problem = checkAuthority(authority, false);
  return problem.empty() ? "" : shape + ": it " + problem;
}

std::string checkGatewayUrl(std::string_view text) {
  if (text.empty()) return "";
  const std::string problem = checkAuthority(text, true);
  return problem.empty() ? "" : quoteForError(text) + " is not host:port: it " + problem;
}

std::string checkServerAddress(std::string_view text) {
  const std::string problem = checkAuthority(text, true);
  return problem.empty() ? "" : quoteForError(text) + " is not host:port: it " + problem;
}

// DNS answers are addresses; a zone file cannot hold a name or an IPv6 zone index, and an
// IPv4-mapped IPv6 address would be an A record written as AAAA text.
std::string checkDnsAddress(std::string_view text) {
  IpAddress address;
  const std::string shape = quoteForError(text) + " is not an IPv4 or IPv6 address";
  if (text.find('%') != std::string_view::npos || !parseIpAddress(text, &address)) return shape;
  if (address.isV4() && text.find(':') != std::string_view::npos) {
    return shape + ": write an IPv4 address as a.b.c.d";
  }
  return "";
}

std::string convertSubnet(std::string_view text, ClientSubnet& out) {
  const std::string problem = parseIpNetwork(text, &out.network);
  if (!problem.empty()) return problem;
  out.text = std::string(text);
  return "";
}

std::string convertRegionName(std::string_view text, std::string& out) {
  std::string problem = checkRegionName(text);
  if (problem.empty()) out = std::string(text);
  return problem;
}

std::string checkChannel(std::string_view text) {
  const Status status = validateChannelName(text);
  return status ? "" : status.message();
}

// A check that returns "" or a problem, as a list item converter.
std::function<std::string(std::string_view, std::string&)> checkedItem(
    std::string (*check)(std::string_view)) {
  return [check](std::string_view text, std::string& out) {
    std::string problem = check(text);
    if (problem.empty()) out = std::string(text);
    return problem;
  };
}

const std::vector<ConfigOption<RegionSpec>>& regionOptions() {
  static const std::vector<ConfigOption<RegionSpec>> options = {
      stringOption<RegionSpec>("name", WSF_FIELD(RegionSpec, name), "",
                               "the region's name, as in wsf.<region>.* subjects", checkRegionName),
      listOption<RegionSpec>("nats_urls", WSF_FIELD(RegionSpec, nats_urls), {},
                             "the region's NATS servers (nats:// or tls://host:port)",
                             checkedItem(checkNatsUrl)),
      listOption<RegionSpec>("public_urls", WSF_FIELD(RegionSpec, public_urls), {},
                             "where the region's clients connect (ws:// or wss://)",
                             checkedItem(checkPublicUrl)),
      listOption<RegionSpec, ClientSubnet>(
          "client_subnets", WSF_FIELD(RegionSpec, client_subnets), {},
          "client networks (CIDR) geo-DNS sends to this region",
          std::function<std::string(std::string_view, ClientSubnet&)>(convertSubnet)),
      listOption<RegionSpec>(
          "failover", WSF_FIELD(RegionSpec, failover), {},
          "regions that take over, most preferred first",
          std::function<std::string(std::string_view, std::string&)>(convertRegionName)),
      intOption<RegionSpec>("weight", WSF_FIELD(RegionSpec, weight), kDefaultRegionWeight,
                            kMinRegionWeight, kMaxRegionWeight,
                            "share of the channels and users the region owns"),
      stringOption<RegionSpec>("gateway_url", WSF_FIELD(RegionSpec, gateway_url), "",
                               "host:port of the region's NATS gateway", checkGatewayUrl),
      listOption<RegionSpec>("dns_addresses", WSF_FIELD(RegionSpec, dns_addresses), {},
                             "addresses geo-DNS answers with for this region's clients",
                             checkedItem(checkDnsAddress)),
  };
  return options;
}

const std::vector<ConfigOption<NatsServerSpec>>& serverOptions() {
  static const std::vector<ConfigOption<NatsServerSpec>> options = {
      stringOption<NatsServerSpec>("name", WSF_FIELD(NatsServerSpec, name), "",
                                   "the server's name (server_name), unique in the fleet",
                                   checkNodeName),
      stringOption<NatsServerSpec>("client", WSF_FIELD(NatsServerSpec, client), "",
                                   "host:port for client connections", checkServerAddress),
      stringOption<NatsServerSpec>("cluster", WSF_FIELD(NatsServerSpec, cluster), "",
                                   "host:port for routes within the region", checkServerAddress),
      stringOption<NatsServerSpec>("gateway", WSF_FIELD(NatsServerSpec, gateway), "",
                                   "host:port for gateways from other regions", checkServerAddress),
      stringOption<NatsServerSpec>("monitor", WSF_FIELD(NatsServerSpec, monitor), "",
                                   "host:port of HTTP monitoring", checkServerAddress),
  };
  return options;
}

const std::vector<ConfigOption<NamespacePin>>& pinOptions() {
  static const std::vector<ConfigOption<NamespacePin>> options = {
      stringOption<NamespacePin>("tenant", WSF_FIELD(NamespacePin, tenant), "", "tenant",
                                 checkTenantName),
      stringOption<NamespacePin>("namespace", WSF_FIELD(NamespacePin, ns), "",
                                 "namespace (first segment of the channel)", checkNamespaceName),
      stringOption<NamespacePin>("region", WSF_FIELD(NamespacePin, region), "",
                                 "the region that owns the namespace", checkRegionName),
  };
  return options;
}

const std::vector<ConfigOption<ChannelMove>>& moveOptions() {
  static const std::vector<ConfigOption<ChannelMove>> options = {
      stringOption<ChannelMove>("tenant", WSF_FIELD(ChannelMove, tenant), "", "tenant",
                                checkTenantName),
      stringOption<ChannelMove>("channel", WSF_FIELD(ChannelMove, channel), "",
                                "the channel that was moved", checkChannel),
      stringOption<ChannelMove>("region", WSF_FIELD(ChannelMove, region), "",
                                "the region the channel was moved to", checkRegionName),
  };
  return options;
}

#undef WSF_FIELD

std::string lineOf(const toml::node& node) {
  return "line " + std::to_string(node.source().begin.line);
}

// One parse: the errors, and the TOML nodes the cross checks point at.
class TopologyParser {
 public:
  explicit TopologyParser(std::string_view source_name) : errors_(std::string(source_name)) {}

  Result<Topology> run(std::string_view text) {
    std::optional<toml::table> root = parseToml(text, errors_);
    if (!root) return errors_.toStatus();
    rejectUnknownKeys(*root, "", {"regions", "pins", "moves"}, errors_);
    parseRegions(*root);
    checkDuplicateNames();
    checkFailover();
    checkSubnets();
    checkServers();
    parseEntries<NamespacePin>(*root, "pins", pinOptions(), topology_.pins);
    parseEntries<ChannelMove>(*root, "moves", moveOptions(), topology_.moves);
    checkPins();
    checkMoves();
    if (!errors_.empty()) return errors_.toStatus();
    return std::move(topology_);
  }

 private:
  // The array of tables at `key`, or nullptr (with an error when it is something else).
  const toml::array* tablesAt(const toml::table& root, const char* key) {
    const toml::node* node = root.get(key);
    if (node == nullptr) return nullptr;
    const toml::array* array = node->as_array();
    if (array == nullptr || (!array->empty() && !array->is_array_of_tables())) {
      errors_.add(*node, std::string(key) + ": expected [[" + key + "]] tables, got " +
                             std::string(tomlTypeName(*node)));
      return nullptr;
    }
    return array;
  }

  // Errors for each of `keys` that `table` lacks, pointing at the table itself.
  void requireKeys(const toml::table& table, const std::string& prefix,
                   std::initializer_list<const char*> keys) {
    for (const char* key : keys) {
      if (!table.contains(key)) errors_.add(table, prefix + ": '" + key + "' is required");
    }
  }

  void parseRegions(const toml::table& root) {
    const toml::array* regions = tablesAt(root, "regions");
    if (regions == nullptr || regions->empty()) {
      if (root.get("regions") == nullptr || regions != nullptr) {
        errors_.add(1, 1, "at least one region is required ([[regions]])");
      }
      return;
    }
    for (size_t i = 0; i < regions->size(); ++i) {
      const toml::table& table = *regions->get(i)->as_table();
      const std::string prefix = "regions[" + std::to_string(i) + "]";
      rejectUnknownKeys(table, prefix, optionKeys(regionOptions(), {"servers"}), errors_);
      requireKeys(table, prefix, {"name", "public_urls"});
      if (!table.contains("servers")) requireKeys(table, prefix, {"nats_urls"});
      RegionSpec spec;
      applyOptions(table, regionOptions(), prefix, spec, errors_);
      parseServers(table, prefix, i, spec);
      if (!table.contains("nats_urls")) {
        for (const NatsServerSpec& server : spec.servers) {
          if (!server.client.empty()) spec.nats_urls.push_back("nats://" + server.client);
        }
      }
      for (const char* key : {"nats_urls", "public_urls"}) {
        const toml::array* list = table.get(key) ? table.get(key)->as_array() : nullptr;
        if (list != nullptr && list->empty()) {
          errors_.add(*list, prefix + "." + key + ": needs at least one URL");
        }
      }
      // The name as written, even when refused above: the cross checks below must still
      // line up with every region of the file.
      const toml::node* name = table.get("name");
      region_names_.push_back(name != nullptr && name->is_string() ? name->as_string()->get()
                                                                   : std::string());
      region_tables_.push_back(&table);
      topology_.regions.push_back(std::move(spec));
    }
  }

  void parseServers(const toml::table& region, const std::string& prefix, size_t region_index,
                    RegionSpec& spec) {
    const toml::node* node = region.get("servers");
    if (node == nullptr) return;
    const toml::array* servers = node->as_array();
    if (servers == nullptr || servers->empty() || !servers->is_array_of_tables()) {
      errors_.add(*node,
                  prefix + ".servers: expected one or more [[regions.servers]] tables, got " +
                      (servers != nullptr && servers->empty() ? std::string("an empty array")
                                                              : std::string(tomlTypeName(*node))));
      return;
    }
    for (size_t k = 0; k < servers->size(); ++k) {
      const toml::table& table = *servers->get(k)->as_table();
      const std::string key = prefix + ".servers[" + std::to_string(k) + "]";
      rejectUnknownKeys(table, key, optionKeys(serverOptions()), errors_);
      requireKeys(table, key, {"name", "client", "cluster", "gateway", "monitor"});
      NatsServerSpec server;
      applyOptions(table, serverOptions(), key, server, errors_);
      spec.servers.push_back(std::move(server));
      server_tables_.push_back({&table, region_index, k});
    }
  }

  // Server names are NATS server_names, which must differ across the whole supercluster;
  // two listeners on one address cannot both start.
  void checkServers() {
    struct Seen {
      const toml::node* node;
      std::string key;
    };
    std::map<std::string, Seen> names;
    std::map<std::string, Seen> addresses;
    for (const ServerTable& where : server_tables_) {
      const NatsServerSpec& server = topology_.regions[where.region].servers[where.index];
      const std::string prefix = "regions[" + std::to_string(where.region) + "].servers[" +
                                 std::to_string(where.index) + "]";
      auto claim = [&](std::map<std::string, Seen>& seen, const std::string& value,
                       const char* field, const char* what) {
        if (value.empty()) return;
        const toml::node* node = where.table->get(field);
        const std::string key = prefix + "." + field;
        auto [it, inserted] = seen.emplace(value, Seen{node, key});
        if (inserted) return;
        errors_.add(*node, key + ": " + quoteForError(value) + " is already " + what + " of " +
                               it->second.key + " (" + lineOf(*it->second.node) + ")");
      };
      claim(names, server.name, "name", "the name");
      claim(addresses, server.client, "client", "the address");
      claim(addresses, server.cluster, "cluster", "the address");
      claim(addresses, server.gateway, "gateway", "the address");
      claim(addresses, server.monitor, "monitor", "the address");
    }
  }

  bool knownRegion(std::string_view name) const {
    return std::find(region_names_.begin(), region_names_.end(), name) != region_names_.end();
  }

  // The string items of `table[key]`, when it is an array whose items all converted.
  const toml::array* parsedList(size_t region, const char* key, size_t parsed_size) const {
    const toml::node* node = region_tables_[region]->get(key);
    const toml::array* array = node != nullptr ? node->as_array() : nullptr;
    return array != nullptr && array->size() == parsed_size ? array : nullptr;
  }

  void checkDuplicateNames() {
    std::map<std::string, size_t> first;
    for (size_t i = 0; i < region_names_.size(); ++i) {
      if (region_names_[i].empty()) continue;
      auto [it, inserted] = first.emplace(region_names_[i], i);
      if (inserted) continue;
      const toml::node& here = *region_tables_[i]->get("name");
      const toml::node& there = *region_tables_[it->second]->get("name");
      errors_.add(here, "regions[" + std::to_string(i) + "].name: " +
                            quoteForError(region_names_[i]) + " is already the name of regions[" +
                            std::to_string(it->second) + "] (" + lineOf(there) + ")");
    }
  }

  void checkFailover() {
    for (size_t i = 0; i < topology_.regions.size(); ++i) {
      const std::vector<std::string>& failover = topology_.regions[i].failover;
      const toml::array* items = parsedList(i, "failover", failover.size());
      if (items == nullptr) continue;
      for (size_t k = 0; k < failover.size(); ++k) {
        const std::string key =
            "regions[" + std::to_string(i) + "].failover[" + std::to_string(k) + "]";
        const toml::node& where = *items->get(k);
        if (failover[k] == region_names_[i]) {
          errors_.add(where, key + ": a region cannot fail over to itself");
        } else if (!knownRegion(failover[k])) {
          errors_.add(where, key + ": " + quoteForError(failover[k]) + " is not a region");
        } else if (std::find(failover.begin(), failover.begin() + static_cast<ptrdiff_t>(k),
                             failover[k]) != failover.begin() + static_cast<ptrdiff_t>(k)) {
          errors_.add(where, key + ": " + quoteForError(failover[k]) + " is listed twice");
        }
      }
    }
  }

  // Geo-DNS must send a client to exactly one region: a network claimed by two regions,
  // even inside a larger one, would make the answer depend on lookup details.
  void checkSubnets() {
    struct Claim {
      size_t region;
      size_t index;
      const ClientSubnet* subnet;
      const toml::node* node;
    };
    std::vector<Claim> claims;
    for (size_t i = 0; i < topology_.regions.size(); ++i) {
      const std::vector<ClientSubnet>& subnets = topology_.regions[i].client_subnets;
      const toml::array* items = parsedList(i, "client_subnets", subnets.size());
      if (items == nullptr) continue;
      for (size_t k = 0; k < subnets.size(); ++k) {
        const std::string key =
            "regions[" + std::to_string(i) + "].client_subnets[" + std::to_string(k) + "]";
        const Claim claim{i, k, &subnets[k], items->get(k)};
        for (const Claim& earlier : claims) {
          const IpNetwork& a = earlier.subnet->network;
          const IpNetwork& b = claim.subnet->network;
          const bool nested =
              a.prefix_bits <= b.prefix_bits ? a.contains(b.base) : b.contains(a.base);
          if (!nested) continue;
          const bool same = a.prefix_bits == b.prefix_bits;
          if (earlier.region == i) {
            if (same) {
              errors_.add(*claim.node, key + ": " + quoteForError(claim.subnet->text) +
                                           " is listed twice (" + lineOf(*earlier.node) + ")");
            }
            continue;  // a network inside another of the same region changes nothing
          }
          const std::string relation = same                            ? " is the same as "
                                       : a.prefix_bits < b.prefix_bits ? " is inside "
                                                                       : " contains ";
          errors_.add(*claim.node, key + ": " + quoteForError(claim.subnet->text) + relation +
                                       quoteForError(earlier.subnet->text) + " of region " +
                                       quoteForError(region_names_[earlier.region]) + " (" +
                                       lineOf(*earlier.node) +
                                       "); a client network belongs to one region");
          break;
        }
        claims.push_back(claim);
      }
    }
  }

  template <class T>
  void parseEntries(const toml::table& root, const char* key,
                    const std::vector<ConfigOption<T>>& options, std::vector<T>& out) {
    const toml::array* entries = tablesAt(root, key);
    if (entries == nullptr) return;
    for (size_t i = 0; i < entries->size(); ++i) {
      const toml::table& table = *entries->get(i)->as_table();
      const std::string prefix = std::string(key) + "[" + std::to_string(i) + "]";
      rejectUnknownKeys(table, prefix, optionKeys(options), errors_);
      for (const ConfigOption<T>& option : options) {
        if (!table.contains(option.key)) {
          errors_.add(table, prefix + ": '" + option.key + "' is required");
        }
      }
      T entry;
      applyOptions(table, options, prefix, entry, errors_);
      out.push_back(std::move(entry));
      entry_tables_[key].push_back(&table);
    }
  }

  // The region an entry names must exist; an entry may not repeat an earlier one.
  template <class T, class Same>
  void checkEntries(const char* key, const std::vector<T>& entries, const char* what, Same same) {
    const std::vector<const toml::table*>& tables = entry_tables_[key];
    for (size_t i = 0; i < entries.size(); ++i) {
      const std::string prefix = std::string(key) + "[" + std::to_string(i) + "]";
      const toml::node* region = tables[i]->get("region");
      if (!entries[i].region.empty() && !knownRegion(entries[i].region)) {
        errors_.add(*region,
                    prefix + ".region: " + quoteForError(entries[i].region) + " is not a region");
      }
      for (size_t j = 0; j < i; ++j) {
        if (!entries[i].tenant.empty() && same(entries[i], entries[j])) {
          errors_.add(*tables[i], prefix + ": " + what + " already has an entry in " + key + "[" +
                                      std::to_string(j) + "] (" + lineOf(*tables[j]) + ")");
          break;
        }
      }
    }
  }

  void checkPins() {
    checkEntries("pins", topology_.pins, "this tenant's namespace",
                 [](const NamespacePin& a, const NamespacePin& b) {
                   return !a.ns.empty() && a.tenant == b.tenant && a.ns == b.ns;
                 });
  }

  void checkMoves() {
    checkEntries("moves", topology_.moves, "this tenant's channel",
                 [](const ChannelMove& a, const ChannelMove& b) {
                   return !a.channel.empty() && a.tenant == b.tenant && a.channel == b.channel;
                 });
  }

  ConfigErrors errors_;
  Topology topology_;
  std::vector<std::string> region_names_;  // as written, parallel to topology_.regions
  std::vector<const toml::table*> region_tables_;
  struct ServerTable {
    const toml::table* table;
    size_t region;
    size_t index;
  };
  std::vector<ServerTable> server_tables_;  // every [[regions.servers]], in file order
  std::map<std::string, std::vector<const toml::table*>> entry_tables_;
};

}  // namespace

Result<Topology> parseTopology(std::string_view text, std::string_view source_name) {
  return TopologyParser(source_name).run(text);
}

Result<Topology> loadTopology(const std::string& path) {
  Result<std::string> text = readConfigFile(path);
  if (!text) return text.takeStatus();
  return parseTopology(*text, path);
}

Result<std::shared_ptr<const Topology>> loadTopologyOf(const std::string& path,
                                                       std::string_view region) {
  Result<Topology> topology = loadTopology(path);
  if (!topology) return topology.takeStatus();
  if (topology->findRegion(region) == nullptr) {
    std::string names;
    for (const RegionSpec& r : topology->regions) names += (names.empty() ? "" : ", ") + r.name;
    return Status(Code::kConfig, "region_not_in_topology",
                  path + " has no region '" + std::string(region) + "' (it has " + names + ")");
  }
  return std::make_shared<const Topology>(std::move(*topology));
}

}  // namespace wsfleet

#pragma once
// Geo-DNS for a topology as BIND 9 configuration: one view per region that matches the
// region's client_subnets, each with its own copy of the zone whose apex answers (A and
// AAAA) with the addresses of the region that serves those clients, plus a default view
// for every other client.
//
// A drained region's clients are answered with the addresses of its first non-drained
// failover region (then the first non-drained region in file order). The drained set is a
// plain input so that it can come from an operator's flags or from the fleet's state.
//
// Pure: the topology and options in, the files' text out (wsfleetctl topology render-dns
// writes them).

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "regions/rendered_file.h"
#include "regions/topology.h"

namespace wsfleet {

using DrainedSet = std::set<std::string, std::less<>>;

constexpr uint32_t kDefaultDnsTtl = 60;
constexpr const char* kBindViewsFile = "wsfleet-views.conf";
constexpr const char* kDefaultZoneFile = "default.zone";

struct DnsRenderOptions {
  std::string source;    // the topology's name, for the header comments
  std::string zone;      // the name clients resolve, e.g. "ws.example.com" (final dot optional)
  std::string zone_dir;  // where named will read the zone files (absolute on the DNS host)
  // The zone's NS records: names outside the zone, so that no glue records are needed.
  std::vector<std::string> name_servers = {"localhost"};
  uint32_t ttl = kDefaultDnsTtl;  // of every record, and the negative-answer TTL
  uint32_t serial = 1;            // SOA serial: must grow with every render that is loaded
};

// The addresses geo-DNS answers with for `region`: its dns_addresses, else the hosts of its
// public_urls that are IP literals (brackets removed), in order.
std::vector<std::string> dnsAddressesOf(const RegionSpec& region);

// Who answers clients of `region` while `drained` regions are drained (see above).
// Code::kUnavailable "no_region_available" when every region is drained.
Result<const RegionSpec*> dnsAnswerRegion(const Topology& topology, const RegionSpec& region,
                                          const DrainedSet& drained);

// The region whose clients are everyone no client_subnets matches: the one with the largest
// weight, the first in file order on a tie (as conf/topology.toml documents).
const RegionSpec& defaultDnsRegion(const Topology& topology);

// kBindViewsFile (the views, to include from named.conf), one "region-<name>.zone" per
// region that has client_subnets, and kDefaultZoneFile. Code::kConfig "config_invalid" for a
// bad zone, name server or zone_dir, a drained name that is not a region, or a region without
// addresses; "no_region_available" when every region is drained.
Result<std::vector<RenderedFile>> renderBindViews(const Topology& topology,
                                                  const DrainedSet& drained,
                                                  const DnsRenderOptions& options);

}  // namespace wsfleet

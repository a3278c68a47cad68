#pragma once
// Who owns what: the owner region of a channel, the home region of a user, the region a
// client network is sent to. Every process of the fleet must compute the same answer
// from the same topology and the same healthy set, on every platform and in every
// version, so the hash below is part of the fleet's contract: golden values in
// tests/unit/ownership_test.cc pin it, and changing it moves ownership fleet-wide.
//
// Weighted rendezvous hashing (highest random weight). For a key K and a region r:
//
//   fnv1a64(bytes)  = FNV-1a, 64-bit (offset basis 0xcbf29ce484222325,
//                     prime 0x100000001b3), over the bytes as given
//   mix64(x)        = the SplitMix64 finalizer:
//                       x ^= x >> 30; x *= 0xbf58476d1ce4e5b9;
//                       x ^= x >> 27; x *= 0x94d049bb133111eb; x ^= x >> 31
//   h(K, r)         = mix64(mix64(fnv1a64(K)) ^ mix64(fnv1a64(r)))
//   u(K, r)         = ((h(K, r) >> 12) + 0.5) / 2^52       (exact in a double, in (0, 1))
//   score(K, r)     = -weight_r / ln(u(K, r))
//
// The healthy region with the highest score owns K; equal scores go to the region whose
// name sorts first (bytewise). A region's expected share is weight_r / sum of weights,
// and a change of the healthy set moves only the keys of the regions that left or to
// the regions that came. The keys are tenant + '\0' + channel (owner) and tenant + '\0'
// + user (home), so no tenant's names can collide with another's.
//
// Everything up to u is integer arithmetic and exact. The one floating-point step is
// ln(u) in IEEE-754 doubles; libm implementations agree to within an ulp, so two
// platforms could only disagree on a key whose two best scores are within an ulp of each
// other (a chance around 2^-50 per key).

#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "common/ip_network.h"
#include "common/status.h"
#include "regions/topology.h"

namespace wsfleet {

// Names of the regions currently healthy; names the topology lacks are ignored.
using HealthySet = std::set<std::string, std::less<>>;

// The pieces of the hash, exposed for the golden tests and for other languages' tools.
uint64_t fnv1a64(std::string_view bytes);
uint64_t mix64(uint64_t x);
uint64_t rendezvousHash(std::string_view key, std::string_view region);
double rendezvousUniform(uint64_t hash);
double rendezvousScore(std::string_view key, std::string_view region, uint32_t weight);

// tenant + '\0' + name.
std::string ownershipKey(std::string_view tenant, std::string_view name);

// The healthy region with the highest score for `key`. Code::kUnavailable
// "no_healthy_region" when no region of the topology is healthy.
Result<std::string> rendezvousRegion(const Topology& topology, const HealthySet& healthy,
                                     std::string_view key);

enum class OwnerSource {
  kMove,          // an operator moved the channel there
  kMoveFailover,  // the moved-to region is down: its failover list chose
  kPin,           // the channel's namespace is pinned there
  kPinFailover,   // the pinned region is down: its failover list chose
  kRendezvous,    // the hash over the healthy regions
};
std::string_view ownerSourceName(OwnerSource source);

struct OwnerDecision {
  std::string region;
  OwnerSource source = OwnerSource::kRendezvous;
};

// The owner region of `channel` (its namespace is the text before the first ':'):
//   1. an operator move of this exact channel: its region if healthy, else the first
//      healthy region of that region's failover list;
//   2. else (or when all of those are down) a pin of the namespace, the same way;
//   3. else rendezvous over the healthy regions.
// Code::kUnavailable "no_healthy_region" when nothing is healthy.
Result<OwnerDecision> decideOwner(const Topology& topology, const HealthySet& healthy,
                                  std::string_view tenant, std::string_view channel);
Result<std::string> ownerRegion(const Topology& topology, const HealthySet& healthy,
                                std::string_view tenant, std::string_view channel);

// The home region of a user: rendezvous only (users are not pinned or moved).
Result<std::string> homeRegion(const Topology& topology, const HealthySet& healthy,
                               std::string_view tenant, std::string_view user);

// Where the work of `region` goes: the region itself while healthy, else the first
// healthy region of its failover list. Code::kNotFound "unknown_region" for a name the
// topology lacks; Code::kUnavailable "no_healthy_failover" when the region and its whole
// list are down (callers then fall back to rendezvous).
Result<std::string> failoverTarget(const Topology& topology, const HealthySet& healthy,
                                   std::string_view region);

// The region geo-DNS sends a client address to: the longest client_subnets prefix that
// contains it; when none does, the region with the largest weight (the first in file
// order among equals), since the biggest region is the one sized to absorb strays.
// Health is not considered: this is the static map that DNS configs are rendered from;
// apply failoverTarget() for the live answer. "" only for a topology without regions.
std::string regionForClient(const Topology& topology, const IpAddress& address);

}  // namespace wsfleet

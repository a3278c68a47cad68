#include "regions/ownership.h"

#include <cmath>
#include <optional>
#include <utility>

namespace wsfleet {

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

namespace {

// FNV-1a alone spreads a change in the last bytes of a key poorly over the high bits;
// the finalizer gives every input bit an even chance of flipping every output bit.
uint64_t keyHash(std::string_view bytes) {
  return mix64(fnv1a64(bytes));
}

uint64_t combine(uint64_t key_hash, uint64_t region_hash) {
  return mix64(key_hash ^ region_hash);
}

double scoreOf(uint64_t hash, uint32_t weight) {
  // u is in (0, 1), so ln(u) < 0 and the score is positive; the smallest u gives about
  // weight / 36.7, the largest about weight * 9e15.
  return -static_cast<double>(weight) / std::log(rendezvousUniform(hash));
}

Status noHealthyRegion() {
  return Status(Code::kUnavailable, "no_healthy_region", "no region of the topology is healthy");
}

}  // namespace

uint64_t rendezvousHash(std::string_view key, std::string_view region) {
  return combine(keyHash(key), keyHash(region));
}

double rendezvousUniform(uint64_t hash) {
  // 52 bits plus one half: at most 53 significant bits, so exact, and never 0 or 1.
  return (static_cast<double>(hash >> 12) + 0.5) * 0x1p-52;
}

double rendezvousScore(std::string_view key, std::string_view region, uint32_t weight) {
  return scoreOf(rendezvousHash(key, region), weight);
}

std::string ownershipKey(std::string_view tenant, std::string_view name) {
  std::string key;
  key.reserve(tenant.size() + 1 + name.size());
  key.append(tenant);
  key.push_back('\0');
  key.append(name);
  return key;
}

Result<std::string> rendezvousRegion(const Topology& topology, const HealthySet& healthy,
                                     std::string_view key) {
  const uint64_t key_hash = keyHash(key);
  const RegionSpec* best = nullptr;
  double best_score = 0;
  for (const RegionSpec& region : topology.regions) {
    if (healthy.find(region.name) == healthy.end()) continue;
    const double score = scoreOf(combine(key_hash, keyHash(region.name)), region.weight);
    if (best == nullptr || score > best_score ||
        (score == best_score && region.name < best->name)) {
      best = &region;
      best_score = score;
    }
  }
  if (best == nullptr) return noHealthyRegion();
  return best->name;
}

std::string_view ownerSourceName(OwnerSource source) {
  switch (source) {
    case OwnerSource::kMove:
      return "move";
    case OwnerSource::kMoveFailover:
      return "move-failover";
    case OwnerSource::kPin:
      return "pin";
    case OwnerSource::kPinFailover:
      return "pin-failover";
    case OwnerSource::kRendezvous:
      return "rendezvous";
  }
  return "rendezvous";
}

Result<std::string> failoverTarget(const Topology& topology, const HealthySet& healthy,
                                   std::string_view region) {
  const RegionSpec* spec = topology.findRegion(region);
  if (spec == nullptr) {
    return Status(Code::kNotFound, "unknown_region",
                  "'" + std::string(region) + "' is not a region of the topology");
  }
  if (healthy.find(spec->name) != healthy.end()) return spec->name;
  for (const std::string& next : spec->failover) {
    if (healthy.find(next) != healthy.end() && topology.findRegion(next) != nullptr) return next;
  }
  return Status(Code::kUnavailable, "no_healthy_failover",
                "region '" + spec->name + "' and every region of its failover list are down");
}

Result<OwnerDecision> decideOwner(const Topology& topology, const HealthySet& healthy,
                                  std::string_view tenant, std::string_view channel) {
  // A directive whose region and failover regions are all down yields to the next one:
  // the operator's intent was a place for the channel, not that it go dark.
  auto directed = [&](const std::string& region, OwnerSource direct,
                      OwnerSource failover) -> std::optional<OwnerDecision> {
    Result<std::string> target = failoverTarget(topology, healthy, region);
    if (!target) return std::nullopt;
    const OwnerSource source = *target == region ? direct : failover;
    return OwnerDecision{std::move(target).value(), source};
  };
  if (const ChannelMove* move = topology.findMove(tenant, channel)) {
    if (auto decision = directed(move->region, OwnerSource::kMove, OwnerSource::kMoveFailover)) {
      return *std::move(decision);
    }
  }
  const std::string_view ns = channel.substr(0, channel.find(':'));
  if (const NamespacePin* pin = topology.findPin(tenant, ns)) {
    if (auto decision = directed(pin->region, OwnerSource::kPin, OwnerSource::kPinFailover)) {
      return *std::move(decision);
    }
  }
  Result<std::string> region = rendezvousRegion(topology, healthy, ownershipKey(tenant, channel));
  if (!region) return region.takeStatus();
  return OwnerDecision{std::move(region).value(), OwnerSource::kRendezvous};
}

Result<std::string> ownerRegion(const Topology& topology, const HealthySet& healthy,
                                std::string_view tenant, std::string_view channel) {
  Result<OwnerDecision> decision = decideOwner(topology, healthy, tenant, channel);
  if (!decision) return decision.takeStatus();
  return std::move(decision->region);
}

Result<std::string> homeRegion(const Topology& topology, const HealthySet& healthy,
                               std::string_view tenant, std::string_view user) {
  return rendezvousRegion(topology, healthy, ownershipKey(tenant, user));
}

std::string regionForClient(const Topology& topology, const IpAddress& address) {
  const RegionSpec* best = nullptr;
  int best_bits = -1;
  for (const RegionSpec& region : topology.regions) {
    for (const ClientSubnet& subnet : region.client_subnets) {
      if (subnet.network.prefix_bits > best_bits && subnet.network.contains(address)) {
        best = &region;
        best_bits = subnet.network.prefix_bits;
      }
    }
  }
  if (best != nullptr) return best->name;
  for (const RegionSpec& region : topology.regions) {
    if (best == nullptr || region.weight > best->weight) best = &region;
  }
  return best != nullptr ? best->name : std::string();
}

}  // namespace wsfleet

#pragma once
// Local routing tables of one worker: channel -> subscribed connections, and
// user -> connections. Pure bookkeeping (no I/O): EdgeService decides what to send.
// Keys join tenant and name with a NUL byte, which neither may contain, so two tenants'
// channels of the same name never meet.

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "edge/connection.h"

namespace wsfleet {

std::string scopedKey(std::string_view tenant, std::string_view name);

class Hub {
 public:
  struct SubscribeResult {
    bool added = false;          // false: was already subscribed
    bool first_of_user = false;  // the user's first connection on this channel
  };
  SubscribeResult subscribe(Connection* conn, const std::string& channel);

  struct UnsubscribeResult {
    bool removed = false;
    bool last_of_user = false;  // the user has no other connection on this channel
  };
  UnsubscribeResult unsubscribe(Connection* conn, const std::string& channel);

  // Subscribers of a channel (empty when none). Stable until the next (un)subscribe.
  const std::vector<Connection*>& subscribers(std::string_view tenant,
                                              std::string_view channel) const;

  void addUserConnection(Connection* conn);
  void removeUserConnection(Connection* conn);
  const std::vector<Connection*>& userConnections(std::string_view tenant,
                                                  std::string_view user) const;

  size_t channelCount() const { return channels_.size(); }
  size_t subscriptionCount() const { return subscriptions_; }

 private:
  struct ChannelState {
    std::vector<Connection*> subscribers;
    std::unordered_map<std::string, int> connections_per_user;
  };
  std::unordered_map<std::string, ChannelState> channels_;
  std::unordered_map<std::string, std::vector<Connection*>> users_;
  size_t subscriptions_ = 0;
};

}  // namespace wsfleet

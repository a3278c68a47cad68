#include "edge/hub.h"

#include <algorithm>
#include <cassert>

namespace wsfleet {

namespace {
const std::vector<Connection*> kNone;
}  // namespace

std::string scopedKey(std::string_view tenant, std::string_view name) {
  std::string key;
  key.reserve(tenant.size() + 1 + name.size());
  key.append(tenant);
  key.push_back('\0');
  key.append(name);
  return key;
}

Hub::SubscribeResult Hub::subscribe(Connection* conn, const std::string& channel) {
  SubscribeResult result;
  if (conn->channels.count(channel) != 0) return result;
  ChannelState& state = channels_[scopedKey(conn->tenant, channel)];
  conn->channels.add(channel, state.subscribers.size());
  state.subscribers.push_back(conn);
  result.added = true;
  result.first_of_user = ++state.connections_per_user[conn->user] == 1;
  ++subscriptions_;
  return result;
}

Hub::UnsubscribeResult Hub::unsubscribe(Connection* conn, const std::string& channel) {
  UnsubscribeResult result;
  auto mine = conn->channels.find(channel);
  if (mine == conn->channels.end()) return result;
  auto it = channels_.find(scopedKey(conn->tenant, channel));
  assert(it != channels_.end());
  ChannelState& state = it->second;
  // Swap-remove keeps removal O(1); the moved connection's index is updated.
  const size_t index = mine->second;
  assert(index < state.subscribers.size() && state.subscribers[index] == conn);
  Connection* moved = state.subscribers.back();
  state.subscribers[index] = moved;
  state.subscribers.pop_back();
  if (moved != conn) moved->channels.set(channel, index);
  conn->channels.erase(mine);
  result.removed = true;
  auto per_user = state.connections_per_user.find(conn->user);
  if (--per_user->second == 0) {
    state.connections_per_user.erase(per_user);
    result.last_of_user = true;
  }
  if (state.subscribers.empty()) channels_.erase(it);
  --subscriptions_;
  return result;
}

const std::vector<Connection*>& Hub::subscribers(std::string_view tenant,
                                                 std::string_view channel) const {
  auto it = channels_.find(scopedKey(tenant, channel));
  return it == channels_.end() ? kNone : it->second.subscribers;
}

void Hub::addUserConnection(Connection* conn) {
  users_[scopedKey(conn->tenant, conn->user)].push_back(conn);
}

void Hub::removeUserConnection(Connection* conn) {
  auto it = users_.find(scopedKey(conn->tenant, conn->user));
  if (it == users_.end()) return;
  auto& list = it->second;
  list.erase(std::remove(list.begin(), list.end(), conn), list.end());
  if (list.empty()) users_.erase(it);
}

const std::vector<Connection*>& Hub::userConnections(std::string_view tenant,
                                                     std::string_view user) const {
  auto it = users_.find(scopedKey(tenant, user));
  return it == users_.end() ? kNone : it->second;
}

}  // namespace wsfleet

// The control plane, edge side (EdgeService, continued; common/control_subjects.h): every
// worker answers wsfleetctl's requests on its region's control subjects with what it
// holds itself. Nothing here trusts the request: tenants must be configured, users and
// channels pass the protocol's own checks, and every reply is bounded.
#include <algorithm>
#include <string>
#include <vector>

#include "common/channel.h"
#include "common/clock.h"
#include "common/control_subjects.h"
#include "common/log.h"
#include "edge/edge_service.h"

namespace wsfleet {

namespace {

constexpr int64_t kRateSampleMs = 1000;
// Rates are averaged over this many samples (10 s): steady enough to read, recent enough
// for an incident.
constexpr size_t kRateSamples = 11;
// The longest window a control drain may ask for, as POST /admin/drain's.
constexpr uint64_t kMaxControlDrainWindowMs = 3600 * 1000;

std::string stringField(simdjson::dom::object& object, const char* name) {
  std::string_view value;
  return object[name].get(value) == simdjson::SUCCESS ? std::string(value) : std::string();
}

}  // namespace

void EdgeService::startControl() {
  const std::string& r = config_.region;
  region_->watch(controlEdgesSubject(r));
  region_->watch(controlPresenceSubject(r));
  region_->watch(controlKickSubject(r));
  region_->watch(controlNodeSubject(r, config_.node_name, "drain"));
  region_->watch(controlNodeSubject(r, config_.node_name, "undrain"));
}

void EdgeService::controlReply(const NatsInbound& request, std::string body) {
  if (request.reply.empty()) return;  // a publish without a reply subject: nobody to tell
  region_->publish(request.reply, std::move(body));
}

bool EdgeService::onControlMessage(const NatsInbound& message) {
  const std::string& r = config_.region;
  const std::string& subject = message.subject;
  if (subject.compare(0, 4 + r.size() + 5, "wsf." + r + ".ctl.") != 0) return false;
  if (subject == controlEdgesSubject(r)) {
    controlReply(message, controlEdgeJson());
  } else if (subject == controlPresenceSubject(r)) {
    controlReply(message, controlPresence(message));
  } else if (subject == controlKickSubject(r)) {
    controlReply(message, controlKick(message));
  } else if (subject == controlNodeSubject(r, config_.node_name, "drain")) {
    controlReply(message, controlDrain(message, true));
  } else if (subject == controlNodeSubject(r, config_.node_name, "undrain")) {
    controlReply(message, controlDrain(message, false));
  }
  return true;
}

void EdgeService::sampleRates(int64_t now_mono_ms) {
  if (now_mono_ms < next_rate_sample_ms_) return;
  next_rate_sample_ms_ = now_mono_ms + kRateSampleMs;
  rate_samples_.push_back({now_mono_ms, metrics_.connections_accepted.value(),
                           metrics_.messages_received.value(), metrics_.messages_delivered.value(),
                           metrics_.droppedTotal()});
  while (rate_samples_.size() > kRateSamples) rate_samples_.pop_front();
}

std::string EdgeService::controlEdgeJson() const {
  const RateSample now{nowMonoMs(), metrics_.connections_accepted.value(),
                       metrics_.messages_received.value(), metrics_.messages_delivered.value(),
                       metrics_.droppedTotal()};
  const RateSample& then = rate_samples_.empty() ? now : rate_samples_.front();
  const double seconds = static_cast<double>(now.at_ms - then.at_ms) / 1000.0;
  auto rate = [seconds](uint64_t a, uint64_t b) {
    return seconds <= 0 || b < a ? 0.0 : static_cast<double>(b - a) / seconds;
  };
  std::string out;
  JsonWriter w(out);
  w.beginObject()
      .field("region", config_.region)
      .field("node", config_.node_name)
      .fieldInt("worker", control_worker_)
      .field("instance", instance_id_)
      .fieldUint("connections", connections_.size())
      .fieldUint("subscriptions", hub_.subscriptionCount())
      .fieldUint("channels", hub_.channelCount())
      .fieldBool("draining", draining_)
      .fieldBool("drain_held", draining_ && drain_holds_)
      .fieldBool("region_ready", region_ && region_->ready())
      .fieldBool("ready", !draining_ && !shutting_down_ && region_ && region_->ready() &&
                              (!owners_ || owners_->loaded()))
      .key("rates")
      .beginObject()
      .key("connects_per_s")
      .number(rate(then.connects, now.connects))
      .key("messages_in_per_s")
      .number(rate(then.messages_in, now.messages_in))
      .key("messages_out_per_s")
      .number(rate(then.messages_out, now.messages_out))
      .key("drops_per_s")
      .number(rate(then.dropped, now.dropped))
      .endObject()
      .key("totals")
      .beginObject()
      .fieldUint("connects", now.connects)
      .fieldUint("messages_in", now.messages_in)
      .fieldUint("messages_out", now.messages_out)
      .fieldUint("dropped", now.dropped)
      .endObject()
      .endObject();
  return out;
}

bool EdgeService::controlObject(const NatsInbound& request, simdjson::dom::object& object) {
  auto doc = parser_.parse(request.data);
  return doc.isOk() && doc->get_object().get(object) == simdjson::SUCCESS;
}

bool EdgeService::isReconnectUrl(std::string_view url) {
  if (url.size() > kMaxReconnectUrlBytes) return false;
  if (url.rfind("ws://", 0) != 0 && url.rfind("wss://", 0) != 0) return false;
  return std::all_of(url.begin(), url.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string EdgeService::controlDrain(const NatsInbound& request, bool drain) {
  std::optional<uint64_t> window;
  if (drain && !request.data.empty()) {
    simdjson::dom::object object;
    if (!controlObject(request, object)) {
      return controlError("bad_json", "the request must be a JSON object");
    }
    uint64_t value = 0;
    auto e = object["window_ms"].get_uint64().get(value);
    if (e == simdjson::SUCCESS) {
      if (value > kMaxControlDrainWindowMs) {
        return controlError(
            "bad_window", "window_ms must be at most " + std::to_string(kMaxControlDrainWindowMs));
      }
      window = value;
    } else if (e != simdjson::NO_SUCH_FIELD) {
      return controlError("bad_window", "window_ms must be a non-negative integer");
    }
    // Where the hints send clients instead of drain.reconnect_url (a region drain names
    // the failover region's public URL).
    std::string_view url;
    e = object["url"].get(url);
    if (e == simdjson::SUCCESS) {
      if (!isReconnectUrl(url)) {
        return controlError("bad_url", "url must be a ws:// or wss:// URL of at most " +
                                           std::to_string(kMaxReconnectUrlBytes) +
                                           " printable bytes");
      }
      drain_url_ = url;
    } else if (e != simdjson::NO_SUCH_FIELD) {
      return controlError("bad_url", "url must be a string");
    }
  }
  bool changed = false;
  if (drain) {
    changed = beginDrain(window, "control", true);
  } else {
    const bool was = draining_;
    Status undone = undrain();
    if (!undone.isOk()) return controlError(undone.reason(), undone.message());
    changed = was;
  }
  std::string out;
  JsonWriter(out)
      .beginObject()
      .field("region", config_.region)
      .field("node", config_.node_name)
      .fieldInt("worker", control_worker_)
      .fieldBool("draining", draining_)
      .fieldBool("changed", changed)
      .fieldUint("window_ms", draining_ ? drain_window_ms_ : 0)
      .fieldUint("connections", connections_.size())
      .endObject();
  return out;
}

std::string EdgeService::controlPresence(const NatsInbound& request) {
  simdjson::dom::object object;
  if (!controlObject(request, object)) {
    return controlError("bad_json", "the request must be a JSON object");
  }
  const std::string tenant = stringField(object, "tenant");
  const std::string user = stringField(object, "user");
  const std::string channel = stringField(object, "channel");
  if (config_.tenants.count(tenant) == 0) {
    return controlError("unknown_tenant", "no tenant '" + tenant + "' on this edge");
  }
  if (user.empty() == channel.empty()) {
    return controlError("bad_request", "ask for exactly one of user and channel");
  }
  if (Status ok = user.empty() ? validateChannelName(channel) : validateUserId(user); !ok) {
    return controlError(ok.reason(), ok.message());
  }
  const std::vector<Connection*>& found =
      user.empty() ? hub_.subscribers(tenant, channel) : hub_.userConnections(tenant, user);
  std::string out;
  JsonWriter w(out);
  w.beginObject()
      .field("region", config_.region)
      .field("node", config_.node_name)
      .fieldInt("worker", control_worker_)
      .key("connections")
      .beginArray();
  size_t listed = 0;
  for (const Connection* conn : found) {
    if (listed == kControlMaxEntries) break;
    ++listed;
    w.beginObject()
        .field("user", conn->user)
        .field("session", conn->session)
        .field("device", conn->device)
        .fieldInt("connected_at_ms", conn->connected_at_ms)
        .fieldUint("channels", conn->channels.size())
        .endObject();
  }
  w.endArray().fieldBool("truncated", listed < found.size()).endObject();
  return out;
}

std::string EdgeService::controlKick(const NatsInbound& request) {
  simdjson::dom::object object;
  if (!controlObject(request, object)) {
    return controlError("bad_json", "the request must be a JSON object");
  }
  const std::string tenant = stringField(object, "tenant");
  const std::string user = stringField(object, "user");
  std::string reason = stringField(object, "reason");
  if (config_.tenants.count(tenant) == 0) {
    return controlError("unknown_tenant", "no tenant '" + tenant + "' on this edge");
  }
  if (Status ok = validateUserId(user); !ok) return controlError(ok.reason(), ok.message());
  if (Status ok = validateCloseReason(reason); !ok) return controlError(ok.reason(), ok.message());
  if (reason.empty()) reason = "kicked by an operator";
  // Copied: closes change the hub's lists (later, but no need to rely on it).
  const std::vector<Connection*> conns = hub_.userConnections(tenant, user);
  size_t kicked = 0;
  for (Connection* conn : conns) {
    if (conn->close_code != 0) continue;
    requestClose(*conn, 4011, reason);
    ++kicked;
  }
  if (kicked > 0) {
    logInfo("connections_kicked",
            {{"tenant", tenant}, {"user", user}, {"count", kicked}, {"reason", reason}});
  }
  std::string out;
  JsonWriter(out)
      .beginObject()
      .field("region", config_.region)
      .field("node", config_.node_name)
      .fieldInt("worker", control_worker_)
      .fieldUint("kicked", kicked)
      .endObject();
  return out;
}

}  // namespace wsfleet

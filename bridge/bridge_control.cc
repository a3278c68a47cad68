// The control plane, bridge side (common/control_subjects.h): every bridge of the region
// answers wsfleetctl with its links and rates, and pauses or resumes links on request.
//
// A paused link counts as down (bridge/bridge.h, "links"): publishes for the region's
// channels are refused at once, nothing is forwarded to it, and what arrives from it is
// dropped (counted, reason link_paused). Resuming brings it up again the way a healed
// partition does: the last message of every channel it wants is sent again. Pausing is
// state of the running bridge: a bridge that starts later starts with every link unpaused.
#include <string>

#include "bridge/bridge_internal.h"
#include "common/clock.h"
#include "common/control_subjects.h"
#include "common/log.h"

namespace wsfleet {

using namespace bridge_detail;

namespace {

constexpr int64_t kRateSampleMs = 1000;
constexpr size_t kRateSamples = 11;  // rates over the last 10 s

}  // namespace

void Bridge::subscribeControl() {
  // No queue group: every bridge answers (and pauses).
  link_->subscribe(kSubControl, controlBridgesSubject(region_));
  link_->subscribe(kSubControlVerb, "wsf." + region_ + ".ctl.bridge.*");
}

void Bridge::onControl(NatsInbound& message) {
  if (message.reply.empty()) return;
  std::string body;
  if (message.subject == controlBridgesSubject(region_)) {
    body = controlBridgeJson();
  } else if (message.subject == controlBridgeSubject(region_, "pause")) {
    body = controlPause(message, true);
  } else if (message.subject == controlBridgeSubject(region_, "resume")) {
    body = controlPause(message, false);
  } else {
    return;  // another verb: not one of ours
  }
  link_->publish(message.reply, std::move(body));
}

void Bridge::sampleRates(int64_t now_ms) {
  if (now_ms < next_rate_sample_ms_) return;
  next_rate_sample_ms_ = now_ms + kRateSampleMs;
  RateSample sample{now_ms, 0, 0};
  for (const auto& [name, r] : remotes_) {
    sample.messages_out += r->messages_out->value();
    sample.messages_in += r->messages_in->value();
  }
  rate_samples_.push_back(sample);
  while (rate_samples_.size() > kRateSamples) rate_samples_.pop_front();
}

std::string Bridge::controlBridgeJson() const {
  std::string out;
  JsonWriter w(out);
  w.beginObject()
      .field("region", region_)
      .field("instance", instance_)
      .fieldBool("connected", ready())
      .fieldBool("stopping", stopping_)
      .fieldUint("peers", peers_.size())
      .fieldUint("pending_publishes", publishes_in_flight_)
      .key("links")
      .beginArray();
  for (const auto& [name, r] : remotes_) {
    w.beginObject()
        .field("region", name)
        .fieldBool("up", r->up)
        .fieldBool("paused", r->paused)
        .fieldUint("bridges", r->bridges.size())
        .fieldUint("messages_out", r->messages_out->value())
        .fieldUint("messages_in", r->messages_in->value())
        .endObject();
  }
  w.endArray();
  double out_rate = 0;
  double in_rate = 0;
  if (rate_samples_.size() >= 2) {
    const RateSample& a = rate_samples_.front();
    const RateSample& b = rate_samples_.back();
    const double seconds = static_cast<double>(b.at_ms - a.at_ms) / 1000.0;
    if (seconds > 0) {
      out_rate = static_cast<double>(b.messages_out - a.messages_out) / seconds;
      in_rate = static_cast<double>(b.messages_in - a.messages_in) / seconds;
    }
  }
  w.key("rates")
      .beginObject()
      .key("messages_out_per_s")
      .number(out_rate)
      .key("messages_in_per_s")
      .number(in_rate)
      .endObject()
      .endObject();
  return out;
}

std::string Bridge::controlPause(const NatsInbound& request, bool pause) {
  auto doc = parser_.parse(request.data);
  std::string_view region;
  if (!doc || (*doc)["region"].get(region) != simdjson::SUCCESS) {
    return controlError("bad_request", "the request must be {\"region\": NAME}");
  }
  const std::string name(region);
  if (name != region_ && remote(name) == nullptr) {
    return controlError("unknown_region", "'" + name + "' is not a region of the topology");
  }
  uint64_t changed = 0;
  for (auto& [other, r] : remotes_) {
    if (name != region_ && other != name) continue;
    if (r->paused != pause) ++changed;
    setPaused(*r, pause);
  }
  updateLinks(nowMonoMs());
  std::string out;
  JsonWriter w(out);
  w.beginObject()
      .field("region", region_)
      .field("instance", instance_)
      .fieldUint("changed", changed)
      .key("links")
      .beginArray();
  for (const auto& [other, r] : remotes_) {
    w.beginObject()
        .field("region", other)
        .fieldBool("up", r->up)
        .fieldBool("paused", r->paused)
        .endObject();
  }
  w.endArray().endObject();
  return out;
}

void Bridge::setPaused(RemoteRegion& r, bool paused) {
  if (r.paused == paused) return;
  r.paused = paused;
  r.link_paused->set(paused ? 1 : 0);
  logWarn(paused ? "bridge_link_paused" : "bridge_link_resumed", {{"region", r.name}});
}

}  // namespace wsfleet

// Channel traffic: an owned channel's messages to the interested regions, relayed
// unsequenced publishes, forwarded messages in, and tail resends.
#include "bridge/bridge_internal.h"

#include <algorithm>
#include <utility>

#include "common/clock.h"
#include "common/jetstream_api.h"
#include "common/log.h"
#include "common/region_subjects.h"

namespace wsfleet {

using namespace bridge_detail;

// ---- channel traffic ----

void Bridge::onOwnedChannelMessage(const std::string& tail, NatsInbound& message) {
  if (stopping_ || !peers_.isSelfChosen(tail)) return;  // another bridge forwards it
  // An unsequenced message relayed from the region it was published in (onLiveIn) goes
  // everywhere but back there.
  const std::string* published_in = message.header("Wsf-Published-In");
  forwardToInterested(tail, message, published_in != nullptr ? *published_in : std::string());
}

void Bridge::forwardToInterested(const std::string& tail, const NatsInbound& message,
                                 const std::string& skip_region) {
  const auto* regions = remote_interest_.regionsOf(tail);
  if (regions == nullptr) return;
  std::vector<NatsHeader> headers = message.headers;
  headers.push_back({"Wsf-Origin-Region", region_});
  for (const auto& [name, expires] : *regions) {
    RemoteRegion* r = remote(name);
    if (r == nullptr || name == skip_region) continue;
    if (!r->up) {
      // Its edges fetch it from the history once the link is back (resendAllTails).
      metrics_->dropped("link_down").inc();
      continue;
    }
    const std::string target = r->bridges.choose(tail);
    link_->publish("wsfx." + name + ".b." + target + ".ch." + tail, message.data, headers);
    r->countOut(message.data.size());
  }
}

void Bridge::updateLiveSubscription(const std::string& tail) {
  const bool wanted =
      remote_interest_.regionsOf(tail) != nullptr || local_interest_.has(region_, tail);
  auto it = live_subs_.find(tail);
  if (wanted && it == live_subs_.end()) {
    const uint64_t id = next_sub_id_++;
    live_subs_.emplace(tail, id);
    live_sub_tails_.emplace(id, tail);
    // Every bridge of the region hears it; the channel's chosen one delivers it.
    link_->subscribe(id, "wsfx." + region_ + ".live." + tail);
  } else if (!wanted && it != live_subs_.end()) {
    link_->unsubscribe(it->second);
    live_sub_tails_.erase(it->second);
    live_subs_.erase(it);
  }
}

void Bridge::onLiveRelay(NatsInbound& message) {
  // wsf.<region>.xlive.<owner>.<tenant>.<channel>: an unsequenced publish of this region
  // for a channel another region owns. It crosses only while the owner's bridges listen
  // (some region, the owner included, has subscribers).
  const std::string prefix = "wsf." + region_ + ".xlive.";
  if (!startsWith(message.subject, prefix)) return metrics_->dropped("malformed_forward").inc();
  const std::string rest = message.subject.substr(prefix.size());
  const size_t dot = rest.find('.');
  const std::string owner = rest.substr(0, dot);
  RemoteRegion* r = dot == std::string::npos ? nullptr : remote(owner);
  if (r == nullptr || !isChannelTail(std::string_view(rest).substr(dot + 1))) {
    return metrics_->dropped("malformed_forward").inc();
  }
  const std::string tail = rest.substr(dot + 1);
  if (stopping_ || !peers_.isSelfChosen(tail)) return;      // another bridge relays it
  if (!r->up) return metrics_->dropped("link_down").inc();  // at most once: not kept
  r->countOut(message.data.size());
  std::vector<NatsHeader> headers = std::move(message.headers);  // traceparent
  headers.push_back({"Wsf-Published-In", region_});
  link_->publish("wsfx." + owner + ".live." + tail, std::move(message.data), std::move(headers));
}

void Bridge::onLiveIn(const std::string& tail, NatsInbound& message) {
  const std::string* published_in = message.header("Wsf-Published-In");
  RemoteRegion* from = published_in == nullptr ? nullptr : remote(*published_in);
  if (from == nullptr) return metrics_->dropped("malformed_forward").inc();
  if (from->paused) return metrics_->dropped("link_paused").inc();
  const std::string origin = *published_in;
  // Every bridge of the region hears it: the channel's chosen one delivers it here and
  // sends it on to the other interested regions (its own publish on the channel's subject
  // never comes back to it: the link does not echo).
  if (stopping_ || !peers_.isSelfChosen(tail)) return;
  from->countIn(message.data.size());
  link_->publish("wsf." + region_ + ".ch." + tail, message.data, message.headers);
  forwardToInterested(tail, message, origin);
}

void Bridge::onForwardedIn(const std::string& tail, NatsInbound& message) {
  // Republished on a subject made of the tail: it must name one channel.
  if (!isChannelTail(tail)) return metrics_->dropped("malformed_forward").inc();
  const std::string* origin = message.header("Wsf-Origin-Region");
  RemoteRegion* from = origin == nullptr ? nullptr : remote(*origin);
  if (from != nullptr && from->paused) return metrics_->dropped("link_paused").inc();
  // Tails are counted where they are sent (tail_resends_total), not as traffic.
  if (message.header("Wsf-Tail") == nullptr) {
    if (from != nullptr) {
      from->countIn(message.data.size());
    } else {
      metrics_->forwardedMessages("unknown", "in").inc();
      metrics_->forwardedBytes("unknown", "in").inc(message.data.size());
    }
  }
  link_->publish("wsf." + region_ + ".ch." + tail, std::move(message.data),
                 std::move(message.headers));
}

void Bridge::resendAllTails(const std::string* only_region) {
  for (const auto& [tail, regions] : remote_interest_.all()) {
    for (const auto& [name, expires] : regions) {
      if (only_region == nullptr || *only_region == name) resendTail(tail, name);
    }
  }
}

void Bridge::resendTail(const std::string& tail, const std::string& region) {
  // Queued, and sent a bounded number per tick: after a partition heals every shared
  // channel's tail is due at once, and the history stream takes them in stride.
  if (tail_queued_.insert({tail, region}).second) tail_queue_.emplace_back(tail, region);
}

void Bridge::sendQueuedTails() {
  for (size_t n = 0; n < kTailResendsPerTick && !tail_queue_.empty(); ++n) {
    auto [tail, region] = std::move(tail_queue_.front());
    tail_queue_.pop_front();
    tail_queued_.erase({tail, region});
    sendTail(tail, region);
  }
}

void Bridge::sendTail(const std::string& tail, const std::string& region) {
  if (!peers_.isSelfChosen(tail) || !linkUp(region)) return;
  const std::string subject = "wsf." + region_ + ".hist." + tail;
  requests_.send(*link_, msgGetSubject(historyStreamName(region_)), msgGetLastBySubject(subject),
                 {}, nowMonoMs() + static_cast<int64_t>(config_.nats.request_timeout_ms),
                 [this, tail, region, subject](const NatsInbound* reply) {
                   if (reply == nullptr || !reply->status.empty()) {
                     return metrics_->dropped("tail_unreadable").inc();
                   }
                   JsError error;
                   auto got = parseMsgGet(parser_, reply->data, &error);
                   if (!got.isOk()) {
                     if (error.err_code != kJsNoMessageFound)
                       metrics_->dropped("tail_unreadable").inc();
                     return;
                   }
                   RemoteRegion* r = remote(region);
                   if (r == nullptr || !r->up || got->subject != subject) return;
                   // Marked as a tail: receivers compare its offset with theirs and fetch what they
                   // lack from the history; it is never delivered as a live message.
                   std::vector<NatsHeader> headers = {{"Nats-Sequence", std::to_string(got->seq)},
                                                      {"Wsf-Tail", "1"},
                                                      {"Wsf-Origin-Region", region_}};
                   link_->publish(
                       "wsfx." + region + ".b." + r->bridges.choose(tail) + ".ch." + tail,
                       std::move(got->data), std::move(headers));
                   metrics_->tailResends(region).inc();
                 });
}

}  // namespace wsfleet

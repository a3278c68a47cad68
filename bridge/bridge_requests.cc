// Requests for other regions: durable and inbox stores, history and inbox reads, and
// direct messages (routed by the user's home region).
#include "bridge/bridge_internal.h"

#include <algorithm>
#include <utility>

#include "common/clock.h"
#include "common/jetstream_api.h"
#include "common/log.h"
#include "common/region_subjects.h"

namespace wsfleet {

using namespace bridge_detail;

// ---- publishes and history reads for other regions ----

void Bridge::replyError(const std::string& reply, int code, const std::string& description) {
  if (!reply.empty()) link_->publish(reply, errorJson(code, description));
}

void Bridge::onForwardPublish(NatsInbound& message) {
  // wsf.<region>.xpub.<owner>.<tenant>.<channel>
  const std::string prefix = "wsf." + region_ + ".xpub.";
  if (!startsWith(message.subject, prefix) || message.reply.empty()) {
    return metrics_->dropped("malformed_publish").inc();
  }
  // <owner>.<hist|inbox>.<tenant>.<name>
  const std::string rest = message.subject.substr(prefix.size());
  const size_t dot = rest.find('.');
  const size_t kind_end = dot == std::string::npos ? dot : rest.find('.', dot + 1);
  const std::string owner = rest.substr(0, dot);
  const std::string kind =
      kind_end == std::string::npos ? "" : rest.substr(dot + 1, kind_end - dot - 1);
  RemoteRegion* r = kind_end == std::string::npos ? nullptr : remote(owner);
  if (r == nullptr || (kind != "hist" && kind != "inbox")) {
    metrics_->dropped("publish_unknown_owner").inc();
    return replyError(message.reply, 400, "not a store in another region: " + rest);
  }
  if (!isChannelTail(std::string_view(rest).substr(kind_end + 1))) {
    metrics_->dropped("malformed_publish").inc();
    return replyError(message.reply, 400, "not a channel or user: " + rest.substr(kind_end + 1));
  }
  if (!r->up) {
    metrics_->publishes(owner, "refused").inc();
    return replyError(message.reply, 503, "the owner region " + owner + " is unreachable");
  }
  if (publishes_in_flight_ >= config_.links.max_pending_forwards) {
    metrics_->dropped("publish_queue_full").inc();
    metrics_->publishes(owner, "refused").inc();
    return replyError(message.reply, 503, "the bridge is busy, try again");
  }
  auto publish = std::make_shared<PendingPublish>();
  publish->owner = owner;
  publish->store_subject = "wsf." + owner + "." + rest.substr(dot + 1);
  publish->reply = std::move(message.reply);
  publish->data = std::move(message.data);
  publish->headers = std::move(message.headers);
  publish->deadline_ms =
      nowMonoMs() +
      static_cast<int64_t>(config_.links.forward_timeout_ms * config_.links.forward_attempts) +
      kRetryBackoffMs * static_cast<int64_t>(config_.links.forward_attempts);
  ++publishes_in_flight_;
  tryForwardPublish(publish);
}

void Bridge::tryForwardPublish(const std::shared_ptr<PendingPublish>& publish) {
  ++publish->attempts;
  const int64_t now = nowMonoMs();
  const int64_t deadline =
      std::min(publish->deadline_ms, now + static_cast<int64_t>(config_.links.forward_timeout_ms));
  requests_.send(*link_, publish->store_subject, publish->data, publish->headers, deadline,
                 [this, publish](const NatsInbound* reply) {
                   const bool answered = reply != nullptr && reply->status.empty();
                   if (answered) {
                     --publishes_in_flight_;
                     const bool refused = reply->data.find("\"error\"") != std::string::npos;
                     metrics_->publishes(publish->owner, refused ? "refused" : "acked").inc();
                     link_->publish(publish->reply, reply->data);  // the owner's ack (or refusal)
                     return;
                   }
                   // No answer (or nobody stores there right now): try again with the same message
                   // id, which the owner's stream drops as a repeat if the first try was stored.
                   const int64_t retry_at =
                       nowMonoMs() + kRetryBackoffMs * static_cast<int64_t>(publish->attempts);
                   if (publish->attempts < config_.links.forward_attempts &&
                       linkUp(publish->owner) && retry_at < publish->deadline_ms) {
                     publish_retries_.emplace(retry_at, publish);
                     return;
                   }
                   --publishes_in_flight_;
                   metrics_->publishes(publish->owner, "timeout").inc();
                   replyError(publish->reply, 503,
                              "the owner region " + publish->owner + " did not confirm the store");
                 });
}

void Bridge::onForwardApi(NatsInbound& message) {
  // wsf.<region>.xapi.<owner>.<api>: only reads of the owner's history stream.
  const std::string prefix = "wsf." + region_ + ".xapi.";
  if (!startsWith(message.subject, prefix) || message.reply.empty()) {
    return metrics_->dropped("malformed_api").inc();
  }
  const std::string rest = message.subject.substr(prefix.size());
  const size_t dot = rest.find('.');
  const std::string owner = rest.substr(0, dot);
  const std::string api = dot == std::string::npos ? "" : rest.substr(dot + 1);
  // Reads of the owner's history and of its ownership generation markers (a store there
  // is confirmed by one, common/owner_records.h); reads and purges of its inboxes (a
  // user's inbox is in its home region and emptied from wherever the user connects).
  const std::string history = historyStreamName(owner);
  const std::string inbox = inboxStreamName(owner);
  RemoteRegion* r = remote(owner);
  const bool allowed = api == "STREAM.INFO." + history || api == "STREAM.MSG.GET." + history ||
                       api == "STREAM.MSG.GET." + generationStreamName(owner) ||
                       api == "STREAM.MSG.GET." + inbox || api == "STREAM.PURGE." + inbox;
  if (r == nullptr || !allowed) {
    metrics_->dropped("api_refused").inc();
    return replyError(message.reply, 400, "not a history or inbox access in another region");
  }
  if (!r->up) {
    metrics_->dropped("api_link_down").inc();
    return replyError(message.reply, 503, "the owner region " + owner + " is unreachable");
  }
  requests_.send(*link_, "$JS.API." + api, std::move(message.data), {},
                 nowMonoMs() + static_cast<int64_t>(config_.links.forward_timeout_ms),
                 [this, reply = std::move(message.reply), owner](const NatsInbound* answer) {
                   if (answer == nullptr || !answer->status.empty()) {
                     metrics_->dropped("api_unanswered").inc();
                     return replyError(reply, 503, "the owner region " + owner + " did not answer");
                   }
                   link_->publish(reply, answer->data);
                 });
}

// ---- direct messages ----

void Bridge::onDirect(NatsInbound& message) {
  // wsf.<region>.xuser.<home>.<tenant>.<user>
  const std::string prefix = "wsf." + region_ + ".xuser.";
  if (!startsWith(message.subject, prefix)) return metrics_->dropped("malformed_direct").inc();
  const std::string rest = message.subject.substr(prefix.size());
  const size_t dot = rest.find('.');
  const std::string home = rest.substr(0, dot);
  if (dot == std::string::npos || (home != region_ && remote(home) == nullptr)) {
    metrics_->dropped("malformed_direct").inc();
    return replyError(message.reply, 400, "no such region: " + home);
  }
  const std::string tail = rest.substr(dot + 1);
  if (!isChannelTail(tail)) {
    metrics_->dropped("malformed_direct").inc();
    return replyError(message.reply, 400, "not a user: " + tail);
  }
  if (home == region_) return deliverFromHome(tail, region_, message);
  if (!linkUp(home)) {
    metrics_->dropped("link_down").inc();
    return replyError(message.reply, 503, "the user's home region " + home + " is unreachable");
  }
  std::vector<NatsHeader> headers = std::move(message.headers);  // traceparent
  headers.push_back({"Wsf-Origin-Region", region_});
  const std::string subject = "wsfx." + home + ".user." + tail;
  if (message.reply.empty()) {
    link_->publish(subject, std::move(message.data), std::move(headers));
    return;
  }
  requests_.send(*link_, subject, std::move(message.data), std::move(headers),
                 nowMonoMs() + static_cast<int64_t>(config_.links.forward_timeout_ms),
                 [this, reply = std::move(message.reply), home](const NatsInbound* answer) {
                   if (answer == nullptr || !answer->status.empty()) {
                     metrics_->dropped("direct_unanswered").inc();
                     return replyError(reply, 503,
                                       "the user's home region " + home + " did not answer");
                   }
                   link_->publish(reply, answer->data);
                 });
}

void Bridge::deliverHere(const std::string& tail, NatsInbound& message) {
  const std::string subject = "wsf." + region_ + ".user." + tail;
  std::vector<NatsHeader> headers = traceOf(message);
  if (message.reply.empty()) {
    link_->publish(subject, std::move(message.data), std::move(headers));
    return;
  }
  // Asked whether it reached the user: an edge holding the user answers its user
  // subject's requests; nobody listening (503) means the user is not here any more.
  requests_.send(*link_, subject, std::move(message.data), std::move(headers),
                 nowMonoMs() + static_cast<int64_t>(config_.links.forward_timeout_ms) / 2,
                 [this, reply = std::move(message.reply)](const NatsInbound* answer) {
                   const bool here = answer != nullptr && answer->status.empty();
                   std::string body;
                   JsonWriter(body).beginObject().fieldUint("delivered", here ? 1 : 0).endObject();
                   link_->publish(reply, std::move(body));
                 });
}

void Bridge::deliverFromHome(const std::string& tail, const std::string& origin,
                             NatsInbound& message) {
  // Every region the user is online in but the sender's (which delivered it itself).
  std::vector<std::string> targets;
  if (const auto* regions = users_.regionsOf(tail)) {
    for (const auto& [name, expires] : *regions) {
      if (name == origin) continue;
      if (name != region_ && !linkUp(name)) {
        metrics_->dropped("link_down").inc();
        continue;
      }
      targets.push_back(name);
    }
  }
  auto subject_for = [&](const std::string& name) {
    return name == region_
               ? "wsf." + region_ + ".user." + tail
               : "wsfx." + name + ".b." + remote(name)->bridges.choose(tail) + ".user." + tail;
  };
  if (message.reply.empty()) {
    for (const std::string& name : targets) {
      link_->publish(subject_for(name), message.data, traceOf(message));
    }
    return;
  }
  // The sender learns how many regions confirmed that the user got it (an edge there
  // held the user): none means offline everywhere, and the sender keeps it in the inbox.
  struct Tally {
    std::string reply;
    size_t waiting = 0;
    uint64_t delivered = 0;
  };
  auto tally = std::make_shared<Tally>();
  tally->reply = std::move(message.reply);
  tally->waiting = targets.size();
  auto answer = [this](const std::shared_ptr<Tally>& t) {
    std::string body;
    JsonWriter(body).beginObject().fieldUint("delivered", t->delivered).endObject();
    link_->publish(t->reply, std::move(body));
  };
  if (targets.empty()) return answer(tally);
  const int64_t deadline = nowMonoMs() + static_cast<int64_t>(config_.links.forward_timeout_ms) / 2;
  for (const std::string& name : targets) {
    const bool here = name == region_;
    requests_.send(*link_, subject_for(name), message.data, traceOf(message), deadline,
                   [this, tally, here, answer](const NatsInbound* r) {
                     if (r != nullptr && r->status.empty()) {
                       uint64_t n = 1;  // an edge's "online"
                       if (!here) {
                         auto doc = parser_.parse(r->data);
                         if (!doc || (*doc)["delivered"].get(n) != simdjson::SUCCESS) n = 0;
                       }
                       tally->delivered += n > 0 ? 1 : 0;
                     }
                     if (--tally->waiting == 0) answer(tally);
                   });
  }
}

}  // namespace wsfleet

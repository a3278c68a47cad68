#include "edge/region.h"

#include <algorithm>

#include "common/clock.h"
#include "common/log.h"
#include "common/region_subjects.h"

namespace wsfleet {

namespace {

constexpr int64_t kSetupRetryMs = 1000;
constexpr int64_t kHistoryLookMs = 10000;
constexpr size_t kMaxEpochWaiters = 10000;

// Stream limits cover every durable namespace: the longest history and the longest age
// any of them asks for (an age of 0, none, wins). Narrower namespaces are not trimmed
// separately in the stream; see docs/ARCHITECTURE.md.
// JetStream's own rules for a stream: an age limit of at least 100 ms (or none), and a
// duplicate window no longer than the age limit.
void fitJetStreamRules(StreamSpec& spec, int64_t wanted_dedup_ms) {
  constexpr int64_t kMinAgeMs = 100;
  constexpr int64_t kDefaultDedupMs = 120000;  // JetStream's own default
  if (spec.max_age_ms > 0) spec.max_age_ms = std::max(spec.max_age_ms, kMinAgeMs);
  int64_t dedup = wanted_dedup_ms > 0 ? wanted_dedup_ms : kDefaultDedupMs;
  if (spec.max_age_ms > 0) dedup = std::min(dedup, spec.max_age_ms);
  spec.duplicate_window_ms = dedup;
}

StreamSpec historySpec(const EdgeConfig& config) {
  StreamSpec spec;
  spec.name = historyStreamName(config.region);
  spec.subjects = "wsf." + config.region + ".hist.>";
  spec.republish_dest = "wsf." + config.region + ".ch.>";
  spec.replicas = static_cast<int>(config.history_replicas);
  uint64_t most = 1;
  int64_t oldest = 0;
  bool unbounded_age = false;
  bool any = false;
  for (const auto& [tenant_name, tenant] : config.tenants) {
    for (const auto& [ns_name, ns] : tenant.namespaces) {
      if (ns.ordering != Ordering::kOwner) continue;
      any = true;
      most = std::max(most, ns.history_size);
      if (ns.history_ttl_ms == 0) unbounded_age = true;
      oldest = std::max(oldest, ns.history_ttl_ms);
    }
  }
  spec.max_msgs_per_subject = most;
  // No durable namespace (yet: a reload may add one): the stream exists, unlimited in age.
  spec.max_age_ms = unbounded_age || !any ? 0 : oldest;
  fitJetStreamRules(spec, static_cast<int64_t>(config.resume_window_ms));
  return spec;
}

// Inboxes: the largest count and the longest age any tenant keeps.
StreamSpec inboxSpec(const EdgeConfig& config, bool& enabled) {
  StreamSpec spec;
  spec.name = inboxStreamName(config.region);
  spec.subjects = "wsf." + config.region + ".inbox.>";
  spec.replicas = static_cast<int>(config.history_replicas);
  spec.max_msgs_per_subject = 1;
  spec.max_age_ms = 0;
  enabled = false;
  for (const auto& [name, tenant] : config.tenants) {
    if (tenant.inbox_ttl_ms == 0) continue;
    enabled = true;
    spec.max_msgs_per_subject = std::max(spec.max_msgs_per_subject, tenant.inbox_max_messages);
    spec.max_age_ms = std::max(spec.max_age_ms, static_cast<int64_t>(tenant.inbox_ttl_ms));
  }
  fitJetStreamRules(spec, static_cast<int64_t>(config.resume_window_ms));
  return spec;
}

// Ownership markers: only the latest per channel matters, and it must outlive any
// history age limit (a store that arrives late is judged by it).
StreamSpec generationsSpec(const EdgeConfig& config) {
  StreamSpec spec;
  spec.name = generationStreamName(config.region);
  spec.subjects = "wsf." + config.region + ".gen.>";
  spec.replicas = static_cast<int>(config.history_replicas);
  spec.max_msgs_per_subject = 1;
  spec.max_age_ms = 0;
  fitJetStreamRules(spec, 0);
  return spec;
}

// A short, stable rendering of the stream's creation time.
std::string epochFromCreation(const std::string& stream, const std::string& created) {
  uint64_t h = 1469598103934665603ull;
  for (char c : stream + "\n" + created) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[h & 0xF];
    h >>= 4;
  }
  return out;
}

}  // namespace

Region::Region(const EdgeConfig& config, MetricsRegistry& registry, Handlers handlers)
    : name_(config.region),
      handlers_(std::move(handlers)),
      request_timeout_ms_(static_cast<int64_t>(config.nats.request_timeout_ms)),
      requests_timed_out_(registry.counter(
          "wsfleet_nats_requests_timed_out_total",
          "NATS requests (region publishes, history reads) that got no reply in time")),
      stream_setup_failures_(
          registry.counter("wsfleet_history_stream_setup_failures_total",
                           "Failed attempts to find or create the region's JetStream streams")) {
  history_.spec = historySpec(config);
  inbox_.spec = inboxSpec(config, inbox_enabled_);
  generations_.spec = generationsSpec(config);
  generations_enabled_ = config.topology != nullptr;
}

Result<std::unique_ptr<Region>> Region::start(const EdgeConfig& config, int worker_index,
                                              MetricsRegistry& registry, Handlers handlers) {
  NatsLinkOptions options = natsLinkOptions(config.nats);
  options.name = "wsfleet-edge " + config.node_name + " worker " + std::to_string(worker_index);
  options.metric_labels = {{"worker", std::to_string(worker_index)}};

  std::unique_ptr<Region> region(new Region(config, registry, std::move(handlers)));
  WSF_ASSIGN_OR_RETURN(region->link_, NatsLink::start(std::move(options), registry));
  return region;
}

bool Region::ready() const {
  return connected() && history_.known && (!inbox_enabled_ || inbox_.known) &&
         (!generations_enabled_ || generations_.known);
}

void Region::onWake() {
  inbound_.clear();
  link_->takeInbound(inbound_);
  for (NatsInbound& item : inbound_) {
    switch (item.kind) {
      case NatsInbound::Kind::kMessage:
        // Still on its way out of an unwatched subscription: not for this worker any more.
        if (live_sub_ids_.count(item.sub_id) == 0) break;
        handlers_.delivery(item);
        break;
      case NatsInbound::Kind::kReply:
        requests_.onReply(item);  // false: timed out already
        break;
      case NatsInbound::Kind::kState:
        onLinkState(item.state);
        break;
    }
  }
  inbound_.clear();
}

void Region::onLinkState(NatsLinkState state) {
  logInfo("nats_link", {{"state", natsLinkStateName(state)}});
  if (state != NatsLinkState::kConnected) return;
  const bool again = was_connected_;
  was_connected_ = true;
  // Looked at again after every reconnect: the stream may have been recreated meanwhile
  // (a new epoch).
  history_.known = false;
  inbox_.known = false;
  setUpStreams(nowMonoMs());
  if (again && handlers_.reconnected) handlers_.reconnected();
}

void Region::tick(int64_t now_mono_ms) {
  requests_timed_out_.inc(requests_.expire(now_mono_ms));
  if (!connected()) return;
  setUpStreams(now_mono_ms);
  // A stream deleted and recreated meanwhile (a new epoch) is noticed within this period
  // even by workers that only deliver.
  if (history_.known && now_mono_ms - last_history_look_ms_ >= kHistoryLookMs) {
    last_history_look_ms_ = now_mono_ms;
    recheckHistory();
  }
  for (auto& [owner, h] : remote_histories_) {
    if (!h.fetching && !h.epoch.empty() && now_mono_ms - h.looked_ms >= kHistoryLookMs) {
      lookAtRemote(owner);
    }
  }
}

void Region::watch(const std::string& subject) {
  if (watched_.count(subject) != 0) return;
  const uint64_t id = next_sub_id_++;
  watched_.emplace(subject, id);
  live_sub_ids_.insert(id);
  link_->subscribe(id, subject);
}

void Region::unwatch(const std::string& subject) {
  auto it = watched_.find(subject);
  if (it == watched_.end()) return;
  link_->unsubscribe(it->second);
  live_sub_ids_.erase(it->second);
  watched_.erase(it);
}

bool Region::publish(std::string subject, std::string data, std::vector<NatsHeader> headers) {
  return link_->publish(std::move(subject), std::move(data), std::move(headers));
}

void Region::request(std::string subject, std::string data, std::vector<NatsHeader> headers,
                     ReplyFn done) {
  requests_.send(*link_, std::move(subject), std::move(data), std::move(headers),
                 nowMonoMs() + request_timeout_ms_, std::move(done));
}

void Region::getMessage(std::string body, ReplyFn done) {
  getMessageFrom(history_.spec.name, std::move(body), std::move(done));
}

void Region::getMessageFrom(const std::string& stream, std::string body, ReplyFn done) {
  request(msgGetSubject(stream), std::move(body), {}, std::move(done));
}

void Region::purge(const std::string& stream, std::string body, ReplyFn done) {
  request(streamPurgeSubject(stream), std::move(body), {}, std::move(done));
}

void Region::historyInfoFor(const std::string& subject, ReplyFn done) {
  request(streamInfoSubject(history_.spec.name), streamInfoForSubject(subject), {},
          std::move(done));
}

void Region::recheckHistory() {
  if (!history_.setup_running) setUp(history_);
}

void Region::setUpStreams(int64_t now_mono_ms) {
  for (Stream* stream : {&history_, &inbox_, &generations_}) {
    if (stream == &inbox_ && !inbox_enabled_) continue;
    if (stream == &generations_ && !generations_enabled_) continue;
    if (!stream->known && !stream->setup_running && now_mono_ms >= stream->retry_at_ms) {
      setUp(*stream);
    }
  }
}

void Region::setUp(Stream& stream) {
  stream.setup_running = true;
  request(streamInfoSubject(stream.spec.name), "", {},
          [this, &stream](const NatsInbound* reply) { onStreamInfo(stream, reply, false); });
}

void Region::onStreamInfo(Stream& stream, const NatsInbound* reply, bool created) {
  auto fail = [this, &stream](const std::string& why) {
    stream.setup_running = false;
    stream.retry_at_ms = nowMonoMs() + kSetupRetryMs;
    stream_setup_failures_.inc();
    logWarn("stream_unavailable", {{"stream", stream.spec.name}, {"error", why}});
  };
  if (reply == nullptr) return fail("no reply from JetStream");
  if (reply->status == "503") return fail("JetStream is not enabled or has no quorum");
  JsError error;
  auto info = parseStreamInfo(parser_, reply->data, &error);
  if (!info.isOk()) {
    if (!created && error.err_code == kJsStreamNotFound) {
      // Several workers may race to create it: identical configs make that harmless
      // (JetStream answers an identical create with the existing stream).
      request(streamCreateSubject(stream.spec.name), streamConfigJson(stream.spec), {},
              [this, &stream](const NatsInbound* r) { onStreamInfo(stream, r, true); });
      return;
    }
    return fail(info.status().message());
  }
  stream.setup_running = false;
  stream.known = true;
  stream.first_seq = info->first_seq;
  if (&stream == &history_ && !info->has_republish) {
    logWarn("stream_misconfigured",
            {{"stream", stream.spec.name},
             {"problem", "no republish: durable channels will not be delivered live"}});
  }
  if (info->created != stream.created) {
    logInfo("stream_ready", {{"stream", stream.spec.name},
                             {"created", created},
                             {"replicas", info->replicas},
                             {"last_seq", info->last_seq}});
  }
  stream.created = info->created;
  if (&stream != &history_) return;
  const std::string epoch = epochFromCreation(stream.spec.name, info->created);
  const bool changed = !epoch_.empty() && epoch != epoch_;
  epoch_ = epoch;
  if (changed) {
    logWarn("history_epoch_changed", {{"stream", stream.spec.name}, {"epoch", epoch_}});
    if (handlers_.epoch_changed) handlers_.epoch_changed(name_);
  }
}

// ---- other regions' histories ----

const std::string& Region::epochOf(const std::string& owner) const {
  if (owner == name_) return epoch_;
  static const std::string kUnknown;
  auto it = remote_histories_.find(owner);
  return it == remote_histories_.end() ? kUnknown : it->second.epoch;
}

void Region::getHistoryMessage(const std::string& owner, std::string body, ReplyFn done) {
  if (owner == name_) return getMessage(std::move(body), std::move(done));
  streamApi(owner, "STREAM.MSG.GET." + historyStreamName(owner), std::move(body), std::move(done));
}

void Region::historyInfoFor(const std::string& owner, const std::string& subject, ReplyFn done) {
  if (owner == name_) return historyInfoFor(subject, std::move(done));
  streamApi(owner, "STREAM.INFO." + historyStreamName(owner), streamInfoForSubject(subject),
            std::move(done));
}

void Region::streamApi(const std::string& region, const std::string& api, std::string body,
                       ReplyFn done) {
  request(region == name_ ? "$JS.API." + api : forwardedApiSubject(name_, region, api),
          std::move(body), {}, std::move(done));
}

void Region::withEpoch(const std::string& owner, std::function<void(bool known)> done) {
  if (owner == name_) return done(!epoch_.empty());
  RemoteHistory& h = remote_histories_[owner];
  if (!h.epoch.empty()) return done(true);
  // Bounded: beyond this many waiting (publishes and subscribes while the first look at
  // that region's history is under way), refused at once.
  if (h.waiting.size() >= kMaxEpochWaiters) return done(false);
  h.waiting.push_back(std::move(done));
  if (!h.fetching) lookAtRemote(owner);
}

void Region::lookAtRemote(const std::string& owner) {
  RemoteHistory& h = remote_histories_[owner];
  h.fetching = true;
  h.looked_ms = nowMonoMs();
  const std::string stream = historyStreamName(owner);
  request(forwardedApiSubject(name_, owner, "STREAM.INFO." + stream), "", {},
          [this, owner, stream](const NatsInbound* reply) {
            RemoteHistory& r = remote_histories_[owner];
            r.fetching = false;
            auto info = reply == nullptr || !reply->status.empty()
                            ? Result<StreamInfo>(Status(Code::kUnavailable, "no_reply", ""))
                            : parseStreamInfo(parser_, reply->data);
            const bool known = info.isOk();
            if (known) {
              const std::string epoch = epochFromCreation(stream, info->created);
              const bool changed = !r.epoch.empty() && epoch != r.epoch;
              r.epoch = epoch;
              if (changed) {
                logWarn("history_epoch_changed", {{"stream", stream}, {"epoch", epoch}});
                if (handlers_.epoch_changed) handlers_.epoch_changed(owner);
              }
            } else {
              logWarn("remote_history_unreadable",
                      {{"owner", owner}, {"error", info.status().message()}});
            }
            auto waiting = std::move(r.waiting);
            r.waiting.clear();
            for (auto& done : waiting) done(known);
          });
}

}  // namespace wsfleet

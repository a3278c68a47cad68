// Drain (EdgeService, continued): stop taking clients, tell the connected ones where to
// go, spread over a window so that the next edges do not take every reconnect at once,
// then let the stop close whoever is left. The spread itself is edge/drain_schedule.h.
#include <string>

#include "common/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "common/random.h"
#include "edge/drain_schedule.h"
#include "edge/edge_service.h"
#include "edge/operator_auth.h"

namespace wsfleet {

namespace {

// The longest window POST /admin/drain may ask for, as drain.window_ms.
constexpr uint64_t kMaxDrainWindowMs = 3600 * 1000;

HttpResponse drainError(const Status& status) {
  return errorResponse(httpStatusFor(status.code()), codeName(status.code()), status.reason(),
                       status.message());
}

Result<uint64_t> parseWindow(std::string_view text) {
  uint64_t value = 0;
  bool ok = !text.empty() && text.size() <= 10;
  for (char c : text) {
    ok = ok && c >= '0' && c <= '9';
    if (ok) value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok || value > kMaxDrainWindowMs) {
    return Status(Code::kBadRequest, "bad_window",
                  "window_ms must be an integer in 0.." + std::to_string(kMaxDrainWindowMs));
  }
  return value;
}

}  // namespace

bool EdgeService::beginDrain(std::optional<uint64_t> window_ms, std::string_view trigger,
                             bool hold) {
  if (draining_ && drain_holds_ && !hold && !shutting_down_) {
    // The clients were told to leave already: the stop waits for the same window.
    drain_holds_ = false;
    logInfo("drain_stopping", {{"trigger", trigger}});
    return true;
  }
  if (draining_ || shutting_down_) return false;
  draining_ = true;
  drain_holds_ = hold;
  drain_window_ms_ = window_ms.value_or(config_.drain_window_ms);
  drain_started_ms_ = nowMonoMs();
  drain_deadline_ms_ =
      drain_started_ms_ + static_cast<int64_t>(drain_window_ms_ + config_.drain_grace_ms);
  uint64_t seed = 0;
  // Predictable send times would do no harm; a failing kernel only loses the seed.
  (void)randomBytes(&seed, sizeof(seed));
  drain_rng_.seed(seed ^ static_cast<uint64_t>(drain_started_ms_));
  metrics_.draining.set(1);
  logInfo("drain_started", {{"trigger", trigger},
                            {"window_ms", drain_window_ms_},
                            {"grace_ms", config_.drain_grace_ms},
                            {"connections", connections_.size()},
                            {"url", reconnectUrl()}});
  const size_t count = connections_.size();
  size_t index = 0;
  for (auto& [ptr, conn] : connections_) {
    scheduleDrainHint(*conn, drainHintOffsetMs(index++, count, drain_window_ms_, drainUnit()));
  }
  return true;
}

bool EdgeService::drainComplete() const {
  return draining_ && !drain_holds_ &&
         (connections_.empty() || nowMonoMs() >= drain_deadline_ms_);
}

Status EdgeService::undrain() {
  if (!draining_) return Status::ok();
  if (!drain_holds_ || shutting_down_) {
    return Status(Code::kUnavailable, "stopping",
                  "this edge drains to stop (SIGTERM or POST /admin/drain): it cannot be undone");
  }
  draining_ = false;
  drain_holds_ = false;
  drain_url_.clear();
  metrics_.draining.set(0);
  for (auto& [ptr, conn] : connections_) timers_.cancel(&conn->drain_timer);
  logInfo("drain_ended", {{"trigger", "control"}, {"connections", connections_.size()}});
  return Status::ok();
}

double EdgeService::drainUnit() {
  return std::uniform_real_distribution<double>(0.0, 1.0)(drain_rng_);
}

std::string EdgeService::reconnectUrl() const {
  if (!drain_url_.empty()) return drain_url_;
  return config_.drain_reconnect_url.empty() ? public_url_ : config_.drain_reconnect_url;
}

void EdgeService::scheduleDrainHint(Connection& conn, uint64_t offset_ms) {
  timers_.schedule(&conn.drain_timer, static_cast<uint64_t>(drain_started_ms_) + offset_ms);
}

void EdgeService::sendDrainHint(Connection& conn) {
  if (conn.close_code != 0) return;
  const uint64_t after_ms = drainHintAfterMs(drain_window_ms_, drainUnit());
  if (enqueue(conn, makeFrame(encodeReconnect(after_ms, reconnectUrl(), "drain")))) {
    metrics_.drain_hints_sent.inc();
  }
}

HttpResponse EdgeService::adminDrain(std::string_view authorization, std::string_view peer,
                                     const std::unordered_map<std::string, std::string>& query,
                                     std::string_view body) {
  // Authenticated before anything about the request is looked at.
  Status allowed = checkOperator(config_.operator_token, bearerToken(authorization), peer);
  if (!allowed.isOk()) {
    logWarn("operator_refused",
            {{"route", "/admin/drain"}, {"peer", peer}, {"reason", allowed.reason()}});
    return drainError(allowed);
  }
  std::optional<uint64_t> window;
  if (auto it = query.find("window_ms"); it != query.end()) {
    auto parsed = parseWindow(it->second);
    if (!parsed.isOk()) return drainError(parsed.status());
    window = *parsed;
  }
  if (!body.empty()) {
    auto doc = parser_.parse(body);
    simdjson::dom::object object;
    if (!doc.isOk() || doc->get_object().get(object) != simdjson::SUCCESS) {
      return drainError(Status(Code::kBadRequest, "bad_json", "the body must be a JSON object"));
    }
    for (auto field : object) {
      uint64_t value = 0;
      if (field.key != "window_ms" || field.value.get_uint64().get(value) != simdjson::SUCCESS) {
        return drainError(Status(Code::kBadRequest, "bad_body",
                                 "the body may only hold window_ms, a non-negative integer"));
      }
      auto parsed = parseWindow(std::to_string(value));
      if (!parsed.isOk()) return drainError(parsed.status());
      window = *parsed;
    }
  }
  const bool started = beginDrain(window, "admin");
  if (started) transport_.drainHost();
  HttpResponse r;
  r.status = started ? 202 : 200;
  JsonWriter w(r.body);
  w.beginObject()
      .fieldBool("draining", true)
      .fieldBool("started", started)
      .fieldUint("window_ms", drain_window_ms_)
      .fieldUint("connections", connections_.size())
      .field("url", reconnectUrl())
      .endObject();
  r.body.push_back('\n');
  return r;
}

}  // namespace wsfleet

// Admin listener routes: health, metrics and the backend HTTP API (EdgeService, continued).
#include <string>

#include "common/channel.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/secure_compare.h"
#include "edge/edge_service.h"

namespace wsfleet {

namespace {

HttpResponse jsonError(const Status& status) {
  return errorResponse(httpStatusFor(status.code()), codeName(status.code()), status.reason(),
                       clientMessage(status));
}

HttpResponse plain(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

const std::string* queryValue(const std::unordered_map<std::string, std::string>& query,
                              const char* name) {
  auto it = query.find(name);
  return it == query.end() ? nullptr : &it->second;
}

}  // namespace

HttpResponse EdgeService::handleHttp(std::string_view method, std::string_view path,
                                     const std::unordered_map<std::string, std::string>& query,
                                     std::string_view authorization, std::string_view body,
                                     std::string_view peer) {
  metrics_.http_requests.inc();
  if (path == "/healthz") return plain(200, "ok\n");
  if (path == "/readyz") {
    if (shutting_down_ || draining_) return plain(503, "draining\n");
    // Without the region a durable publish or subscribe here would fail: let the load
    // balancer send clients to an edge that has it.
    if (region_ && !region_->ready()) return plain(503, "region unavailable\n");
    // Moved channels are routed by the bucket: until it is read, they would be served
    // from their old owners.
    if (owners_ && !owners_->loaded()) return plain(503, "ownership records not read yet\n");
    return plain(200, "ready\n");
  }
  if (path == "/metrics") {
    if (method != "GET") return jsonError(Status(Code::kNotFound, "bad_method", "use GET"));
    HttpResponse r = plain(200, metrics_.registry().renderPrometheus());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }
  if (path == "/api/v1/publish" && method == "POST") return apiPublish(authorization, body);
  if (path == "/api/v1/send" && method == "POST") return apiSend(authorization, body);
  if (path == "/api/v1/presence" && method == "GET") return apiPresence(authorization, query);
  if (path == "/admin/drain" && method == "POST")
    return adminDrain(authorization, peer, query, body);
  return jsonError(Status(Code::kNotFound, "no_route", "no such route"));
}

Result<const TenantConfig*> EdgeService::apiKeyOwner(std::string_view authorization) {
  std::string_view key = bearerToken(authorization);
  if (key.empty()) {
    return Status(Code::kUnauthorized, "api_key_missing",
                  "Authorization: Bearer <api key> required");
  }
  const TenantConfig* owner = nullptr;
  for (const auto& [name, tenant] : config_.tenants) {
    for (const auto& candidate : tenant.api_keys) {
      if (constantTimeEquals(candidate, key)) owner = &tenant;
    }
  }
  if (owner == nullptr) return Status(Code::kUnauthorized, "api_key_unknown", "unknown API key");
  return owner;
}

namespace {

Status checkTenant(const TenantConfig& owner, std::string_view tenant) {
  if (owner.name == tenant) return Status::ok();
  return Status(Code::kForbidden, "api_key_tenant", "this API key is not valid for that tenant");
}

}  // namespace

// Each route authenticates the key before it says anything about the request.
HttpResponse EdgeService::apiPublish(std::string_view authorization, std::string_view body) {
  auto owner = apiKeyOwner(authorization);
  if (!owner.isOk()) return jsonError(owner.status());
  auto req = decodeApiPublish(parser_, body);
  if (!req.isOk()) return jsonError(req.status());
  Status allowed = checkTenant(**owner, req->tenant);
  if (!allowed.isOk()) return jsonError(allowed);
  // Valid names only reach the limiter, so it never keeps buckets for garbage.
  auto ns = channelNamespace(**owner, req->channel);
  if (!ns.isOk()) return jsonError(ns.status());
  const LimitVerdict limit = inbound_.onApiPublish(req->tenant, req->channel, nowMonoMs());
  if (!limit.allowed) {
    HttpResponse r = jsonError(Status(Code::kRateLimited, limit.reason,
                                      "publish rate of this channel exceeded; retry later"));
    r.headers.emplace_back("Retry-After", std::to_string(retryAfterSeconds(limit)));
    return r;
  }
  return answerWhenDone([&](HttpDone respond) {
    publishAsync(**owner, req->channel, "", req->data_json, req->idempotency_key,
                 [respond = std::move(respond)](Result<PublishOutcome> outcome) {
                   if (!outcome.isOk()) return respond(jsonError(outcome.status()));
                   HttpResponse r;
                   JsonWriter w(r.body);
                   w.beginObject().fieldUint("offset", outcome->position.offset);
                   if (!outcome->position.epoch.empty()) w.field("epoch", outcome->position.epoch);
                   w.endObject();
                   r.body.push_back('\n');
                   respond(std::move(r));
                 });
  });
}

HttpResponse EdgeService::answerWhenDone(const std::function<void(HttpDone)>& start) {
  struct State {
    std::optional<HttpResponse> now;
    uint64_t ticket = 0;  // 0 while start() has not returned
  };
  auto state = std::make_shared<State>();
  start([this, state](HttpResponse r) {
    if (state->ticket == 0) {
      state->now = std::move(r);
    } else {
      transport_.answerHttp(state->ticket, std::move(r));
    }
  });
  if (state->now) return std::move(*state->now);
  state->ticket = ++http_ticket_;
  HttpResponse deferred;
  deferred.deferred_ticket = state->ticket;
  return deferred;
}

HttpResponse EdgeService::apiSend(std::string_view authorization, std::string_view body) {
  auto owner = apiKeyOwner(authorization);
  if (!owner.isOk()) return jsonError(owner.status());
  auto req = decodeApiSend(parser_, body);
  if (!req.isOk()) return jsonError(req.status());
  Status allowed = checkTenant(**owner, req->tenant);
  if (!allowed.isOk()) return jsonError(allowed);
  Status valid = validateUserId(req->user);
  if (!valid.isOk()) return jsonError(valid);
  return answerWhenDone([&](HttpDone respond) {
    sendDirectAsync(**owner, req->user, "", req->data_json,
                    [respond = std::move(respond)](Result<std::string> delivered) {
                      if (!delivered.isOk()) return respond(jsonError(delivered.status()));
                      HttpResponse r;
                      JsonWriter w(r.body);
                      w.beginObject().field("delivered", *delivered).endObject();
                      r.body.push_back('\n');
                      respond(std::move(r));
                    });
  });
}

HttpResponse EdgeService::apiPresence(std::string_view authorization,
                                      const std::unordered_map<std::string, std::string>& query) {
  auto tenant = apiKeyOwner(authorization);
  if (!tenant.isOk()) return jsonError(tenant.status());
  const std::string* tenant_name = queryValue(query, "tenant");
  if (tenant_name == nullptr) {
    return jsonError(Status(Code::kBadRequest, "bad_query", "tenant=… is required"));
  }
  Status allowed = checkTenant(**tenant, *tenant_name);
  if (!allowed.isOk()) return jsonError(allowed);
  const std::string* channel = queryValue(query, "channel");
  const std::string* user = queryValue(query, "user");
  HttpResponse r;
  JsonWriter w(r.body);
  if (channel != nullptr) {
    auto ns = channelNamespace(**tenant, *channel);
    if (!ns.isOk()) return jsonError(ns.status());
    if (!(*ns)->presence) {
      return jsonError(Status(Code::kBadRequest, "presence_disabled",
                              "presence is not enabled in namespace " + (*ns)->name));
    }
    auto members = presence_->channelMembers((*tenant)->name, *channel);
    if (!members.isOk()) return jsonError(members.status());
    w.beginObject().field("channel", *channel).key("members").beginArray();
    for (const auto& m : *members) {
      w.beginObject().field("user", m.user).fieldUint("connections", m.connections).endObject();
    }
    w.endArray().endObject();
  } else if (user != nullptr) {
    Status valid = validateUserId(*user);
    if (!valid.isOk()) return jsonError(valid);
    auto conns = presence_->userConnections((*tenant)->name, *user);
    if (!conns.isOk()) return jsonError(conns.status());
    w.beginObject().field("user", *user).key("connections").beginArray();
    for (const auto& c : *conns) {
      w.beginObject().field("session", c.conn_id).field("device", c.device);
      w.fieldInt("connected_at", c.connected_at_ms).endObject();
    }
    w.endArray().endObject();
  } else {
    return jsonError(Status(Code::kBadRequest, "bad_query", "give channel=… or user=…"));
  }
  r.body.push_back('\n');
  return r;
}

}  // namespace wsfleet

// libwebsockets callbacks of the admin listener (health, metrics, backend API) and the
// HTTP response writer shared with the WebSocket listener's refusals.
#include <cstring>
#include <string>
#include <unordered_map>

#include "common/log.h"
#include "edge/edge_server.h"

namespace wsfleet {

struct AdminRequest {
  std::string method;
  std::string path;
  std::unordered_map<std::string, std::string> query;
  std::string authorization;
  std::string body;
  std::string peer;
  bool too_large = false;
};

namespace {

void dropRequest(AdminSession* session) {
  if (session == nullptr) return;
  delete session->request;
  session->request = nullptr;
}

std::string header(lws* wsi, lws_token_indexes token) {
  const int len = lws_hdr_total_length(wsi, token);
  if (len <= 0) return {};
  std::string out(static_cast<size_t>(len) + 1, '\0');
  const int got = lws_hdr_copy(wsi, out.data(), len + 1, token);
  out.resize(got > 0 ? static_cast<size_t>(got) : 0);
  return out;
}

// lws splits the query string at '&' and URL-decodes each fragment.
std::unordered_map<std::string, std::string> queryArgs(lws* wsi) {
  std::unordered_map<std::string, std::string> args;
  char buf[1024];
  for (int i = 0; i < 32; ++i) {
    const int n = lws_hdr_copy_fragment(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n <= 0) break;
    std::string_view arg(buf, static_cast<size_t>(n));
    const size_t eq = arg.find('=');
    if (eq == std::string_view::npos) {
      args.emplace(std::string(arg), std::string());
    } else {
      args.emplace(std::string(arg.substr(0, eq)), std::string(arg.substr(eq + 1)));
    }
  }
  return args;
}

std::string peerOf(lws* wsi) {
  char buf[64] = {0};
  lws_get_peer_simple(wsi, buf, sizeof(buf));
  return buf;
}

std::string methodOf(lws* wsi) {
  if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0) return "GET";
  if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0) return "POST";
  return "OTHER";
}

int finish(lws* wsi, const HttpResponse& response) {
  if (writeHttpResponse(wsi, response) < 0) return -1;
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

// Answers and closes the connection (lws flushes what is buffered before closing).
int finishAndClose(lws* wsi, HttpResponse response) {
  response.headers.emplace_back("Connection", "close");
  writeHttpResponse(wsi, response);
  return -1;
}

}  // namespace

int writeHttpResponse(lws* wsi, const HttpResponse& response) {
  std::string head(LWS_PRE + 1024, '\0');
  auto* start = reinterpret_cast<unsigned char*>(head.data()) + LWS_PRE;
  unsigned char* p = start;
  unsigned char* end = reinterpret_cast<unsigned char*>(head.data()) + head.size();
  if (lws_add_http_common_headers(wsi, static_cast<unsigned int>(response.status),
                                  response.content_type.c_str(), response.body.size(), &p, end)) {
    return -1;
  }
  for (const auto& [name, value] : response.headers) {
    std::string with_colon = name + ":";
    if (lws_add_http_header_by_name(wsi, reinterpret_cast<const unsigned char*>(with_colon.c_str()),
                                    reinterpret_cast<const unsigned char*>(value.data()),
                                    static_cast<int>(value.size()), &p, end)) {
      return -1;
    }
  }
  if (lws_finalize_write_http_header(wsi, start, &p, end)) return -1;
  if (response.body.empty()) return 0;
  // lws keeps whatever the socket does not take now and sends it before anything else.
  std::string body(LWS_PRE, '\0');
  body += response.body;
  auto* payload = reinterpret_cast<unsigned char*>(body.data()) + LWS_PRE;
  if (lws_write(wsi, payload, response.body.size(), LWS_WRITE_HTTP_FINAL) < 0) return -1;
  return 0;
}

int EdgeServer::answerOrWait(lws* wsi, AdminSession* session, HttpResponse response) {
  if (response.deferred_ticket == 0) return finish(wsi, response);
  // The answer comes later (answerHttp); until then the request only waits. lws would
  // close an idle HTTP connection after its own timeout: keep it open a little longer
  // than the region may take to answer.
  session->deferred_ticket = response.deferred_ticket;
  deferred_http_[response.deferred_ticket] = wsi;
  // A send to an offline user chains two region requests.
  lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
                  static_cast<int>(2 * service_->config().nats.request_timeout_ms / 1000 + 5));
  return 0;
}

int EdgeServer::onAdminEvent(lws* wsi, lws_callback_reasons reason, void* user, void* in,
                             size_t len) {
  auto* session = static_cast<AdminSession*>(user);
  switch (reason) {
    case LWS_CALLBACK_HTTP: {
      dropRequest(session);
      const std::string method = methodOf(wsi);
      const std::string path = in != nullptr ? static_cast<const char*>(in) : "";
      if (method == "OTHER") {
        return finish(wsi, errorResponse(405, "bad_request", "bad_method", "use GET or POST"));
      }
      auto request = std::make_unique<AdminRequest>();
      request->method = method;
      request->path = path;
      request->query = queryArgs(wsi);
      request->authorization = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
      request->peer = peerOf(wsi);
      if (method == "POST") {
        // lws 4.1 does not decode chunked request bodies (it would wait for a body that
        // never ends), so a POST must say how long its body is.
        const std::string length = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
        if (length.empty() || lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
          return finishAndClose(wsi, errorResponse(411, "bad_request", "length_required",
                                                   "POST bodies need Content-Length"));
        }
        if (std::strtoull(length.c_str(), nullptr, 10) > service_->config().max_body_bytes) {
          // Closing spares reading (and discarding) the announced body.
          return finishAndClose(wsi, errorResponse(413, "too_large", "body_too_large",
                                                   "request body is over admin.max_body_bytes"));
        }
        // The body arrives in HTTP_BODY callbacks; answer at BODY_COMPLETION.
        session->request = request.release();
        return 0;
      }
      HttpResponse r = service_->handleHttp(request->method, request->path, request->query,
                                            request->authorization, {}, request->peer);
      return answerOrWait(wsi, session, std::move(r));
    }

    case LWS_CALLBACK_HTTP_BODY: {
      AdminRequest* request = session->request;
      if (request == nullptr) return -1;
      if (request->body.size() + len > service_->config().max_body_bytes) {
        request->too_large = true;
      } else {
        request->body.append(static_cast<const char*>(in), len);
      }
      return 0;
    }

    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
      AdminRequest* request = session->request;
      if (request == nullptr) return -1;
      if (request->too_large) {
        dropRequest(session);
        return finishAndClose(wsi, errorResponse(413, "too_large", "body_too_large",
                                                 "request body is over admin.max_body_bytes"));
      }
      HttpResponse r = service_->handleHttp(request->method, request->path, request->query,
                                            request->authorization, request->body, request->peer);
      dropRequest(session);
      return answerOrWait(wsi, session, std::move(r));
    }

    case LWS_CALLBACK_HTTP_WRITEABLE: {
      auto answer = http_answers_.find(wsi);
      if (answer == http_answers_.end()) return 0;
      HttpResponse r = std::move(answer->second);
      http_answers_.erase(answer);
      if (session != nullptr) session->deferred_ticket = 0;
      return finish(wsi, r);
    }

    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
      dropRequest(session);
      if (session != nullptr && session->deferred_ticket != 0) {
        deferred_http_.erase(session->deferred_ticket);
        session->deferred_ticket = 0;
      }
      http_answers_.erase(wsi);
      return 0;

    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

}  // namespace wsfleet

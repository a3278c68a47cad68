// libwebsockets callbacks of the client WebSocket listener -> EdgeService.
// Rules kept here: queued frames are written by writeQueued(), from SERVER_WRITEABLE or
// from EdgeServer::flushWrites at the end of a loop iteration (never while lws still holds
// unsent bytes of the connection); pings and a close we initiate are sent from WRITEABLE
// (or from the callback of the connection itself).
#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_received
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/clock.h"
#include "common/log.h"
#include "edge/edge_server.h"
#include "edge/frame_coalescer.h"

namespace wsfleet {

namespace {

// Copies a header into `out`; false when absent. lws_hdr_copy needs room for the NUL.
bool copyHeader(lws* wsi, lws_token_indexes token, std::string* out) {
  const int len = lws_hdr_total_length(wsi, token);
  if (len <= 0) return false;
  out->resize(static_cast<size_t>(len) + 1);
  const int got = lws_hdr_copy(wsi, out->data(), len + 1, token);
  if (got < 0) return false;
  out->resize(static_cast<size_t>(got));
  return true;
}

// Size of the request head. lws keeps only the headers it parses, so the sum of those
// misses custom headers; the kernel's count of bytes received on the connection does
// not (a WebSocket client sends nothing after its head until the 101, and this listener
// serves one request per connection, so the count starts at this request). Over TLS that
// count includes the TLS handshake, for which an allowance is subtracted.
size_t requestHeadBytes(lws* wsi, bool tls) {
  size_t known = 0;
  for (int t = 0; t < WSI_TOKEN_COUNT; ++t) {
    const int len = lws_hdr_total_length(wsi, static_cast<lws_token_indexes>(t));
    if (len > 0) known += static_cast<size_t>(len) + 4;  // name and ": \r\n", roughly
  }
  tcp_info info{};
  socklen_t info_len = sizeof(info);
  const int fd = lws_get_socket_fd(wsi);
  if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &info_len) != 0 ||
      info_len < offsetof(tcp_info, tcpi_bytes_received) + sizeof(info.tcpi_bytes_received)) {
    return known;
  }
  // ClientHellos with post-quantum key shares, tickets and GREASE reach ~2 KiB; the
  // client's Finished and record overhead add a little more.
  constexpr uint64_t kTlsHandshakeAllowance = 4096;
  uint64_t received = info.tcpi_bytes_received;
  if (tls) received = received > kTlsHandshakeAllowance ? received - kTlsHandshakeAllowance : 0;
  return std::max<size_t>(known, static_cast<size_t>(received));
}

// Finds a URL-decoded query argument. lws_get_urlarg_by_name stops at the first argument
// longer than its buffer, so a long unrelated argument could hide the token: walk every
// fragment with a buffer as large as the whole query instead.
bool queryArgument(lws* wsi, std::string_view name, std::string* out) {
  const int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
  if (total <= 0) return false;
  std::string buf(static_cast<size_t>(total) + 1, '\0');
  for (int i = 0;; ++i) {
    const int n = lws_hdr_copy_fragment(wsi, buf.data(), total + 1, WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n < 0) return false;
    std::string_view arg(buf.data(), static_cast<size_t>(n));
    if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
      *out = std::string(arg.substr(name.size() + 1));
      return true;
    }
  }
}

// libwebsockets 4.1.6 copies these headers into fixed buffers after the upgrade is
// confirmed and hangs up without any HTTP response when one does not fit (measured: a
// Sec-WebSocket-Protocol list over 126 bytes, a Sec-WebSocket-Extensions list over 254).
// Refusing longer ones here turns that silent drop into a 400 the client can read.
constexpr int kLwsMaxProtocolListBytes = 126;
constexpr int kLwsMaxExtensionListBytes = 254;

// The refusal for a header lws could not process (http_status 0 when both fit).
HandshakeDecision checkNegotiationHeaders(lws* wsi) {
  HandshakeDecision d;
  if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) > kLwsMaxProtocolListBytes) {
    d.http_status = 400;
    d.reason = "subprotocol";
    d.message = "the Sec-WebSocket-Protocol list is too long";
  } else if (lws_hdr_total_length(wsi, WSI_TOKEN_EXTENSIONS) > kLwsMaxExtensionListBytes) {
    d.http_status = 400;
    d.reason = "extensions";
    d.message = "the Sec-WebSocket-Extensions list is too long";
  }
  return d;
}

std::string peerAddress(lws* wsi) {
  char buf[64] = {0};
  lws_get_peer_simple(wsi, buf, sizeof(buf));
  return buf;
}

int closeNow(lws* wsi, int code, std::string_view reason) {
  lws_close_reason(wsi, static_cast<lws_close_status>(code),
                   reinterpret_cast<unsigned char*>(const_cast<char*>(reason.data())),
                   reason.size());
  return -1;
}

// Close codes a peer may send (RFC 6455 7.4.1 and 7.4.2): 1000-1003, 1007-1011 and
// 3000-4999.
bool validPeerCloseCode(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
         (code >= 3000 && code <= 4999);
}

// Which tenants and keys exist is nobody's business before authentication: the body says
// only that the token does not verify; metrics and logs keep the precise reason.
const char* publicReason(const char* reason) {
  const std::string_view r(reason);
  if (r == "token_unknown_tenant" || r == "token_unknown_kid" || r == "token_bad_signature") {
    return "token_invalid";
  }
  return reason;
}

HttpResponse refusal(const HandshakeDecision& d) {
  std::string_view code;
  switch (d.http_status) {
    case 401:
      code = "unauthorized";
      break;
    case 403:
      code = "forbidden";
      break;
    case 404:
      code = "not_found";
      break;
    case 413:
    case 431:
      code = "too_large";
      break;
    case 429:
      code = "rate_limited";
      break;
    case 503:
      code = "unavailable";
      break;
    default:
      code = "bad_request";
      break;  // 400, 426
  }
  HttpResponse r = errorResponse(d.http_status, code, publicReason(d.reason), d.message);
  if (d.upgrade_version_hint) r.headers.emplace_back("Sec-WebSocket-Version", "13");
  if (d.retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(d.retry_after_s));
  return r;
}

}  // namespace

int EdgeServer::onWebSocketEvent(lws* wsi, lws_callback_reasons reason, void* user, void* in,
                                 size_t len) {
  auto* session = static_cast<WsSession*>(user);
  switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
      // Upgrade values compare case-insensitively (RFC 7230 6.7); lws lets "h2c" through
      // too, which this listener does not speak.
      if (strcasecmp(static_cast<const char*>(in), "websocket") != 0) {
        HandshakeDecision other;
        other.http_status = 400;
        other.reason = "bad_upgrade";
        other.message = "only Upgrade: websocket is served here";
        service_->metrics().handshakeRejected(other.reason);
        writeHttpResponse(wsi, refusal(other));
        return 1;
      }
      if (HandshakeDecision too_long = checkNegotiationHeaders(wsi); too_long.http_status != 0) {
        service_->metrics().handshakeRejected(too_long.reason);
        writeHttpResponse(wsi, refusal(too_long));
        return 1;
      }
      std::string path, authorization, origin, protocols, query_token, connection, key, version;
      const bool is_get = copyHeader(wsi, WSI_TOKEN_GET_URI, &path);
      copyHeader(wsi, WSI_TOKEN_CONNECTION, &connection);
      copyHeader(wsi, WSI_TOKEN_KEY, &key);
      copyHeader(wsi, WSI_TOKEN_VERSION, &version);
      copyHeader(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, &authorization);
      const bool has_origin = copyHeader(wsi, WSI_TOKEN_ORIGIN, &origin);
      copyHeader(wsi, WSI_TOKEN_PROTOCOL, &protocols);
      queryArgument(wsi, "access_token", &query_token);
      const std::string peer = peerAddress(wsi);
      HandshakeRequest request;
      request.is_get = is_get;
      request.connection = connection;
      request.websocket_key = key;
      request.version = version;
      request.path = path;
      request.authorization = authorization;
      request.query_token = query_token;
      request.has_origin = has_origin;
      request.origin = origin;
      request.protocols = protocols;
      request.header_bytes = requestHeadBytes(wsi, !config_.tls_cert_file.empty());
      request.peer = peer;
      HandshakeDecision decision = service_->checkHandshake(request);
      if (decision.http_status != 0) {
        logDebug("handshake_refused",
                 {{"peer", peer}, {"status", decision.http_status}, {"reason", decision.reason}});
        writeHttpResponse(wsi, refusal(decision));
        return 1;  // lws completes the transaction
      }
      pending_claims_[wsi] = std::move(decision.claims);
      return 0;
    }

    case LWS_CALLBACK_HTTP: {
      // A plain HTTP request on the WebSocket port.
      HttpResponse r = errorResponse(426, "bad_request", "upgrade_required",
                                     "this endpoint speaks WebSocket (subprotocol wsfleet.v1)");
      r.headers.emplace_back("Upgrade", "websocket");
      r.headers.emplace_back("Connection", "close");
      writeHttpResponse(wsi, r);
      // One request per connection on this listener (the head-size measurement relies on
      // it); lws still flushes the response before closing.
      return -1;
    }

    case LWS_CALLBACK_ESTABLISHED: {
      auto it = pending_claims_.find(wsi);
      if (it == pending_claims_.end()) return closeNow(wsi, 1011, "no handshake state");
      TokenClaims claims = std::move(it->second);
      pending_claims_.erase(it);
      session->conn = service_->open(wsi, std::move(claims), peerAddress(wsi));
      return 0;
    }

    case LWS_CALLBACK_RECEIVE: {
      Connection* conn = session->conn;
      if (conn == nullptr) return -1;
      // Closing (either side started it): data after a close frame is ignored.
      if (conn->close_code != 0 || conn->peer_close_code != 0) return 0;
      if (lws_frame_is_binary(wsi)) {
        conn->close_code = 1003;
        return closeNow(wsi, 1003, "binary frames are not accepted");
      }
      const size_t remaining = lws_remaining_packet_payload(wsi);
      // Refuse by the declared length, before buffering the body.
      if (conn->rx.size() + len + remaining > service_->config().max_message_bytes) {
        service_->metrics().dropped("message_too_large");
        // Closed the queued way (close frame on the next WRITEABLE), with reading stopped:
        // lws 4.1.6 drops a connection without its close frame when more data arrives
        // while the frame waits to go out, and this peer is still sending. The rest of
        // its message is discarded by the lingering close (edge/lingering_close.h).
        conn->rx.clear();
        lws_rx_flow_control(wsi, 0);
        service_->requestClose(*conn, 1009, "message too big");
        return 0;
      }
      conn->rx.append(static_cast<const char*>(in), len);
      if (remaining == 0 && lws_is_final_fragment(wsi)) {
        std::string text;
        text.swap(conn->rx);
        service_->onText(*conn, text);
      }
      return 0;
    }

    case LWS_CALLBACK_RECEIVE_PONG:
      if (session->conn != nullptr) service_->onPong(*session->conn);
      return 0;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
      // lws echoes the peer's close payload as it is; RFC 6455 7.4 codes and payload
      // shape are checked here (its UTF-8 is checked by lws).
      const auto* p = static_cast<const unsigned char*>(in);
      const int code = len >= 2 ? (p[0] << 8) | p[1] : 0;
      if (len == 1 || (len >= 2 && !validPeerCloseCode(code))) {
        if (session->conn != nullptr && session->conn->close_code == 0) {
          session->conn->close_code = 1002;
        }
        return closeNow(wsi, 1002, "invalid close frame");
      }
      if (session->conn != nullptr) session->conn->peer_close_code = len >= 2 ? code : 1005;
      return 0;
    }

    case LWS_CALLBACK_SERVER_WRITEABLE: {
      Connection* conn = session->conn;
      if (conn == nullptr) return 0;
      if (conn->close_code != 0) return closeNow(wsi, conn->close_code, conn->close_reason);
      if (conn->ping_due) {
        conn->ping_due = false;
        // lws 4.1 never reports an empty pong to the callback, so the ping carries a
        // payload the peer echoes: the send time in ASCII digits (ASCII because lws may
        // apply the UTF-8 check of the previous text frame to a pong).
        unsigned char ping[LWS_PRE + 24];
        const int n = std::snprintf(reinterpret_cast<char*>(ping + LWS_PRE), 24, "%lld",
                                    static_cast<long long>(nowMonoMs()));
        if (lws_write(wsi, ping + LWS_PRE, static_cast<size_t>(n), LWS_WRITE_PING) < n) return -1;
        if (!conn->out.empty()) lws_callback_on_writable(wsi);
        return 0;
      }
      if (conn->out.empty()) return 0;
      return writeQueued(wsi, *conn) ? 0 : -1;
    }

    case LWS_CALLBACK_CLOSED: {
      Connection* conn = session->conn;
      if (conn == nullptr) return 0;
      session->conn = nullptr;
      if (conn->flush_queued) {
        // Queued for this iteration's write, closed before it: not to be touched again.
        auto it = std::find(to_flush_.begin(), to_flush_.end(), conn);
        if (it != to_flush_.end()) {
          *it = to_flush_.back();
          to_flush_.pop_back();
        }
      }
      // A close we or lws started (1009, 1007, 1002...) may find the peer still sending:
      // the socket lingers so that our close frame reaches it (edge/lingering_close.h).
      // Slow consumers (4009) are reset on purpose; a peer that closed first is done.
      if (conn->close_code != 4009 && conn->peer_close_code == 0) {
        lingering_->adopt(lws_get_socket_fd(wsi));
      }
      const int code = conn->close_code != 0        ? conn->close_code
                       : conn->peer_close_code != 0 ? conn->peer_close_code
                                                    : 1006;
      service_->closed(conn, code);
      return 0;
    }

    case LWS_CALLBACK_WSI_DESTROY:
      pending_claims_.erase(wsi);
      return 0;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
      return 0;

    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

bool EdgeServer::writeQueued(lws* wsi, Connection& conn) {
  if (conn.out.size() == 1) {
    // One frame: written in place, lws puts the header into the frame's headroom.
    FramePtr frame = conn.out.pop();
    return lws_write(wsi, frame->payload(), frame->size(), LWS_WRITE_TEXT) >=
           static_cast<int>(frame->size());
  }
  // Several: framed here into one buffer and sent with one write (LWS_WRITE_HTTP is lws'
  // raw write; lws keeps whatever the socket does not take and sends it first).
  coalesceFrames(conn.out, write_buffer_, LWS_PRE, kCoalesceBytes);
  const size_t n = write_buffer_.size() - LWS_PRE;
  if (lws_write(wsi, reinterpret_cast<unsigned char*>(write_buffer_.data()) + LWS_PRE, n,
                LWS_WRITE_HTTP) < static_cast<int>(n)) {
    return false;
  }
  if (!conn.out.empty()) lws_callback_on_writable(wsi);
  return true;
}

}  // namespace wsfleet

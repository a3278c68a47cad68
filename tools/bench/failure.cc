#include "tools/bench/failure.h"

namespace wsfleet::bench {

const char* failName(Fail f) {
  switch (f) {
    case Fail::kConnectRefused: return "connect_refused";
    case Fail::kConnectError: return "connect_error";
    case Fail::kSourceAddress: return "source_address_exhausted";
    case Fail::kTooManyFiles: return "too_many_open_files";
    case Fail::kHttp400: return "http_400";
    case Fail::kHttp401: return "http_401";
    case Fail::kHttp403: return "http_403";
    case Fail::kHttp404: return "http_404";
    case Fail::kHttp426: return "http_426";
    case Fail::kHttp429: return "http_429";
    case Fail::kHttp503: return "http_503";
    case Fail::kHttpOther: return "http_other";
    case Fail::kBadHandshake: return "bad_handshake";
    case Fail::kClosedBeforeReady: return "closed_before_ready";
    case Fail::kSessionRefused: return "session_refused";
    case Fail::kSubscribeRefused: return "subscribe_refused";
    case Fail::kProtocolError: return "protocol_error";
    case Fail::kSetupTimeout: return "setup_timeout";
    case Fail::kClosedByServer: return "closed_by_server";
    case Fail::kCount: break;
  }
  return "unknown";
}

Fail failForHttpStatus(int status) {
  switch (status) {
    case 400: return Fail::kHttp400;
    case 401: return Fail::kHttp401;
    case 403: return Fail::kHttp403;
    case 404: return Fail::kHttp404;
    case 426: return Fail::kHttp426;
    case 429: return Fail::kHttp429;
    case 503: return Fail::kHttp503;
    default: return Fail::kHttpOther;
  }
}

}  // namespace wsfleet::bench

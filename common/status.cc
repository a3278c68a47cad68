#include "common/status.h"

namespace wsfleet {

std::string_view codeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kBadRequest:
      return "bad_request";
    case Code::kUnauthorized:
      return "unauthorized";
    case Code::kForbidden:
      return "forbidden";
    case Code::kNotFound:
      return "not_found";
    case Code::kTooLarge:
      return "too_large";
    case Code::kRateLimited:
      return "rate_limited";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kInternal:
      return "internal";
    case Code::kConfig:
      return "config";
  }
  return "internal";
}

std::string Status::toString() const {
  if (isOk()) return "ok";
  std::string out(codeName(code_));
  if (reason_[0] != '\0') {
    out += '/';
    out += reason_;
  }
  out += ": ";
  out += message_;
  return out;
}

}  // namespace wsfleet

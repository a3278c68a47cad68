#pragma once
// The one error type of wsfleet. Every fallible function returns Status or Result<T>.
// C library codes (LMDB, mbedTLS, OpenSSL, cnats, lws) are translated once, in the
// wrapper that calls them, so nothing above the wrappers ever sees a raw C error code.
//
// A Status carries three things:
//  - code: the broad class, which maps onto protocol error codes and HTTP statuses;
//  - reason: a short, stable snake_case slug (a string literal) used as a metric label
//    and in logs ("token_expired", "map_full"); never built from peer input;
//  - message: a human sentence for logs and replies. It must never contain a secret
//    (token, key, API key).

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace wsfleet {

enum class Code {
  kOk = 0,
  kBadRequest,    // malformed input from a peer
  kUnauthorized,  // missing / invalid / expired credentials
  kForbidden,     // valid identity, not allowed
  kNotFound,      // unknown namespace, tenant, route
  kTooLarge,      // over a size cap
  kRateLimited,   // over a rate or count cap
  kUnavailable,   // draining, overloaded, store full, dependency down
  kInternal,      // a bug or an unexpected library failure
  kConfig,        // configuration error (file:line in the message)
};

// Stable lowercase name of a code; matches the protocol's error codes where one exists.
std::string_view codeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(Code code, const char* reason, std::string message)
      : code_(code), reason_(reason), message_(std::move(message)) {
    assert(code != Code::kOk);
  }

  static Status ok() { return Status(); }

  bool isOk() const { return code_ == Code::kOk; }
  explicit operator bool() const { return isOk(); }
  Code code() const { return code_; }
  // A string literal; "" for ok.
  const char* reason() const { return reason_; }
  const std::string& message() const { return message_; }
  // "code/reason: message", for logs and CLI output.
  std::string toString() const;

 private:
  Code code_ = Code::kOk;
  const char* reason_ = "";
  std::string message_;
};

// Result<T>: a value or a non-ok Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                                           // NOLINT
  Result(Status status) : v_(std::move(status)) { assert(!std::get<1>(v_).isOk()); }  // NOLINT

  bool isOk() const { return v_.index() == 0; }
  explicit operator bool() const { return isOk(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }

  // The error; only valid when !isOk().
  const Status& status() const { return std::get<1>(v_); }
  Status takeStatus() { return std::move(std::get<1>(v_)); }

 private:
  std::variant<T, Status> v_;
};

// The status of a Result whose value is not needed.
template <class T>
Status toStatus(Result<T> r) {
  return r.isOk() ? Status::ok() : r.takeStatus();
}

}  // namespace wsfleet

// Early-return helpers.
#define WSF_RETURN_IF_ERROR(expr)                \
  do {                                           \
    ::wsfleet::Status wsf_status_ = (expr);      \
    if (!wsf_status_.isOk()) return wsf_status_; \
  } while (0)

#define WSF_CONCAT_INNER(a, b) a##b
#define WSF_CONCAT(a, b) WSF_CONCAT_INNER(a, b)
#define WSF_ASSIGN_OR_RETURN(lhs, expr) \
  WSF_ASSIGN_OR_RETURN_IMPL(WSF_CONCAT(wsf_result_, __LINE__), lhs, expr)
#define WSF_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.isOk()) return tmp.takeStatus();       \
  lhs = std::move(tmp).value()

#pragma once
// A NATS connection for a command-line tool: connect, ask, wait for the answer. Built on
// the daemons' NatsLink (same credentials and TLS handling), with a wait loop in place
// of an event loop.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/nats_config.h"
#include "common/nats_link.h"
#include "common/status.h"

namespace wsfleet::ctl {

class BlockingNats {
 public:
  // kUnavailable when no server of `nats` answered within `timeout_ms`.
  static Result<std::unique_ptr<BlockingNats>> connect(const NatsConfig& nats, int64_t timeout_ms);

  // The reply (its status is "503" when nobody listens on the subject); kUnavailable when
  // none came within `timeout_ms`.
  Result<NatsInbound> request(std::string subject, std::string data,
                              std::vector<NatsHeader> headers, int64_t timeout_ms);

  // Scatter-gather: asks every subject at once and collects every answer for
  // `window_ms` (the control plane: each edge worker or bridge listening answers). A
  // subject nobody listens on ends early with `no_responders`.
  struct Ask {
    std::string subject;
    std::string data;
  };
  struct Gathered {
    std::vector<std::string> replies;  // at most `max_replies`, in arrival order
    bool no_responders = false;
    bool refused = false;    // the link's queue was full: never sent
    size_t over_limit = 0;   // replies past max_replies, not kept
  };
  std::vector<Gathered> gather(const std::vector<Ask>& asks, int64_t window_ms,
                               size_t max_replies);

 private:
  BlockingNats() = default;
  // Waits for inbound items until `done` says so or the deadline passes.
  template <typename Done>
  bool waitFor(int64_t deadline_mono_ms, Done done);

  MetricsRegistry registry_;
  std::unique_ptr<NatsLink> link_;
  uint64_t next_request_id_ = 1;
};

}  // namespace wsfleet::ctl

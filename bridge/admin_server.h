#pragma once
// The bridge's admin listener: a small HTTP/1.1 server for /healthz, /readyz, /metrics
// and /status, driven by the bridge's poll loop. A request gets one answer (a head that
// never completes is dropped at its deadline) and the connection is closed after it; requests are
// GET only, the head is capped in size and must arrive within a deadline (a slow or silent client
// cannot hold a slot forever), and connections are capped in number.

#include <poll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/config_values.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace wsfleet {

struct AdminAnswer {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class AdminServer {
 public:
  using Handler = std::function<AdminAnswer(const std::string& path)>;

  static Result<std::unique_ptr<AdminServer>> listen(const ListenAddress& where, Handler handler,
                                                     MetricsRegistry& registry);

  // The descriptors to poll now (the listener and every open connection), appended.
  void pollFds(std::vector<pollfd>& out, int64_t now_mono_ms) const;
  // Handles the events of the descriptors pollFds gave; closes connections past their
  // deadline.
  void onEvents(const std::vector<pollfd>& fds, int64_t now_mono_ms);

 private:
  struct Client {
    UniqueFd fd;
    std::string in;
    std::string out;
    size_t sent = 0;
    int64_t deadline_ms = 0;
    bool linger = false;     // refused with unread input: half-close after the answer
    bool lingering = false;  // answer sent, reading the rest until the client closes
  };
  AdminServer(UniqueFd listener, Handler handler, MetricsRegistry& registry);
  void accept(int64_t now_mono_ms);
  // False when the client is done (answered or gone).
  bool read(Client& client);
  bool write(Client& client);
  bool discard(Client& client);
  void answer(Client& client, const AdminAnswer& a);

  UniqueFd listener_;
  Handler handler_;
  std::vector<std::unique_ptr<Client>> clients_;
  Counter& refused_;
  int64_t paused_until_ms_ = 0;  // accepting paused (out of descriptors) until then
};

}  // namespace wsfleet

#pragma once
// A stand-in for systemd's end of NOTIFY_SOCKET: a bound unix datagram socket the tests
// read the notifications from, and a scoped $NOTIFY_SOCKET pointing at it.

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "common/unique_fd.h"

namespace wsfleet {

// A bound datagram socket; `name` is a path or "@abstract".
class ManagerSocket {
 public:
  explicit ManagerSocket(const std::string& name) {
    fd_.reset(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name.data(), name.size());
    if (name[0] == '@') address.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() +
                                               (name[0] == '@' ? 0 : 1));
    bound_ = bind(fd_.get(), reinterpret_cast<const sockaddr*>(&address), length) == 0;
  }
  bool bound() const { return bound_; }
  // The next datagram, or "" after timeout_ms.
  std::string receive(int timeout_ms = 2000) {
    pollfd pfd{fd_.get(), POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) != 1) return "";
    char buffer[4096];
    const ssize_t n = recv(fd_.get(), buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
  }
  bool idle() {
    pollfd pfd{fd_.get(), POLLIN, 0};
    return poll(&pfd, 1, 100) == 0;
  }

 private:
  UniqueFd fd_;
  bool bound_ = false;
};

// Sets (or unsets) NOTIFY_SOCKET for one test; unset again after it.
class NotifySocketEnv {
 public:
  explicit NotifySocketEnv(const char* value) {
    if (value != nullptr) {
      setenv("NOTIFY_SOCKET", value, 1);
    } else {
      unsetenv("NOTIFY_SOCKET");
    }
  }
  ~NotifySocketEnv() { unsetenv("NOTIFY_SOCKET"); }
};

}  // namespace wsfleet

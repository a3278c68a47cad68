#include "common/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/unique_fd.h"

namespace wsfleet {

namespace {

// Failures go to stderr, not the logger: this leaf library sits below the logging one,
// and the journal collects a unit's stderr anyway.
void send(std::string_view state) {
  const Status status = notifyServiceManager(state);
  if (!status.isOk()) {
    std::fprintf(stderr, "service manager notification failed: %s\n", status.toString().c_str());
  }
}

}  // namespace

Status notifyServiceManagerAt(std::string_view socket, std::string_view state) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  // A path must leave room for its terminating NUL; an abstract name has none.
  if (socket.size() < 2 || socket.size() >= sizeof(address.sun_path) ||
      (socket[0] != '/' && socket[0] != '@')) {
    return Status(
        Code::kConfig, "notify_socket_invalid",
        "NOTIFY_SOCKET is not an absolute path or @abstract name: " + std::string(socket));
  }
  std::memcpy(address.sun_path, socket.data(), socket.size());
  if (socket[0] == '@') address.sun_path[0] = '\0';
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size() +
                                             (socket[0] == '@' ? 0 : 1));
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    return Status(Code::kInternal, "notify_socket_failed", std::strerror(errno));
  }
  const ssize_t sent = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address), length);
  if (sent < 0 || static_cast<size_t>(sent) != state.size()) {
    return Status(Code::kUnavailable, "notify_send_failed",
                  std::string(socket) + ": " + std::strerror(errno));
  }
  return Status::ok();
}

Status notifyServiceManager(std::string_view state) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || socket[0] == '\0') return Status::ok();
  return notifyServiceManagerAt(socket, state);
}

void notifyReady(std::string_view status) {
  send("READY=1\nSTATUS=" + std::string(status));
}

void notifyReloading() {
  // systemd 253 and newer want the time of the reload request with RELOADING=1, so that
  // a reload is not mistaken for an earlier one.
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const long long usec = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  send("RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=" + std::to_string(usec));
}

void notifyStopping(std::string_view status) {
  send("STOPPING=1\nSTATUS=" + std::string(status));
}

void notifyStatus(std::string_view status) {
  send("STATUS=" + std::string(status));
}

}  // namespace wsfleet

#pragma once
// A loopback port for a server a test starts, which nothing else takes in the meantime.
//
// Port 0 would hand out a port from the ephemeral range, which the kernel also gives to
// the source side of every outgoing connection on the machine: by the time the server
// binds it, it may be gone. So the port comes from below the ephemeral range and is
// reserved against the other test processes (the Python tests use the same convention,
// tests/integration/ports.py): a file named after the port, created with O_EXCL in
// $TMPDIR/wsfleet-test-ports and holding the owner's pid. A reservation whose owner died
// is taken over. The object releases its port when destroyed.

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>

namespace wsfleet {

class TestPort {
 public:
  TestPort() {
    const auto [first, last] = candidates();
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> pick(first, last);
    for (int attempt = 0; attempt < 500; ++attempt) {
      const int port = pick(rng);
      if (!reserve(port)) continue;
      if (bindable(port)) {
        port_ = port;
        return;
      }
      std::filesystem::remove(lockPath(port));
    }
    throw std::runtime_error("no free test port below the ephemeral range");
  }
  ~TestPort() {
    std::error_code ec;
    std::filesystem::remove(lockPath(port_), ec);
  }
  TestPort(const TestPort&) = delete;
  TestPort& operator=(const TestPort&) = delete;

  int port() const { return port_; }

 private:
  static std::pair<int, int> candidates() {
    int low = 32768, high = 60999;
    std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low >> high;
    if (low - 10000 >= 4000) return {10000, low - 1};
    return {high + 1, 65535};
  }
  static std::filesystem::path lockPath(int port) {
    return std::filesystem::temp_directory_path() / "wsfleet-test-ports" / std::to_string(port);
  }
  static bool reserve(int port) {
    const auto path = lockPath(port);
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    for (int round = 0; round < 2; ++round) {
      int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
      if (fd >= 0) {
        const std::string pid = std::to_string(::getpid());
        const bool written = ::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
        ::close(fd);
        return written;
      }
      if (errno != EEXIST) return false;
      int owner = 0;
      std::ifstream(path) >> owner;
      if (owner > 0 && (::kill(owner, 0) == 0 || errno != ESRCH)) return false;
      std::filesystem::remove(path, ec);  // its owner died: take the port over
    }
    return false;
  }
  static bool bindable(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }

  int port_ = 0;
};

}  // namespace wsfleet

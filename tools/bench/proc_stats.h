#pragma once
// Server-side and machine figures read from /proc: CPU time and RSS of the server process,
// the kernel's socket counters, load average. Parsing is split from reading so the tests
// can feed sample text.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wsfleet::bench {

struct SockStat {
  int64_t sockets_used = 0;  // "sockets: used N"
  int64_t tcp_inuse = 0;     // "TCP: inuse N"
  int64_t tcp_mem_pages = 0; // "TCP: ... mem N" (pages)
};

// utime + stime in clock ticks from the text of /proc/PID/stat.
std::optional<uint64_t> parseStatCpuTicks(std::string_view stat_text);
// VmRSS in KiB from the text of /proc/PID/status.
std::optional<uint64_t> parseStatusRssKb(std::string_view status_text);
std::optional<SockStat> parseSockStat(std::string_view text);

// CPU time (user + system) of a process in microseconds; nullopt when it is gone.
std::optional<uint64_t> processCpuMicros(int pid);
std::optional<uint64_t> processRssKb(int pid);
// A process and its child processes (a multi-process server: a supervisor and its
// workers), from /proc/PID/task/*/children; the children's children are not followed.
std::vector<int> processAndChildren(int pid);
std::vector<int> parseChildren(std::string_view text);
std::optional<SockStat> readSockStat();
std::array<double, 3> loadAverage();
int onlineCpus();
// This process plus its reaped children, user + system, in microseconds.
uint64_t selfAndChildrenCpuMicros();

std::optional<std::string> readSmallFile(const std::string& path);

}  // namespace wsfleet::bench

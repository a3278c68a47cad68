#include "tools/bench/proc_stats.h"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace wsfleet::bench {
namespace {

std::optional<uint64_t> toU64(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p == s.data()) return std::nullopt;
  return v;
}

// The value after `key` in "key value" pairs on one line ("TCP: inuse 5 orphan 0 ...").
std::optional<int64_t> fieldAfter(std::string_view line, std::string_view key) {
  size_t at = 0;
  while ((at = line.find(key, at)) != std::string_view::npos) {
    const bool start_ok = at == 0 || line[at - 1] == ' ';
    const size_t v = at + key.size();
    if (start_ok && v < line.size() && line[v] == ' ') {
      auto n = toU64(line.substr(v + 1));
      if (n) return static_cast<int64_t>(*n);
    }
    at = v;
  }
  return std::nullopt;
}

uint64_t tvMicros(const timeval& tv) {
  return static_cast<uint64_t>(tv.tv_sec) * 1000000u + static_cast<uint64_t>(tv.tv_usec);
}

}  // namespace

std::optional<uint64_t> parseStatCpuTicks(std::string_view stat_text) {
  // The command name (field 2) may hold spaces and parentheses: fields restart after the
  // last ')'. utime and stime are fields 14 and 15, i.e. the 12th and 13th after it.
  const size_t close = stat_text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat_text.substr(close + 1);
  std::string_view fields[13];
  size_t n = 0;
  size_t i = 0;
  while (n < 13 && i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    size_t j = i;
    while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
    if (j > i) fields[n++] = rest.substr(i, j - i);
    i = j;
  }
  if (n < 13) return std::nullopt;
  auto ut = toU64(fields[11]);
  auto st = toU64(fields[12]);
  if (!ut || !st) return std::nullopt;
  return *ut + *st;
}

std::optional<uint64_t> parseStatusRssKb(std::string_view text) {
  size_t at = text.find("VmRSS:");
  if (at == std::string_view::npos) return std::nullopt;
  at += 6;
  while (at < text.size() && (text[at] == ' ' || text[at] == '\t')) ++at;
  return toU64(text.substr(at));
}

std::optional<SockStat> parseSockStat(std::string_view text) {
  SockStat s;
  bool tcp = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    if (line.starts_with("sockets:")) {
      if (auto v = fieldAfter(line, "used")) s.sockets_used = *v;
    } else if (line.starts_with("TCP:")) {
      auto inuse = fieldAfter(line, "inuse");
      auto mem = fieldAfter(line, "mem");
      if (inuse) s.tcp_inuse = *inuse;
      if (mem) s.tcp_mem_pages = *mem;
      tcp = inuse.has_value();
    }
    pos = eol + 1;
  }
  if (!tcp) return std::nullopt;
  return s;
}

std::optional<std::string> readSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<uint64_t> processCpuMicros(int pid) {
  auto text = readSmallFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  auto ticks = parseStatCpuTicks(*text);
  if (!ticks) return std::nullopt;
  const long hz = sysconf(_SC_CLK_TCK);
  return *ticks * (1000000u / static_cast<uint64_t>(hz > 0 ? hz : 100));
}

std::optional<uint64_t> processRssKb(int pid) {
  auto text = readSmallFile("/proc/" + std::to_string(pid) + "/status");
  if (!text) return std::nullopt;
  return parseStatusRssKb(*text);
}

std::vector<int> parseChildren(std::string_view text) {
  std::vector<int> pids;
  int value = 0;
  bool in_number = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      value = value * 10 + (c - '0');
      in_number = true;
    } else if (in_number) {
      pids.push_back(value);
      value = 0;
      in_number = false;
    }
  }
  if (in_number) pids.push_back(value);
  return pids;
}

std::vector<int> processAndChildren(int pid) {
  std::vector<int> pids{pid};
  std::error_code ec;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    auto text = readSmallFile(task.path().string() + "/children");
    if (!text) continue;
    for (int child : parseChildren(*text)) pids.push_back(child);
  }
  return pids;
}

std::optional<SockStat> readSockStat() {
  auto text = readSmallFile("/proc/net/sockstat");
  if (!text) return std::nullopt;
  return parseSockStat(*text);
}

std::array<double, 3> loadAverage() {
  std::array<double, 3> out{};
  double l[3];
  if (getloadavg(l, 3) == 3) out = {l[0], l[1], l[2]};
  return out;
}

int onlineCpus() {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

uint64_t selfAndChildrenCpuMicros() {
  rusage self{};
  rusage kids{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  return tvMicros(self.ru_utime) + tvMicros(self.ru_stime) + tvMicros(kids.ru_utime) +
         tvMicros(kids.ru_stime);
}

}  // namespace wsfleet::bench

#pragma once
// Everything a run is parameterised by; filled by the command line (main.cc) and copied
// into every worker process by fork().

#include <cstdint>
#include <string>
#include <vector>

namespace wsfleet::bench {

enum class Scenario { kIdle, kConnect, kFanout, kDirect };

struct BenchOptions {
  std::string target = "wsfleet";  // adapter name
  std::string url;                 // ws://127.0.0.1:PORT/path
  std::string publish_url;         // fanout: publishers connect here (another edge,
                                   // another region); empty = url
  Scenario scenario = Scenario::kFanout;
  std::string scenario_name = "fanout";
  uint32_t connections = 100;      // subscribers / idle / connecting connections
  uint32_t channels = 1;
  uint32_t publishers = 1;
  double rate = 1000;              // messages/s in total (fanout: publishes, direct: sends)
  bool burst = false;
  double duration_s = 5;           // publish window, idle hold
  double drain_s = 3;              // max wait for deliveries after the window
  double setup_timeout_s = 60;     // connect + subscribe phase
  double hard_deadline_s = 0;      // 0 = derived from the others
  uint32_t payload_bytes = 64;
  uint32_t procs = 1;
  std::vector<std::string> source_ips;  // expanded from --source-ips
  uint32_t concurrency = 256;       // handshakes in flight per process
  int server_pid = 0;
  bool json = false;

  // wsfleet adapter.
  std::string hs256_secret;
  std::string kid;
  std::string tenant = "demo";
  std::string audience;
  std::string token_file;
  std::string ns = "live";          // channel namespace
  int64_t token_ttl_s = 3600;
  std::vector<std::string> headers;  // extra "Name: value" handshake headers

  // Filled after parsing.
  std::vector<std::string> tokens;   // from --token-file
};

const char* scenarioName(Scenario s);

}  // namespace wsfleet::bench

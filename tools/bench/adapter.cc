#include "tools/bench/adapter.h"

#include "tools/bench/options.h"

namespace wsfleet::bench {

Result<std::unique_ptr<Adapter>> makeAdapter(const BenchOptions& opts) {
  if (opts.target == "wsfleet") return makeWsfleetAdapter(opts);
  if (opts.target == "nats") return makeNatsAdapter();
  if (opts.target == "mqtt") return makeMqttAdapter();
  if (opts.target == "ws") return makeWsPeerAdapter();
  if (opts.target == "socketio") return makeSocketIoAdapter();
  return Status(Code::kBadRequest, "unknown_target", "unknown --target " + opts.target);
}

const char* scenarioName(Scenario s) {
  switch (s) {
    case Scenario::kIdle: return "idle";
    case Scenario::kConnect: return "connect";
    case Scenario::kFanout: return "fanout";
    case Scenario::kDirect: return "direct";
  }
  return "unknown";
}

}  // namespace wsfleet::bench

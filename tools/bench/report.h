#pragma once
// Turns a RunResult into the figures the brief asks for: a table for people, one JSON
// object (every figure, the parameters, the machine's load) for scripts.

#include <string>

#include "tools/bench/options.h"
#include "tools/bench/runner.h"

namespace wsfleet::bench {

std::string renderJson(const BenchOptions& opts, const RunResult& r);
std::string renderTable(const BenchOptions& opts, const RunResult& r);

}  // namespace wsfleet::bench

// Shared by the `peter sim` subcommands (tools/sim_*.cc): output helpers and
// the registration functions of each experiment.
#ifndef PETER_TOOLS_SIM_COMMON_H_
#define PETER_TOOLS_SIM_COMMON_H_

#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "nlohmann/json.hpp"
#include "pastry/sim/route_experiment.h"

namespace peter::tools {

// Flags every simulation mode has.
struct SimCommonFlags {
  uint64_t seed = 1;
  double loss = 0.0;
  double jitter_ms = 0.0;
  bool json = false;
  bool no_timing = false;
  std::string bootstrap = "nearest";  // see pastry::sim::Bootstrap
  int bootstrap_sample = 0;
};
void AddCommonSimFlags(CLI::App* cmd, SimCommonFlags& flags);
// Sets the fields of `setup` the common flags choose: seed, loss, jitter and
// how joiners pick their bootstrap.
void ApplyCommonSimFlags(const SimCommonFlags& flags, pastry::sim::OverlaySetup& setup);

// Peak resident set size of this process so far, in MB (getrusage).
double PeakRssMb();
// Resident set size now, in MB (VmRSS of /proc/self/status; 0 if unknown).
double CurrentRssMb();
// Heap bytes in use now (malloc's allocated chunks, mallinfo2), in MB: what
// the live objects take, unlike RSS, which keeps what was freed.
double HeapInUseMb();

// Adds wall_s and peak_rss_mb unless flags.no_timing, then prints `out` as
// one JSON object or as an aligned "key  value" table.
void PrintResult(nlohmann::ordered_json out, const SimCommonFlags& flags, double wall_s);

void RegisterSimRoute(CLI::App* sim);
void RegisterSimFailure(CLI::App* sim);
void RegisterSimChurn(CLI::App* sim);
void RegisterSimScribe(CLI::App* sim);

}  // namespace peter::tools

#endif  // PETER_TOOLS_SIM_COMMON_H_

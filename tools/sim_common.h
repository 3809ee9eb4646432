// Shared by the `peter sim` subcommands (tools/sim_*.cc): output helpers and
// the registration functions of each experiment.
#ifndef PETER_TOOLS_SIM_COMMON_H_
#define PETER_TOOLS_SIM_COMMON_H_

#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "nlohmann/json.hpp"

namespace peter::tools {

// Flags every simulation mode has.
struct SimCommonFlags {
  uint64_t seed = 1;
  double loss = 0.0;
  double jitter_ms = 0.0;
  bool json = false;
  bool no_timing = false;
};
void AddCommonSimFlags(CLI::App* cmd, SimCommonFlags& flags);

// absl's hash tables seed their hashes with an address, so their iteration
// order (and whatever a protocol sends in that order) changes from run to
// run under address-space layout randomisation. Re-executes this process
// once with randomisation off (personality(ADDR_NO_RANDOMIZE)), so the same
// seed gives the same run; returns (and the run goes on, only less
// reproducible) if that is not possible.
void ReexecWithFixedLayout();

// Peak resident set size of this process so far, in MB (getrusage).
double PeakRssMb();

// Adds wall_s and peak_rss_mb unless flags.no_timing, then prints `out` as
// one JSON object or as an aligned "key  value" table.
void PrintResult(nlohmann::ordered_json out, const SimCommonFlags& flags, double wall_s);

void RegisterSimRoute(CLI::App* sim);
void RegisterSimFailure(CLI::App* sim);
void RegisterSimChurn(CLI::App* sim);
void RegisterSimScribe(CLI::App* sim);

}  // namespace peter::tools

#endif  // PETER_TOOLS_SIM_COMMON_H_

// `peter sim`: experiments over the simulated network with the real protocol
// code (route, failure, churn, scribe); see docs/results.md for what they measure.
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_format.h"
#include "tools/commands.h"
#include "tools/sim_common.h"

namespace peter::tools {

void AddCommonSimFlags(CLI::App* cmd, SimCommonFlags& flags) {
  cmd->add_option("--seed", flags.seed, "Random seed (same seed, same output)")
      ->capture_default_str();
  cmd->add_option("--loss", flags.loss, "Probability that a message is lost")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--jitter", flags.jitter_ms,
                  "Extra uniform delay per message, 0 to this many ms")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--bootstrap", flags.bootstrap,
                  "The node a joiner joins through: nearest (the active node nearest to it, "
                  "the Pastry paper's set-up) or random (a random active node)")
      ->check(CLI::IsMember({"nearest", "random"}))
      ->capture_default_str();
  cmd->add_option("--bootstrap-sample", flags.bootstrap_sample,
                  "With --bootstrap nearest: the nearest of this many random active nodes "
                  "(0: of all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--json", flags.json, "Print one JSON object");
  cmd->add_flag("--no-timing", flags.no_timing,
                "Omit wall_s and peak_rss_mb (for byte-for-byte comparisons)");
}

double PeakRssMb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KB on Linux
}

double CurrentRssMb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    long kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %ld kB", &kb) == 1) return kb / 1024.0;
  }
  return 0;
}

double HeapInUseMb() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd) / (1024.0 * 1024.0);
}

namespace {

std::string Readable(const nlohmann::ordered_json& v) {
  if (v.is_number_float()) return absl::StrFormat("%.4f", v.get<double>());
  return v.dump();
}

}  // namespace

void ApplyCommonSimFlags(const SimCommonFlags& flags, pastry::sim::OverlaySetup& setup) {
  setup.seed = flags.seed;
  setup.loss_rate = flags.loss;
  setup.jitter = absl::Milliseconds(flags.jitter_ms);
  // The flag's value was checked against the same names.
  setup.bootstrap = *pastry::sim::ParseBootstrap(flags.bootstrap);
  setup.bootstrap_sample = flags.bootstrap_sample;
}

void PrintResult(nlohmann::ordered_json out, const SimCommonFlags& flags, double wall_s) {
  out["bootstrap"] = flags.bootstrap;
  out["bootstrap_sample"] = flags.bootstrap_sample;
  if (!flags.no_timing) {
    out["wall_s"] = wall_s;
    out["peak_rss_mb"] = PeakRssMb();
  }
  if (flags.json) {
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  size_t width = 0;
  for (const auto& [key, value] : out.items()) width = std::max(width, key.size());
  for (const auto& [key, value] : out.items()) {
    std::printf("%-*s  %s\n", static_cast<int>(width), key.c_str(), Readable(value).c_str());
  }
}

void RegisterSimCommand(CLI::App& app) {
  CLI::App* sim = app.add_subcommand(
      "sim", "Experiments with the real overlay code on a simulated network");
  sim->require_subcommand(1);
  RegisterSimRoute(sim);
#ifdef PETER_HAVE_SIM_FAILURE
  RegisterSimFailure(sim);
#endif
#ifdef PETER_HAVE_SIM_CHURN
  RegisterSimChurn(sim);
#endif
#ifdef PETER_HAVE_SIM_SCRIBE
  RegisterSimScribe(sim);
#endif
}

}  // namespace peter::tools

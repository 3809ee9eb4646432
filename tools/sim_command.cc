// `peter sim`: experiments over the simulated network with the real protocol
// code (route, failure, churn, scribe); see docs/results.md for what they measure.
#include <sys/personality.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

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
  cmd->add_flag("--json", flags.json, "Print one JSON object");
  cmd->add_flag("--no-timing", flags.no_timing,
                "Omit wall_s and peak_rss_mb (for byte-for-byte comparisons)");
}

void ReexecWithFixedLayout() {
  const int current = personality(0xffffffff);
  if (current == -1 || (current & ADDR_NO_RANDOMIZE) != 0) return;
  if (personality(current | ADDR_NO_RANDOMIZE) == -1) return;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t at = 0; at < all.size();) {
    const size_t end = all.find('\0', at);
    args.push_back(all.substr(at, end == std::string::npos ? std::string::npos : end - at));
    at = end == std::string::npos ? all.size() : end + 1;
  }
  if (args.empty()) return;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  execv("/proc/self/exe", argv.data());
  personality(current);  // execv failed: carry on as we were
}

double PeakRssMb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KB on Linux
}

namespace {

std::string Readable(const nlohmann::ordered_json& v) {
  if (v.is_number_float()) return absl::StrFormat("%.4f", v.get<double>());
  return v.dump();
}

}  // namespace

void PrintResult(nlohmann::ordered_json out, const SimCommonFlags& flags, double wall_s) {
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

// chaos_soak: a cluster of `peter node` daemons under steady publish load
// from embedded nodes (reliable and best-effort subscribers, publishers with
// confirmation), while one daemon at a time is killed with -9 and
// restarted, paused with SIGSTOP and continued, or cut off from the network
// (its network namespace unplugged from the bridge) and reconnected. At the
// end it checks that the overlay converged, that every reliable subscriber
// got every confirmed message once and in order, and that best-effort
// losses fall inside the faults' repair windows (verdict.h). Exits 0 when
// all hold, 1 on a violation, 2 when the cluster could not be set up.
//
// Run through tools/chaos-soak; `chaos_soak --help` lists the options.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
#include "tests/chaos/report.h"
#include "tests/chaos/soak.h"

namespace peter::chaos {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

int Main(int argc, char** argv) {
  SoakOptions o;
  CLI::App app{"Chaos soak: faults injected into a peter cluster under publish load"};
  app.add_option("--duration", o.duration_s, "Seconds of fault injection");
  app.add_option("--nodes", o.nodes, "peter node daemons")->check(CLI::Range(3, 200));
  app.add_option("--seed", o.seed, "Seed of the fault schedule and node ids");
  app.add_option("--topics", o.topics, "Topics published to")->check(CLI::Range(1, 100));
  app.add_option("--rate", o.rate, "Publishes per second, all topics together")
      ->check(CLI::Range(0.1, 10000.0));
  app.add_option("--publishers", o.publishers, "Embedded publishing nodes")
      ->check(CLI::Range(1, 20));
  app.add_option("--reliable", o.reliable, "Embedded reliable subscriber nodes")
      ->check(CLI::Range(0, 20));
  app.add_option("--best-effort", o.best_effort, "Embedded best-effort subscriber nodes")
      ->check(CLI::Range(0, 20));
  app.add_option("--faults", o.faults,
                 "Fault kinds: kill, pause, partition (cut off from all), split (cut off "
                 "from some of its nearest daemons only; not in the default)")
      ->delimiter(',')
      ->check(CLI::IsMember({"kill", "pause", "partition", "split"}));
  app.add_option("--fault-seconds", o.fault_s, "Min and max seconds a fault lasts")
      ->expected(2);
  app.add_option("--gap-seconds", o.gap_s, "Min and max seconds between faults")
      ->expected(2);
  app.add_option("--root-bias", o.root_bias,
                 "Probability that a fault hits a topic's root rather than any daemon")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--repair-timeout", o.repair_timeout_s,
                 "Seconds to wait for a fault's repair before calling it a violation");
  app.add_option("--netns", o.netns,
                 "Daemons in network namespaces: on, off, auto (on when root)")
      ->check(CLI::IsMember({"on", "off", "auto"}));
  app.add_option("--leaf-set", o.leaf_set, "The daemons' leaf-set size");
  app.add_option("--log-dir", o.log_dir, "Where node logs go (default: a new /tmp dir)");
  app.add_flag("--keep-logs", o.keep_logs, "Keep the logs when the soak passes");
  app.add_option("--node-log-level", o.node_log_level, "The daemons' --log-level");
  app.add_option("--binary", o.binary, "The peter program")->required();
  CLI11_PARSE(app, argc, argv);

  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  signal(SIGPIPE, SIG_IGN);
  spdlog::set_level(spdlog::level::warn);
  if (o.log_dir.empty()) {
    char path[] = "/tmp/peter-chaos-XXXXXX";
    o.log_dir = mkdtemp(path);
  }
  std::filesystem::create_directories(o.log_dir);

  Soak soak(o, g_stop);
  absl::Status setup = soak.SetUp();
  if (!setup.ok()) {
    std::printf("setup failed: %s\nlogs in %s\n", setup.ToString().c_str(),
                o.log_dir.c_str());
    return 2;
  }
  soak.InjectFaults();
  SoakResult result = soak.Finish();
  PrintReport(o, result);
  const bool pass = result.verdict.violations == 0 && result.problems.empty();
  if (pass && !o.keep_logs) {
    std::filesystem::remove_all(o.log_dir);
  } else {
    std::printf("logs in %s\n", o.log_dir.c_str());
  }
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace peter::chaos

int main(int argc, char** argv) { return peter::chaos::Main(argc, argv); }

// The chaos soak's run: sets up the daemons (in network namespaces when it
// can), the embedded load, injects faults one at a time for the given
// duration, waits for each repair, and finally collects what the checks
// need.
#ifndef PETER_TESTS_CHAOS_SOAK_H_
#define PETER_TESTS_CHAOS_SOAK_H_

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/chaos/faults.h"
#include "tests/chaos/verdict.h"
#include "tests/chaos/workload.h"
#include "tests/integration/cluster.h"
#include "tests/integration/netns_lab.h"

namespace peter::chaos {

struct SoakOptions {
  double duration_s = 300;
  int nodes = 20;
  uint64_t seed = 1;
  int topics = 6;
  double rate = 50;
  int publishers = 2;
  int reliable = 2;
  int best_effort = 2;
  std::vector<std::string> faults = {"kill", "pause", "partition"};
  std::vector<double> fault_s = {1, 8};
  std::vector<double> gap_s = {1, 4};
  double root_bias = 0.5;
  double repair_timeout_s = 60;
  double window_margin_s = 1;
  std::string netns = "auto";
  int leaf_set = 16;
  std::string log_dir;
  bool keep_logs = false;
  std::string node_log_level = "info";
  std::string binary;
};

struct SoakResult {
  bool netns = false;
  int embedded = 0;
  std::vector<std::string> topics;
  absl::Duration fault_phase;
  absl::Duration total;
  std::vector<Fault> faults;
  Verdict verdict;
  int64_t reliable_missing_at_end = 0;  // still missing after the final wait
  absl::Duration final_convergence;     // after the last fault's end
  std::vector<std::string> problems;    // convergence and root problems
  std::string daemon_counters;          // a line of summed /status counters
};

class Soak {
 public:
  Soak(SoakOptions options, const std::atomic<bool>& stop);
  ~Soak();

  absl::Status SetUp();
  void InjectFaults();
  SoakResult Finish();

 private:
  absl::Status StartDaemons();
  void PickTopics();
  std::vector<pastry::NodeId> EmbeddedIds(int count);
  int PickTarget();
  std::string RootsOf(int node);
  // Every live daemon active with the ground truth's leaf set; `why` says
  // what is still wrong.
  bool Converged(std::string* why);
  void WaitRepaired(Fault& fault);
  void CheckRoots();
  std::string SumDaemonCounters();
  void SleepUnlessStopped(absl::Duration d);
  double Uniform(double lo, double hi);
  void Say(const std::string& line);

  SoakOptions o_;
  const std::atomic<bool>& stop_;
  std::mt19937_64 rng_;
  absl::Time t0_;
  std::unique_ptr<integration::NetnsLab> lab_;
  std::unique_ptr<integration::Cluster> cluster_;
  std::unique_ptr<FaultInjector> injector_;
  std::unique_ptr<Workload> workload_;
  std::vector<std::string> topic_names_;
  std::vector<FaultKind> kinds_;
  SoakResult result_;
  absl::Time fault_phase_start_;
};

}  // namespace peter::chaos

#endif  // PETER_TESTS_CHAOS_SOAK_H_

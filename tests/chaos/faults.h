// The chaos soak's fault injector: kill -9 and restart (same id, same
// address), pause (SIGSTOP, then SIGCONT) and cut off (the node's network
// namespace unplugged from the bridge, then plugged in again) one `peter
// node` of a Cluster at a time, or cut it off from some of its nearest
// daemons only (a split: both keep every other path), keeping a record of
// each fault.
#ifndef PETER_TESTS_CHAOS_FAULTS_H_
#define PETER_TESTS_CHAOS_FAULTS_H_

#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/integration/cluster.h"
#include "tests/integration/netns_lab.h"

namespace peter::chaos {

enum class FaultKind { kKill, kPause, kPartition, kSplit };
constexpr int kFaultKinds = 4;
const char* FaultName(FaultKind kind);

struct Fault {
  FaultKind kind = FaultKind::kKill;
  int node = 0;
  std::string roots;   // topics the node was root of when hit ("" if none)
  std::vector<int> cut_from;  // a split: the daemons it could not reach
  absl::Time start;    // the kill, SIGSTOP or cut
  absl::Time end;      // the restart, SIGCONT or reconnection
  absl::Time repaired = absl::InfiniteFuture();  // see RepairWindow in verdict.h
  std::string problem;  // why it could not be ended or repaired ("" if fine)
  std::string waited_on;  // the last condition the repair waited for
};

class FaultInjector {
 public:
  // `lab` may be null (loopback only: no partitions).
  FaultInjector(integration::Cluster& cluster, integration::NetnsLab* lab);

  // Hits `node` with `kind`; returns the started fault.
  absl::StatusOr<Fault> Begin(FaultKind kind, int node);
  // Undoes it: restarts the killed node through a random other live node,
  // continues the paused one, reconnects the cut or split one.
  absl::Status End(Fault& fault);

 private:
  std::vector<int> SplitPeers(int node);

  integration::Cluster& cluster_;
  integration::NetnsLab* lab_;
};

}  // namespace peter::chaos

#endif  // PETER_TESTS_CHAOS_FAULTS_H_

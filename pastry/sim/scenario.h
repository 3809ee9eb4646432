// Checks and workloads over a SimNetwork of Pastry nodes, shared by the
// simulation tests, `peter sim` and `peter demo`.
#ifndef PETER_PASTRY_SIM_SCENARIO_H_
#define PETER_PASTRY_SIM_SCENARIO_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "pastry/sim/rng.h"
#include "pastry/sim/sim_network.h"

namespace peter::pastry::sim {

// Runs until every live node is active, or for at most `max` simulated time.
bool RunUntilAllActive(SimNetwork& net, absl::Duration max);

// Nodes first..last-1 join one every `spacing`, each through a random node
// with a smaller index (which may still be joining); then runs until every
// live node is active or `max` has passed. Returns whether all are active.
bool JoinConcurrently(SimNetwork& net, Rng& rng, int first, int last,
                      absl::Duration spacing, absl::Duration max);

// The number of live nodes whose leaf set differs from the ground truth; the
// first difference is described in `first` when given.
int CountWrongLeafSets(const SimNetwork& net, std::string* first = nullptr);

struct LookupReport {
  int sent = 0;
  int answered = 0;
  int correct = 0;  // answered by the numerically closest live node
  int lost = 0;     // never answered within the timeout
  int max_hops = 0;
  double avg_hops = 0;
  std::vector<int> hops_histogram;  // index: hops
};

// Sends `count` lookups for random keys from random live nodes, spread evenly
// over `spread` of simulated time, and runs until all are answered or lost.
// An answer is correct if it comes from the numerically closest live node
// at the moment it arrives. Lookups whose source crashes are not counted.
LookupReport RunLookups(SimNetwork& net, Rng& rng, int count, absl::Duration spread,
                        absl::Duration timeout);

}  // namespace peter::pastry::sim

#endif  // PETER_PASTRY_SIM_SCENARIO_H_

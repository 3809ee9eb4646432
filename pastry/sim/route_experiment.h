// The building blocks of `peter sim route` and of the experiments in
// docs/results.md: an overlay of N Pastry nodes joined through the real join
// protocol in concurrent waves, and lookups measured hop by hop (hops,
// correctness, delay relative to the direct path).
//
// Everything is seeded; the same setup gives the same numbers, byte for byte.
#ifndef PETER_PASTRY_SIM_ROUTE_EXPERIMENT_H_
#define PETER_PASTRY_SIM_ROUTE_EXPERIMENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "pastry/sim/rng.h"
#include "pastry/sim/sim_network.h"
#include "peter/pastry/options.h"

namespace peter::pastry::sim {

// How a joining node picks the node it joins through.
enum class Bootstrap {
  // A uniformly random active node (what Peter's own experiments did before:
  // locality came from proximity neighbour selection afterwards only).
  kRandom,
  // The active node nearest to the joiner by the topology's delay. The Pastry
  // paper's join assumes the new node X "knows about a nearby node A" (found
  // e.g. by expanding-ring IP multicast) and routes its join through it, so
  // that the rows it copies from the route start with nearby entries. With
  // OverlaySetup::bootstrap_sample = K > 0, the nearest of K random active
  // nodes instead: what a deployed node can do by pinging K seeds it knows.
  kNearest,
};

struct OverlaySetup {
  int nodes = 1000;
  uint64_t seed = 1;
  int b = 4;
  int leaf_set_size = 16;
  bool pns = true;
  std::string topology = "plane";  // "plane" or "transit-stub"
  double loss_rate = 0.0;
  absl::Duration jitter = absl::ZeroDuration();
  // Departure from the product's default (1 s) to keep 100,000 nodes
  // tractable: leaf-set probes are sent every this often.
  absl::Duration leaf_probe_interval = absl::Seconds(10);
  // Simulated time after the last join, before measuring: lets routing-table
  // maintenance teach old nodes about newer ones.
  absl::Duration settle = absl::Seconds(40);
  // Disables lazy routing-table repair and periodic table maintenance (the
  // "without repair" phase of the failure experiment) from the start.
  bool table_repair = true;
  // If non-zero: Options::probe_timeout and hop_ack_timeout (the floors of
  // the adaptive timeouts); zero keeps the product defaults (300 ms).
  absl::Duration timeout = absl::ZeroDuration();
  // Proximity probes per node per second (Options::pns_probes_per_tick over
  // the probe interval); negative: the product's rate, 8 per second.
  double pns_probes_per_s = -1;
  // Round trips for proximity neighbour selection from the topology
  // (NetworkConfig::proximity_from_topology, the Pastry paper's set-up)
  // instead of proximity probes.
  bool proximity_from_topology = false;
  // Every message through the Cap'n Proto codec, counting bytes.
  bool through_wire = false;
  // The node each joiner joins through (see Bootstrap); the default is the
  // Pastry paper's set-up.
  Bootstrap bootstrap = Bootstrap::kNearest;
  // For kNearest: 0 compares every active node, K > 0 the nearest of K
  // drawn at random (with replacement).
  int bootstrap_sample = 0;
};

// Parses "random" or "nearest"; InvalidArgument for anything else.
absl::StatusOr<Bootstrap> ParseBootstrap(const std::string& name);

// The node `joiner` joins through, among `candidates` (active nodes), as
// `setup` says; -1 if there is none. Draws from `rng` only for kRandom and
// for a sampled kNearest.
int PickBootstrap(const SimNetwork& net, const OverlaySetup& setup, int joiner,
                  absl::Span<const int> candidates, Rng& rng);

// The node options an experiment runs with.
Options ExperimentOptions(const OverlaySetup& setup);

// A topology by name; nullopt-like error for an unknown name.
absl::StatusOr<std::unique_ptr<Topology>> MakeTopology(const std::string& name,
                                                       uint64_t seed);

struct JoinReport {
  int waves = 0;
  bool all_active = false;
  // Every message sent during the join phase (join requests, replies,
  // probes, and the maintenance that runs meanwhile) per joining node.
  double messages_per_join = 0;
  absl::Duration sim_time;
};

// Creates `setup.nodes` nodes, starts a ring at node 0 and joins the rest in
// waves: each wave joins as many nodes as are already active (spread over one
// second), each through an active node picked by PickBootstrap, and runs
// until all of them are active. Then runs for `setup.settle`.
absl::StatusOr<std::unique_ptr<SimNetwork>> BuildOverlay(const OverlaySetup& setup,
                                                         JoinReport* report);

struct LookupStats {
  int64_t sent = 0;
  int64_t answered = 0;
  int64_t correct = 0;  // answered by the numerically closest live node
  int64_t lost = 0;
  int max_hops = 0;
  double avg_hops = 0;
  std::vector<int64_t> hops_histogram;  // index: hops
  // Mean over answered lookups with source != root of: the sum of the
  // one-way delays along the path / the direct delay source -> root.
  double relative_distance = 0;
  // Histogram of that ratio in bins of kRelativeDistanceBin; the last bin
  // holds everything beyond.
  static constexpr double kRelativeDistanceBin = 0.1;
  static constexpr int kRelativeDistanceBins = 50;
  std::vector<int64_t> relative_distance_histogram;
  double avg_path_delay_ms = 0;
  double avg_direct_delay_ms = 0;
  // The mean delay of a route's last hop (into the root), over the same
  // lookups: the hop a leaf set decides, which proximity cannot choose.
  double avg_last_hop_delay_ms = 0;
};

// Sends `count` lookups for random keys from random live nodes at `rate` per
// simulated second, and runs until every one is answered or timed out.
LookupStats MeasureLookups(SimNetwork& net, Rng& rng, int64_t count, double rate,
                           absl::Duration timeout = absl::Seconds(30));

// What lookups (other random pairs) would cost over perfect routing state, for
// comparison with MeasureLookups: every routing-table slot holds the live
// node with that prefix nearest to its owner (proximity neighbour selection
// with complete knowledge), and a node whose leaf set covers the key (the
// root is within L/2 ring positions of it) sends it straight to the root, as
// Pastry routes. Routes are computed from the ground truth, not sent.
// Measures `count` random (live source, random key) pairs; the fields mean
// what they mean in LookupStats (hops_histogram, lost and correct unused).
LookupStats MeasurePerfectRoutes(const SimNetwork& net, Rng& rng, int64_t count, int b,
                                 int leaf_set_size);

struct StateStats {
  double routing_table_entries_avg = 0;
  double leaf_set_size_avg = 0;
  int wrong_leaf_sets = 0;
};
StateStats MeasureState(const SimNetwork& net);

}  // namespace peter::pastry::sim

#endif  // PETER_PASTRY_SIM_ROUTE_EXPERIMENT_H_

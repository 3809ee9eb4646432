// A transit-stub router topology in the style of GT-ITM (Zegura et al.), as
// used by the Scribe paper: transit domains of transit routers joined by
// long links, and stub domains of stub routers each hanging off one transit
// router. Overlay nodes attach to uniformly chosen stub routers.
//
// The delay between two nodes is the shortest path over the router graph
// plus each node's access link. Each stub domain is attached by a single
// link (its gateway to its transit router), so every shortest path between
// two stub domains is gateway -> transit shortest path -> gateway; the
// topology therefore stores all-pairs distances only inside each stub domain
// and between transit routers, computed once at construction, and answers
// Delay() with a few array reads. Exact, deterministic, O(1) per message.
// Memory: about 4 bytes per node plus under 1 MB for the default graph.
#ifndef PETER_PASTRY_SIM_TRANSIT_STUB_H_
#define PETER_PASTRY_SIM_TRANSIT_STUB_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "pastry/sim/rng.h"
#include "pastry/sim/topology.h"

namespace peter::pastry::sim {

class TransitStubTopology final : public Topology {
 public:
  // The default: 10 x 5 transit routers, each with 10 stub domains of 10
  // routers: 5,050 routers, as in the Scribe paper's set-up.
  struct Options {
    int transit_domains = 10;
    int routers_per_transit_domain = 5;
    int stub_domains_per_transit_router = 10;
    int routers_per_stub_domain = 10;
    // Mean link delays; each link draws uniformly within +-50% of its mean.
    double inter_transit_ms = 50;
    double intra_transit_ms = 20;
    double transit_stub_ms = 5;
    double intra_stub_ms = 2;
    double access_ms = 1;  // node to its stub router (fixed)
  };

  TransitStubTopology(const Options& options, uint64_t seed);

  void AddNode(int index) override;
  int size() const override { return static_cast<int>(attach_.size()); }
  absl::Duration Delay(int from, int to) const override;
  // Links: each node's access link, then the router links of the shortest
  // path (stub domain, gateway uplink, transit, uplink, stub domain).
  bool ForEachLink(int from, int to,
                   absl::FunctionRef<void(uint64_t link)> link) const override;

  int routers() const;
  // The shortest-path delay between two stub routers, in microseconds.
  int64_t StubDistanceUs(int a, int b) const;

 private:
  using Matrix = std::vector<int64_t>;  // n x n, row-major, microseconds

  void BuildTransit(Rng& rng);
  void BuildStubs(Rng& rng);
  int64_t LinkUs(Rng& rng, double mean_ms) const;
  // Router vertices: transit routers 0..T-1, then stub routers; nodes after.
  int StubVertex(int domain, int local) const;
  // Calls `link` for each hop from local router a to b in a stub domain.
  void StubPath(int domain, int a, int b, absl::FunctionRef<void(uint64_t)> link) const;
  void TransitPath(int a, int b, absl::FunctionRef<void(uint64_t)> link) const;

  Options options_;
  Rng rng_;  // node placement
  int transit_routers_ = 0;
  int stub_domains_ = 0;
  int stub_size_ = 0;
  Matrix transit_;                      // transit x transit
  std::vector<int32_t> transit_next_;   // next hop on a shortest path
  std::vector<Matrix> stub_;            // per stub domain: stub_size^2
  std::vector<std::vector<int32_t>> stub_next_;  // per stub domain
  std::vector<int> stub_transit_;       // per stub domain: its transit router
  std::vector<int> stub_gateway_;       // per stub domain: gateway router (local)
  std::vector<int64_t> stub_uplink_us_; // per stub domain: gateway <-> transit
  std::vector<int32_t> attach_;         // per node: global stub router index
};

}  // namespace peter::pastry::sim

#endif  // PETER_PASTRY_SIM_TRANSIT_STUB_H_

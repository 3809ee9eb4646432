// Network topologies: the one-way delay between two simulated nodes.
//
// A topology learns of nodes one at a time (AddNode with indices 0, 1, 2, ...)
// and must answer Delay() fast, as it is asked once per message. The delay
// must depend only on the seed and the two indices, never on the order of
// calls, so a run is reproducible.
#ifndef PETER_PASTRY_SIM_TOPOLOGY_H_
#define PETER_PASTRY_SIM_TOPOLOGY_H_

#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "pastry/sim/rng.h"

namespace peter::pastry::sim {

class Topology {
 public:
  virtual ~Topology() = default;
  // Places node `index`. REQUIRES: index == size().
  virtual void AddNode(int index) = 0;
  virtual int size() const = 0;
  // One-way delay from `from` to `to`. REQUIRES: both < size().
  virtual absl::Duration Delay(int from, int to) const = 0;
  // Calls `link` once for each physical link on the path whose delay Delay()
  // returns, from `from` to `to`, with an id unique to that link within this
  // topology (the same in both directions). Returns false, and calls nothing,
  // for a topology without links (the plane). REQUIRES: both < size().
  virtual bool ForEachLink(int from, int to,
                           absl::FunctionRef<void(uint64_t link)> link) const {
    return false;
  }
};

// Nodes placed uniformly at random in a square (the Pastry paper's set-up);
// the delay is the Euclidean distance times `per_unit`, plus `base`.
// Memory: 8 bytes per node.
class PlaneTopology final : public Topology {
 public:
  struct Options {
    double side = 1000.0;
    // The default makes the 1000x1000 plane a data centre: 0 to 141 ms.
    absl::Duration per_unit = absl::Microseconds(100);
    absl::Duration base = absl::ZeroDuration();
  };
  struct Point {
    float x;
    float y;
  };

  PlaneTopology(const Options& options, uint64_t seed);

  void AddNode(int index) override;
  int size() const override { return static_cast<int>(points_.size()); }
  absl::Duration Delay(int from, int to) const override;

  const Point& position(int index) const { return points_[index]; }

 private:
  double per_unit_ns_;
  int64_t base_ns_;
  double side_;
  Rng rng_;
  std::vector<Point> points_;
};

}  // namespace peter::pastry::sim

#endif  // PETER_PASTRY_SIM_TOPOLOGY_H_

#include "pastry/sim/topology.h"

#include <cassert>
#include <cmath>

namespace peter::pastry::sim {

PlaneTopology::PlaneTopology(const Options& options, uint64_t seed)
    : per_unit_ns_(absl::ToDoubleNanoseconds(options.per_unit)),
      base_ns_(absl::ToInt64Nanoseconds(options.base)),
      side_(options.side),
      rng_(seed) {}

void PlaneTopology::AddNode(int index) {
  assert(index == size());
  // Draws happen in index order, so node i's place depends only on the seed.
  float x = static_cast<float>(rng_.Uniform01() * side_);
  float y = static_cast<float>(rng_.Uniform01() * side_);
  points_.push_back(Point{x, y});
}

absl::Duration PlaneTopology::Delay(int from, int to) const {
  const Point& a = points_[from];
  const Point& b = points_[to];
  double dx = static_cast<double>(a.x) - b.x;
  double dy = static_cast<double>(a.y) - b.y;
  double ns = std::sqrt(dx * dx + dy * dy) * per_unit_ns_;
  return absl::Nanoseconds(base_ns_ + std::llround(ns));
}

}  // namespace peter::pastry::sim

#include "pastry/sim/topology.h"

#include <cmath>

#include "gtest/gtest.h"

namespace peter::pastry::sim {
namespace {

TEST(PlaneTopologyTest, DelayIsEuclideanDistanceTimesScale) {
  PlaneTopology topo(PlaneTopology::Options{}, 7);
  for (int i = 0; i < 100; ++i) topo.AddNode(i);
  ASSERT_EQ(topo.size(), 100);
  for (int a = 0; a < 100; a += 7) {
    for (int b = 0; b < 100; b += 3) {
      auto pa = topo.position(a);
      auto pb = topo.position(b);
      double dist = std::hypot(double{pa.x} - pb.x, double{pa.y} - pb.y);
      absl::Duration d = topo.Delay(a, b);
      EXPECT_NEAR(absl::ToDoubleMilliseconds(d), dist * 0.1, 1e-5);
      EXPECT_EQ(d, topo.Delay(b, a));
      EXPECT_GE(d, absl::ZeroDuration());
      EXPECT_LE(d, absl::Milliseconds(142));
    }
  }
  EXPECT_EQ(topo.Delay(3, 3), absl::ZeroDuration());
}

TEST(PlaneTopologyTest, PositionsAreUniformInTheSquare) {
  PlaneTopology topo(PlaneTopology::Options{}, 1);
  double sum_x = 0, sum_y = 0;
  constexpr int kN = 20000;
  for (int i = 0; i < kN; ++i) {
    topo.AddNode(i);
    auto p = topo.position(i);
    ASSERT_GE(p.x, 0.0f);
    ASSERT_LE(p.x, 1000.0f);
    ASSERT_GE(p.y, 0.0f);
    ASSERT_LE(p.y, 1000.0f);
    sum_x += p.x;
    sum_y += p.y;
  }
  EXPECT_NEAR(sum_x / kN, 500.0, 10.0);
  EXPECT_NEAR(sum_y / kN, 500.0, 10.0);
}

TEST(PlaneTopologyTest, ScaleAndBaseAreOptions) {
  PlaneTopology::Options options;
  options.per_unit = absl::Milliseconds(1);
  options.base = absl::Milliseconds(2);
  PlaneTopology topo(options, 7);
  PlaneTopology reference(PlaneTopology::Options{}, 7);
  for (int i = 0; i < 10; ++i) {
    topo.AddNode(i);
    reference.AddNode(i);
  }
  for (int a = 0; a < 10; ++a) {
    for (int b = 0; b < 10; ++b) {
      double expected = absl::ToDoubleMilliseconds(reference.Delay(a, b)) * 10 + 2;
      EXPECT_NEAR(absl::ToDoubleMilliseconds(topo.Delay(a, b)), expected, 1e-4);
    }
  }
}

TEST(PlaneTopologyTest, SameSeedSamePlaces) {
  PlaneTopology a(PlaneTopology::Options{}, 99);
  PlaneTopology b(PlaneTopology::Options{}, 99);
  PlaneTopology c(PlaneTopology::Options{}, 100);
  for (int i = 0; i < 50; ++i) {
    a.AddNode(i);
    b.AddNode(i);
    c.AddNode(i);
  }
  int differ = 0;
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(a.position(i).x, b.position(i).x);
    EXPECT_EQ(a.position(i).y, b.position(i).y);
    differ += a.position(i).x != c.position(i).x;
  }
  EXPECT_GT(differ, 45);
}

}  // namespace
}  // namespace peter::pastry::sim

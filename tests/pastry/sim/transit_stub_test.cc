#include "pastry/sim/transit_stub.h"

#include "gtest/gtest.h"

namespace peter::pastry::sim {
namespace {

TEST(TransitStubTopologyTest, DefaultHasAboutFiveThousandRouters) {
  TransitStubTopology t({}, 1);
  EXPECT_EQ(t.routers(), 5050);
}

TEST(TransitStubTopologyTest, DelaysAreSymmetricDeterministicAndMetric) {
  TransitStubTopology a({}, 7), b({}, 7);
  for (int i = 0; i < 300; ++i) {
    a.AddNode(i);
    b.AddNode(i);
  }
  for (int i = 0; i < 300; i += 7) {
    EXPECT_EQ(a.Delay(i, i), absl::ZeroDuration());
    for (int j = 0; j < 300; j += 11) {
      EXPECT_EQ(a.Delay(i, j), b.Delay(i, j));
      EXPECT_EQ(a.Delay(i, j), a.Delay(j, i));
      if (i != j) EXPECT_GT(a.Delay(i, j), absl::ZeroDuration());
    }
  }
  // Shortest paths: the triangle inequality holds between stub routers.
  for (int x = 0; x < 5000; x += 397) {
    for (int y = 0; y < 5000; y += 211) {
      for (int z = 0; z < 5000; z += 503) {
        EXPECT_LE(a.StubDistanceUs(x, z), a.StubDistanceUs(x, y) + a.StubDistanceUs(y, z));
      }
    }
  }
}

TEST(TransitStubTopologyTest, SameStubDomainIsCloserThanAcrossTransit) {
  TransitStubTopology t({}, 3);
  // Routers 0..9 share stub domain 0; router 4999 hangs off another transit
  // domain's router.
  EXPECT_LT(t.StubDistanceUs(0, 9), t.StubDistanceUs(0, 4999));
}

}  // namespace
}  // namespace peter::pastry::sim

#include "pastry/sim/transit_stub.h"

#include <set>
#include <vector>

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
      if (i != j) {
        EXPECT_GT(a.Delay(i, j), absl::ZeroDuration());
      }
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

// A link id's two vertices (see ForEachLink).
std::pair<int, int> Ends(uint64_t link) {
  return {static_cast<int>(link >> 32), static_cast<int>(link & 0xffffffffu)};
}

TEST(TransitStubTopologyTest, LinksFormAChainFromNodeToNode) {
  TransitStubTopology t({}, 5);
  for (int i = 0; i < 200; ++i) t.AddNode(i);
  const int node_base = t.routers();
  int across = 0;
  for (int i = 0; i < 200; i += 3) {
    for (int j = 0; j < 200; j += 7) {
      std::vector<uint64_t> links;
      ASSERT_TRUE(t.ForEachLink(i, j, [&](uint64_t l) { links.push_back(l); }));
      if (i == j) {
        EXPECT_TRUE(links.empty());
        continue;
      }
      ASSERT_GE(links.size(), 2u);
      // Walk the chain: each link shares a vertex with the previous one.
      int at = node_base + i;
      std::set<uint64_t> seen;
      for (uint64_t l : links) {
        auto [a, b] = Ends(l);
        ASSERT_LT(a, b);
        ASSERT_TRUE(a == at || b == at) << "link " << a << "-" << b << " not at " << at;
        at = a == at ? b : a;
        EXPECT_TRUE(seen.insert(l).second) << "link used twice";
      }
      EXPECT_EQ(at, node_base + j);
      // Only the two access links touch node vertices.
      for (size_t k = 1; k + 1 < links.size(); ++k) EXPECT_LT(Ends(links[k]).second, node_base);
      // Transit routers are vertices 0..49 in the default graph.
      for (uint64_t l : links) {
        if (Ends(l).second < 50) {
          ++across;
          break;
        }
      }
      // Both directions cross the same number of links.
      int back = 0;
      t.ForEachLink(j, i, [&](uint64_t) { ++back; });
      EXPECT_EQ(back, static_cast<int>(links.size()));
    }
  }
  EXPECT_GT(across, 0);
}

TEST(TransitStubTopologyTest, PlaneHasNoLinks) {
  PlaneTopology p({}, 1);
  p.AddNode(0);
  p.AddNode(1);
  int calls = 0;
  EXPECT_FALSE(p.ForEachLink(0, 1, [&](uint64_t) { ++calls; }));
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace peter::pastry::sim

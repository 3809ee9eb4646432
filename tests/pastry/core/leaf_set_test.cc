// Tests of LeafSet against the contract in pastry/core/leaf_set.h and the
// Pastry paper's definition: L/2 nearest ids on each side, nearest first,
// both halves overlapping in rings of fewer than L+1 nodes.
#include "pastry/core/leaf_set.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace peter::pastry {
namespace {

NodeId Id(uint64_t v) { return NodeId(0, v); }

// A handle whose endpoint is derived from the id, so tests can tell
// endpoints apart without opening anything.
NodeHandle H(const NodeId& id, uint32_t port_offset = 0) {
  return NodeHandle{id, Endpoint::FromIpv4(0x7F000001 + static_cast<uint32_t>(id.lo() & 0xffff),
                                           static_cast<uint16_t>(4000 + port_offset))};
}
NodeHandle H(uint64_t v) { return H(Id(v)); }

std::vector<NodeId> Ids(const std::vector<NodeHandle>& handles) {
  std::vector<NodeId> out;
  for (const NodeHandle& h : handles) out.push_back(h.id);
  return out;
}

std::vector<NodeId> SortedIds(const std::vector<NodeHandle>& handles) {
  std::vector<NodeId> out = Ids(handles);
  std::sort(out.begin(), out.end());
  return out;
}

// Ground truth: the `half` ids nearest to `self` going clockwise (or
// counter-clockwise), nearest first.
std::vector<NodeId> NearestSide(const NodeId& self, std::vector<NodeId> others, size_t half,
                                bool clockwise) {
  std::sort(others.begin(), others.end(), [&](const NodeId& a, const NodeId& b) {
    return clockwise ? NodeId::ClockwiseDistance(self, a) < NodeId::ClockwiseDistance(self, b)
                     : NodeId::ClockwiseDistance(a, self) < NodeId::ClockwiseDistance(b, self);
  });
  if (others.size() > half) others.resize(half);
  return others;
}

// ------------------------------------------------------------------ basics

TEST(LeafSetTest, NewSetIsEmptyAndCoversEverything) {
  LeafSet ls(Id(1000), 16);
  EXPECT_EQ(ls.capacity(), 16);
  EXPECT_EQ(ls.self(), Id(1000));
  EXPECT_TRUE(ls.empty());
  EXPECT_EQ(ls.size(), 0u);
  EXPECT_FALSE(ls.Full());
  EXPECT_TRUE(ls.InRange(Id(0)));
  EXPECT_TRUE(ls.InRange(NodeId::Max()));
  EXPECT_FALSE(ls.Closest(Id(5)).has_value());  // self is the only node
  EXPECT_TRUE(ls.Members().empty());
}

TEST(LeafSetTest, InsertKeepsEachHalfSortedNearestFirst) {
  LeafSet ls(Id(1000), 4);  // two on each side
  std::vector<NodeHandle> evicted;
  for (uint64_t v : {2000, 1010, 500, 995, 1005, 990}) ls.Insert(H(v), &evicted);
  EXPECT_EQ(Ids(ls.right()), (std::vector<NodeId>{Id(1005), Id(1010)}));
  EXPECT_EQ(Ids(ls.left()), (std::vector<NodeId>{Id(995), Id(990)}));
  EXPECT_TRUE(ls.Full());
  EXPECT_EQ(ls.size(), 4u);
  EXPECT_EQ(SortedIds(evicted), (std::vector<NodeId>{Id(500), Id(2000)}));
  EXPECT_FALSE(ls.Contains(Id(2000)));
  EXPECT_FALSE(ls.Contains(Id(500)));
  EXPECT_TRUE(ls.Contains(Id(990)));
  ASSERT_NE(ls.Find(Id(1005)), nullptr);
  EXPECT_EQ(*ls.Find(Id(1005)), H(1005));
  EXPECT_EQ(ls.Find(Id(1234)), nullptr);
}

TEST(LeafSetTest, HalvesWrapAroundZero) {
  const NodeId self = Id(5);
  LeafSet ls(self, 4);
  const NodeId m1 = NodeId::Max();                  // 2^128 - 1: one below 0
  const NodeId m3 = NodeId::Max() - Id(2);          // 2^128 - 3
  for (const NodeId& id : {Id(7), m3, Id(1000), m1, NodeId(1, 0)}) ls.Insert(H(id));
  EXPECT_EQ(Ids(ls.left()), (std::vector<NodeId>{m1, m3}));
  EXPECT_EQ(Ids(ls.right()), (std::vector<NodeId>{Id(7), Id(1000)}));
}

TEST(LeafSetTest, HalvesWrapAroundMax) {
  const NodeId self = NodeId::Max() - Id(10);
  LeafSet ls(self, 2);
  ls.Insert(H(Id(3)));                       // 14 clockwise
  ls.Insert(H(NodeId::Max() - Id(20)));      // 10 counter-clockwise
  ls.Insert(H(NodeId::Max()));               // 10 clockwise: nearer than 3
  ls.Insert(H(Id(1)));                       // 12 clockwise
  EXPECT_EQ(Ids(ls.right()), (std::vector<NodeId>{NodeId::Max()}));
  EXPECT_EQ(Ids(ls.left()), (std::vector<NodeId>{NodeId::Max() - Id(20)}));
}

TEST(LeafSetTest, SmallRingHalvesOverlap) {
  // A ring of 4 nodes with L = 16: every other node is on both sides.
  LeafSet ls(Id(1000), 16);
  for (uint64_t v : {2000, 3000, 10}) ls.Insert(H(v));
  EXPECT_EQ(Ids(ls.right()), (std::vector<NodeId>{Id(2000), Id(3000), Id(10)}));
  EXPECT_EQ(Ids(ls.left()), (std::vector<NodeId>{Id(10), Id(3000), Id(2000)}));
  EXPECT_EQ(ls.size(), 3u);  // distinct members
  EXPECT_EQ(SortedIds(ls.Members()), (std::vector<NodeId>{Id(10), Id(2000), Id(3000)}));
  EXPECT_FALSE(ls.Full());
  for (uint64_t k : {0ull, 500ull, 1500ull, 2500ull, 5000ull}) EXPECT_TRUE(ls.InRange(Id(k)));
  EXPECT_TRUE(ls.InRange(NodeId::Max()));
}

TEST(LeafSetTest, InsertIgnoresSelfAndDuplicates) {
  LeafSet ls(Id(1000), 4);
  EXPECT_FALSE(ls.Insert(H(1000)));
  EXPECT_TRUE(ls.empty());
  EXPECT_TRUE(ls.Insert(H(1001)));
  EXPECT_FALSE(ls.Insert(H(1001)));
  EXPECT_EQ(ls.size(), 1u);
}

TEST(LeafSetTest, InsertWithNewEndpointUpdatesBothHalves) {
  LeafSet ls(Id(1000), 4);
  ls.Insert(H(1001));
  ls.Insert(H(999));
  NodeHandle moved = H(Id(1001), /*port_offset=*/7);
  ASSERT_NE(moved.endpoint, H(1001).endpoint);
  EXPECT_TRUE(ls.Insert(moved));
  for (const auto* half : {&ls.left(), &ls.right()}) {
    for (const NodeHandle& n : *half) {
      if (n.id == moved.id) {
        EXPECT_EQ(n.endpoint, moved.endpoint);
      }
    }
  }
  EXPECT_EQ(ls.Find(moved.id)->endpoint, moved.endpoint);
  EXPECT_EQ(ls.size(), 2u);
}

TEST(LeafSetTest, EvictedOnlyWhenGoneFromBothHalves) {
  LeafSet ls(Id(1000), 4);
  std::vector<NodeHandle> evicted;
  // Three nodes: each half holds two, so one node is on one side only.
  ls.Insert(H(1010), &evicted);
  ls.Insert(H(990), &evicted);
  ls.Insert(H(1020), &evicted);
  // Right: 1010, 1020. Left: 990, 1020 (1020 is nearer counter-clockwise
  // than 1010). 1010 fell out of the left half but is still a member.
  EXPECT_TRUE(evicted.empty());
  EXPECT_EQ(ls.size(), 3u);
  ls.Insert(H(980), &evicted);  // left: 990, 980; 1020 still on the right
  EXPECT_TRUE(evicted.empty());
  ls.Insert(H(1005), &evicted);  // right: 1005, 1010; 1020 is gone
  EXPECT_EQ(Ids(evicted), std::vector<NodeId>{Id(1020)});
  EXPECT_FALSE(ls.Contains(Id(1020)));
}

TEST(LeafSetTest, WouldAcceptPredictsInsert) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const NodeId self(rng(), rng());
    LeafSet ls(self, 8);
    for (int i = 0; i < 200; ++i) {
      // Mix uniform ids with ids near self so both branches are exercised.
      NodeId id = (i % 3 == 0) ? NodeId(rng(), rng())
                               : self + NodeId(0, rng() % 100000) - NodeId(0, 50000);
      const bool member = ls.Contains(id);
      const bool would = ls.WouldAccept(id);
      const bool changed = ls.Insert(H(id));
      if (member) {
        EXPECT_FALSE(would);
      } else {
        EXPECT_EQ(would, changed) << "trial " << trial << " i " << i;
      }
    }
    EXPECT_FALSE(ls.WouldAccept(self));
  }
}

TEST(LeafSetTest, RemoveDropsFromBothHalves) {
  LeafSet ls(Id(1000), 16);
  ls.Insert(H(2000));
  ls.Insert(H(500));
  EXPECT_TRUE(ls.Remove(Id(2000)));
  EXPECT_FALSE(ls.Contains(Id(2000)));
  for (const NodeHandle& n : ls.left()) EXPECT_NE(n.id, Id(2000));
  for (const NodeHandle& n : ls.right()) EXPECT_NE(n.id, Id(2000));
  EXPECT_FALSE(ls.Remove(Id(2000)));
  EXPECT_FALSE(ls.Remove(Id(1000)));
  EXPECT_EQ(ls.size(), 1u);
  EXPECT_TRUE(ls.Remove(Id(500)));
  EXPECT_TRUE(ls.empty());
}

// Property: whatever the insertion order, each half holds the L/2 nearest
// ids on its side, nearest first (including rings of fewer than L+1 nodes).
TEST(LeafSetTest, MatchesGroundTruthForRandomRings) {
  std::mt19937_64 rng(12345);
  for (int size : {2, 4, 16}) {
    for (int n : {1, 2, 3, size / 2, size / 2 + 1, size, size + 1, size + 2, 50}) {
      std::vector<NodeId> ids;
      for (int i = 0; i < n; ++i) ids.emplace_back(rng(), rng());
      const NodeId self = ids[0];
      std::vector<NodeId> others(ids.begin() + 1, ids.end());
      LeafSet ls(self, size);
      std::vector<NodeId> order = others;
      std::shuffle(order.begin(), order.end(), rng);
      for (const NodeId& id : order) ls.Insert(H(id));
      const size_t half = static_cast<size_t>(size / 2);
      EXPECT_EQ(Ids(ls.left()), NearestSide(self, others, half, false))
          << "L=" << size << " n=" << n;
      EXPECT_EQ(Ids(ls.right()), NearestSide(self, others, half, true))
          << "L=" << size << " n=" << n;
    }
  }
}

// ------------------------------------------------------------------- range

TEST(LeafSetTest, InRangeWhenFullCoversLeftmostToRightmost) {
  LeafSet ls(Id(1000), 4);
  for (uint64_t v : {990, 995, 1005, 1010, 5000, 10}) ls.Insert(H(v));
  ASSERT_TRUE(ls.Full());
  EXPECT_TRUE(ls.InRange(Id(990)));
  EXPECT_TRUE(ls.InRange(Id(1000)));
  EXPECT_TRUE(ls.InRange(Id(1010)));
  EXPECT_TRUE(ls.InRange(Id(1007)));
  EXPECT_FALSE(ls.InRange(Id(989)));
  EXPECT_FALSE(ls.InRange(Id(1011)));
  EXPECT_FALSE(ls.InRange(Id(0)));
  EXPECT_FALSE(ls.InRange(NodeId::Max()));
}

TEST(LeafSetTest, InRangeWrapsAroundZero) {
  LeafSet ls(Id(1), 4);
  const NodeId m = NodeId::Max();
  for (const NodeId& id : {Id(3), Id(5), m, m - Id(4), Id(100), m - Id(100)}) ls.Insert(H(id));
  ASSERT_TRUE(ls.Full());
  EXPECT_TRUE(ls.InRange(Id(0)));
  EXPECT_TRUE(ls.InRange(m - Id(4)));
  EXPECT_TRUE(ls.InRange(m - Id(2)));
  EXPECT_TRUE(ls.InRange(Id(5)));
  EXPECT_FALSE(ls.InRange(Id(6)));
  EXPECT_FALSE(ls.InRange(m - Id(5)));
  EXPECT_FALSE(ls.InRange(NodeId(1ull << 63, 0)));
}

// Regression (fixed; was a bug in pastry/core/leaf_set.cc, LeafSet::InRange): in a ring of L/2+1..L
// nodes both halves are full AND overlap, so the leaf set holds the whole
// ring, but InRange measures [left_.back(), right_.back()] clockwise, which
// is only the overlap (here a single point). Keys right next to self are then
// reported out of range and routed through the routing table instead of to
// the numerically closest leaf. The header says the halves overlap in small
// rings and the leaf set covers the whole ring then.
TEST(LeafSetTest, InRangeCoversWholeRingWhenFullHalvesOverlap) {
  // Ring of 4 nodes, L = 4: both halves hold 2 of the 3 others.
  LeafSet ls(Id(1000), 4);
  for (uint64_t v : {2000, 3000, 4000}) ls.Insert(H(v));
  EXPECT_EQ(Ids(ls.right()), (std::vector<NodeId>{Id(2000), Id(3000)}));
  EXPECT_EQ(Ids(ls.left()), (std::vector<NodeId>{Id(4000), Id(3000)}));
  for (uint64_t k : {0ull, 999ull, 1001ull, 1500ull, 2500ull, 3500ull, 5000ull}) {
    EXPECT_TRUE(ls.InRange(Id(k))) << k;
  }
  EXPECT_TRUE(ls.InRange(NodeId::Max()));

  // Ring of 12 nodes, default L = 16.
  std::mt19937_64 rng(3);
  LeafSet big(NodeId(rng(), rng()), 16);
  for (int i = 0; i < 11; ++i) big.Insert(H(NodeId(rng(), rng())));
  ASSERT_EQ(big.size(), 11u);
  for (int i = 0; i < 200; ++i) {
    NodeId key(rng(), rng());
    EXPECT_TRUE(big.InRange(key)) << key.ToHex();
  }
}

// Same root cause: Full() is documented as "this node does not know the whole
// ring", yet it is true for overlapping halves that hold every node.
TEST(LeafSetTest, NotFullWhenHalvesOverlap) {
  LeafSet ls(Id(1000), 4);
  for (uint64_t v : {2000, 3000, 4000}) ls.Insert(H(v));
  EXPECT_FALSE(ls.Full());
}

// ----------------------------------------------------------------- closest

TEST(LeafSetTest, ClosestPicksNumericallyClosestOrSelf) {
  LeafSet ls(Id(1000), 4);
  for (uint64_t v : {990, 995, 1005, 1010}) ls.Insert(H(v));
  EXPECT_FALSE(ls.Closest(Id(1000)).has_value());
  EXPECT_FALSE(ls.Closest(Id(1002)).has_value());
  EXPECT_EQ(ls.Closest(Id(1004))->id, Id(1005));
  EXPECT_EQ(ls.Closest(Id(1009))->id, Id(1010));
  EXPECT_EQ(ls.Closest(Id(991))->id, Id(990));
  EXPECT_EQ(ls.Closest(Id(994)), H(995));  // the handle, endpoint included
}

TEST(LeafSetTest, ClosestBreaksTiesTowardsSmallerId) {
  LeafSet ls(Id(1000), 4);
  for (uint64_t v : {990, 996, 1004, 1010}) ls.Insert(H(v));
  // 1002 is 2 from self and 2 from 1004: self (smaller) wins.
  EXPECT_FALSE(ls.Closest(Id(1002)).has_value());
  // 998 is 2 from 996 and 2 from self: 996 (smaller) wins.
  EXPECT_EQ(ls.Closest(Id(998))->id, Id(996));
  // 1007 is 3 from 1004 and 3 from 1010: 1004.
  EXPECT_EQ(ls.Closest(Id(1007))->id, Id(1004));
  // 993 is 3 from 990 and 3 from 996: 990.
  EXPECT_EQ(ls.Closest(Id(993))->id, Id(990));
}

TEST(LeafSetTest, ClosestAcrossWrapAround) {
  const NodeId m = NodeId::Max();  // 2^128 - 1
  LeafSet ls(Id(100), 4);
  for (const NodeId& id : {Id(3), m - Id(8), Id(200)}) ls.Insert(H(id));
  EXPECT_EQ(ls.Closest(m)->id, Id(3));            // 4 away, against 8
  EXPECT_EQ(ls.Closest(m - Id(7))->id, m - Id(8));
  EXPECT_EQ(ls.Closest(m - Id(3))->id, m - Id(8));  // 5 against 7
  // Equidistant across zero: Max-8 and 3 are both 6 from Max-2; the
  // numerically smaller id, 3, wins everywhere.
  EXPECT_EQ(ls.Closest(m - Id(2))->id, Id(3));
}

TEST(LeafSetTest, ClosestHonoursSkip) {
  LeafSet ls(Id(1000), 4);
  for (uint64_t v : {990, 995, 1005, 1010}) ls.Insert(H(v));
  auto skip1005 = [](const NodeId& id) { return id == Id(1005); };
  EXPECT_EQ(ls.Closest(Id(1006), skip1005)->id, Id(1010));
  EXPECT_FALSE(ls.Closest(Id(1004), skip1005).has_value());  // self next best
  auto skip_all = [](const NodeId&) { return true; };
  EXPECT_FALSE(ls.Closest(Id(990), skip_all).has_value());
}

// ------------------------------------------------------------- replica set

TEST(LeafSetTest, ReplicaSetClosestFirstIncludingSelf) {
  const NodeHandle self = H(1000);
  LeafSet ls(self.id, 4);
  for (uint64_t v : {990, 996, 1004, 1010}) ls.Insert(H(v));
  // 1005: 1004 is 1 away; 1000 and 1010 are both 5 away, 1000 first.
  std::vector<NodeHandle> r = ls.ReplicaSet(Id(1005), 3, self);
  EXPECT_EQ(Ids(r), (std::vector<NodeId>{Id(1004), Id(1000), Id(1010)}));
  EXPECT_EQ(r[1], self);
  // Ties: 998 is 2 from 996 and from 1000; 996 first.
  EXPECT_EQ(Ids(ls.ReplicaSet(Id(998), 2, self)), (std::vector<NodeId>{Id(996), Id(1000)}));
  EXPECT_EQ(ls.ReplicaSet(Id(1000), 1, self), std::vector<NodeHandle>{self});
  // k larger than what is known: every node, once.
  std::vector<NodeHandle> all = ls.ReplicaSet(Id(0), 5, self);
  EXPECT_EQ(all.size(), 5u);
  EXPECT_EQ(Ids(all), (std::vector<NodeId>{Id(990), Id(996), Id(1000), Id(1004), Id(1010)}));
  EXPECT_TRUE(ls.ReplicaSet(Id(0), 0, self).empty());
}

TEST(LeafSetTest, ReplicaSetInSmallRingHasNoDuplicates) {
  const NodeHandle self = H(1000);
  LeafSet ls(self.id, 16);
  for (uint64_t v : {2000, 3000}) ls.Insert(H(v));
  EXPECT_EQ(Ids(ls.ReplicaSet(Id(2900), 17, self)),
            (std::vector<NodeId>{Id(3000), Id(2000), Id(1000)}));
}

// ----------------------------------------------------------------- version

TEST(LeafSetTest, VersionIsWhatWasSet) {
  LeafSet ls(Id(1), 4);
  ls.set_version(42);
  EXPECT_EQ(ls.version(), 42u);
}

// Regression (fixed; was a contract mismatch in pastry/core/leaf_set.h, version()): the header says the
// version "changes whenever membership changes", but LeafSet::Insert/Remove
// never touch version_; only Node::ChangeLeafSet bumps it. Either the class
// should bump it itself or the comment should say the owner must.
TEST(LeafSetTest, VersionChangesWithMembership) {
  LeafSet ls(Id(1000), 4);
  uint64_t v0 = ls.version();
  ASSERT_TRUE(ls.Insert(H(1001)));
  uint64_t v1 = ls.version();
  EXPECT_NE(v1, v0);
  ASSERT_TRUE(ls.Remove(Id(1001)));
  EXPECT_NE(ls.version(), v1);
}

}  // namespace
}  // namespace peter::pastry

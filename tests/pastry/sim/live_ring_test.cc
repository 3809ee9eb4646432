#include "pastry/sim/live_ring.h"

#include <algorithm>
#include <vector>

#include "gtest/gtest.h"
#include "pastry/sim/rng.h"

namespace peter::pastry::sim {
namespace {

int BruteClosest(const std::vector<NodeId>& ids, const NodeId& key) {
  int best = 0;
  for (int i = 1; i < static_cast<int>(ids.size()); ++i) {
    if (NodeId::CloserTo(key, ids[i], ids[best])) best = i;
  }
  return best;
}

ExpectedLeaves BruteLeaves(const std::vector<NodeId>& ids, const NodeId& self,
                           int leaf_set_size) {
  std::vector<NodeId> others;
  for (const NodeId& id : ids) {
    if (id != self) others.push_back(id);
  }
  size_t half = std::min<size_t>(leaf_set_size / 2, others.size());
  ExpectedLeaves out;
  std::vector<NodeId> cw = others, ccw = others;
  std::sort(cw.begin(), cw.end(), [&](const NodeId& a, const NodeId& b) {
    return NodeId::ClockwiseDistance(self, a) < NodeId::ClockwiseDistance(self, b);
  });
  std::sort(ccw.begin(), ccw.end(), [&](const NodeId& a, const NodeId& b) {
    return NodeId::ClockwiseDistance(a, self) < NodeId::ClockwiseDistance(b, self);
  });
  out.right.assign(cw.begin(), cw.begin() + half);
  out.left.assign(ccw.begin(), ccw.begin() + half);
  return out;
}

LiveRing MakeRing(const std::vector<NodeId>& ids) {
  LiveRing ring;
  for (int i = 0; i < static_cast<int>(ids.size()); ++i) {
    EXPECT_TRUE(ring.Insert(ids[i], i));
  }
  return ring;
}

TEST(LiveRingTest, EmptyRing) {
  LiveRing ring;
  EXPECT_FALSE(ring.Closest(NodeId(1, 2)).has_value());
  ExpectedLeaves l = ring.LeafSet(NodeId(1, 2), 16);
  EXPECT_TRUE(l.left.empty());
  EXPECT_TRUE(l.right.empty());
}

TEST(LiveRingTest, ClosestWrapsAround) {
  const NodeId max = NodeId::Max();
  NodeId max_minus_1 = max - NodeId(0, 1);
  LiveRing ring = MakeRing({NodeId(0, 1), max_minus_1});
  EXPECT_EQ(ring.Closest(NodeId(0, 0)), 0);  // 1 away vs 2 away
  EXPECT_EQ(ring.Closest(max), 1);           // 1 away vs 2 away
  LiveRing tie = MakeRing({NodeId(0, 2), max_minus_1});
  EXPECT_EQ(tie.Closest(NodeId(0, 0)), 0);   // 2 and 2: the smaller id
  LiveRing far = MakeRing({NodeId(1ULL << 63, 0)});
  EXPECT_EQ(far.Closest(NodeId(0, 5)), 0);
}

TEST(LiveRingTest, ClosestMatchesBruteForce) {
  Rng rng(2024);
  for (int n : {1, 2, 3, 10, 1000}) {
    std::vector<NodeId> ids;
    for (int i = 0; i < n; ++i) ids.push_back(rng.RandomId());
    LiveRing ring = MakeRing(ids);
    std::vector<NodeId> keys = {NodeId(0, 0), NodeId::Max(),
                                NodeId(1ULL << 63, 0)};
    for (const NodeId& id : ids) {
      keys.push_back(id);
      keys.push_back(id + NodeId(0, 1));
      keys.push_back(id - NodeId(0, 1));
    }
    for (int k = 0; k < 2000; ++k) keys.push_back(rng.RandomId());
    for (const NodeId& key : keys) {
      ASSERT_EQ(ring.Closest(key), BruteClosest(ids, key))
          << "n=" << n << " key=" << key.ToHex();
    }
  }
}

TEST(LiveRingTest, ClosestTracksInsertAndErase) {
  Rng rng(5);
  std::vector<NodeId> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(rng.RandomId());
  LiveRing ring = MakeRing(ids);
  EXPECT_FALSE(ring.Insert(ids[3], 99));
  std::vector<NodeId> live;
  for (int i = 0; i < 200; ++i) {
    if (i % 3 == 0) {
      EXPECT_TRUE(ring.Erase(ids[i]));
    } else {
      live.push_back(ids[i]);
    }
  }
  EXPECT_FALSE(ring.Erase(ids[0]));
  EXPECT_EQ(ring.size(), static_cast<int>(live.size()));
  for (int k = 0; k < 1000; ++k) {
    NodeId key = rng.RandomId();
    int got = *ring.Closest(key);
    EXPECT_EQ(ids[got], live[BruteClosest(live, key)]);
  }
}

TEST(LiveRingTest, LeafSetMatchesBruteForce) {
  Rng rng(99);
  for (int n : {1, 2, 5, 9, 17, 100}) {
    std::vector<NodeId> ids;
    for (int i = 0; i < n; ++i) ids.push_back(rng.RandomId());
    ids.push_back(NodeId(0, 3));  // near the wrap point
    ids.push_back(NodeId::Max() - NodeId(0, 3));
    if (n <= 2) ids.resize(n);
    LiveRing ring = MakeRing(ids);
    for (int l : {2, 4, 8, 16}) {
      for (const NodeId& self : ids) {
        ExpectedLeaves got = ring.LeafSet(self, l);
        ExpectedLeaves want = BruteLeaves(ids, self, l);
        ASSERT_EQ(got.left, want.left) << "n=" << n << " L=" << l;
        ASSERT_EQ(got.right, want.right) << "n=" << n << " L=" << l;
      }
    }
  }
}

TEST(LiveRingTest, SmallRingsOverlap) {
  LiveRing one = MakeRing({NodeId(0, 10)});
  EXPECT_TRUE(one.LeafSet(NodeId(0, 10), 16).left.empty());
  EXPECT_TRUE(one.LeafSet(NodeId(0, 10), 16).right.empty());

  LiveRing two = MakeRing({NodeId(0, 10), NodeId(0, 20)});
  ExpectedLeaves l2 = two.LeafSet(NodeId(0, 10), 16);
  EXPECT_EQ(l2.left, std::vector<NodeId>{NodeId(0, 20)});
  EXPECT_EQ(l2.right, std::vector<NodeId>{NodeId(0, 20)});

  std::vector<NodeId> five = {NodeId(0, 10), NodeId(0, 20), NodeId(0, 30),
                              NodeId(0, 40), NodeId(0, 50)};
  ExpectedLeaves l5 = MakeRing(five).LeafSet(NodeId(0, 20), 16);
  EXPECT_EQ(l5.right, (std::vector<NodeId>{NodeId(0, 30), NodeId(0, 40),
                                           NodeId(0, 50), NodeId(0, 10)}));
  EXPECT_EQ(l5.left, (std::vector<NodeId>{NodeId(0, 10), NodeId(0, 50),
                                          NodeId(0, 40), NodeId(0, 30)}));
  ExpectedLeaves l5_small = MakeRing(five).LeafSet(NodeId(0, 20), 4);
  EXPECT_EQ(l5_small.right,
            (std::vector<NodeId>{NodeId(0, 30), NodeId(0, 40)}));
  EXPECT_EQ(l5_small.left,
            (std::vector<NodeId>{NodeId(0, 10), NodeId(0, 50)}));
}

TEST(LiveRingTest, LeafSetOfANonMember) {
  LiveRing ring = MakeRing({NodeId(0, 10), NodeId(0, 20), NodeId(0, 30)});
  ExpectedLeaves l = ring.LeafSet(NodeId(0, 15), 2);
  EXPECT_EQ(l.left, std::vector<NodeId>{NodeId(0, 10)});
  EXPECT_EQ(l.right, std::vector<NodeId>{NodeId(0, 20)});
}

}  // namespace
}  // namespace peter::pastry::sim

// Tests of RoutingTable against pastry/core/routing_table.h: 128/b rows of
// 2^b columns; entry (r, c) shares r digits with self and has digit r == c;
// proximity neighbour selection decides between candidates for one slot.
#include "pastry/core/routing_table.h"

#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace peter::pastry {
namespace {

using Outcome = RoutingTable::Outcome;

NodeHandle H(const NodeId& id, uint16_t port = 4000) {
  return NodeHandle{id, Endpoint::FromIpv4(0x7F000001 + static_cast<uint32_t>(id.lo() & 0xff),
                                           port)};
}

const NodeId kSelf(0x0123456789abcdefULL, 0xfedcba9876543210ULL);

// An id sharing exactly `row` digits with `self`, digit `row` == `col`
// (col != self's digit), the remaining digits taken from `tail`.
NodeId InSlot(const NodeId& self, int b, int row, int col, const NodeId& tail) {
  EXPECT_NE(col, self.Digit(row, b)) << "test bug: not a slot of row " << row;
  NodeId id = tail;
  for (int i = 0; i < row; ++i) id = id.WithDigit(i, b, self.Digit(i, b));
  return id.WithDigit(row, b, col);
}

TEST(RoutingTableTest, Dimensions) {
  for (int b : {1, 2, 4, 8}) {
    RoutingTable t(kSelf, b);
    EXPECT_EQ(t.b(), b);
    EXPECT_EQ(t.rows(), 128 / b);
    EXPECT_EQ(t.cols(), 1 << b);
  }
}

TEST(RoutingTableTest, EmptyTable) {
  RoutingTable t(kSelf, 4);
  EXPECT_EQ(t.EntryCount(), 0u);
  EXPECT_EQ(t.UsedRows(), 0);
  for (int r = 0; r < t.rows(); ++r) {
    EXPECT_TRUE(t.Row(r).empty());
    for (int c = 0; c < t.cols(); ++c) EXPECT_EQ(t.Get(r, c), nullptr);
  }
  EXPECT_EQ(t.Find(NodeId(1, 2)), nullptr);
  EXPECT_EQ(t.Find(kSelf), nullptr);
  EXPECT_FALSE(t.Remove(NodeId(1, 2)).has_value());
  EXPECT_FALSE(t.Remove(kSelf).has_value());
  int visits = 0;
  t.ForEach([&](int, int, const RoutingTable::Entry&) { ++visits; });
  EXPECT_EQ(visits, 0);
}

TEST(RoutingTableTest, SlotOfIsSharedPrefixAndNextDigit) {
  std::mt19937_64 rng(1);
  for (int b : {1, 2, 4, 8}) {
    RoutingTable t(kSelf, b);
    for (int i = 0; i < 500; ++i) {
      const int row = static_cast<int>(rng() % (128 / b));
      int col = static_cast<int>(rng() % (1 << b));
      if (col == kSelf.Digit(row, b)) col = (col + 1) % (1 << b);
      NodeId id = InSlot(kSelf, b, row, col, NodeId(rng(), rng()));
      EXPECT_EQ(t.SlotOf(id), std::make_pair(row, col)) << "b=" << b << " " << id.ToHex();
    }
  }
}

TEST(RoutingTableTest, SlotOfExamples) {
  RoutingTable t(NodeId(0, 0), 4);
  EXPECT_EQ(t.SlotOf(NodeId::Max()), std::make_pair(0, 15));
  EXPECT_EQ(t.SlotOf(NodeId(0x1000000000000000ULL, 0)), std::make_pair(0, 1));
  EXPECT_EQ(t.SlotOf(NodeId(0x0100000000000000ULL, 0)), std::make_pair(1, 1));
  EXPECT_EQ(t.SlotOf(NodeId(0, 1)), std::make_pair(31, 1));    // last row
  EXPECT_EQ(t.SlotOf(NodeId(0, 0xf0)), std::make_pair(30, 15));
  RoutingTable t8(NodeId::Max(), 8);
  EXPECT_EQ(t8.SlotOf(NodeId::Max() - NodeId(0, 1)), std::make_pair(15, 254));
  EXPECT_EQ(t8.SlotOf(NodeId(0, 0)), std::make_pair(0, 0));
}

TEST(RoutingTableTest, ConsiderSelfIsRejectedAsSelf) {
  RoutingTable t(kSelf, 4);
  EXPECT_EQ(t.Consider(H(kSelf)), Outcome::kSelf);
  EXPECT_EQ(t.Consider(H(kSelf), 10), Outcome::kSelf);
  EXPECT_EQ(t.EntryCount(), 0u);
  EXPECT_EQ(t.UsedRows(), 0);
}

TEST(RoutingTableTest, ConsiderFillsEmptySlot) {
  RoutingTable t(kSelf, 4);
  NodeId a = InSlot(kSelf, 4, 3, 9, NodeId(7, 7));
  EXPECT_EQ(t.Consider(H(a)), Outcome::kInserted);
  const RoutingTable::Entry* e = t.Get(3, 9);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->node, H(a));
  EXPECT_EQ(e->rtt_us, -1);
  EXPECT_EQ(t.Find(a), e);
  EXPECT_EQ(t.EntryCount(), 1u);
  EXPECT_EQ(t.UsedRows(), 4);

  NodeId b = InSlot(kSelf, 4, 0, 0xf, NodeId(1, 1));
  EXPECT_EQ(t.Consider(H(b), 250), Outcome::kInserted);
  EXPECT_EQ(t.Get(0, 0xf)->rtt_us, 250);
  EXPECT_EQ(t.EntryCount(), 2u);
  EXPECT_EQ(t.UsedRows(), 4);
}

TEST(RoutingTableTest, ConsiderSameNodeUpdates) {
  RoutingTable t(kSelf, 4);
  NodeId a = InSlot(kSelf, 4, 2, 1, NodeId(7, 7));
  ASSERT_EQ(t.Consider(H(a), 100), Outcome::kInserted);
  EXPECT_EQ(t.Consider(H(a, 5000)), Outcome::kUpdated);
  EXPECT_EQ(t.Get(2, 1)->node.endpoint, H(a, 5000).endpoint);
  EXPECT_EQ(t.Get(2, 1)->rtt_us, 100);  // unknown does not erase a measurement
  EXPECT_EQ(t.Consider(H(a, 5000), 300), Outcome::kUpdated);
  EXPECT_EQ(t.Get(2, 1)->rtt_us, 300);
  EXPECT_EQ(t.EntryCount(), 1u);
}

// What a node told us itself (first-hand) is not overridden by a third
// node's copy of its handle, whatever incarnation the copy names; the node's
// own later message replaces it, even with a smaller incarnation than a
// second-hand copy had put there.
TEST(RoutingTableTest, SecondHandCopyNeverOverridesFirstHandEntry) {
  RoutingTable t(kSelf, 4);
  NodeId a = InSlot(kSelf, 4, 2, 1, NodeId(7, 7));
  NodeHandle own = H(a);
  own.incarnation = 5;
  NodeHandle copy = H(a, 5000);
  copy.incarnation = 50;
  ASSERT_EQ(t.Consider(own, -1, /*first_hand=*/true), Outcome::kInserted);
  EXPECT_EQ(t.Consider(copy, 120), Outcome::kUpdated);
  EXPECT_EQ(t.Get(2, 1)->node, own);
  EXPECT_EQ(t.Get(2, 1)->rtt_us, 120);  // our own measurement still counts
  EXPECT_TRUE(t.Get(2, 1)->first_hand);

  // A second-hand entry is updated by later second-hand copies, and made
  // first-hand by the node's own message.
  ASSERT_TRUE(t.Remove(a).has_value());
  ASSERT_EQ(t.Consider(own), Outcome::kInserted);
  EXPECT_FALSE(t.Get(2, 1)->first_hand);
  EXPECT_EQ(t.Consider(copy), Outcome::kUpdated);
  EXPECT_EQ(t.Get(2, 1)->node, copy);
  EXPECT_EQ(t.Consider(own, -1, /*first_hand=*/true), Outcome::kUpdated);
  EXPECT_EQ(t.Get(2, 1)->node, own);
  EXPECT_TRUE(t.Get(2, 1)->first_hand);
}

TEST(RoutingTableTest, ConsiderOccupiedSlotWithUnknownRttNeedsProbe) {
  RoutingTable t(kSelf, 4);
  NodeId a = InSlot(kSelf, 4, 5, 3, NodeId(1, 2));
  NodeId b = InSlot(kSelf, 4, 5, 3, NodeId(3, 4));
  ASSERT_NE(a, b);
  ASSERT_EQ(t.Consider(H(a), 100), Outcome::kInserted);
  EXPECT_EQ(t.Consider(H(b)), Outcome::kNeedsProbe);
  EXPECT_EQ(t.Get(5, 3)->node.id, a);  // unchanged until measured
}

TEST(RoutingTableTest, ConsiderPrefersSmallerRoundTrip) {
  RoutingTable t(kSelf, 4);
  NodeId a = InSlot(kSelf, 4, 5, 3, NodeId(1, 2));
  NodeId b = InSlot(kSelf, 4, 5, 3, NodeId(3, 4));
  NodeId c = InSlot(kSelf, 4, 5, 3, NodeId(5, 6));
  ASSERT_EQ(t.Consider(H(a), 100), Outcome::kInserted);
  EXPECT_EQ(t.Consider(H(b), 150), Outcome::kRejected);
  EXPECT_EQ(t.Get(5, 3)->node.id, a);
  EXPECT_EQ(t.Consider(H(b), 100), Outcome::kRejected);  // equal: keep incumbent
  EXPECT_EQ(t.Get(5, 3)->node.id, a);
  EXPECT_EQ(t.Consider(H(b), 60), Outcome::kReplaced);
  EXPECT_EQ(t.Get(5, 3)->node.id, b);
  EXPECT_EQ(t.Get(5, 3)->rtt_us, 60);
  EXPECT_EQ(t.Find(a), nullptr);
  EXPECT_EQ(t.EntryCount(), 1u);  // a replacement does not add an entry
  EXPECT_EQ(t.Consider(H(c), 59), Outcome::kReplaced);
  EXPECT_EQ(t.Consider(H(a), 80), Outcome::kRejected);
  EXPECT_EQ(t.EntryCount(), 1u);
}

TEST(RoutingTableTest, SetRttAffectsOnlyMembers) {
  RoutingTable t(kSelf, 4);
  NodeId a = InSlot(kSelf, 4, 1, 4, NodeId(1, 2));
  NodeId b = InSlot(kSelf, 4, 1, 4, NodeId(3, 4));
  t.Consider(H(a));
  t.SetRtt(b, 5);  // same slot, other node: no effect
  EXPECT_EQ(t.Get(1, 4)->rtt_us, -1);
  t.SetRtt(a, 77);
  EXPECT_EQ(t.Get(1, 4)->rtt_us, 77);
  t.SetRtt(kSelf, 1);
  t.SetRtt(InSlot(kSelf, 4, 9, 3, NodeId(1, 2)), 1);  // unused row
  EXPECT_EQ(t.EntryCount(), 1u);
  // A measured round trip now competes with the candidate's.
  EXPECT_EQ(t.Consider(H(b), 78), Outcome::kRejected);
  EXPECT_EQ(t.Consider(H(b), 76), Outcome::kReplaced);
}

TEST(RoutingTableTest, RemoveReturnsSlotOnlyForTheExactNode) {
  RoutingTable t(kSelf, 4);
  NodeId a = InSlot(kSelf, 4, 7, 2, NodeId(1, 2));
  NodeId b = InSlot(kSelf, 4, 7, 2, NodeId(3, 4));
  t.Consider(H(a));
  EXPECT_FALSE(t.Remove(b).has_value());
  EXPECT_NE(t.Get(7, 2), nullptr);
  auto slot = t.Remove(a);
  ASSERT_TRUE(slot.has_value());
  EXPECT_EQ(*slot, std::make_pair(7, 2));
  EXPECT_EQ(t.Get(7, 2), nullptr);
  EXPECT_EQ(t.Find(a), nullptr);
  EXPECT_EQ(t.EntryCount(), 0u);
  EXPECT_EQ(t.UsedRows(), 0);
  EXPECT_FALSE(t.Remove(a).has_value());
  // The slot can be refilled.
  EXPECT_EQ(t.Consider(H(b)), Outcome::kInserted);
  EXPECT_EQ(t.EntryCount(), 1u);
}

TEST(RoutingTableTest, RowAndUsedRows) {
  RoutingTable t(kSelf, 4);
  std::set<NodeId> row2;
  for (int c : {0, 5, 15}) {
    if (c == kSelf.Digit(2, 4)) continue;
    NodeId id = InSlot(kSelf, 4, 2, c, NodeId(c, c));
    row2.insert(id);
    t.Consider(H(id));
  }
  t.Consider(H(InSlot(kSelf, 4, 0, 0xa, NodeId(1, 1))));
  EXPECT_EQ(t.UsedRows(), 3);  // one past the last non-empty row
  std::vector<NodeHandle> r = t.Row(2);
  std::set<NodeId> got;
  for (const NodeHandle& n : r) got.insert(n.id);
  EXPECT_EQ(got, row2);
  EXPECT_EQ(t.Row(0).size(), 1u);
  EXPECT_TRUE(t.Row(1).empty());
  EXPECT_TRUE(t.Row(-1).empty());
  EXPECT_TRUE(t.Row(t.rows()).empty());
  for (const NodeId& id : row2) t.Remove(id);
  EXPECT_EQ(t.UsedRows(), 1);
  NodeId last = InSlot(kSelf, 4, 31, (kSelf.Digit(31, 4) + 1) % 16, kSelf);
  EXPECT_EQ(t.Consider(H(last)), Outcome::kInserted);
  EXPECT_EQ(t.UsedRows(), 32);
}

// Property: whatever is offered, every entry sits in the slot its id
// belongs to, ForEach and EntryCount agree, and every slot that some offered
// id belongs to is filled.
TEST(RoutingTableTest, RandomFillKeepsInvariants) {
  std::mt19937_64 rng(99);
  for (int b : {1, 2, 4, 8}) {
    const NodeId self(rng(), rng());
    RoutingTable t(self, b);
    std::set<std::pair<int, int>> wanted;
    for (int i = 0; i < 3000; ++i) {
      // Random ids, plus ids sharing long prefixes with self.
      NodeId id(rng(), rng());
      if (i % 2 == 0) {
        int row = static_cast<int>(rng() % (128 / b));
        for (int d = 0; d < row; ++d) id = id.WithDigit(d, b, self.Digit(d, b));
      }
      if (id == self) continue;
      int32_t rtt = (i % 3 == 0) ? -1 : static_cast<int32_t>(rng() % 1000);
      Outcome o = t.Consider(H(id), rtt);
      EXPECT_NE(o, Outcome::kSelf);
      wanted.insert({self.SharedPrefixLength(id, b), id.Digit(self.SharedPrefixLength(id, b), b)});
    }
    size_t visits = 0;
    int max_row = -1;
    t.ForEach([&](int row, int col, const RoutingTable::Entry& e) {
      ++visits;
      max_row = std::max(max_row, row);
      EXPECT_EQ(self.SharedPrefixLength(e.node.id, b), row);
      EXPECT_EQ(e.node.id.Digit(row, b), col);
      EXPECT_EQ(t.Get(row, col), &e);
      EXPECT_EQ(t.Find(e.node.id), &e);
    });
    EXPECT_EQ(visits, t.EntryCount());
    EXPECT_EQ(visits, wanted.size());
    EXPECT_EQ(t.UsedRows(), max_row + 1);
    for (const auto& [row, col] : wanted) EXPECT_NE(t.Get(row, col), nullptr);
  }
}

}  // namespace
}  // namespace peter::pastry

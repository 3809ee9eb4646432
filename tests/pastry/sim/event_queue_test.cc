#include "pastry/sim/event_queue.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "pastry/sim/rng.h"

namespace peter::pastry::sim {
namespace {

TEST(EventQueueTest, OrdersByTimeThenInsertion) {
  EventQueue q;
  q.Push(5, EventKind::kMessage, 0, 0);
  q.Push(3, EventKind::kWake, 1, 0);
  q.Push(5, EventKind::kCallback, 2, 0);
  q.Push(3, EventKind::kMessage, 3, 0);
  q.Push(1, EventKind::kWake, 4, 0);
  std::vector<uint32_t> order;
  while (!q.empty()) order.push_back(q.Pop().target);
  EXPECT_EQ(order, (std::vector<uint32_t>{4, 1, 3, 0, 2}));
}

TEST(EventQueueTest, KeepsKindTargetAndSlot) {
  EventQueue q;
  q.Push(7, EventKind::kCallback, 11, 12345);
  Event e = q.Pop();
  EXPECT_EQ(e.at, 7);
  EXPECT_EQ(e.kind(), EventKind::kCallback);
  EXPECT_EQ(e.target, 11u);
  EXPECT_EQ(e.slot, 12345u);
  EXPECT_EQ(e.seq(), 0u);
}

TEST(EventQueueTest, RandomPushesPopInStableTimeOrder) {
  Rng rng(42);
  EventQueue q;
  std::vector<std::pair<SimTime, uint32_t>> expected;
  for (uint32_t i = 0; i < 10000; ++i) {
    SimTime at = static_cast<SimTime>(rng.Below(100));  // many equal times
    q.Push(at, EventKind::kMessage, i, 0);
    expected.emplace_back(at, i);
  }
  std::stable_sort(expected.begin(), expected.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [at, target] : expected) {
    ASSERT_EQ(q.NextTime(), at);
    Event e = q.Pop();
    ASSERT_EQ(e.at, at);
    ASSERT_EQ(e.target, target);
  }
  EXPECT_EQ(q.NextTime(), kNever);
}

TEST(VirtualClockTest, ConvertsTimes) {
  absl::Time start = absl::FromUnixSeconds(1000);
  VirtualClock clock(start);
  EXPECT_EQ(clock.Now(), start);
  clock.Set(1500);
  EXPECT_EQ(clock.Now(), start + absl::Nanoseconds(1500));
  EXPECT_EQ(clock.now_ns(), 1500);
  EXPECT_EQ(clock.ToSim(start + absl::Milliseconds(3)), 3'000'000);
  EXPECT_EQ(clock.ToSim(start - absl::Seconds(1)), 0);
  EXPECT_EQ(clock.ToSim(absl::InfiniteFuture()), kNever);
  EXPECT_EQ(clock.ToTime(kNever), absl::InfiniteFuture());
  EXPECT_EQ(clock.ToTime(42), start + absl::Nanoseconds(42));
}

}  // namespace
}  // namespace peter::pastry::sim

// Timers, crashes, callbacks and the run loop of the simulated network.
#include <vector>

#include "gtest/gtest.h"
#include "pastry/sim/network.h"
#include "tests/pastry/sim/fake_host.h"

namespace peter::pastry::sim {
namespace {

absl::Time At(const Network& net, int ms) {
  return net.clock().start() + absl::Milliseconds(ms);
}

TEST(NetworkTimersTest, TickRunsAtEachDeadline) {
  Network net(Config(1));
  FakeHost* h = AddFake(net);
  h->deadlines = {At(net, 10), At(net, 20), At(net, 20), At(net, 35)};
  net.Reschedule(0);
  net.RunFor(absl::Seconds(1));
  EXPECT_EQ(h->ticks, (std::vector<absl::Time>{At(net, 10), At(net, 20),
                                               At(net, 35)}));
  EXPECT_EQ(net.stats().ticks, 3u);
}

TEST(NetworkTimersTest, EarlierDeadlineAfterAMessageWakesEarlier) {
  Network net(Config(1));
  FakeHost* a = AddFake(net);
  FakeHost* b = AddFake(net);
  b->deadlines = {At(net, 500)};
  net.Reschedule(1);
  // On the message, b wants a tick 1 ms later: the wake-up at 500 ms must not
  // hide it, and stays valid.
  b->on_message = [](FakeHost& self, const FakeHost::Received&) {
    self.deadlines.insert(self.Now() + absl::Milliseconds(1));
  };
  a->Send(1, 0);
  absl::Time arrival = net.Now() + net.Delay(0, 1);
  net.RunFor(absl::Seconds(1));
  ASSERT_EQ(b->ticks.size(), 2u);
  EXPECT_EQ(b->ticks[0], arrival + absl::Milliseconds(1));
  EXPECT_EQ(b->ticks[1], At(net, 500));
}

TEST(NetworkTimersTest, StaleWakeUpsAreIgnored) {
  Network net(Config(1));
  FakeHost* h = AddFake(net);
  h->deadlines = {At(net, 100)};
  net.Reschedule(0);
  h->deadlines = {At(net, 50)};  // moved earlier: a second wake-up queued
  net.Reschedule(0);
  net.RunFor(absl::Seconds(1));
  // One tick at 50 ms; the 100 ms wake-up is stale (nothing is due).
  EXPECT_EQ(h->ticks, (std::vector<absl::Time>{At(net, 50)}));
}

TEST(NetworkTimersTest, HostDueNowAfterTickIsWokenLaterNotSpun) {
  Network net(Config(1));
  FakeHost* h = AddFake(net);
  h->deadlines = {At(net, 10)};
  h->on_tick = [](FakeHost& self) {
    if (self.ticks.size() < 3) self.deadlines.insert(self.Now());  // a bug
  };
  net.Reschedule(0);
  net.RunFor(absl::Seconds(1));
  ASSERT_EQ(h->ticks.size(), 3u);
  EXPECT_EQ(h->ticks[2] - h->ticks[0], absl::Nanoseconds(2));
}

TEST(NetworkTimersTest, CrashDropsQueuedMessagesAndTimers) {
  Network net(Config(1));
  FakeHost* a = AddFake(net);
  AddFake(net);
  static_cast<FakeHost&>(net.host(1)).deadlines = {At(net, 100)};
  net.Reschedule(1);
  a->Send(1, 1);
  a->Send(1, 2);
  net.Crash(1);
  EXPECT_FALSE(net.alive(1));
  a->Send(1, 3);
  net.RunFor(absl::Seconds(1));
  EXPECT_EQ(net.stats().dropped_dead, 3u);
  EXPECT_EQ(net.stats().delivered, 0u);
  EXPECT_EQ(net.stats().ticks, 0u);
}

TEST(NetworkTimersTest, RestartedHostGetsOnlyNewMessages) {
  Network net(Config(1));
  FakeHost* a = AddFake(net);
  AddFake(net);
  a->Send(1, 1);  // in flight to the first incarnation
  net.Crash(1);
  FakeHost* b = nullptr;
  net.Restart(1, [&](const HostContext& ctx) {
    auto h = std::make_unique<FakeHost>(ctx);
    b = h.get();
    return h;
  });
  a->Send(1, 2);
  net.RunFor(absl::Seconds(1));
  ASSERT_EQ(b->received.size(), 1u);
  EXPECT_EQ(b->received[0].nonce, 2u);
  EXPECT_EQ(net.stats().dropped_dead, 1u);
}

TEST(NetworkTimersTest, HostCanCrashItselfDuringAnEvent) {
  Network net(Config(1));
  FakeHost* a = AddFake(net);
  FakeHost* b = AddFake(net);
  Network* n = &net;
  b->on_message = [n](FakeHost& self, const FakeHost::Received&) {
    n->Crash(self.ctx().index);
    self.deadlines.insert(self.Now());  // the object is still valid here
  };
  a->Send(1, 0);
  a->Send(1, 1);
  net.RunFor(absl::Seconds(1));
  EXPECT_FALSE(net.alive(1));
  EXPECT_EQ(net.stats().delivered, 1u);
  EXPECT_EQ(net.stats().dropped_dead, 1u);
}

TEST(NetworkTimersTest, CallbacksRunInOrderWithOtherEvents) {
  Network net(Config(1));
  std::vector<int> order;
  net.Schedule(At(net, 5), [&] { order.push_back(2); });
  net.Schedule(At(net, 1), [&] { order.push_back(1); });
  net.Schedule(At(net, 5), [&] { order.push_back(3); });
  net.Schedule(At(net, 5), [&] {
    net.Schedule(net.Now(), [&] { order.push_back(5); });
    order.push_back(4);
  });
  net.RunUntil(At(net, 5));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(net.Now(), At(net, 5));
}

TEST(NetworkTimersTest, RunUntilTimeMovesTheClockEvenWhenIdle) {
  Network net(Config(1));
  net.RunFor(absl::Seconds(3));
  EXPECT_EQ(net.Now(), At(net, 3000));
  net.RunUntil(At(net, 1000));  // never backwards
  EXPECT_EQ(net.Now(), At(net, 3000));
}

TEST(NetworkTimersTest, RunUntilPredicate) {
  Network net(Config(1));
  int fired = 0;
  for (int ms = 10; ms <= 100; ms += 10) {
    net.Schedule(At(net, ms), [&] { ++fired; });
  }
  EXPECT_TRUE(net.RunUntil([&] { return fired >= 3; }, absl::Seconds(1),
                           absl::ZeroDuration()));
  EXPECT_EQ(net.Now(), At(net, 30));
  // Checked at most every 25 ms of simulated time.
  EXPECT_TRUE(net.RunUntil([&] { return fired >= 4; }, absl::Seconds(1),
                           absl::Milliseconds(25)));
  EXPECT_EQ(net.Now(), At(net, 60));
  EXPECT_FALSE(net.RunUntil([&] { return fired > 10; }, absl::Seconds(1),
                            absl::Milliseconds(1)));
  EXPECT_EQ(net.Now(), At(net, 1060));
  EXPECT_EQ(fired, 10);
}

}  // namespace
}  // namespace peter::pastry::sim

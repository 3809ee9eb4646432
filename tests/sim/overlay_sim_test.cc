// Whole-overlay simulation tests: real nodes joining through the real join
// protocol over a simulated network with latency, checked against the ground
// truth. Seeded and deterministic; no sleeps, no sockets.
#include <cmath>
#include <string>

#include "gtest/gtest.h"
#include "pastry/sim/scenario.h"
#include "pastry/sim/sim_network.h"
#include "tests/sim_scale.h"

namespace peter::pastry::sim {
namespace {

constexpr int kNodes = peter::testing::kSimNodes;  // 1,000 (sim_scale.h)
constexpr int kLookups = 10000;

// The documented repair budget: detection (probe interval + retries x
// timeout, with round trips of up to ~0.3 s in this topology) plus a few
// rounds of leaf-set exchange.
constexpr absl::Duration kRepairTime = absl::Seconds(10);
// Time for two rounds of routing-table maintenance after the last join: a
// node learns of nodes that joined after it through them (Pastry 2.4).
constexpr absl::Duration kSettleTime = absl::Seconds(45);

SimNetwork::Config NetConfig(uint64_t seed) {
  SimNetwork::Config config;
  config.seed = seed;
  return config;
}

// Adds `n` nodes with random ids; node 0 starts the ring.
void AddNodes(SimNetwork& net, Rng& rng, int n) {
  for (int i = 0; i < n; ++i) net.AddNode(rng.RandomId(), Options{});
  net.StartRing(0);
}

void ExpectCorrectRing(SimNetwork& net, Rng& rng, double max_avg_hops) {
  std::string first;
  EXPECT_EQ(CountWrongLeafSets(net, &first), 0) << first;
  LookupReport r = RunLookups(net, rng, kLookups, absl::Seconds(5), absl::Seconds(30));
  EXPECT_EQ(r.sent, kLookups);
  EXPECT_EQ(r.lost, 0);
  EXPECT_EQ(r.correct, r.sent);
  EXPECT_LT(r.avg_hops, max_avg_hops);
}

class OverlaySimTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(OverlaySimTest, SequentialJoinsGiveExactLeafSetsAndCorrectRoutes) {
  SimNetwork net(NetConfig(GetParam()));
  Rng rng(GetParam());
  AddNodes(net, rng, kNodes);
  for (int i = 1; i < kNodes; ++i) {
    net.Join(i, static_cast<int>(rng.Below(i)));
    ASSERT_TRUE(net.RunUntil([&] { return net.node(i).active(); }, absl::Seconds(30),
                             absl::Milliseconds(10)))
        << "node " << i << " never became active";
  }
  net.RunFor(kSettleTime);
  ExpectCorrectRing(net, rng, std::log(kNodes) / std::log(16.0));
}

TEST_P(OverlaySimTest, ConcurrentJoinsGiveExactLeafSetsAndCorrectRoutes) {
  SimNetwork net(NetConfig(GetParam()));
  Rng rng(GetParam());
  AddNodes(net, rng, kNodes);
  // Every node joins within the same two seconds, through any node that
  // started before it (which may itself still be joining).
  ASSERT_TRUE(JoinConcurrently(net, rng, 1, kNodes, absl::Milliseconds(2), absl::Seconds(60)));
  net.RunFor(kSettleTime);
  ExpectCorrectRing(net, rng, std::log(kNodes) / std::log(16.0));
}

TEST_P(OverlaySimTest, SilentFailureOfTenPercentIsRepairedWithoutLoss) {
  SimNetwork net(NetConfig(GetParam()));
  Rng rng(GetParam());
  AddNodes(net, rng, kNodes);
  ASSERT_TRUE(JoinConcurrently(net, rng, 1, kNodes, absl::Milliseconds(2), absl::Seconds(60)));
  net.RunFor(kSettleTime);

  int crashed = 0;
  while (crashed < kNodes / 10) {
    int victim = static_cast<int>(rng.Below(kNodes));
    if (!net.alive(victim)) continue;
    net.Crash(victim);
    ++crashed;
  }
  // Lookups sent during the repair window: none may be lost (per-hop
  // acknowledgements reroute around the dead).
  LookupReport during = RunLookups(net, rng, kLookups, kRepairTime, absl::Seconds(30));
  EXPECT_EQ(during.lost, 0);
  EXPECT_EQ(during.answered, during.sent);
  ExpectCorrectRing(net, rng, std::log(kNodes) / std::log(16.0));
}

INSTANTIATE_TEST_SUITE_P(Seeds, OverlaySimTest,
                         ::testing::ValuesIn(peter::testing::SimSeeds({1, 2, 3})));

}  // namespace
}  // namespace peter::pastry::sim

namespace peter::pastry::sim {
namespace {

// docs/chaos.md, "A quickly restarted node can stay out of a neighbour's
// leaf set": a node killed and restarted with the same id on the same
// endpoint while the neighbour that watches it (its right neighbour) is in
// the middle of the chain of probes that declares it dead. The chain's last
// probe went to the dead run; the new run's join reaches the neighbour
// while that probe's timeout is still pending. The neighbour must keep the
// new run: declared dead, it would be ignored second-hand for
// dead_node_memory (30 s), and the new run, which watches its own left
// neighbour, would not contact it again. Round trips of at most 3 ms (a
// data centre, as in the chaos soak): a restart and join take a few
// milliseconds, well inside one probe timeout.
// `count` nodes join a few milliseconds apart and settle: exact leaf sets.
void StartSmallRing(SimNetwork& net, Rng& rng, int count) {
  AddNodes(net, rng, count);
  ASSERT_TRUE(JoinConcurrently(net, rng, 1, count, absl::Milliseconds(5), absl::Seconds(30)));
  net.RunFor(absl::Seconds(10));
  ASSERT_EQ(CountWrongLeafSets(net), 0);
}

class QuickRestartTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(QuickRestartTest, NeighboursKeepANodeRestartedBeforeItsDeathWasDetected) {
  SimNetwork::Config config = NetConfig(GetParam());
  config.plane.per_unit = absl::Microseconds(1);
  SimNetwork net(config);
  Rng rng(GetParam());
  constexpr int kCount = 64;
  const Options options;
  ASSERT_NO_FATAL_FAILURE(StartSmallRing(net, rng, kCount));

  for (int round = 0; round < 3; ++round) {
    const int victim = static_cast<int>(rng.Below(kCount));
    int watcher = -1;
    for (int i : net.LiveIndices()) {
      if (net.node(i).leaf_set().left().front().id == net.id(victim)) watcher = i;
    }
    ASSERT_GE(watcher, 0);
    const uint64_t timeouts = net.node(watcher).stats().probe_timeouts;
    net.Crash(victim);
    // Until the watcher's last retry has gone out, to the dead run.
    ASSERT_TRUE(net.RunUntil(
        [&] {
          return net.node(watcher).stats().probe_timeouts >=
                 timeouts + static_cast<uint64_t>(options.probe_retries);
        },
        absl::Seconds(5), absl::Milliseconds(1)));
    const uint64_t failures = net.node(watcher).stats().failures_detected;
    net.Restart(victim, options);
    int bootstrap = victim;
    while (bootstrap == victim) bootstrap = static_cast<int>(rng.Below(kCount));
    net.Join(victim, bootstrap);
    const absl::Time restart = net.Now();
    // Back in every leaf set it belongs to within a few probe periods...
    ASSERT_TRUE(net.RunUntil(
        [&] { return net.node(victim).active() && CountWrongLeafSets(net) == 0; },
        3 * options.leaf_probe_interval, absl::Milliseconds(10)))
        << "round " << round << ": not back within three probe periods";
    // ...and kept there.
    std::string first;
    while (net.Now() < restart + absl::Seconds(15)) {
      net.RunFor(absl::Milliseconds(100));
      if (CountWrongLeafSets(net, &first) != 0) break;
    }
    EXPECT_EQ(CountWrongLeafSets(net), 0)
        << "round " << round << ", " << (net.Now() - restart) << " after the restart: " << first;
    EXPECT_EQ(net.node(watcher).stats().failures_detected, failures)
        << "round " << round << ": the watcher declared the restarted node dead";
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, QuickRestartTest, ::testing::Values(1, 2, 3));

// docs/design.md, "Incarnations": a node's run is known first-hand only. A
// third node keeps gossiping a copy of x's handle with a larger incarnation
// than x's live run (a clock stepped back before an earlier run, skew, a
// corrupt or forged handle) to every node, in row replies and leaf sets.
// Nobody may take x's own messages for a dead run's, declare it dead or
// drop it from a leaf set; and when x then restarts for real (a later run,
// but a smaller incarnation than the gossiped one), it is back everywhere
// as quickly as without the gossip.
class HearsayIncarnationTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(HearsayIncarnationTest, LargerIncarnationHeardSecondHandKillsNobody) {
  SimNetwork net(NetConfig(GetParam()));
  Rng rng(GetParam());
  constexpr int kCount = 64;
  const Options options;
  ASSERT_NO_FATAL_FAILURE(StartSmallRing(net, rng, kCount));

  const int x = static_cast<int>(rng.Below(kCount));
  int gossiper = x;
  while (gossiper == x) gossiper = static_cast<int>(rng.Below(kCount));
  auto failures = [&] {
    uint64_t n = 0;
    for (int i : net.LiveIndices()) n += net.node(i).stats().failures_detected;
    return n;
  };
  auto stale = [&] {
    uint64_t n = 0;
    for (int i : net.LiveIndices()) n += net.node(i).stats().dropped_stale_incarnation;
    return n;
  };
  const uint64_t failures_before = failures();
  const uint64_t stale_before = stale();
  NodeHandle forged = net.handle(x);
  forged.incarnation += 1000;
  auto gossip = [&] {
    for (int i : net.LiveIndices()) {
      if (i == x || i == gossiper) continue;
      const NodeHandle from = net.handle(gossiper);
      net.Call(i, [&](Node& n) {
        n.HandleMessage(Envelope{kProtocolVersion, from, RowReply{0, {forged}}});
        n.HandleMessage(Envelope{kProtocolVersion, from,
                                 ProbeReply{~uint64_t{0}, true, 1, true, {forged}}});
      });
    }
  };
  for (int round = 0; round < 20; ++round) {
    gossip();
    net.RunFor(options.leaf_probe_interval);
  }
  std::string first;
  EXPECT_EQ(CountWrongLeafSets(net, &first), 0) << first;
  EXPECT_EQ(failures(), failures_before) << "x was declared dead";
  EXPECT_EQ(stale(), stale_before) << "x's own messages were dropped as stale";

  // x restarts (the simulator's next incarnation, far below the forged
  // one) while the gossip goes on.
  net.Crash(x);
  net.RunFor(absl::Seconds(1));
  net.Restart(x, options);
  net.Join(x, gossiper);
  const absl::Time restart = net.Now();
  for (int round = 0; round < 3; ++round) {
    gossip();
    net.RunFor(options.leaf_probe_interval);
  }
  EXPECT_TRUE(net.RunUntil(
      [&] { return net.node(x).active() && CountWrongLeafSets(net) == 0; },
      absl::Seconds(30), absl::Milliseconds(10)))
      << "the restarted x is not back in every leaf set " << (net.Now() - restart)
      << " after its restart";
}

INSTANTIATE_TEST_SUITE_P(Seeds, HearsayIncarnationTest, ::testing::Values(1, 2, 3));

// The same protocol with every message encoded to a Cap'n Proto frame and
// decoded again on arrival: the wire codec carries everything the core says.
TEST(OverlayThroughWireTest, JoinsAndRoutesWithEveryMessageEncoded) {
  SimNetwork::Config config = NetConfig(11);
  config.through_wire = true;
  SimNetwork net(config);
  Rng rng(11);
  constexpr int kWireNodes = 300;
  for (int i = 0; i < kWireNodes; ++i) net.AddNode(rng.RandomId(), Options{});
  net.StartRing(0);
  ASSERT_TRUE(
      JoinConcurrently(net, rng, 1, kWireNodes, absl::Milliseconds(5), absl::Seconds(60)));
  net.RunFor(kSettleTime);
  std::string first;
  EXPECT_EQ(CountWrongLeafSets(net, &first), 0) << first;
  LookupReport r = RunLookups(net, rng, 2000, absl::Seconds(2), absl::Seconds(30));
  EXPECT_EQ(r.correct, 2000);
  EXPECT_EQ(net.stats().dropped_decode, 0u);
  EXPECT_GT(net.stats().bytes_sent, 0u);
}

}  // namespace
}  // namespace peter::pastry::sim

namespace peter::pastry::sim {
namespace {

// Rings of 1, 2, fewer than L and just over L nodes, where the leaf set's
// halves overlap or only just stop overlapping.
class SmallRingTest : public ::testing::TestWithParam<int> {};

TEST_P(SmallRingTest, LeafSetsExactAndEveryKeyReachesItsRoot) {
  const int n = GetParam();
  for (uint64_t seed : {21, 22, 23}) {
    SimNetwork net(NetConfig(seed));
    Rng rng(seed);
    AddNodes(net, rng, n);
    ASSERT_TRUE(JoinConcurrently(net, rng, 1, n, absl::Milliseconds(3), absl::Seconds(30)))
        << "seed " << seed;
    net.RunFor(kRepairTime);
    std::string first;
    EXPECT_EQ(CountWrongLeafSets(net, &first), 0) << "seed " << seed << ": " << first;
    LookupReport r = RunLookups(net, rng, 500, absl::Seconds(1), absl::Seconds(10));
    EXPECT_EQ(r.correct, 500) << "seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, SmallRingTest, ::testing::Values(1, 2, 3, 5, 16, 17, 18));

// A node that leaves gracefully is dropped at once by those it told: no
// failure is detected, and the ring is exact well within one probe interval.
TEST(GracefulLeaveTest, NeighboursDropTheLeaverAtOnce) {
  SimNetwork net(NetConfig(31));
  Rng rng(31);
  constexpr int kCount = 200;
  AddNodes(net, rng, kCount);
  ASSERT_TRUE(JoinConcurrently(net, rng, 1, kCount, absl::Milliseconds(5), absl::Seconds(30)));
  net.RunFor(kSettleTime);
  ASSERT_EQ(CountWrongLeafSets(net), 0);

  uint64_t failures_before = 0;
  for (int i : net.LiveIndices()) failures_before += net.node(i).stats().failures_detected;
  for (int victim : {3, 50, 120}) net.Leave(victim);
  // Leave messages take at most one one-way delay (< 150 ms here); repair
  // needs one more round trip.
  net.RunFor(absl::Milliseconds(600));
  std::string first;
  EXPECT_EQ(CountWrongLeafSets(net, &first), 0) << first;
  uint64_t failures_after = 0;
  for (int i : net.LiveIndices()) failures_after += net.node(i).stats().failures_detected;
  EXPECT_EQ(failures_after, failures_before);
  LookupReport r = RunLookups(net, rng, 1000, absl::Seconds(1), absl::Seconds(10));
  EXPECT_EQ(r.correct, 1000);
}

}  // namespace
}  // namespace peter::pastry::sim

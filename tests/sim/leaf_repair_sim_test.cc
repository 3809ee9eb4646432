// Leaf-set repair after a node is cut off for a short while (docs/chaos.md,
// "Final main of 2026-11-26": a 1.3 s partition repaired only 42 s after it
// ended). While the node is cut off, its neighbours declare it dead and it
// declares them dead; once the cut heals, every one of them must take the
// others back within a few probe periods, not after dead_node_memory (30 s)
// and the next leaf-set change that happens to name them. 26 nodes (the
// chaos soak's 20 daemons and 6 embedded nodes), round trips of at most a
// few milliseconds (a data centre). Seeded and deterministic.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pastry/sim/scenario.h"
#include "pastry/sim/sim_network.h"

namespace peter::pastry::sim {
namespace {

constexpr int kCount = 26;

struct Case {
  uint64_t seed;
  absl::Duration cut;
  // What is sent across the cut: lost (connections that fail and back off)
  // or held until it heals (open TCP connections buffering).
  bool held;
};

std::string Name(const ::testing::TestParamInfo<Case>& info) {
  return absl::StrCat(info.param.held ? "Held" : "Lost", "_",
                      absl::ToInt64Milliseconds(info.param.cut), "ms_Seed", info.param.seed);
}

class CutOffRepairTest : public ::testing::TestWithParam<Case> {};

TEST_P(CutOffRepairTest, LeafSetsExactWithinAFewProbePeriodsOfTheHeal) {
  SimNetwork::Config config;
  config.seed = GetParam().seed;
  config.plane.per_unit = absl::Microseconds(1);
  SimNetwork net(config);
  Rng rng(GetParam().seed);
  const Options options;
  for (int i = 0; i < kCount; ++i) net.AddNode(rng.RandomId(), options);
  net.StartRing(0);
  ASSERT_TRUE(JoinConcurrently(net, rng, 1, kCount, absl::Milliseconds(5), absl::Seconds(30)));
  net.RunFor(absl::Seconds(10));
  ASSERT_EQ(CountWrongLeafSets(net), 0);

  auto failures = [&] {
    uint64_t n = 0;
    for (int i : net.LiveIndices()) n += net.node(i).stats().failures_detected;
    return n;
  };
  int detected = 0;  // rounds in which someone declared a node dead
  for (int round = 0; round < 3; ++round) {
    const int victim = static_cast<int>(rng.Below(kCount));
    const uint64_t failures_before = failures();
    bool cut = true;
    auto across = [&](int from, int to, const Envelope&) {
      return cut && (from == victim || to == victim);
    };
    if (GetParam().held) {
      net.network().set_hold_filter(across);
    } else {
      net.network().set_send_filter(across);
    }
    net.RunFor(GetParam().cut);
    cut = false;
    net.network().ReleaseHeld();
    const absl::Time healed = net.Now();
    if (failures() > failures_before) ++detected;
    // The revival probes of nodes declared dead back off to at most
    // 4 x leaf_probe_interval apart (jittered up to 1.1 x); then a round
    // trip, and the version exchange with the neighbours.
    const absl::Duration bound = 4 * options.leaf_probe_interval * 1.1 +
                                 2 * options.leaf_probe_interval;
    std::string first;
    const bool repaired = net.RunUntil([&] { return CountWrongLeafSets(net, &first) == 0; },
                                       absl::Seconds(60), absl::Milliseconds(10));
    ASSERT_TRUE(repaired) << "round " << round << ": not repaired 60 s after the heal: "
                          << first;
    std::printf("round %d: node %d cut off for %s, leaf sets exact %s after the heal\n", round,
                victim, absl::FormatDuration(GetParam().cut).c_str(),
                absl::FormatDuration(absl::Trunc(net.Now() - healed, absl::Milliseconds(1))).c_str());
    EXPECT_LE(net.Now() - healed, bound)
        << "round " << round << ": node " << victim << " cut off for " << GetParam().cut
        << ", leaf sets exact only " << (net.Now() - healed) << " after the heal";
    // Settle before the next round (the dead-node records of this one must
    // not decide it).
    net.RunFor(options.dead_node_memory + 2 * options.leaf_probe_interval);
    ASSERT_EQ(CountWrongLeafSets(net, &first), 0) << first;
  }
  // The cuts were long enough for failure detection (at most about 1.9 s):
  // nodes on either side declared each other dead, which is what the
  // repair has to undo.
  EXPECT_GT(detected, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Cuts, CutOffRepairTest,
    ::testing::Values(Case{1, absl::Seconds(2), false},
                      Case{2, absl::Seconds(2), false},
                      Case{3, absl::Seconds(3), false}, Case{4, absl::Seconds(6), false},
                      Case{5, absl::Seconds(6), true}, Case{6, absl::Seconds(3), true}),
    Name);

}  // namespace
}  // namespace peter::pastry::sim

// The experiment harness of `peter sim route` (pastry/sim/route_experiment):
// how joiners pick their bootstrap, and what a nearby bootstrap buys. Seeded
// and deterministic.
#include "pastry/sim/route_experiment.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/sim_scale.h"

namespace peter::pastry::sim {
namespace {

// A network of `n` idle nodes on the plane, only for its delays.
std::unique_ptr<SimNetwork> Plane(int n, uint64_t seed) {
  auto net = std::make_unique<SimNetwork>(SimNetwork::Config{},
                                          *MakeTopology("plane", seed));
  Rng ids(seed);
  for (int i = 0; i < n; ++i) net->AddNode(ids.RandomId(), Options{});
  return net;
}

TEST(PickBootstrapTest, NearestIsTheCandidateWithTheSmallestDelay) {
  auto net = Plane(200, 5);
  const std::vector<int> candidates = {3, 17, 42, 99, 150, 151, 152};
  OverlaySetup setup;
  setup.bootstrap = Bootstrap::kNearest;
  Rng rng(1);
  for (int joiner : {0, 1, 2, 180, 199}) {
    const int picked = PickBootstrap(*net, setup, joiner, candidates, rng);
    ASSERT_GE(picked, 0);
    for (int c : candidates) EXPECT_LE(net->Delay(joiner, picked), net->Delay(joiner, c));
  }
}

TEST(PickBootstrapTest, SampledNearestPicksAmongItsSample) {
  auto net = Plane(200, 6);
  std::vector<int> candidates;
  for (int i = 1; i < 200; ++i) candidates.push_back(i);
  OverlaySetup setup;
  setup.bootstrap = Bootstrap::kNearest;
  setup.bootstrap_sample = 1;  // one draw: a random candidate, not the nearest
  Rng rng(2);
  int not_nearest = 0;
  for (int k = 0; k < 50; ++k) {
    const int picked = PickBootstrap(*net, setup, 0, candidates, rng);
    ASSERT_GE(picked, 1);
    Rng all(0);
    OverlaySetup exact = setup;
    exact.bootstrap_sample = 0;
    if (picked != PickBootstrap(*net, exact, 0, candidates, all)) ++not_nearest;
  }
  EXPECT_GT(not_nearest, 40);
}

TEST(PickBootstrapTest, NoCandidateGivesNone) {
  auto net = Plane(3, 7);
  OverlaySetup setup;
  Rng rng(1);
  EXPECT_EQ(PickBootstrap(*net, setup, 0, {}, rng), -1);
  setup.bootstrap = Bootstrap::kRandom;
  EXPECT_EQ(PickBootstrap(*net, setup, 0, {}, rng), -1);
}

TEST(PickBootstrapTest, ParsesItsNames) {
  EXPECT_EQ(*ParseBootstrap("nearest"), Bootstrap::kNearest);
  EXPECT_EQ(*ParseBootstrap("random"), Bootstrap::kRandom);
  EXPECT_FALSE(ParseBootstrap("closest").ok());
}

// The Pastry paper's locality at join: a joiner that routes its join through
// a nearby node copies rows whose entries are near it, so routes are shorter
// in delay than with a random bootstrap, with the same number of hops. No
// settling time, so that routing-table maintenance cannot make up for a bad
// start before the lookups run. (About 0.95x at 250 nodes and 0.9x at 500.)
class NearbyBootstrapTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(NearbyBootstrapTest, LowersRelativeDistance) {
  double rd[2];
  double hops[2];
  for (Bootstrap b : {Bootstrap::kNearest, Bootstrap::kRandom}) {
    OverlaySetup setup;
    setup.nodes = peter::testing::kSanitized ? 250 : 500;
    setup.seed = GetParam();
    setup.settle = absl::ZeroDuration();
    setup.proximity_from_topology = true;
    setup.bootstrap = b;
    JoinReport join;
    absl::StatusOr<std::unique_ptr<SimNetwork>> net = BuildOverlay(setup, &join);
    ASSERT_TRUE(net.ok());
    ASSERT_TRUE(join.all_active);
    Rng rng(Rng::Derive(GetParam(), 7));
    const LookupStats l = MeasureLookups(**net, rng, 5000, 1000);
    EXPECT_EQ(l.correct, l.sent);
    const int k = b == Bootstrap::kNearest ? 0 : 1;
    rd[k] = l.relative_distance;
    hops[k] = l.avg_hops;
    if (b != Bootstrap::kNearest) continue;
    // Perfect tables bound what any table can do: their routes are no longer
    // (beyond sampling noise) and take no more hops than Pastry's bound.
    Rng perfect_rng(GetParam());
    const LookupStats p = MeasurePerfectRoutes(**net, perfect_rng, 5000, setup.b,
                                               setup.leaf_set_size);
    EXPECT_EQ(p.sent, 5000);
    EXPECT_GT(p.relative_distance, 1.0);
    EXPECT_LT(p.relative_distance, 1.02 * l.relative_distance);
    EXPECT_LE(p.max_hops, 4);
    EXPECT_LT(p.avg_last_hop_delay_ms, p.avg_path_delay_ms);
  }
  EXPECT_LT(rd[0], 0.97 * rd[1]) << "nearest " << rd[0] << ", random " << rd[1];
  EXPECT_NEAR(hops[0], hops[1], 0.05);
}

INSTANTIATE_TEST_SUITE_P(Seeds, NearbyBootstrapTest,
                         ::testing::ValuesIn(peter::testing::SimSeeds({1, 2})));

}  // namespace
}  // namespace peter::pastry::sim

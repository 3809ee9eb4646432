// SimNetwork with real pastry::Node objects: ground-truth helpers and a smoke
// scenario of nodes joining one after another.
#include "pastry/sim/sim_network.h"

#include <vector>

#include "gtest/gtest.h"
#include "pastry/sim/rng.h"

namespace peter::pastry::sim {
namespace {

SimNetwork::Config Config(uint64_t seed,
                          absl::Duration jitter = absl::ZeroDuration()) {
  SimNetwork::Config config;
  config.seed = seed;
  config.jitter = jitter;
  return config;
}

std::vector<NodeId> Ids(const std::vector<NodeHandle>& handles) {
  std::vector<NodeId> out;
  for (const NodeHandle& h : handles) out.push_back(h.id);
  return out;
}

TEST(SimNetworkTest, NodesGetSyntheticEndpoints) {
  SimNetwork net(Config(1));
  Rng rng(1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(net.AddNode(rng.RandomId(), {}), i);
  EXPECT_EQ(net.node(2).self().endpoint.ToString(), "127.0.0.3:4000");
  EXPECT_EQ(net.node(2).self().id, net.id(2));
  EXPECT_EQ(net.IndexOf(net.node(1).self().endpoint), 1);
  EXPECT_EQ(net.LiveIndices(), (std::vector<int>{0, 1, 2}));
  net.Crash(1);
  EXPECT_FALSE(net.alive(1));
  EXPECT_EQ(net.LiveIndices(), (std::vector<int>{0, 2}));
  EXPECT_NE(net.ClosestLiveNode(net.id(1)), 1);
  net.Restart(1, {});
  EXPECT_TRUE(net.alive(1));
  EXPECT_EQ(net.ClosestLiveNode(net.id(1)), 1);
}

TEST(SimNetworkTest, SingleNodeRingIsActive) {
  SimNetwork net(Config(1));
  net.AddNode(NodeId(1, 1), {});
  net.StartRing(0);
  net.RunFor(absl::Seconds(5));
  EXPECT_TRUE(net.node(0).active());
}

// The smoke scenario: 50 nodes join one after another, each through a random
// earlier node, and all become active with the right leaf sets. Run with the
// messages passed as values and through the wire codec.
class SmokeTest : public testing::TestWithParam<bool> {};

TEST_P(SmokeTest, FiftyNodesJoinOneAfterAnother) {
  SimNetwork::Config config = Config(50);
  config.through_wire = GetParam();
  SimNetwork net(config);
  Rng rng(50);
  Options options;
  net.AddNode(rng.RandomId(), options);
  net.StartRing(0);
  for (int i = 1; i < 50; ++i) {
    int via = static_cast<int>(rng.Below(i));
    ASSERT_EQ(net.AddNode(rng.RandomId(), options), i);
    net.Join(i, via);
    ASSERT_TRUE(net.RunUntil([&] { return net.node(i).active(); },
                             absl::Seconds(30), absl::Milliseconds(10)))
        << "node " << i << " joining via " << via << " never became active";
  }
  net.RunFor(absl::Seconds(10));
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(net.node(i).active()) << i;
    ExpectedLeaves want = net.ExpectedLeafSet(i, options.leaf_set_size);
    EXPECT_EQ(Ids(net.node(i).leaf_set().left()), want.left) << i;
    EXPECT_EQ(Ids(net.node(i).leaf_set().right()), want.right) << i;
  }
  EXPECT_GT(net.stats().delivered, 0u);
  EXPECT_EQ(net.stats().dropped(), 0u);
  EXPECT_EQ(net.stats().bytes_sent > 0, GetParam());
}

INSTANTIATE_TEST_SUITE_P(WireOrNot, SmokeTest, testing::Bool(),
                         [](const auto& info) {
                           return info.param ? "ThroughWire" : "Values";
                         });

// Same seed, same calls: the same run, message for message.
TEST(SimNetworkTest, SameSeedSameRun) {
  auto run = [](uint64_t seed, bool through_wire = false) {
    SimNetwork::Config config = Config(seed, absl::Milliseconds(2));
    config.through_wire = through_wire;
    SimNetwork net(config);
    Rng rng(seed);
    net.AddNode(rng.RandomId(), {});
    net.StartRing(0);
    for (int i = 1; i < 20; ++i) {
      net.AddNode(rng.RandomId(), {});
      net.Join(i, static_cast<int>(rng.Below(i)));
      net.RunFor(absl::Milliseconds(200));
    }
    net.RunFor(absl::Seconds(5));
    return net.network().trace_digest();
  };
  EXPECT_EQ(run(9), run(9));
  EXPECT_NE(run(9), run(10));
  // The codec is lossless for everything the nodes send: the same run.
  EXPECT_EQ(run(9), run(9, /*through_wire=*/true));
}

}  // namespace
}  // namespace peter::pastry::sim

// Message delivery in the simulated network: latency, ordering, loss,
// jitter, determinism.
#include "pastry/sim/network.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/pastry/sim/fake_host.h"

namespace peter::pastry::sim {
namespace {

std::vector<FakeHost*> AddFakes(Network& net, int n) {
  std::vector<FakeHost*> hosts;
  for (int i = 0; i < n; ++i) hosts.push_back(AddFake(net));
  return hosts;
}

TEST(NetworkTest, EndpointsMapToIndices) {
  Network net(Config(1));
  AddFakes(net, 300);
  for (int i : {0, 1, 255, 256, 299}) {
    Endpoint e = Network::EndpointOf(i);
    EXPECT_TRUE(e.is_v4());
    EXPECT_EQ(net.IndexOf(e), i);
  }
  EXPECT_EQ(Network::EndpointOf(0).ToString(), "127.0.0.1:4000");
  EXPECT_EQ(Network::EndpointOf(256).ToString(), "127.0.1.1:4000");
  EXPECT_EQ(net.IndexOf(Network::EndpointOf(300)), -1);
  EXPECT_EQ(net.IndexOf(Endpoint::FromIpv4(0x7F000001, 4001)), -1);
  EXPECT_EQ(net.IndexOf(Endpoint::FromIpv4(0x0A000001, 4000)), -1);
  EXPECT_EQ(net.IndexOf(Endpoint{}), -1);
}

TEST(NetworkTest, LatencyEqualsTopologyDelay) {
  Network net(Config(3));
  auto hosts = AddFakes(net, 20);
  net.RunFor(absl::Seconds(1));
  absl::Time sent = net.Now();
  for (int to = 0; to < 20; ++to) hosts[5]->Send(to, to);
  net.RunFor(absl::Seconds(1));
  for (int to = 0; to < 20; ++to) {
    ASSERT_EQ(hosts[to]->received.size(), 1u);
    EXPECT_EQ(hosts[to]->received[0].at - sent, net.Delay(5, to)) << to;
    EXPECT_EQ(hosts[to]->received[0].from, 5);
  }
  EXPECT_EQ(net.stats().sent, 20u);
  EXPECT_EQ(net.stats().delivered, 20u);
  EXPECT_EQ(net.stats().sent_by_type[3], 20u);  // Probe
  EXPECT_EQ(net.stats().delivered_by_type[3], 20u);
}

TEST(NetworkTest, SameInstantMessagesArriveInSendOrder) {
  Network net(Config(1));
  auto hosts = AddFakes(net, 2);
  for (uint64_t n = 0; n < 100; ++n) hosts[0]->Send(1, n);
  net.RunFor(absl::Seconds(1));
  ASSERT_EQ(hosts[1]->received.size(), 100u);
  for (uint64_t n = 0; n < 100; ++n) EXPECT_EQ(hosts[1]->received[n].nonce, n);
}

TEST(NetworkTest, LossRateIsNearTheSetting) {
  Network net(Config(11, 0.2));
  auto hosts = AddFakes(net, 2);
  constexpr int kN = 20000;
  for (int n = 0; n < kN; ++n) hosts[0]->Send(1, n);
  net.RunFor(absl::Seconds(1));
  const NetworkStats& s = net.stats();
  EXPECT_EQ(s.sent, uint64_t{kN});
  EXPECT_EQ(s.delivered + s.dropped_loss, uint64_t{kN});
  EXPECT_EQ(s.delivered, hosts[1]->received.size());
  // Binomial(20000, 0.2): sd ~ 57; allow > 4 sd.
  EXPECT_NEAR(static_cast<double>(s.dropped_loss), 0.2 * kN, 250);
}

TEST(NetworkTest, JitterStaysWithinBounds) {
  const absl::Duration jitter = absl::Milliseconds(5);
  Network net(Config(5, 0, jitter));
  auto hosts = AddFakes(net, 2);
  absl::Time sent = net.Now();
  for (int n = 0; n < 5000; ++n) hosts[0]->Send(1, n);
  net.RunFor(absl::Seconds(1));
  ASSERT_EQ(hosts[1]->received.size(), 5000u);
  absl::Duration lo = absl::InfiniteDuration(), hi = -absl::InfiniteDuration();
  for (const auto& r : hosts[1]->received) {
    absl::Duration extra = r.at - sent - net.Delay(0, 1);
    lo = std::min(lo, extra);
    hi = std::max(hi, extra);
  }
  EXPECT_GE(lo, absl::ZeroDuration());
  EXPECT_LE(hi, jitter);
  EXPECT_LT(lo, absl::Microseconds(50));  // the range is used, end to end
  EXPECT_GT(hi, jitter - absl::Microseconds(50));
}

TEST(NetworkTest, UnknownEndpointIsDroppedAndCounted) {
  Network net(Config(1));
  auto hosts = AddFakes(net, 2);
  hosts[0]->Send(7, 1);  // no host 7
  net.RunFor(absl::Seconds(1));
  EXPECT_EQ(net.stats().dropped_unknown, 1u);
  EXPECT_EQ(net.stats().delivered, 0u);
}

// Hosts that answer each message with probability 1/2 to a random host, the
// randomness drawn from their per-host seeds: a busy run whose every event
// depends on the seed.
std::string RunGossip(uint64_t seed, uint64_t* digest) {
  Network net(Config(seed, 0.05, absl::Milliseconds(3)));
  constexpr int kHosts = 30;
  std::vector<std::unique_ptr<Rng>> rngs;
  std::string trace;
  for (int i = 0; i < kHosts; ++i) {
    FakeHost* h = AddFake(net);
    rngs.push_back(std::make_unique<Rng>(h->ctx().env.seed));
    Rng* rng = rngs.back().get();
    h->on_message = [rng, &trace](FakeHost& self, const FakeHost::Received& r) {
      absl::StrAppend(&trace, absl::ToUnixNanos(r.at), " ", r.from, ">",
                      self.ctx().index, " ", r.nonce, "\n");
      for (int k = 0; k < 2; ++k) {
        if (r.nonce < 2000 && rng->Below(2) == 0) {
          self.Send(static_cast<int>(rng->Below(kHosts)), r.nonce * 2 + k);
        }
      }
    };
  }
  net.set_delivery_observer([](const Delivery&) {});
  for (int i = 0; i < kHosts; ++i) {
    net.Schedule(net.Now() + absl::Milliseconds(i), [&net, i] {
      static_cast<FakeHost&>(net.host(i)).Send((i + 1) % kHosts, 1);
    });
  }
  net.RunFor(absl::Seconds(10));
  *digest = net.trace_digest();
  return trace;
}

TEST(NetworkTest, SameSeedGivesIdenticalTrace) {
  uint64_t d1, d2, d3;
  std::string t1 = RunGossip(77, &d1);
  std::string t2 = RunGossip(77, &d2);
  std::string t3 = RunGossip(78, &d3);
  EXPECT_GT(t1.size(), 1000u);
  EXPECT_EQ(t1, t2);
  EXPECT_EQ(d1, d2);
  EXPECT_NE(t1, t3);
  EXPECT_NE(d1, d3);
}

TEST(NetworkTest, PerHostSeedsDiffer) {
  Network net(Config(1));
  auto hosts = AddFakes(net, 3);
  EXPECT_NE(hosts[0]->ctx().env.seed, hosts[1]->ctx().env.seed);
  EXPECT_NE(hosts[1]->ctx().env.seed, hosts[2]->ctx().env.seed);
  Network other(Config(2));
  EXPECT_NE(AddFake(other)->ctx().env.seed, hosts[0]->ctx().env.seed);
}

}  // namespace
}  // namespace peter::pastry::sim

// The network's through_wire mode: every message goes through the codec.
#include <string>

#include "gtest/gtest.h"
#include "pastry/sim/network.h"
#include "pastry/wire/codec.h"
#include "tests/pastry/sim/fake_host.h"

namespace peter::pastry::sim {
namespace {

TEST(NetworkWireTest, MessagesSurviveTheCodecAndBytesAreCounted) {
  Network net(Config(4, 0, absl::ZeroDuration(), true));
  FakeHost* a = AddFake(net);
  FakeHost* b = AddFake(net);
  for (uint64_t n = 0; n < 10; ++n) a->Send(1, n * 1000003);
  net.RunFor(absl::Seconds(1));
  ASSERT_EQ(b->received.size(), 10u);
  for (uint64_t n = 0; n < 10; ++n) {
    EXPECT_EQ(b->received[n].nonce, n * 1000003);
    EXPECT_EQ(b->received[n].from, 0);
  }
  Envelope probe;
  probe.sender = NodeHandle{NodeId(0, 0), Network::EndpointOf(0)};
  probe.body = Probe{.nonce = 0};
  size_t one = wire::Encode(probe).size();
  const NetworkStats& s = net.stats();
  EXPECT_GE(s.bytes_sent, 10 * one - 10 * 8);
  EXPECT_LE(s.bytes_sent, 10 * one + 10 * 8);
  EXPECT_EQ(s.bytes_by_type[3], s.bytes_sent);
  EXPECT_EQ(s.dropped_decode, 0u);
}

TEST(NetworkWireTest, WithoutWireNoBytesAreCounted) {
  Network net(Config(1));
  FakeHost* a = AddFake(net);
  AddFake(net);
  a->Send(1, 1);
  net.RunFor(absl::Seconds(1));
  EXPECT_EQ(net.stats().delivered, 1u);
  EXPECT_EQ(net.stats().bytes_sent, 0u);
}

}  // namespace
}  // namespace peter::pastry::sim

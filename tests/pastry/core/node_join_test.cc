// Regression: a joining node must not become active before a root has
// answered its join, whatever else it hears first.
#include <vector>

#include "gtest/gtest.h"
#include "pastry/core/node.h"

namespace peter::pastry {
namespace {

struct Sent {
  Endpoint to;
  Envelope envelope;
};

class RecordingTransport : public Transport {
 public:
  void Send(const Endpoint& to, const Envelope& envelope) override {
    sent.push_back({to, envelope});
  }
  std::vector<Sent> sent;
};

class FixedClock : public Clock {
 public:
  absl::Time Now() const override { return absl::UnixEpoch() + absl::Seconds(100); }
};

TEST(NodeJoinTest, ProbeFromBootstrapBeforeJoinReplyDoesNotActivate) {
  RecordingTransport transport;
  FixedClock clock;
  const NodeHandle joiner{NodeId(0x10, 0), Endpoint::FromIpv4(0x7F000001, 4000)};
  const NodeHandle bootstrap{NodeId(0x20, 0), Endpoint::FromIpv4(0x7F000002, 4000)};
  Node node(joiner, Options{}, Environment{&transport, &clock, 1, nullptr});
  node.Join({bootstrap.endpoint});

  // The bootstrap adopted us on our join request and probes us (proximity
  // measurement) before the join reply reaches us.
  node.HandleMessage(Envelope{kProtocolVersion, bootstrap, Probe{77, false, false, 0}});
  EXPECT_FALSE(node.active());
  EXPECT_TRUE(node.leaf_set().Contains(bootstrap.id));

  // The root's reply (the bootstrap is the whole ring) still lets us finish.
  node.HandleMessage(Envelope{kProtocolVersion, bootstrap, JoinReply{{}, {}}});
  EXPECT_TRUE(node.active());
}

}  // namespace
}  // namespace peter::pastry

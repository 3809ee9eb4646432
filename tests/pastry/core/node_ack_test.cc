// Hop deadlines per next hop (pastry/core/node_ack.cc): what a peer's
// acknowledgements, or their absence, make a node keep. Driven by hand: a
// recording transport, a manual clock, and two peers whose answers the test
// writes.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "gtest/gtest.h"
#include "pastry/core/node.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"
#include "tests/pastry/core/recording_transport.h"

namespace peter::pastry {
namespace {

using testing::ManualClock;
using testing::RecordingTransport;
using testing::Sent;

constexpr AppId kApp = kFirstUserAppId;

class NullApp : public Application {
 public:
  void Deliver(const RouteMessage&) override {}
};

NodeHandle Handle(uint64_t hi, uint32_t ip) {
  return NodeHandle{NodeId(hi, 0), Endpoint::FromIpv4(ip, 4000), 1};
}

// A node with two leaf-set members: x (the root of x's id) and y, the next
// closest to it, where a message for x goes when x is avoided.
class HopWatchTest : public ::testing::Test {
 protected:
  explicit HopWatchTest(Options options = Options())
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100)),
        node_(self_, options,
              Environment{&transport_, &clock_, 1,
                          std::make_shared<spdlog::logger>("hop-watch-test", sink_)}) {
    node_.StartRing();
    overlay_ = node_.RegisterApplication(kApp, &app_);
    Receive(x_, Probe{1, false, false, 0, 0});
    Receive(y_, Probe{2, false, false, 0, 0});
  }

  void Receive(const NodeHandle& from, MessageBody body) {
    node_.HandleMessage(Envelope{kProtocolVersion, from, std::move(body)});
  }

  // Routes `payload` toward x; returns the id of the hop sent to x.
  uint64_t RouteToX(const std::string& payload) {
    const size_t mark = transport_.sent.size();
    overlay_->Route(x_.id, payload);
    std::vector<uint64_t> ids = RoutesTo(x_, payload, mark);
    EXPECT_EQ(ids.size(), 1u) << payload;
    return ids.empty() ? 0 : ids.front();
  }

  // Ids of the route messages carrying `payload` sent to `to` since `mark`.
  std::vector<uint64_t> RoutesTo(const NodeHandle& to, const std::string& payload,
                                 size_t mark = 0) const {
    std::vector<uint64_t> ids;
    for (size_t i = mark; i < transport_.sent.size(); ++i) {
      const Sent& s = transport_.sent[i];
      const RouteMsg* m = std::get_if<RouteMsg>(&s.envelope.body);
      if (m != nullptr && s.to == to.endpoint && m->payload == payload) ids.push_back(m->id);
    }
    return ids;
  }

  // Runs the node's jobs due until `until`; x and y answer every probe at
  // once.
  void RunUntil(absl::Time until) {
    while (node_.NextDeadline() <= until) {
      clock_.now = std::max(clock_.now, node_.NextDeadline());
      node_.Tick();
      AnswerProbes();
    }
    clock_.now = std::max(clock_.now, until);
  }
  void AnswerProbes() {
    for (; answered_ < transport_.sent.size(); ++answered_) {
      const Sent s = transport_.sent[answered_];
      const Probe* probe = std::get_if<Probe>(&s.envelope.body);
      if (probe == nullptr) continue;
      for (const NodeHandle& peer : {x_, y_}) {
        if (peer.endpoint == s.to) Receive(peer, ProbeReply{probe->nonce, true, 1, false, {}});
      }
    }
  }

  bool Logged(const std::string& text) const {
    for (const std::string& line : sink_->last_formatted()) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }

  RecordingTransport transport_;
  ManualClock clock_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  const NodeHandle self_ = Handle(0x10, 0x7F000001);
  const NodeHandle x_ = Handle(0x30, 0x7F000002);
  const NodeHandle y_ = Handle(0x38, 0x7F000003);
  Node node_;
  NullApp app_;
  std::unique_ptr<Overlay> overlay_;
  size_t answered_ = 0;
};

// Issue 8: an acknowledged hop's deadline stayed queued until it reached
// the front, so one unacknowledged hop kept every later one queued until
// its own timeout (the send rate times the timeout).
TEST_F(HopWatchTest, UnacknowledgedHopKeepsNoAcknowledgedOnesQueued) {
  const absl::Time sent = clock_.now;
  const uint64_t lost = RouteToX("lost");
  ASSERT_NE(lost, 0u);
  // 100 more, acknowledged in groups of ten: nine in one RouteAck, then the
  // tenth alone.
  std::vector<uint64_t> group;
  for (int i = 0; i < 100; ++i) {
    group.push_back(RouteToX("m" + std::to_string(i)));
    if (group.size() == 10) {
      Receive(x_, RouteAck{{group.begin(), group.end() - 1}});
      Receive(x_, RouteAck{{group.back()}});
      group.clear();
    }
    EXPECT_LE(node_.queued_hop_deadlines(x_.id), 20u) << i;
  }
  EXPECT_EQ(node_.queued_hop_deadlines(x_.id), 1u);

  // The unacknowledged hop still times out at its deadline, and only it.
  const absl::Duration timeout = Options().hop_ack_timeout;
  RunUntil(sent + timeout - absl::Milliseconds(1));
  EXPECT_EQ(node_.stats().hop_ack_timeouts, 0u);
  EXPECT_TRUE(RoutesTo(y_, "lost").empty());
  RunUntil(sent + timeout);
  EXPECT_EQ(node_.stats().hop_ack_timeouts, 1u);
  EXPECT_EQ(node_.stats().reroutes, 1u);
  EXPECT_EQ(RoutesTo(y_, "lost").size(), 1u);  // rerouted to the next closest
  EXPECT_EQ(node_.queued_hop_deadlines(x_.id), 0u);
  EXPECT_EQ(node_.stats().hops_in_flight_overflows, 0u);
}

class HopBoundTest : public HopWatchTest {
 protected:
  static Options Bounded() {
    Options o;
    o.max_hops_in_flight_per_peer = 4;
    return o;
  }
  HopBoundTest() : HopWatchTest(Bounded()) {}
};

// At max_hops_in_flight_per_peer, the hop with the earliest deadline times
// out at once and is rerouted: every message is still tracked by one hop.
TEST_F(HopBoundTest, HopsInFlightToOnePeerAreBoundedAndTheEarliestIsRerouted) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(RouteToX("m" + std::to_string(i)));
  EXPECT_EQ(node_.queued_hop_deadlines(x_.id), 4u);
  EXPECT_EQ(node_.stats().hops_in_flight_overflows, 0u);
  EXPECT_TRUE(RoutesTo(y_, "m0").empty());

  ids.push_back(RouteToX("m4"));
  EXPECT_EQ(node_.stats().hops_in_flight_overflows, 1u);
  EXPECT_EQ(node_.queued_hop_deadlines(x_.id), 4u);
  EXPECT_EQ(node_.stats().hop_ack_timeouts, 0u);  // early, not at a deadline
  EXPECT_EQ(node_.stats().reroutes, 1u);
  EXPECT_EQ(RoutesTo(y_, "m0").size(), 1u);  // at once, through y
  EXPECT_TRUE(Logged("max_hops_in_flight_per_peer")) << "not logged";

  // x is suspected, as at a timeout, and avoided until it answers.
  overlay_->Route(x_.id, "m5");
  EXPECT_EQ(RoutesTo(y_, "m5").size(), 1u);
  EXPECT_TRUE(RoutesTo(x_, "m5").empty());
  AnswerProbes();

  // m0's ack from x comes too late to count; the other four empty x's
  // queue. y acknowledges m0 and m5: nothing times out.
  Receive(x_, RouteAck{ids});
  EXPECT_EQ(node_.queued_hop_deadlines(x_.id), 0u);
  std::vector<uint64_t> at_y = RoutesTo(y_, "m0");
  for (uint64_t id : RoutesTo(y_, "m5")) at_y.push_back(id);
  Receive(y_, RouteAck{at_y});
  EXPECT_EQ(node_.queued_hop_deadlines(y_.id), 0u);
  RunUntil(clock_.now + absl::Seconds(1));
  EXPECT_EQ(node_.stats().hop_ack_timeouts, 0u);
  EXPECT_EQ(node_.stats().reroutes, 1u);
  EXPECT_EQ(node_.stats().hops_in_flight_overflows, 1u);
}

class PendingBoundTest : public HopWatchTest {
 protected:
  static Options Bounded() {
    Options o;
    o.max_pending_acks = 4;
    return o;
  }
  PendingBoundTest() : HopWatchTest(Bounded()) {}
};

// At max_pending_acks, the hop with the earliest deadline of all times out
// at once and is rerouted (its copy untracked: its slot went to the new
// hop), and the new hop is tracked: a message sent to a peer that then
// stays silent is rerouted at its deadline. It used to be sent untracked,
// and was lost.
TEST_F(PendingBoundTest, AtTheBoundTheEarliestHopIsReroutedAndTheNewOneTracked) {
  const absl::Time sent = clock_.now;
  for (int i = 0; i < 4; ++i) RouteToX("m" + std::to_string(i));
  EXPECT_EQ(node_.stats().pending_ack_overflows, 0u);
  EXPECT_TRUE(RoutesTo(y_, "m0").empty());

  EXPECT_NE(RouteToX("m4"), 0u);  // tracked
  EXPECT_EQ(node_.stats().pending_ack_overflows, 1u);
  EXPECT_EQ(node_.stats().hop_ack_timeouts, 0u);  // early, not at a deadline
  EXPECT_EQ(node_.stats().reroutes, 1u);
  EXPECT_EQ(RoutesTo(y_, "m0"), std::vector<uint64_t>{0});  // at once, through y, untracked
  EXPECT_EQ(node_.queued_hop_deadlines(x_.id), 4u);
  EXPECT_TRUE(Logged("max_pending_acks")) << "not logged";

  // x answers probes but never acknowledges a hop: m1 to m4 time out at
  // their deadline and go through y, tracked.
  RunUntil(sent + Options().hop_ack_timeout);
  EXPECT_EQ(node_.stats().hop_ack_timeouts, 4u);
  for (int i = 1; i <= 4; ++i) {
    const std::vector<uint64_t> at_y = RoutesTo(y_, "m" + std::to_string(i));
    ASSERT_EQ(at_y.size(), 1u) << "m" << i;
    EXPECT_NE(at_y[0], 0u) << "m" << i;
  }
  EXPECT_EQ(RoutesTo(y_, "m0").size(), 1u);  // not again
  EXPECT_EQ(node_.stats().pending_ack_overflows, 1u);
}

}  // namespace
}  // namespace peter::pastry

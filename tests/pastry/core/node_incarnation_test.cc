// Node incarnations (docs/design.md, "Incarnations"): a node's run is known
// from what the node itself sends, never from a copy of its handle that a
// third node passes on. Driven by hand: a recording transport, a manual
// clock, and peers whose answers the test writes.
#include <utility>
#include <variant>
#include <vector>

#include "gtest/gtest.h"
#include "pastry/core/node.h"
#include "tests/pastry/core/recording_transport.h"

namespace peter::pastry {
namespace {

using testing::ManualClock;
using testing::RecordingTransport;
using testing::Sent;

NodeHandle Handle(uint64_t hi, uint32_t ip, uint16_t port, uint64_t incarnation) {
  return NodeHandle{NodeId(hi, 0), Endpoint::FromIpv4(ip, port), incarnation};
}

class IncarnationTest : public ::testing::Test {
 protected:
  IncarnationTest() : node_(self_, Options{}, Environment{&transport_, &clock_, 1, nullptr}) {
    node_.StartRing();
  }

  void Receive(const NodeHandle& from, MessageBody body) {
    node_.HandleMessage(Envelope{kProtocolVersion, from, std::move(body)});
  }

  // Runs the node for `d` in steps of 10 ms; every probe sent to one of
  // `live` is answered by it (as that handle) within the step.
  void RunFor(absl::Duration d, const std::vector<NodeHandle>& live) {
    const absl::Time end = clock_.now + d;
    while (clock_.now < end) {
      clock_.now += absl::Milliseconds(10);
      node_.Tick();
      std::vector<Sent> sent = std::move(transport_.sent);
      transport_.sent.clear();
      for (const Sent& s : sent) {
        const Probe* probe = std::get_if<Probe>(&s.envelope.body);
        if (probe == nullptr) continue;
        for (const NodeHandle& peer : live) {
          if (peer.endpoint == s.to) Receive(peer, ProbeReply{probe->nonce, true, 1, false, {}});
        }
      }
    }
  }

  // Messages sent to `to` since the last clear.
  int SentTo(const Endpoint& to) const {
    int n = 0;
    for (const Sent& s : transport_.sent) n += s.to == to ? 1 : 0;
    return n;
  }

  RecordingTransport transport_;
  ManualClock clock_;
  const NodeHandle self_ = Handle(0x10, 0x7F000001, 4000, 100);
  Node node_;
};

// P1 of the review: a third node's copy of x's handle names a larger
// incarnation than x's live run (a clock stepped back before an earlier
// run, skew, a corrupt or forged handle). It must not make x's own answers
// look stale, nor get x declared dead.
TEST_F(IncarnationTest, HearsayOfALaterRunDoesNotMakeTheLiveRunStale) {
  const NodeHandle x = Handle(0x20, 0x7F000002, 4000, 5);
  const NodeHandle t = Handle(0x30, 0x7F000003, 4000, 7);
  Receive(x, Probe{1, false, false, 0, 0});
  Receive(t, Probe{2, false, false, 0, 0});
  ASSERT_TRUE(node_.leaf_set().Contains(x.id));

  NodeHandle forged = x;
  forged.incarnation = 50;
  for (int round = 0; round < 10; ++round) {
    Receive(t, RowReply{0, {forged}});
    Receive(t, ProbeReply{~uint64_t{0}, true, 9, true, {forged, self_}});
    RunFor(absl::Seconds(1), {x, t});
  }
  EXPECT_EQ(node_.stats().dropped_stale_incarnation, 0u);
  EXPECT_EQ(node_.stats().failures_detected, 0u);
  ASSERT_NE(node_.leaf_set().Find(x.id), nullptr);
  EXPECT_EQ(node_.leaf_set().Find(x.id)->incarnation, 5u);

  // x restarts for real with incarnation 6: a later run than the one we
  // know, though smaller than the forged one. It is taken as it is.
  NodeHandle restarted = x;
  restarted.incarnation = 6;
  Receive(restarted, Probe{3, false, false, 0, 0});
  RunFor(absl::Seconds(5), {restarted, t});
  EXPECT_EQ(node_.stats().failures_detected, 0u);
  ASSERT_NE(node_.leaf_set().Find(x.id), nullptr);
  EXPECT_EQ(node_.leaf_set().Find(x.id)->incarnation, 6u);
  // The old run's messages, delayed in flight, are now stale.
  Receive(x, Probe{4, false, false, 0, 0});
  EXPECT_EQ(node_.stats().dropped_stale_incarnation, 1u);
}

// Hearsay of a later run of a member on another endpoint (restarted
// elsewhere) is checked with a probe of that endpoint; the answer (first
// hand) replaces the member, and the old run's probes end.
TEST_F(IncarnationTest, HearsayOfARestartElsewhereIsConfirmedByAProbe) {
  const NodeHandle x = Handle(0x20, 0x7F000002, 4000, 5);
  const NodeHandle t = Handle(0x30, 0x7F000003, 4000, 7);
  Receive(x, Probe{1, false, false, 0, 0});
  Receive(t, Probe{2, false, false, 0, 0});
  const NodeHandle moved = Handle(0x20, 0x7F000004, 4001, 6);
  transport_.sent.clear();
  Receive(t, RowReply{0, {moved}});
  EXPECT_EQ(SentTo(moved.endpoint), 1);
  // Only the probe's answer, from the new run itself, changes the member.
  ASSERT_NE(node_.leaf_set().Find(x.id), nullptr);
  EXPECT_EQ(node_.leaf_set().Find(x.id)->endpoint, x.endpoint);
  RunFor(absl::Seconds(5), {moved, t});
  ASSERT_NE(node_.leaf_set().Find(x.id), nullptr);
  EXPECT_EQ(node_.leaf_set().Find(x.id)->endpoint, moved.endpoint);
  EXPECT_EQ(node_.leaf_set().Find(x.id)->incarnation, 6u);
  EXPECT_EQ(node_.stats().failures_detected, 0u);
}

// A node with a full leaf set of near nodes, and x far away: x can only
// enter the routing table.
class TableIncarnationTest : public IncarnationTest {
 protected:
  TableIncarnationTest() {
    for (uint64_t k = 1; k <= 8; ++k) {
      near_.push_back(Handle(0x10 + k, 0x7F000100 + static_cast<uint32_t>(k), 4000, 1));
      near_.push_back(Handle(0x10 - k, 0x7F000200 + static_cast<uint32_t>(k), 4000, 1));
    }
    for (const NodeHandle& n : near_) Receive(n, Probe{1, false, false, 0, 0});
  }
  std::vector<NodeHandle> near_;
  const NodeHandle x_ = Handle(0x8000'0000'0000'0000, 0x7F000002, 4001, 6);
};

// P2 of the review: what we know first-hand of a routing-table entry (not
// in the leaf set, not probed yet) counts: a delayed message from an earlier
// run of it is dropped as stale.
TEST_F(TableIncarnationTest, StaleMessageFromAnEarlierRunOfATableEntryIsDropped) {
  ASSERT_TRUE(node_.leaf_set().Full());
  Receive(x_, Probe{1, false, false, 0, 0});
  ASSERT_FALSE(node_.leaf_set().Contains(x_.id));
  ASSERT_NE(node_.routing_table().Find(x_.id), nullptr);

  const NodeHandle old_run = Handle(0x8000'0000'0000'0000, 0x7F000002, 4000, 5);
  transport_.sent.clear();
  Receive(old_run, Probe{2, false, false, 0, 0});
  EXPECT_EQ(node_.stats().dropped_stale_incarnation, 1u);
  EXPECT_EQ(SentTo(old_run.endpoint), 0);
}

// A third node's copy of a table entry's handle with another endpoint does
// not redirect what we send to the entry: x told us its address itself.
TEST_F(TableIncarnationTest, HearsayOfAnotherEndpointDoesNotRedirectATableEntry) {
  Receive(x_, Probe{1, false, false, 0, 0});
  ASSERT_NE(node_.routing_table().Find(x_.id), nullptr);
  const NodeHandle t = near_.front();
  for (uint64_t incarnation : {uint64_t{0}, uint64_t{6}}) {
    NodeHandle elsewhere = Handle(0x8000'0000'0000'0000, 0x7F000009, 4000, incarnation);
    Receive(t, RowReply{0, {elsewhere}});
    EXPECT_EQ(node_.routing_table().Find(x_.id)->node.endpoint, x_.endpoint);
  }
  transport_.sent.clear();
  node_.Lookup(x_.id, absl::Seconds(5), [](absl::StatusOr<Node::LookupResult>) {});
  EXPECT_EQ(SentTo(x_.endpoint), 1);
}

// P2 of the review: a graceful leave is recorded with the leaver's
// incarnation (it told us itself), so a later run heard of second-hand is
// probed, while the run that left is ignored for dead_node_memory.
TEST_F(IncarnationTest, LeaveIsRecordedWithTheLeaversIncarnation) {
  const NodeHandle x = Handle(0x8000'0000'0000'0000, 0x7F000002, 4000, 5);
  const NodeHandle t = Handle(0x30, 0x7F000003, 4000, 7);
  Receive(t, Probe{1, false, false, 0, 0});
  Receive(x, Leave{});
  ASSERT_EQ(node_.stats().leaves_received, 1u);
  transport_.sent.clear();
  Receive(t, RowReply{0, {x}});
  EXPECT_EQ(SentTo(x.endpoint), 0);
  NodeHandle restarted = x;
  restarted.incarnation = 6;
  Receive(t, RowReply{0, {restarted}});
  EXPECT_EQ(SentTo(x.endpoint), 1);
}

}  // namespace
}  // namespace peter::pastry

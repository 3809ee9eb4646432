// Regression: a joining node must not become active before a root has
// answered its join, whatever else it hears first.
#include <algorithm>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "pastry/core/node.h"
#include "tests/pastry/core/recording_transport.h"

namespace peter::pastry {
namespace {

using testing::ManualClock;
using testing::RecordingTransport;
using testing::Sent;

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

namespace peter::pastry {
namespace {

// Regression: a node suspected (its hop acknowledgement timed out) that
// restarts with the same id at a new address must be usable again as soon as
// it contacts us, not skipped until the old incarnation's probes run out.
TEST(NodeRestartTest, DirectContactFromNewIncarnationClearsSuspicion) {
  RecordingTransport transport;
  ManualClock clock;
  const NodeHandle self{NodeId(0x10, 0), Endpoint::FromIpv4(0x7F000001, 4000)};
  const NodeHandle old_x{NodeId(0x20, 0), Endpoint::FromIpv4(0x7F000002, 4000)};
  const NodeHandle new_x{NodeId(0x20, 0), Endpoint::FromIpv4(0x7F000002, 4001)};
  Node node(self, Options{}, Environment{&transport, &clock, 1, nullptr});
  node.StartRing();
  node.HandleMessage(Envelope{kProtocolVersion, old_x, Probe{1, false, false, 0}});
  ASSERT_TRUE(node.leaf_set().Contains(old_x.id));

  // A lookup for x's own id goes to x, which never acknowledges: x becomes
  // suspected and the lookup is answered here instead.
  int answered = 0;
  node.Lookup(old_x.id, absl::Seconds(5), [&](absl::StatusOr<Node::LookupResult> r) {
    ASSERT_TRUE(r.ok());
    ++answered;
  });
  clock.now += absl::Milliseconds(400);
  node.Tick();
  ASSERT_EQ(answered, 1);
  ASSERT_EQ(node.stats().hop_ack_timeouts, 1u);

  // x restarts at a new port and probes us.
  node.HandleMessage(Envelope{kProtocolVersion, new_x, Probe{2, false, false, 0}});
  transport.sent.clear();
  node.Lookup(new_x.id, absl::Seconds(5), [](absl::StatusOr<Node::LookupResult>) {});
  bool routed_to_new_x = false;
  for (const Sent& s : transport.sent) {
    if (std::holds_alternative<RouteMsg>(s.envelope.body) && s.to == new_x.endpoint) {
      routed_to_new_x = true;
    }
  }
  EXPECT_TRUE(routed_to_new_x);
}

}  // namespace
}  // namespace peter::pastry

namespace peter::pastry {
namespace {

// A joiner hears of far more nodes than its leaf set holds (every hop's rows
// and the root's leaf set); it probes as leaf-set candidates only the L
// nearest of them, not every node named while its leaf set is still short.
TEST(NodeJoinTest, ProbesOnlyTheNearestLeafSetCandidates) {
  RecordingTransport transport;
  FixedClock clock;
  const uint64_t base = uint64_t{1} << 40;
  const NodeHandle joiner{NodeId(base, 0), Endpoint::FromIpv4(0x7F000001, 4000)};
  const NodeHandle root{NodeId(base - 1, 0), Endpoint::FromIpv4(0x7F000002, 4000)};
  Node node(joiner, Options{}, Environment{&transport, &clock, 1, nullptr});
  node.Join({root.endpoint});

  uint32_t next_ip = 0x7F000010;
  auto handle = [&](uint64_t hi) {
    return NodeHandle{NodeId(hi, 0), Endpoint::FromIpv4(next_ip++, 4000)};
  };
  JoinReply reply;
  std::vector<NodeId> near;
  // The root's leaf set: its 8 right neighbours (ours too) and its 8 left.
  for (uint64_t k = 1; k <= 8; ++k) {
    reply.leaf_set.push_back(handle(base + k));
    near.push_back(reply.leaf_set.back().id);
  }
  for (uint64_t k = 2; k <= 9; ++k) {
    reply.leaf_set.push_back(handle(base - k));
    near.push_back(reply.leaf_set.back().id);
  }
  for (uint64_t k = 1; k <= 40; ++k) reply.rows.push_back(handle(base + 1000 * k));
  reply.rows.push_back(root);
  transport.sent.clear();
  node.HandleMessage(Envelope{kProtocolVersion, root, reply});

  int near_probed = 0, far_probed = 0, root_probed = 0;
  for (const Sent& s : transport.sent) {
    const auto* probe = std::get_if<Probe>(&s.envelope.body);
    if (probe == nullptr) continue;
    if (s.to == root.endpoint) {
      ++root_probed;
    } else if (s.to.ip[15] >= 0x10 && s.to.ip[15] < 0x10 + near.size()) {
      ++near_probed;
    } else {
      ++far_probed;
    }
  }
  // The root itself (heard from directly) and 15 of its 16 members are
  // our 16 nearest: its farthest left member is not probed, nor any row.
  EXPECT_EQ(near_probed, 15);
  EXPECT_EQ(root_probed, 1);
  EXPECT_EQ(far_probed, 0);
  EXPECT_FALSE(node.active());
}

// The Pastry paper's second join phase: once active, the joiner asks every
// node in its routing table for its copy of the row the two share (an entry
// of row r shares r digits with us, so its row r is a valid row r for us
// and holds nodes near that entry), offering nearer candidates for every
// slot than the join route's rows alone.
TEST(NodeJoinTest, ActivationAsksEachTableEntryForTheRowItShares) {
  RecordingTransport transport;
  FixedClock clock;
  const uint64_t base = uint64_t{0x1230} << 48;
  const NodeHandle joiner{NodeId(base, 0), Endpoint::FromIpv4(0x7F000001, 4000)};
  uint32_t next_ip = 0x7F000010;
  std::vector<NodeHandle> everyone;
  auto handle = [&](uint64_t hi) {
    everyone.push_back(NodeHandle{NodeId(hi, 0), Endpoint::FromIpv4(next_ip++, 4000)});
    return everyone.back();
  };
  const NodeHandle root = handle(base - 1);
  Node node(joiner, Options{}, Environment{&transport, &clock, 1, nullptr});
  node.Join({root.endpoint});

  JoinReply reply;
  for (uint64_t k = 1; k <= 3; ++k) reply.leaf_set.push_back(handle(base + k));
  // One node for each of rows 0, 1 and 2 (differing from us in digit 0, 1,
  // 2), the join route's nodes as the paper's X copies them.
  const NodeHandle row0 = handle(uint64_t{0x5000} << 48);
  const NodeHandle row1 = handle(uint64_t{0x1800} << 48);
  const NodeHandle row2 = handle(uint64_t{0x12A0} << 48);
  reply.rows = {row0, row1, row2, root};
  transport.sent.clear();
  node.HandleMessage(Envelope{kProtocolVersion, root, reply});

  // Everyone answers every probe, until the joiner is active.
  auto handle_of = [&](const Endpoint& e) {
    for (const NodeHandle& h : everyone) {
      if (h.endpoint == e) return h;
    }
    ADD_FAILURE() << "probe to an unknown endpoint";
    return root;
  };
  std::vector<Sent> after;
  for (int round = 0; round < 10 && !node.active(); ++round) {
    std::vector<Sent> sent = std::move(transport.sent);
    transport.sent.clear();
    for (const Sent& s : sent) {
      const auto* probe = std::get_if<Probe>(&s.envelope.body);
      if (probe == nullptr) continue;
      ProbeReply answer;
      answer.nonce = probe->nonce;
      answer.active = true;
      node.HandleMessage(Envelope{kProtocolVersion, handle_of(s.to), answer});
    }
  }
  ASSERT_TRUE(node.active());

  // Every routing-table entry got one row request, for the row it is in.
  std::vector<std::pair<NodeHandle, int>> entries;
  node.routing_table().ForEach([&](int row, int, const RoutingTable::Entry& e) {
    entries.emplace_back(e.node, row);
  });
  for (const NodeHandle& planted : {row0, row1, row2}) {
    EXPECT_TRUE(std::any_of(entries.begin(), entries.end(),
                            [&](const auto& e) { return e.first == planted; }));
  }
  for (const auto& [entry, row] : entries) {
    int requests = 0;
    for (const Sent& s : transport.sent) {
      const auto* request = std::get_if<RowRequest>(&s.envelope.body);
      if (request == nullptr || !(s.to == entry.endpoint)) continue;
      ++requests;
      EXPECT_EQ(request->row, row) << entry.id.ShortHex();
      EXPECT_EQ(request->row, entry.id.SharedPrefixLength(joiner.id, 4));
    }
    EXPECT_EQ(requests, 1) << entry.id.ShortHex();
  }
}

}  // namespace
}  // namespace peter::pastry

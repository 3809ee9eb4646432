// Tests of the Node core (pastry/core/node.h) driven by hand, as
// libtorrent's test_dht does: a FakeTransport records every send, a
// ManualClock only moves when told, and a tiny deterministic loop hands the
// recorded messages to their destination nodes and calls Tick() at
// NextDeadline(). No sockets, no sleeps, no threads.
#include "pastry/core/node.h"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace peter::pastry {
namespace {

NodeId Top(uint64_t hi) { return NodeId(hi, 0); }

class ManualClock : public Clock {
 public:
  absl::Time Now() const override { return now_; }
  void Set(absl::Time t) { now_ = std::max(now_, t); }
  void Advance(absl::Duration d) { now_ += d; }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1'000'000);
};

struct Sent {
  Endpoint to;
  Envelope envelope;
};

// Records every send; the test loop delivers them.
class FakeTransport : public Transport {
 public:
  void Send(const Endpoint& to, const Envelope& envelope) override {
    queue.push_back(Sent{to, envelope});
    log.push_back(Sent{to, envelope});
  }
  std::deque<Sent> queue;  // not yet delivered
  std::vector<Sent> log;   // everything ever sent
};

template <typename T>
bool Is(const Sent& s) {
  return std::holds_alternative<T>(s.envelope.body);
}

// What applications saw, across all nodes, in order.
struct AppLog {
  struct Forwarded {
    NodeId at;
    NodeId next;
    int hops;
    NodeId previous;
    std::string payload;
  };
  struct Delivered {
    NodeId at;
    std::optional<NodeId> key;
    NodeId source;
    NodeId previous;
    int hops;
    std::string payload;
  };
  struct Updated {
    NodeId at;
    NodeId node;
    bool joined;
  };
  std::vector<Forwarded> forwards;
  std::vector<Delivered> delivers;
  std::vector<Updated> updates;
};

class RecordingApp : public Application {
 public:
  RecordingApp(NodeId at, AppLog* log) : at_(at), log_(log) {}
  bool Forward(RouteMessage& msg, NodeHandle& next_hop) override {
    log_->forwards.push_back({at_, next_hop.id, msg.hops, msg.previous_hop.id, msg.payload});
    return on_forward ? on_forward(msg, next_hop) : true;
  }
  void Deliver(const RouteMessage& msg) override {
    log_->delivers.push_back(
        {at_, msg.key, msg.source.id, msg.previous_hop.id, msg.hops, msg.payload});
  }
  void Update(const NodeHandle& node, bool joined) override {
    log_->updates.push_back({at_, node.id, joined});
  }
  std::function<bool(RouteMessage&, NodeHandle&)> on_forward;

 private:
  NodeId at_;
  AppLog* log_;
};

constexpr AppId kApp = kFirstUserAppId;

// A handful of nodes, a manual clock and the delivery loop.
class Net {
 public:
  explicit Net(Options options = Options()) : options_(options) {}

  Node& Add(const NodeId& id) {
    const uint32_t i = static_cast<uint32_t>(nodes_.size());
    NodeHandle h{id, Endpoint::FromIpv4(0x7F000001 + i, 4000)};
    Environment env;
    env.transport = &transport;
    env.clock = &clock;
    env.seed = 1000 + i;
    nodes_.push_back(std::make_unique<Node>(h, options_, env));
    by_endpoint_[h.endpoint] = nodes_.back().get();
    return *nodes_.back();
  }

  // Registers a RecordingApp on `node`.
  RecordingApp& App(Node& node) {
    apps_.push_back(std::make_unique<RecordingApp>(node.self().id, &log));
    overlays_[node.self().id] = node.RegisterApplication(kApp, apps_.back().get());
    return *apps_.back();
  }
  Overlay& OverlayOf(const Node& node) { return *overlays_.at(node.self().id); }

  // Crashed nodes neither receive nor tick; what they had queued is lost.
  void Crash(const Node& node) { crashed_.insert(node.self().endpoint); }

  // Delivers queued messages (FIFO, no latency) until none is left.
  void Flush() {
    for (int n = 0; !transport.queue.empty(); ++n) {
      ASSERT_LT(n, 1'000'000) << "message storm";
      Sent s = std::move(transport.queue.front());
      transport.queue.pop_front();
      if (crashed_.contains(s.envelope.sender.endpoint) || crashed_.contains(s.to)) continue;
      if (drop && drop(s)) continue;
      auto it = by_endpoint_.find(s.to);
      if (it == by_endpoint_.end()) continue;
      it->second->HandleMessage(s.envelope);
    }
  }

  // Runs deliveries and timers until `until`; time jumps to each deadline.
  void RunUntil(absl::Time until) {
    while (true) {
      Flush();
      absl::Time next = absl::InfiniteFuture();
      for (const auto& n : nodes_) {
        if (!crashed_.contains(n->self().endpoint)) next = std::min(next, n->NextDeadline());
      }
      if (next > until) break;
      clock.Set(next);
      for (const auto& n : nodes_) {
        if (!crashed_.contains(n->self().endpoint) && n->NextDeadline() <= clock.Now()) n->Tick();
      }
    }
    clock.Set(until);
  }
  void RunFor(absl::Duration d) { RunUntil(clock.Now() + d); }
  // Runs until `pred` holds or `limit` passes; returns whether it held.
  bool RunUntilTrue(const std::function<bool()>& pred, absl::Duration limit) {
    const absl::Time end = clock.Now() + limit;
    while (!pred() && clock.Now() < end) RunUntil(std::min(end, clock.Now() + absl::Milliseconds(10)));
    return pred();
  }

  std::vector<NodeId> LiveIds() const {
    std::vector<NodeId> out;
    for (const auto& n : nodes_) {
      if (!crashed_.contains(n->self().endpoint) && !n->departed()) out.push_back(n->self().id);
    }
    return out;
  }

  ManualClock clock;
  FakeTransport transport;
  AppLog log;
  std::function<bool(const Sent&)> drop;  // true: lose this message

 private:
  Options options_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<Endpoint, Node*> by_endpoint_;
  std::set<Endpoint> crashed_;
  std::vector<std::unique_ptr<RecordingApp>> apps_;
  std::map<NodeId, std::unique_ptr<Overlay>> overlays_;
};

NodeId Closest(const std::vector<NodeId>& ids, const NodeId& key) {
  NodeId best = ids.front();
  for (const NodeId& id : ids) {
    if (NodeId::CloserTo(key, id, best)) best = id;
  }
  return best;
}

std::set<NodeId> LeafIds(const Node& n) {
  std::set<NodeId> out;
  for (const NodeHandle& h : n.leaf_set().Members()) out.insert(h.id);
  return out;
}

// Runs a lookup to completion and returns its result.
absl::StatusOr<Node::LookupResult> LookupNow(Net& net, Node& from, const NodeId& key) {
  std::optional<absl::StatusOr<Node::LookupResult>> result;
  from.Lookup(key, absl::Seconds(5), [&](absl::StatusOr<Node::LookupResult> r) { result = r; });
  net.RunUntilTrue([&] { return result.has_value(); }, absl::Seconds(10));
  if (!result.has_value()) return absl::InternalError("lookup callback never ran");
  return *result;
}

const NodeId kA = Top(0x1000000000000000ULL);
const NodeId kB = Top(0x5000000000000000ULL);
const NodeId kC = Top(0x9000000000000000ULL);

// -------------------------------------------------------------- one node

TEST(NodeTest, IdleNodeIgnoresMessages) {
  Net net;
  Node& a = net.Add(kA);
  EXPECT_FALSE(a.active());
  a.HandleMessage(Envelope{kProtocolVersion, NodeHandle{kB, Endpoint::FromIpv4(0x7F000009, 4000)},
                           Probe{1}});
  EXPECT_TRUE(net.transport.log.empty());
  EXPECT_TRUE(a.leaf_set().empty());
}

TEST(NodeTest, StartRingMakesNodeActiveAndItsOwnRoot) {
  Net net;
  Node& a = net.Add(kA);
  a.StartRing();
  EXPECT_TRUE(a.active());
  EXPECT_FALSE(a.departed());
  EXPECT_LT(a.NextDeadline(), absl::InfiniteFuture());  // maintenance is scheduled
  for (const NodeId& key : {kA, kB, NodeId(), NodeId::Max()}) {
    absl::StatusOr<Node::LookupResult> r = LookupNow(net, a, key);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->root, a.self());
    EXPECT_EQ(r->hops, 0);
    EXPECT_EQ(r->path, std::vector<NodeId>{kA});
  }
}

TEST(NodeTest, LookupBeforeStartFails) {
  Net net;
  Node& a = net.Add(kA);
  std::optional<absl::Status> status;
  a.Lookup(kB, absl::Seconds(1), [&](absl::StatusOr<Node::LookupResult> r) { status = r.status(); });
  ASSERT_TRUE(status.has_value());
  EXPECT_FALSE(status->ok());
}

TEST(NodeTest, AppMessageInRingOfOneIsDeliveredLocally) {
  Net net;
  Node& a = net.Add(kA);
  net.App(a);
  a.StartRing();
  net.OverlayOf(a).Route(kC, "hello");
  net.Flush();
  ASSERT_EQ(net.log.delivers.size(), 1u);
  EXPECT_EQ(net.log.delivers[0].at, kA);
  EXPECT_EQ(net.log.delivers[0].payload, "hello");
  EXPECT_EQ(net.log.delivers[0].hops, 0);
  EXPECT_TRUE(net.log.forwards.empty());  // not called where it is delivered
  EXPECT_TRUE(net.OverlayOf(a).IsActive());
  EXPECT_EQ(net.OverlayOf(a).LocalHandle(), a.self());
}

// ----------------------------------------------------------------- joins

TEST(NodeTest, SecondNodeJoinsThroughFirst) {
  Net net;
  Node& a = net.Add(kA);
  Node& b = net.Add(kB);
  net.App(a);
  net.App(b);
  a.StartRing();
  b.Join({a.self().endpoint});
  EXPECT_FALSE(b.active());  // not before its neighbours confirm it
  net.RunFor(absl::Seconds(2));
  EXPECT_TRUE(a.active());
  EXPECT_TRUE(b.active());
  EXPECT_EQ(LeafIds(a), std::set<NodeId>{kB});
  EXPECT_EQ(LeafIds(b), std::set<NodeId>{kA});
  EXPECT_NE(a.routing_table().Find(kB), nullptr);
  EXPECT_NE(b.routing_table().Find(kA), nullptr);
  EXPECT_EQ(b.stats().joins_completed, 1u);
  // Update upcalls: each learned of the other exactly once, as joined.
  int a_saw_b = 0, b_saw_a = 0;
  for (const auto& u : net.log.updates) {
    EXPECT_TRUE(u.joined);
    if (u.at == kA && u.node == kB) ++a_saw_b;
    if (u.at == kB && u.node == kA) ++b_saw_a;
  }
  EXPECT_EQ(a_saw_b, 1);
  EXPECT_EQ(b_saw_a, 1);
  EXPECT_EQ(net.OverlayOf(b).LeafSet().size(), 1u);
}

class ThreeNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = &net_.Add(kA);
    b_ = &net_.Add(kB);
    c_ = &net_.Add(kC);
    for (Node* n : {a_, b_, c_}) net_.App(*n);
    a_->StartRing();
    b_->Join({a_->self().endpoint});
    net_.RunFor(absl::Seconds(2));
    c_->Join({a_->self().endpoint});
    net_.RunFor(absl::Seconds(2));
    ASSERT_TRUE(a_->active() && b_->active() && c_->active());
  }
  Node* NodeById(const NodeId& id) {
    for (Node* n : {a_, b_, c_}) {
      if (n->self().id == id) return n;
    }
    return nullptr;
  }
  Net net_;
  Node* a_ = nullptr;
  Node* b_ = nullptr;
  Node* c_ = nullptr;
};

TEST_F(ThreeNodes, EveryLeafSetHoldsTheOtherTwo) {
  EXPECT_EQ(LeafIds(*a_), (std::set<NodeId>{kB, kC}));
  EXPECT_EQ(LeafIds(*b_), (std::set<NodeId>{kA, kC}));
  EXPECT_EQ(LeafIds(*c_), (std::set<NodeId>{kA, kB}));
  EXPECT_EQ(c_->stats().joins_completed, 1u);
}

TEST_F(ThreeNodes, LookupFromEveryNodeFindsNumericallyClosest) {
  std::mt19937_64 rng(4);
  std::vector<NodeId> keys = {kA, kB, kC, NodeId(), NodeId::Max(),
                              Top(0x3000000000000000ULL),   // tie A/B: A
                              Top(0x7000000000000000ULL),   // tie B/C: B
                              Top(0xD000000000000000ULL)};  // tie C/A (across 0): A
  for (int i = 0; i < 30; ++i) keys.emplace_back(rng(), rng());
  const std::vector<NodeId> ids = {kA, kB, kC};
  for (Node* from : {a_, b_, c_}) {
    for (const NodeId& key : keys) {
      absl::StatusOr<Node::LookupResult> r = LookupNow(net_, *from, key);
      ASSERT_TRUE(r.ok()) << r.status();
      const NodeId root = Closest(ids, key);
      EXPECT_EQ(r->root.id, root) << "from " << from->self().id.ShortHex() << " key "
                                  << key.ToHex();
      EXPECT_EQ(r->root, NodeById(root)->self());
      ASSERT_FALSE(r->path.empty());
      EXPECT_EQ(r->path.front(), from->self().id);
      EXPECT_EQ(r->path.back(), root);
      EXPECT_EQ(r->hops + 1, static_cast<int>(r->path.size()));
    }
  }
}

TEST_F(ThreeNodes, RoutedMessageReachesDeliverAtRoot) {
  net_.OverlayOf(*a_).Route(kC + NodeId(0, 5), "payload");
  net_.Flush();
  ASSERT_EQ(net_.log.delivers.size(), 1u);
  const auto& d = net_.log.delivers[0];
  EXPECT_EQ(d.at, kC);
  EXPECT_EQ(d.source, kA);
  EXPECT_EQ(d.previous, kA);
  EXPECT_EQ(d.hops, 1);
  EXPECT_EQ(d.key, kC + NodeId(0, 5));
  EXPECT_EQ(d.payload, "payload");
  // Forward ran at the source (hop 0) with next hop C, and nowhere else.
  ASSERT_EQ(net_.log.forwards.size(), 1u);
  EXPECT_EQ(net_.log.forwards[0].at, kA);
  EXPECT_EQ(net_.log.forwards[0].next, kC);
  EXPECT_EQ(net_.log.forwards[0].hops, 0);
  EXPECT_EQ(c_->stats().routes_delivered, 1u);
}

TEST_F(ThreeNodes, ForwardIsCalledAtIntermediateHopsAndMayRedirect) {
  // A's application sends the message via B instead of straight to C.
  // (A second application id, so its recorders can be given behaviour.)
  AppLog log2;
  RecordingApp ra(kA, &log2), rb(kB, &log2), rc(kC, &log2);
  const AppId app2 = kApp + 1;
  auto oa = a_->RegisterApplication(app2, &ra);
  auto ob = b_->RegisterApplication(app2, &rb);
  auto oc = c_->RegisterApplication(app2, &rc);
  ra.on_forward = [&](RouteMessage& msg, NodeHandle& next) {
    next = b_->self();
    msg.payload += "+a";
    return true;
  };
  rb.on_forward = [&](RouteMessage& msg, NodeHandle&) {
    msg.payload += "+b";
    return true;
  };
  oa->Route(kC, "m");
  net_.Flush();
  ASSERT_EQ(log2.delivers.size(), 1u);
  EXPECT_EQ(log2.delivers[0].at, kC);
  EXPECT_EQ(log2.delivers[0].payload, "m+a+b");  // Forward may rewrite
  EXPECT_EQ(log2.delivers[0].hops, 2);
  EXPECT_EQ(log2.delivers[0].previous, kB);
  EXPECT_EQ(log2.delivers[0].source, kA);
  ASSERT_EQ(log2.forwards.size(), 2u);
  EXPECT_EQ(log2.forwards[0].at, kA);
  EXPECT_EQ(log2.forwards[1].at, kB);
  EXPECT_EQ(log2.forwards[1].next, kC);
  EXPECT_EQ(log2.forwards[1].hops, 1);
  EXPECT_EQ(log2.forwards[1].previous, kA);
  EXPECT_EQ(log2.forwards[1].payload, "m+a");
  EXPECT_EQ(b_->stats().routes_forwarded, 1u);
}

TEST_F(ThreeNodes, ForwardReturningFalseConsumesMessage) {
  AppLog log2;
  RecordingApp ra(kA, &log2), rc(kC, &log2);
  auto oa = a_->RegisterApplication(kApp + 2, &ra);
  auto oc = c_->RegisterApplication(kApp + 2, &rc);
  ra.on_forward = [](RouteMessage&, NodeHandle&) { return false; };
  oa->Route(kC, "m");
  net_.Flush();
  EXPECT_TRUE(log2.delivers.empty());
  EXPECT_EQ(a_->stats().routes_consumed, 1u);
}

TEST_F(ThreeNodes, RouteWithHintGoesThroughHint) {
  net_.OverlayOf(*a_).Route(kC, "h", b_->self());
  net_.Flush();
  ASSERT_EQ(net_.log.delivers.size(), 1u);
  EXPECT_EQ(net_.log.delivers[0].at, kC);
  EXPECT_EQ(net_.log.delivers[0].previous, kB);
  EXPECT_EQ(net_.log.delivers[0].hops, 2);
  // Forward at the intermediate hop B, toward C.
  bool forwarded_at_b = false;
  for (const auto& f : net_.log.forwards) {
    if (f.at == kB) {
      forwarded_at_b = true;
      EXPECT_EQ(f.next, kC);
    }
  }
  EXPECT_TRUE(forwarded_at_b);
}

// Regression (fixed; was a contract mismatch in pastry/core/node_route.cc, Node::Originate): with a
// first-hop hint the message is sent straight to the hint without the
// Forward upcall at the source, although application.h says Forward is
// called "at every node a routed message passes through, the source
// included". Fixed by: call ForwardUpcall(msg, self_, *hint) in
// Originate before SendHop (and honour a consumed message).
TEST_F(ThreeNodes, ForwardIsCalledAtSourceEvenWithHint) {
  net_.OverlayOf(*a_).Route(kC, "h", b_->self());
  net_.Flush();
  bool at_source = false;
  for (const auto& f : net_.log.forwards) {
    if (f.at == kA) {
      at_source = true;
      EXPECT_EQ(f.next, kB);
    }
  }
  EXPECT_TRUE(at_source);
}

TEST_F(ThreeNodes, DirectMessageWithoutKeyIsDeliveredAtHint) {
  net_.OverlayOf(*a_).Route(std::nullopt, "direct", b_->self());
  net_.Flush();
  ASSERT_EQ(net_.log.delivers.size(), 1u);
  EXPECT_EQ(net_.log.delivers[0].at, kB);
  EXPECT_FALSE(net_.log.delivers[0].key.has_value());
  EXPECT_EQ(net_.log.delivers[0].payload, "direct");
}

TEST_F(ThreeNodes, ReplicaSetComesFromLeafSet) {
  std::vector<NodeHandle> r = net_.OverlayOf(*a_).ReplicaSet(kB + NodeId(0, 1), 2);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0], b_->self());
  EXPECT_EQ(r[1], c_->self());  // C is 0x3FFF..F away, A 0x4000..1
  EXPECT_EQ(net_.OverlayOf(*a_).ReplicaSet(kB + NodeId(0, 1), 3).back(), a_->self());
}

// ------------------------------------------------------ rerouting on loss

TEST_F(ThreeNodes, UnacknowledgedHopIsReroutedAndStillDelivered) {
  // A's routed messages to C are lost (its probes still get through).
  net_.drop = [&](const Sent& s) {
    return Is<RouteMsg>(s) && s.envelope.sender.id == kA && s.to == c_->self().endpoint;
  };
  const uint64_t timeouts0 = a_->stats().hop_ack_timeouts;
  const uint64_t reroutes0 = a_->stats().reroutes;
  net_.OverlayOf(*a_).Route(kC, "persist");
  net_.RunFor(absl::Seconds(2));
  EXPECT_GT(a_->stats().hop_ack_timeouts, timeouts0);
  EXPECT_GT(a_->stats().reroutes, reroutes0);
  ASSERT_EQ(net_.log.delivers.size(), 1u);  // exactly once
  EXPECT_EQ(net_.log.delivers[0].at, kC);   // via B, which C acknowledges
  EXPECT_EQ(net_.log.delivers[0].previous, kB);
  EXPECT_EQ(net_.log.delivers[0].payload, "persist");
}

// ------------------------------------------------------ failure detection

// The route messages A sent to C, and the RouteAcks C sent to A, from the
// transport's log entry `from` on.
struct HopsAndAcks {
  std::vector<uint64_t> sent;
  std::vector<std::vector<uint64_t>> acks;
};
HopsAndAcks HopsAndAcksBetween(const FakeTransport& t, size_t from, const Node& a,
                               const Node& c) {
  HopsAndAcks out;
  for (size_t i = from; i < t.log.size(); ++i) {
    const Sent& s = t.log[i];
    if (Is<RouteMsg>(s) && s.envelope.sender.id == a.self().id && s.to == c.self().endpoint) {
      out.sent.push_back(std::get<RouteMsg>(s.envelope.body).id);
    }
    if (Is<RouteAck>(s) && s.envelope.sender.id == c.self().id && s.to == a.self().endpoint) {
      out.acks.push_back(std::get<RouteAck>(s.envelope.body).ids);
    }
  }
  return out;
}

TEST_F(ThreeNodes, RoutesReceivedInOneBatchAreAcknowledgedByOneRouteAck) {
  const size_t log0 = net_.transport.log.size();
  const uint64_t timeouts0 = a_->stats().hop_ack_timeouts;
  const uint64_t reroutes0 = a_->stats().reroutes;
  for (const char* m : {"m0", "m1", "m2"}) net_.OverlayOf(*a_).Route(kC, m);
  net_.RunFor(absl::Seconds(2));
  HopsAndAcks seen = HopsAndAcksBetween(net_.transport, log0, *a_, *c_);
  ASSERT_EQ(seen.sent.size(), 3u);
  ASSERT_EQ(seen.acks.size(), 1u);  // one frame, naming every id
  EXPECT_EQ(seen.acks[0], seen.sent);
  EXPECT_EQ(a_->stats().hop_ack_timeouts, timeouts0);
  EXPECT_EQ(a_->stats().reroutes, reroutes0);
  EXPECT_EQ(net_.log.delivers.size(), 3u);
}

TEST_F(ThreeNodes, IdMissingFromABatchedAckTimesOutAtItsDeadlineAndIsRerouted) {
  // C's acknowledgement of A's three messages leaves out the second.
  bool cut = false;
  net_.drop = [&](const Sent& s) {
    if (cut || !Is<RouteAck>(s) || s.envelope.sender.id != kC || s.to != a_->self().endpoint) {
      return false;
    }
    cut = true;
    Sent forged = s;
    std::vector<uint64_t>& ids = std::get<RouteAck>(forged.envelope.body).ids;
    if (ids.size() != 3) {
      ADD_FAILURE() << "C acknowledged " << ids.size() << " ids in one frame, not 3";
      return false;
    }
    ids.erase(ids.begin() + 1);
    net_.transport.queue.push_back(forged);
    return true;
  };
  const uint64_t timeouts0 = a_->stats().hop_ack_timeouts;
  const uint64_t reroutes0 = a_->stats().reroutes;
  const absl::Duration timeout = Options().hop_ack_timeout;
  for (const char* m : {"m0", "m1", "m2"}) net_.OverlayOf(*a_).Route(kC, m);
  net_.RunFor(timeout - absl::Milliseconds(1));
  EXPECT_TRUE(cut);
  EXPECT_EQ(a_->stats().hop_ack_timeouts, timeouts0);  // not before its deadline
  net_.RunFor(absl::Milliseconds(2));
  EXPECT_EQ(a_->stats().hop_ack_timeouts, timeouts0 + 1);  // that one only
  EXPECT_EQ(a_->stats().reroutes, reroutes0 + 1);
  net_.RunFor(absl::Seconds(2));
  EXPECT_EQ(a_->stats().hop_ack_timeouts, timeouts0 + 1);
  // Delivered three times from A, and the second again through B (a hop
  // that times out may have been delivered: at least once).
  ASSERT_EQ(net_.log.delivers.size(), 4u);
  EXPECT_EQ(net_.log.delivers[3].previous, kB);
  EXPECT_EQ(net_.log.delivers[3].payload, "m1");
}

TEST_F(ThreeNodes, VersionOnePeerGetsOneRouteAckPerRouteAtOnce) {
  RouteMsg m;
  m.kind = RouteKind::kApp;
  m.app = kApp;
  m.key = kC;
  m.source = a_->self();
  const size_t log0 = net_.transport.log.size();
  for (uint64_t id : {9001, 9002}) {
    m.id = id;
    c_->HandleMessage(Envelope{1, a_->self(), m});
  }
  // Without a Tick: a version-1 node reads one id per RouteAck.
  HopsAndAcks seen = HopsAndAcksBetween(net_.transport, log0, *a_, *c_);
  EXPECT_EQ(seen.acks, (std::vector<std::vector<uint64_t>>{{9001}, {9002}}));
  // A version-2 peer's are named together once the batch of work is over.
  for (uint64_t id : {9003, 9004}) {
    m.id = id;
    c_->HandleMessage(Envelope{kBatchedAckVersion, a_->self(), m});
  }
  EXPECT_EQ(HopsAndAcksBetween(net_.transport, log0, *a_, *c_).acks.size(), 2u);
  c_->Tick();
  seen = HopsAndAcksBetween(net_.transport, log0, *a_, *c_);
  ASSERT_EQ(seen.acks.size(), 3u);
  EXPECT_EQ(seen.acks[2], (std::vector<uint64_t>{9003, 9004}));
}

// Makes `node` a version-1 node as its peers see it, at the wire: what it
// sends carries version 1, and its RouteAcks name one id each (a batch goes
// as one frame per id, as version 1 acknowledged, though at the end of the
// batch of work rather than at once); a RouteAck it receives is read as
// version 1's schema reads it, by its first id only. Every frame delivered
// is appended to `wire`. Replaces net.drop.
void SpeakVersionOne(Net& net, const Node& node, std::vector<Sent>* wire) {
  const NodeId id = node.self().id;
  const Endpoint at = node.self().endpoint;
  net.drop = [&net, id, at, wire](const Sent& s) {
    const RouteAck* ack = std::get_if<RouteAck>(&s.envelope.body);
    if (s.envelope.sender.id == id && s.envelope.version != 1) {
      Sent old = s;
      old.envelope.version = 1;
      if (ack == nullptr) {
        net.transport.queue.push_back(old);
        return true;
      }
      for (uint64_t one : ack->ids) {
        old.envelope.body = RouteAck{{one}};
        net.transport.queue.push_back(old);
      }
      return true;
    }
    if (s.to == at && ack != nullptr && ack->ids.size() > 1) {
      Sent read = s;
      read.envelope.body = RouteAck{{ack->ids.front()}};
      net.transport.queue.push_back(read);
      return true;
    }
    wire->push_back(s);
    return false;
  };
}

// Issue 6 follow-up, a rolling upgrade: A speaks protocol version 1 (as a
// build before batched acknowledgements did; SpeakVersionOne), B and C
// version 2, in one ring. Five messages from every node to every other
// node's id, routed together so that each receiver handles them in one
// batch of work, are all delivered once, and every hop is acknowledged in
// time both ways: no timeout, no reroute. A reads only the first id of a
// RouteAck, so a batch sent to it would leave the others to time out.
TEST(MixedVersionTest, VersionOneAndTwoNodesAcknowledgeEachOthersHops) {
  Net net;
  Node& a = net.Add(kA);
  Node& b = net.Add(kB);
  Node& c = net.Add(kC);
  std::vector<Sent> wire;
  SpeakVersionOne(net, a, &wire);
  for (Node* n : {&a, &b, &c}) net.App(*n);
  a.StartRing();  // the old node's ring; the new ones join it
  b.Join({a.self().endpoint});
  net.RunFor(absl::Seconds(2));
  c.Join({a.self().endpoint});
  net.RunFor(absl::Seconds(2));
  ASSERT_TRUE(a.active() && b.active() && c.active());

  wire.clear();
  std::map<std::string, NodeId> want;  // payload -> root
  for (Node* from : {&a, &b, &c}) {
    for (Node* to : {&a, &b, &c}) {
      if (from == to) continue;
      for (int k = 0; k < 5; ++k) {
        std::string payload = from->self().id.ShortHex() + ">" + to->self().id.ShortHex() +
                              "#" + std::to_string(k);
        want[payload] = to->self().id;
        net.OverlayOf(*from).Route(to->self().id, payload);
      }
    }
  }
  net.RunFor(absl::Seconds(2));

  std::map<std::string, int> seen;
  for (const auto& d : net.log.delivers) {
    ++seen[d.payload];
    ASSERT_TRUE(want.contains(d.payload)) << d.payload;
    EXPECT_EQ(d.at, want[d.payload]) << d.payload;
  }
  EXPECT_EQ(seen.size(), want.size());  // 30
  for (const auto& [payload, n] : seen) EXPECT_EQ(n, 1) << payload;
  for (Node* n : {&a, &b, &c}) {
    EXPECT_EQ(n->stats().hop_ack_timeouts, 0u) << n->self().id.ShortHex();
    EXPECT_EQ(n->stats().reroutes, 0u) << n->self().id.ShortHex();
    EXPECT_EQ(n->stats().routes_dropped, 0u) << n->self().id.ShortHex();
  }

  // Delivered frames: A's carry version 1, B's and C's version 2; every
  // RouteAck between A and B or C names one id (5 hops each way), and B and
  // C name each other's five in one.
  auto id_at = [&](const Endpoint& e) {
    for (Node* n : {&a, &b, &c}) {
      if (n->self().endpoint == e) return n->self().id;
    }
    return NodeId();
  };
  std::map<std::pair<NodeId, NodeId>, std::vector<size_t>> acks;  // (from, to) -> sizes
  for (const Sent& s : wire) {
    EXPECT_EQ(s.envelope.version, s.envelope.sender.id == kA ? 1 : kProtocolVersion);
    if (!Is<RouteAck>(s)) continue;
    acks[{s.envelope.sender.id, id_at(s.to)}].push_back(
        std::get<RouteAck>(s.envelope.body).ids.size());
  }
  const std::vector<size_t> singles(5, 1);
  EXPECT_EQ((acks[{kA, kB}]), singles);
  EXPECT_EQ((acks[{kA, kC}]), singles);
  EXPECT_EQ((acks[{kB, kA}]), singles);
  EXPECT_EQ((acks[{kC, kA}]), singles);
  EXPECT_EQ((acks[{kB, kC}]), std::vector<size_t>{5});
  EXPECT_EQ((acks[{kC, kB}]), std::vector<size_t>{5});
}

TEST(NodeTest, SilentPeerIsDeclaredDeadAfterRetriesAndRemoved) {
  Options options;
  Net net(options);
  Node& a = net.Add(kA);
  Node& b = net.Add(kB);
  net.App(a);
  a.StartRing();
  b.Join({a.self().endpoint});
  net.RunFor(absl::Seconds(5));
  ASSERT_TRUE(b.active());
  ASSERT_TRUE(a.leaf_set().Contains(kB));
  const size_t log_mark = net.transport.log.size();
  const uint64_t timeouts0 = a.stats().probe_timeouts;
  net.Crash(b);
  const absl::Time crash = net.clock.Now();

  // Step until A gives up on B, checking B stays a member until the last
  // retry has timed out.
  while (a.leaf_set().Contains(kB) && net.clock.Now() - crash < absl::Seconds(30)) {
    EXPECT_LE(a.stats().probe_timeouts - timeouts0, static_cast<uint64_t>(options.probe_retries) + 1);
    net.RunFor(absl::Milliseconds(1));
  }
  const absl::Duration took = net.clock.Now() - crash;
  EXPECT_FALSE(a.leaf_set().Contains(kB));
  EXPECT_EQ(a.routing_table().Find(kB), nullptr);
  EXPECT_EQ(a.stats().failures_detected, 1u);
  EXPECT_EQ(a.stats().probe_timeouts - timeouts0, static_cast<uint64_t>(options.probe_retries) + 1);
  int probes = 0;
  for (size_t i = log_mark; i < net.transport.log.size(); ++i) {
    const Sent& s = net.transport.log[i];
    if (Is<Probe>(s) && s.envelope.sender.id == kA && s.to == b.self().endpoint) ++probes;
  }
  EXPECT_EQ(probes, options.probe_retries + 1);  // the probe and its retries
  bool update = false;
  for (const auto& u : net.log.updates) {
    if (u.at == kA && u.node == kB && !u.joined) update = true;
  }
  EXPECT_TRUE(update);
  EXPECT_FALSE(net.OverlayOf(a).LeafSet().size() > 0);
  EXPECT_LE(took, absl::Seconds(5)) << took;
}

// options.h: "Detection therefore takes at most about leaf_probe_interval +
// (probe_retries + 1) * probe_timeout" (1 s + 3 * 300 ms = 1.9 s).
//
// Regression (fixed; was a bug in pastry/core/node_maintenance.cc:84-97, LeafSetMaintenance): a member
// is probed only if its last probe reply is at least leaf_probe_interval
// old, but the maintenance job itself runs every Jittered(interval) =
// 0.9-1.1 x interval. When the previous round's reply is younger than
// interval (jitter < 1) the member is skipped for a whole round, so a crash
// is noticed up to ~2 intervals later: 2.85 s observed here against the
// documented ~1.9 s (bound used: 1.1 s + 3 x 300 ms + 50 ms). Fixed by: probe when
// now - last_probe_reply >= interval - jitter (e.g. 0.8 x interval), or
// schedule per-peer probe timers from the last reply.
TEST(NodeTest, FailureDetectedWithinDocumentedTime) {
  Options options;
  const absl::Duration bound = options.leaf_probe_interval * 1.1 +
                               (options.probe_retries + 1) * options.probe_timeout +
                               absl::Milliseconds(50);
  absl::Duration worst;
  for (int phase_ms = 0; phase_ms < 2200; phase_ms += 37) {
    Net net(options);
    Node& a = net.Add(kA);
    Node& b = net.Add(kB);
    a.StartRing();
    b.Join({a.self().endpoint});
    net.RunFor(absl::Seconds(5) + absl::Milliseconds(phase_ms));
    ASSERT_TRUE(b.active());
    net.Crash(b);
    const absl::Time crash = net.clock.Now();
    ASSERT_TRUE(net.RunUntilTrue([&] { return !a.leaf_set().Contains(kB); }, absl::Seconds(30)));
    worst = std::max(worst, net.clock.Now() - crash);
  }
  EXPECT_LE(worst, bound) << "worst detection time " << worst;
}

// A routing-table entry that is not a leaf of ours and that no message is
// routed through must still be found dead: under churn (84 s median
// sessions, `peter sim churn`) lookups ran out of reroutes on table entries
// dead for 30-120 s. Regression (fixed; table entries were never probed, so
// A kept C until a message timed out on it): periodic table maintenance now
// probes every entry.
TEST(NodeTest, DeadTableEntryOutsideLeafSetIsRemovedWithoutTraffic) {
  Options options;
  options.leaf_set_size = 2;  // one neighbour a side: C is in A's table only
  Net net(options);
  Node& a = net.Add(kA);
  Node& b = net.Add(kB);
  Node& c = net.Add(kC);
  Node& d = net.Add(Top(0xD000000000000000ULL));
  a.StartRing();
  for (Node* n : {&b, &c, &d}) {
    n->Join({a.self().endpoint});
    net.RunFor(absl::Seconds(5));
    ASSERT_TRUE(n->active());
  }
  ASSERT_FALSE(a.leaf_set().Contains(kC));
  ASSERT_NE(a.routing_table().Find(kC), nullptr);
  net.Crash(c);
  // One maintenance round (jittered up to 1.1 x interval) and the probe
  // with its retries (300 ms, 600 ms, 1.2 s while a round trip is unknown).
  const absl::Duration bound = options.routing_maintenance_interval * 1.1 + absl::Seconds(3);
  EXPECT_TRUE(net.RunUntilTrue([&] { return a.routing_table().Find(kC) == nullptr; }, bound));
  EXPECT_GE(a.stats().failures_detected, 1u);
}

// A node declared dead while it was only cut off (a network partition):
// each side declared the other dead, and when the cut heals nothing but
// the revival probes of nodes declared dead (Node::ProbeDeclaredDead) brings
// them back together: B's copies of them are second-hand, ignored for
// dead_node_memory. Regression (fixed; they stayed apart for the whole
// dead_node_memory, 30 s, plus whatever time a leaf-set change took to name
// them again): the first revival probe goes out one leaf_probe_interval
// after the death.
TEST_F(ThreeNodes, NodesDeclaredDeadAcrossAHealedCutTakeEachOtherBack) {
  bool cut = true;
  net_.drop = [&](const Sent& s) {
    const NodeId& from = s.envelope.sender.id;
    const bool to_c = s.to == c_->self().endpoint, to_a = s.to == a_->self().endpoint;
    return cut && ((from == kA && to_c) || (from == kC && to_a));
  };
  ASSERT_TRUE(net_.RunUntilTrue(
      [&] { return !a_->leaf_set().Contains(kC) && !c_->leaf_set().Contains(kA); },
      absl::Seconds(10)));
  cut = false;
  const absl::Time healed = net_.clock.Now();
  const uint64_t revivals = a_->stats().revival_probes + c_->stats().revival_probes;
  const Options options;
  EXPECT_TRUE(net_.RunUntilTrue(
      [&] { return a_->leaf_set().Contains(kC) && c_->leaf_set().Contains(kA); },
      options.leaf_probe_interval * 1.1 + absl::Milliseconds(10)))
      << "apart " << (net_.clock.Now() - healed) << " after the heal";
  EXPECT_GT(a_->stats().revival_probes + c_->stats().revival_probes, revivals);
  EXPECT_EQ(LeafIds(*a_), (std::set<NodeId>{kB, kC}));
  EXPECT_EQ(LeafIds(*c_), (std::set<NodeId>{kA, kB}));
}

// A leaf that really died is probed again a few times while its death is
// remembered (gaps doubling from leaf_probe_interval to 4 x it), never taken
// back, and left alone once the record expires. One that left by itself is
// never probed again.
TEST_F(ThreeNodes, DeadLeafIsProbedAFewTimesThenLeftAlone) {
  const Options options;
  const Endpoint c = c_->self().endpoint;
  net_.Crash(*c_);
  ASSERT_TRUE(net_.RunUntilTrue([&] { return !a_->leaf_set().Contains(kC); },
                                absl::Seconds(5)));
  const size_t dead_at = net_.transport.log.size();
  net_.RunFor(options.dead_node_memory + options.leaf_probe_interval * 2);
  const size_t expired_at = net_.transport.log.size();
  net_.RunFor(absl::Seconds(20));
  auto probes_to_c = [&](size_t from, size_t to) {
    int n = 0;
    for (size_t i = from; i < to; ++i) {
      const Sent& s = net_.transport.log[i];
      if (Is<Probe>(s) && s.envelope.sender.id == kA && s.to == c) ++n;
    }
    return n;
  };
  // 1, 2 and 4 s after the death, then every 4 s up to 30 s (jittered
  // rounds of 0.9-1.1 s): 9, give or take one.
  EXPECT_GE(probes_to_c(dead_at, expired_at), 7);
  EXPECT_LE(probes_to_c(dead_at, expired_at), 10);
  EXPECT_EQ(probes_to_c(expired_at, net_.transport.log.size()), 0);
  EXPECT_FALSE(a_->leaf_set().Contains(kC));
  EXPECT_FALSE(b_->leaf_set().Contains(kC));

  const Endpoint b = b_->self().endpoint;
  const size_t left_at = net_.transport.log.size();
  b_->Leave();
  net_.RunFor(absl::Seconds(20));
  for (size_t i = left_at; i < net_.transport.log.size(); ++i) {
    const Sent& s = net_.transport.log[i];
    EXPECT_FALSE(Is<Probe>(s) && s.to == b) << "the departed B was probed";
  }
}

// -------------------------------------------------------------- leaving

TEST_F(ThreeNodes, LeaveIsSentToLeafSetAndReceiversDropAtOnce) {
  const size_t mark = net_.transport.log.size();
  const uint64_t fa = a_->stats().failures_detected, fb = b_->stats().failures_detected;
  c_->Leave();
  EXPECT_TRUE(c_->departed());
  EXPECT_FALSE(c_->active());
  std::set<NodeId> told;
  for (size_t i = mark; i < net_.transport.log.size(); ++i) {
    const Sent& s = net_.transport.log[i];
    if (Is<Leave>(s) && s.envelope.sender.id == kC) {
      if (s.to == a_->self().endpoint) told.insert(kA);
      if (s.to == b_->self().endpoint) told.insert(kB);
    }
  }
  EXPECT_EQ(told, (std::set<NodeId>{kA, kB}));
  net_.Flush();  // one delivery each, no timers
  EXPECT_EQ(LeafIds(*a_), std::set<NodeId>{kB});
  EXPECT_EQ(LeafIds(*b_), std::set<NodeId>{kA});
  EXPECT_EQ(a_->routing_table().Find(kC), nullptr);
  EXPECT_GE(a_->stats().leaves_received, 1u);
  EXPECT_EQ(a_->stats().failures_detected, fa);  // a departure is not a failure
  EXPECT_EQ(b_->stats().failures_detected, fb);
  int downs = 0;
  for (const auto& u : net_.log.updates) {
    if (u.node == kC && !u.joined) ++downs;
  }
  EXPECT_EQ(downs, 2);  // once at A, once at B
  // The departed node ignores what still arrives.
  const size_t sent = net_.transport.log.size();
  c_->HandleMessage(Envelope{kProtocolVersion, a_->self(), Probe{77}});
  c_->Tick();
  EXPECT_EQ(net_.transport.log.size(), sent);
  EXPECT_GE(c_->stats().dropped_after_leave, 1u);
  // And lookups now resolve without C.
  absl::StatusOr<Node::LookupResult> r = LookupNow(net_, *a_, kC);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->root.id, Closest({kA, kB}, kC));
}

// Leave goes to every leaf-set member once; in a small ring the members are
// also routing-table entries. Each receiver should count one leave.
TEST_F(ThreeNodes, LeaveReachesEachReceiverOnce) {
  c_->Leave();
  net_.Flush();
  EXPECT_EQ(a_->stats().leaves_received, 1u);
  EXPECT_EQ(b_->stats().leaves_received, 1u);
}

// ------------------------------------------------------ malformed input

TEST_F(ThreeNodes, VersionZeroIsDroppedAndCounted) {
  net_.Flush();
  const size_t sent = net_.transport.log.size();
  const auto received = a_->stats().messages_received;
  NodeHandle stranger{Top(0x1100000000000000ULL), Endpoint::FromIpv4(0x7F0000F0, 4000)};
  a_->HandleMessage(Envelope{0, stranger, Probe{5, false, true, 0}});
  EXPECT_EQ(a_->stats().dropped_bad_version, 1u);
  EXPECT_EQ(net_.transport.log.size(), sent);  // no reply
  EXPECT_EQ(a_->stats().messages_received, received);
  EXPECT_FALSE(a_->leaf_set().Contains(stranger.id));  // not even noted alive
  EXPECT_EQ(a_->routing_table().Find(stranger.id), nullptr);
  // The same message with the current version is answered.
  a_->HandleMessage(Envelope{kProtocolVersion, stranger, Probe{5, false, true, 0}});
  EXPECT_EQ(a_->stats().dropped_bad_version, 1u);
  EXPECT_GT(net_.transport.log.size(), sent);
}

TEST_F(ThreeNodes, MessageClaimingOurOwnIdIsDropped) {
  net_.Flush();
  const size_t sent = net_.transport.log.size();
  const uint64_t malformed = a_->stats().dropped_malformed;
  NodeHandle impostor{kA, Endpoint::FromIpv4(0x7F0000F1, 4000)};
  a_->HandleMessage(Envelope{kProtocolVersion, impostor, Probe{9, false, true, 0}});
  RouteMsg route;
  route.id = 3;
  route.key = kB;
  route.source = impostor;
  a_->HandleMessage(Envelope{kProtocolVersion, impostor, route});
  EXPECT_EQ(a_->stats().dropped_malformed, malformed + 2);
  EXPECT_EQ(net_.transport.log.size(), sent);
  EXPECT_TRUE(net_.log.delivers.empty());
}

TEST_F(ThreeNodes, SenderWithoutEndpointIsDropped) {
  net_.Flush();
  const size_t sent = net_.transport.log.size();
  const uint64_t malformed = a_->stats().dropped_malformed;
  a_->HandleMessage(Envelope{kProtocolVersion, NodeHandle{Top(0x2200000000000000ULL), Endpoint{}},
                             Probe{9}});
  EXPECT_EQ(a_->stats().dropped_malformed, malformed + 1);
  EXPECT_EQ(net_.transport.log.size(), sent);
}

TEST_F(ThreeNodes, RowRequestBeyondTableIsMalformed) {
  net_.Flush();
  const uint64_t malformed = a_->stats().dropped_malformed;
  a_->HandleMessage(Envelope{kProtocolVersion, b_->self(), RowRequest{200}});
  EXPECT_EQ(a_->stats().dropped_malformed, malformed + 1);
}

// --------------------------------------------- rings of up to L nodes

// Nodes join one after another; every lookup from every node must end at
// the numerically closest node.
void JoinAndLookUp(int n, int leaf_set_size, uint64_t seed) {
  Options options;
  options.leaf_set_size = leaf_set_size;
  Net net(options);
  std::mt19937_64 rng(seed);
  std::vector<Node*> nodes;
  for (int i = 0; i < n; ++i) nodes.push_back(&net.Add(NodeId(rng(), rng())));
  nodes[0]->StartRing();
  for (int i = 1; i < n; ++i) {
    nodes[i]->Join({nodes[rng() % i]->self().endpoint});
    net.RunFor(absl::Seconds(2));
  }
  net.RunFor(absl::Seconds(5));
  const std::vector<NodeId> ids = net.LiveIds();
  for (Node* node : nodes) ASSERT_TRUE(node->active()) << node->self().id.ShortHex();
  int wrong = 0, failed = 0;
  for (int k = 0; k < 100; ++k) {
    Node* from = nodes[rng() % n];
    NodeId key(rng(), rng());
    absl::StatusOr<Node::LookupResult> r = LookupNow(net, *from, key);
    if (!r.ok()) {
      ++failed;
      continue;
    }
    if (r->root.id != Closest(ids, key)) {
      ++wrong;
      ADD_FAILURE() << "lookup ended at " << r->root.id.ShortHex() << ", root is "
                    << Closest(ids, key).ShortHex();
    }
  }
  EXPECT_EQ(failed, 0) << "n=" << n << " L=" << leaf_set_size;
  EXPECT_EQ(wrong, 0) << "n=" << n << " L=" << leaf_set_size;
}

// A peer hands us (in an unsolicited probe reply) far more candidate nodes
// than max_tracked_peers, none of which exists: only that many are probed,
// only max_dead_nodes of them are remembered dead, both overflows are
// counted, and lookups still reach the right nodes.
TEST(NodeTest, CandidateFloodIsBoundedByTrackedPeersAndDeadNodes) {
  Options options;
  options.max_tracked_peers = 20;
  options.max_dead_nodes = 8;
  Net net(options);
  Node& a = net.Add(kA);
  Node& b = net.Add(kB);
  Node& c = net.Add(kC);
  a.StartRing();
  b.Join({a.self().endpoint});
  net.RunFor(absl::Seconds(2));
  c.Join({a.self().endpoint});
  net.RunFor(absl::Seconds(2));
  ASSERT_TRUE(a.active() && b.active() && c.active());

  constexpr int kFakes = 200;
  ProbeReply flood;
  flood.nonce = 12345;  // answers no probe of A's
  flood.has_leaf_set = true;
  flood.leaf_version = 99;
  for (int i = 0; i < kFakes; ++i) {
    // Next to A's id, so every one would enter A's leaf set; at addresses
    // nobody answers (Net drops messages to unknown endpoints).
    flood.leaf_set.push_back(NodeHandle{NodeId(0x1000000000000000ULL, 1 + i),
                                        Endpoint::FromIpv4(0x0A000001 + i, 4000)});
  }
  a.HandleMessage(Envelope{kProtocolVersion, b.self(), flood});
  EXPECT_LE(a.tracked_peer_count(), options.max_tracked_peers);
  EXPECT_GE(a.stats().candidate_probe_overflows, kFakes - options.max_tracked_peers);
  // The probes time out and their targets are declared dead; no more than
  // max_dead_nodes are remembered. Leaf-set maintenance meanwhile offers
  // the rest again (A's neighbours do not know them; A's table does).
  net.RunFor(absl::Seconds(20));
  EXPECT_LE(a.dead_node_count(), options.max_dead_nodes);
  EXPECT_GT(a.stats().dead_node_overflows, 0u);
  EXPECT_LE(a.tracked_peer_count(), options.max_tracked_peers);
  // Still routing correctly between the real nodes.
  for (Node* from : {&a, &b, &c}) {
    for (const NodeId& key : {kA, kB, kC}) {
      absl::StatusOr<Node::LookupResult> r = LookupNow(net, *from, key);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->root.id, key);
    }
  }
}

// A flood of departures announced under made-up ids (a Leave names its
// sender): only max_dead_nodes are remembered, the rest counted.
TEST(NodeTest, LeaveFloodIsBoundedByDeadNodes) {
  Options options;
  options.max_dead_nodes = 16;
  Net net(options);
  Node& a = net.Add(kA);
  Node& b = net.Add(kB);
  a.StartRing();
  b.Join({a.self().endpoint});
  net.RunFor(absl::Seconds(2));
  ASSERT_TRUE(a.active() && b.active());
  for (int i = 0; i < 100; ++i) {
    const NodeHandle fake{NodeId(0x3000000000000000ULL, 1 + i),
                          Endpoint::FromIpv4(0x0B000001 + i, 4000)};
    a.HandleMessage(Envelope{kProtocolVersion, fake, pastry::Leave{}});
  }
  EXPECT_EQ(a.dead_node_count(), options.max_dead_nodes);
  EXPECT_EQ(a.stats().dead_node_overflows, 100 - options.max_dead_nodes);
  EXPECT_EQ(a.stats().leaves_received, 100u);
  absl::StatusOr<Node::LookupResult> r = LookupNow(net, a, kB);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->root.id, kB);
  // Remembered deaths expire after dead_node_memory; room is made again.
  net.RunFor(options.dead_node_memory + options.leaf_probe_interval * 2);
  EXPECT_EQ(a.dead_node_count(), 0u);
}

TEST(NodeTest, SmallRingsLookUpCorrectly) {
  JoinAndLookUp(5, 16, 1);
  JoinAndLookUp(8, 16, 2);
  JoinAndLookUp(30, 16, 3);
}

// Regression (fixed; was a bug in LeafSet::InRange + router fallback, see router_test.cc): in a ring of
// L/2+1..L nodes routes loop between nodes until kMaxRouteHops, and the
// lookup is dropped (times out): 2 of 100 lookups with n=12, 8 with n=16.
TEST(NodeTest, RingsOfLessThanLeafSetSizeLookUpCorrectly) {
  JoinAndLookUp(12, 16, 4);
  JoinAndLookUp(16, 16, 5);
  JoinAndLookUp(4, 4, 6);
}

}  // namespace
}  // namespace peter::pastry

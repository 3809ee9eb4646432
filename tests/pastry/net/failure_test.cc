// Failures: a crashed peer, a graceful leave, a peer that stops reading, an
// endpoint that refuses connections.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "net_test_util.h"

namespace peter::pastry::net::testing {
namespace {

constexpr int kLeafSetSize = 16;

uint64_t SumOver(const std::vector<std::unique_ptr<NodeRuntime>>& nodes,
                 uint64_t (*field)(const NodeSnapshot&)) {
  uint64_t total = 0;
  for (const auto& n : nodes) {
    if (n != nullptr) total += field(n->Snapshot());
  }
  return total;
}

uint64_t ConnectFailures(const NodeSnapshot& s) { return s.transport.connect_failures; }

void ExpectLookupsReachLiveRoots(const std::vector<std::unique_ptr<NodeRuntime>>& nodes,
                                 std::mt19937_64& rng) {
  std::vector<NodeId> ids;
  for (const auto& n : nodes) {
    if (n != nullptr) ids.push_back(n->self().id);
  }
  for (const auto& n : nodes) {
    if (n == nullptr) continue;
    for (int i = 0; i < 50; ++i) {
      const NodeId key = RandomKey(rng);
      absl::StatusOr<Node::LookupResult> r = n->Lookup(key, absl::Seconds(5));
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->root.id, ClosestId(ids, key));
    }
  }
}

TEST(FailureTest, DestroyedPeerIsDetectedAndReconnectsAreBounded) {
  std::mt19937_64 rng(21);
  auto nodes = StartRing(5, rng);
  ASSERT_EQ(nodes.size(), 5u);
  std::string mismatch;
  ASSERT_TRUE(Eventually([&] { return (mismatch = LeafSetMismatch(nodes, kLeafSetSize)).empty(); },
                         absl::Seconds(10)))
      << mismatch;
  const uint64_t failures_before = SumOver(nodes, ConnectFailures);
  const absl::Time crash = absl::Now();
  nodes[2].reset();  // no Leave: the survivors must notice on their own
  EXPECT_TRUE(Eventually([&] { return (mismatch = LeafSetMismatch(nodes, kLeafSetSize)).empty(); },
                         absl::Seconds(10)))
      << mismatch;
  const absl::Duration repair = absl::Now() - crash;
  EXPECT_LT(repair, absl::Seconds(6));
  ExpectLookupsReachLiveRoots(nodes, rng);
  // Reconnects to the dead endpoint are spaced by backoff, then stop once
  // the core has declared the node dead: a handful per survivor.
  std::this_thread::sleep_for(std::chrono::seconds(2));  // an observation window
  const uint64_t failures = SumOver(nodes, ConnectFailures) - failures_before;
  EXPECT_GE(failures, 1u);
  EXPECT_LT(failures, 4u * 12u) << "connect failures after the crash: " << failures;
  std::cerr << "repair took " << repair << ", " << failures << " connect failures\n";
}

TEST(FailureTest, GracefulLeaveIsSeenAtOnce) {
  std::mt19937_64 rng(22);
  auto nodes = StartRing(5, rng);
  ASSERT_EQ(nodes.size(), 5u);
  std::string mismatch;
  ASSERT_TRUE(Eventually([&] { return (mismatch = LeafSetMismatch(nodes, kLeafSetSize)).empty(); },
                         absl::Seconds(10)))
      << mismatch;
  const absl::Time start = absl::Now();
  nodes[1]->Leave(absl::Seconds(2));
  EXPECT_EQ(nodes[1]->WaitUntilActive(absl::Seconds(1)).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(nodes[1]->Lookup(NodeId(1, 1), absl::Seconds(1)).status().code(),
            absl::StatusCode::kCancelled);
  nodes[1].reset();
  // Failure detection would take about 2 s; a Leave is acted on at once.
  EXPECT_TRUE(Eventually([&] { return (mismatch = LeafSetMismatch(nodes, kLeafSetSize)).empty(); },
                         absl::Milliseconds(900)))
      << mismatch;
  std::cerr << "leave seen by all after " << absl::Now() - start << "\n";
  for (const auto& n : nodes) {
    if (n == nullptr) continue;
    EXPECT_GE(n->Snapshot().stats.leaves_received, 1u);
  }
  ExpectLookupsReachLiveRoots(nodes, rng);
}

class SinkApp : public Application {
 public:
  void Deliver(const RouteMessage&) override {}
};

// Sends `count` messages of `bytes` bytes straight to `to`, on the node's
// thread.
void SendDirect(NodeRuntime& node, Overlay* overlay, const NodeHandle& to, int count, size_t bytes) {
  node.Post([overlay, to, count, bytes](Node&) {
    for (int i = 0; i < count; ++i) overlay->Route(std::nullopt, std::string(bytes, 'x'), to);
  });
}

// A node with an application to send from, and a raw listener (receive
// buffer 4096) standing for a peer that takes connections and reads nothing.
class StuckPeer {
 public:
  explicit StuckPeer(RuntimeOptions o) : node_(StartNode(std::move(o))) {
    if (node_ == nullptr) return;
    node_->Post([this](Node& n) { overlay_ = n.RegisterApplication(kFirstUserAppId, &app_); });
    (void)node_->Snapshot();  // waits for the post above
    uint16_t port = 0;
    listener_ = ListenRaw(&port, 4096);
    handle_ = NodeHandle{NodeId(1, 1), Endpoint::FromIpv4(0x7f000001, port)};
  }
  ~StuckPeer() {
    if (node_ != nullptr) {
      node_->Post([this](Node&) { overlay_.reset(); });
      (void)node_->Snapshot();
    }
    if (peer_ >= 0) ::close(peer_);
    if (listener_ >= 0) ::close(listener_);
  }
  bool ok() const { return node_ != nullptr && listener_ >= 0; }
  TransportStats Transport() { return node_->Snapshot().transport; }
  // Sends `count` messages of `bytes` bytes from the node to the peer.
  void Send(int count, size_t bytes) { SendDirect(*node_, overlay_.get(), handle_, count, bytes); }
  // Takes the node's connection (and never reads from it).
  bool Accept() {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    peer_ = ::accept(listener_, nullptr, nullptr);
    return peer_ >= 0;
  }

 private:
  std::unique_ptr<NodeRuntime> node_;
  SinkApp app_;
  std::unique_ptr<Overlay> overlay_;
  int listener_ = -1;
  int peer_ = -1;
  NodeHandle handle_;
};

TEST(FailureTest, SendQueueToAPeerThatDoesNotReadIsBounded) {
  RuntimeOptions o = LoopbackOptions();
  o.max_send_queue_bytes = 256 << 10;
  o.logger->set_level(spdlog::level::err);  // overflow warnings expected
  StuckPeer stuck(std::move(o));
  ASSERT_TRUE(stuck.ok());
  constexpr size_t kPayload = 64 << 10;
  stuck.Send(4, kPayload);
  ASSERT_TRUE(stuck.Accept());
  uint64_t max_queued = 0;
  EXPECT_TRUE(Eventually(
      [&] {
        stuck.Send(8, kPayload);
        const TransportStats t = stuck.Transport();
        max_queued = std::max(max_queued, t.send_queue_bytes);
        return t.queue_overflows >= 50;
      },
      absl::Seconds(20)));
  const TransportStats t = stuck.Transport();
  // Bounded by the limit plus one frame.
  EXPECT_LE(max_queued, (256u << 10) + kPayload + 1024);
  EXPECT_LE(t.send_queue_bytes, (256u << 10) + kPayload + 1024);
  std::cerr << "queue_overflows " << t.queue_overflows << ", max queued " << max_queued << "\n";
}

// A peer that takes a connection and then reads nothing holds its slot of
// max_connections and its send queue only send_stall_timeout: a busy
// connection is neither idle nor evictable, and TCP keeps a zero window
// open indefinitely, so without the timeout it would hold them for good.
TEST(FailureTest, ConnectionToAPeerThatReadsNothingIsClosedAfterTheStallTimeout) {
  RuntimeOptions o = LoopbackOptions();
  o.send_stall_timeout = absl::Milliseconds(300);
  o.logger->set_level(spdlog::level::err);  // the stall warning is expected
  StuckPeer stuck(std::move(o));
  ASSERT_TRUE(stuck.ok());
  stuck.Send(96, 64 << 10);  // 6 MiB: more than the socket buffers between the two take
  ASSERT_TRUE(stuck.Accept());
  // (Messages the core resends to it may open, and stall, another.)
  EXPECT_TRUE(Eventually([&] { return stuck.Transport().send_stalls >= 1; }, absl::Seconds(10)));
  EXPECT_GE(stuck.Transport().connections_closed, 1u);
}

// Several peers that do not read, each under its own queue limit, still
// cannot make the node queue more than max_total_send_queue_bytes; once they
// are gone the node talks to its live peer again.
TEST(FailureTest, SendQueuesOfAllPeersTogetherAreBounded) {
  constexpr size_t kTotal = 1 << 20;
  constexpr size_t kPayload = 64 << 10;
  RuntimeOptions o = LoopbackOptions();
  // Filled in turn, three stuck peers reach the total with about a third
  // of it each, under their own limit.
  o.max_send_queue_bytes = 768 << 10;
  o.max_total_send_queue_bytes = kTotal;
  CapturedLog log = WarningsOf(o);
  auto node = StartNode(std::move(o));
  ASSERT_NE(node, nullptr);
  auto peer_node = StartActivePeer(*node);
  ASSERT_NE(peer_node, nullptr);
  SinkApp app;
  std::unique_ptr<Overlay> overlay;
  node->Post([&](Node& n) { overlay = n.RegisterApplication(kFirstUserAppId, &app); });
  (void)node->Snapshot();  // waits for the post above
  // Three stuck peers with the smallest receive buffers the kernel allows.
  std::vector<int> listeners, accepted;
  std::vector<NodeHandle> stuck;
  for (int i = 0; i < 3; ++i) {
    uint16_t port = 0;
    const int listener = ListenRaw(&port, 4096);
    ASSERT_GE(listener, 0);
    listeners.push_back(listener);
    stuck.push_back(NodeHandle{NodeId(1, 10 + i), Endpoint::FromIpv4(0x7f000001, port)});
    SendDirect(*node, overlay.get(), stuck.back(), 1, kPayload);
    pollfd p{listener, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
    accepted.push_back(::accept(listener, nullptr, nullptr));  // never read
    ASSERT_GE(accepted.back(), 0);
  }
  uint64_t max_queued = 0;
  EXPECT_TRUE(Eventually(
      [&] {
        for (const NodeHandle& to : stuck) SendDirect(*node, overlay.get(), to, 4, kPayload);
        const TransportStats t = node->Snapshot().transport;
        max_queued = std::max(max_queued, t.send_queue_bytes);
        return t.global_queue_overflows >= 50;
      },
      absl::Seconds(20)));
  TransportStats t = node->Snapshot().transport;
  std::cerr << "global_queue_overflows " << t.global_queue_overflows << ", per-peer overflows "
            << t.queue_overflows << ", max queued " << max_queued << "\n";
  // The total never passed the bound (a frame is refused if it would).
  EXPECT_LE(max_queued, kTotal);
  EXPECT_EQ(t.queue_overflows, 0u);  // no single queue reached its own limit
  // Logged, at most once a second: far fewer lines than drops.
  const int warned = log.Count("send queues of all peers hold");
  EXPECT_GE(warned, 1);
  EXPECT_LT(static_cast<uint64_t>(warned), t.global_queue_overflows);
  // The stuck peers go away (their connections fail, freeing the queues):
  // the node routes to its live peer again.
  for (int fd : accepted) ::close(fd);
  for (int fd : listeners) ::close(fd);
  EXPECT_TRUE(Eventually(
      [&] {
        absl::StatusOr<Node::LookupResult> r =
            node->Lookup(peer_node->self().id, absl::Seconds(1));
        return r.ok() && r->root.id == peer_node->self().id;
      },
      absl::Seconds(20)));
  node->Post([&](Node&) { overlay.reset(); });
  (void)node->Snapshot();
}

TEST(FailureTest, ConnectsToARefusingEndpointBackOff) {
  RuntimeOptions o = LoopbackOptions();
  o.reconnect_backoff_min = absl::Milliseconds(100);
  o.reconnect_backoff_max = absl::Seconds(5);
  auto node = StartNode(std::move(o));
  ASSERT_NE(node, nullptr);
  SinkApp app;
  std::unique_ptr<Overlay> overlay;
  node->Post([&](Node& n) { overlay = n.RegisterApplication(kFirstUserAppId, &app); });
  (void)node->Snapshot();  // waits for the post above
  const NodeHandle nobody{NodeId(2, 2), Endpoint::FromIpv4(0x7f000001, UnusedPort())};
  const absl::Time start = absl::Now();
  int rounds = 0;
  // Keep sending for 2 s: a refused connect backs off 100 ms each time
  // (without doubling: a process restarted there must be reached at once),
  // so at most about 20 attempts, however many messages are sent.
  Eventually(
      [&] {
        SendDirect(*node, overlay.get(), nobody, 1, 10);
        ++rounds;
        return absl::Now() - start > absl::Seconds(2);
      },
      absl::Seconds(3));
  const TransportStats t = node->Snapshot().transport;
  EXPECT_GE(t.connect_failures, 2u);
  EXPECT_LE(t.connect_failures, 22u);
  EXPECT_GT(t.dropped_backoff, 10u);
  std::cerr << rounds << " sends, " << t.connect_failures << " connect failures, "
            << t.dropped_backoff << " dropped in backoff\n";
  node->Post([&](Node&) { overlay.reset(); });
  (void)node->Snapshot();
}

}  // namespace
}  // namespace peter::pastry::net::testing

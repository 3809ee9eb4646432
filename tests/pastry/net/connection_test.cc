// Connection management seen from raw sockets: which connection carries the
// traffic when both sides connect at once, and idle connections closing.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <vector>

#include "gtest/gtest.h"
#include "net_test_util.h"
#include "pastry/wire/codec.h"
#include "pastry/wire/frame.h"

namespace peter::pastry::net::testing {
namespace {

// A raw socket from which whole envelopes are read.
class RawStream {
 public:
  explicit RawStream(int fd) : fd_(fd) {}
  ~RawStream() { ::close(fd_); }
  int fd() const { return fd_; }

  std::optional<Envelope> Next(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      absl::StatusOr<std::optional<std::string_view>> frame = assembler_.Next();
      if (!frame.ok()) return std::nullopt;
      if (frame->has_value()) {
        absl::StatusOr<Envelope> e = wire::Decode(**frame);
        if (e.ok()) return *e;
        continue;
      }
      if (absl::Now() > deadline) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buf[8192];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return std::nullopt;
      assembler_.Append(std::string_view(buf, static_cast<size_t>(n)));
    }
  }

  // Reads until a ProbeReply with `nonce` arrives.
  bool AwaitProbeReply(uint64_t nonce, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      std::optional<Envelope> e = Next(deadline - absl::Now());
      if (!e.has_value()) return false;
      const auto* reply = std::get_if<ProbeReply>(&e->body);
      if (reply != nullptr && reply->nonce == nonce) return true;
    }
    return false;
  }

 private:
  int fd_;
  wire::FrameAssembler assembler_;
};

class SinkApp : public Application {
 public:
  void Deliver(const RouteMessage&) override {}
};

// Listens on a port smaller (or larger) than `than`; -1 if none found.
int ListenOrdered(uint16_t than, bool smaller, uint16_t* port) {
  std::vector<int> rejected;
  int found = -1;
  for (int i = 0; i < 200 && found < 0; ++i) {
    const int fd = ListenRaw(port);
    if (fd < 0) break;
    if ((*port < than) == smaller) {
      found = fd;
    } else {
      rejected.push_back(fd);
    }
  }
  for (int fd : rejected) ::close(fd);
  return found;
}

// A node with a SinkApp registered; its overlay is released on the loop.
struct SinkNode {
  explicit SinkNode(RuntimeOptions options) : node(StartNode(std::move(options))) {
    if (node == nullptr) return;
    node->Post([this](Node& n) { overlay = n.RegisterApplication(kFirstUserAppId, &app); });
    (void)node->Snapshot();
  }
  ~SinkNode() {
    if (node == nullptr) return;
    node->Post([this](Node&) { overlay.reset(); });
    (void)node->Snapshot();
  }
  std::unique_ptr<NodeRuntime> node;
  SinkApp app;
  std::unique_ptr<Overlay> overlay;
};

// The node routes "hello" to the raw `peer` listening on `listener`; `x`
// gets the connection the node opened to it, the hello read from it.
void RouteHelloAndAccept(SinkNode& sink, int listener, const NodeHandle& peer,
                         std::optional<RawStream>& x) {
  Overlay* o = sink.overlay.get();
  sink.node->Post([o, peer](Node&) { o->Route(std::nullopt, "hello", peer); });
  pollfd p{listener, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  x.emplace(::accept(listener, nullptr, nullptr));
  ASSERT_TRUE(x->Next(absl::Seconds(5)).has_value());  // "hello" on X
}

// The node N sends to a raw peer P (N's outgoing connection X), then P
// connects to N (connection Y) and introduces itself. The connection opened
// by the smaller endpoint must carry N's traffic from then on.
void RunSimultaneousConnect(bool peer_is_smaller) {
  SinkNode sink(LoopbackOptions());
  ASSERT_NE(sink.node, nullptr);
  auto& node = sink.node;
  uint16_t port = 0;
  const int listener = ListenOrdered(node->listen_endpoint().port, peer_is_smaller, &port);
  if (listener < 0) GTEST_SKIP() << "no suitable port found";
  const NodeHandle peer{NodeId(3, 3), Endpoint::FromIpv4(0x7f000001, port)};

  std::optional<RawStream> x;
  ASSERT_NO_FATAL_FAILURE(RouteHelloAndAccept(sink, listener, peer, x));

  RawStream y(ConnectRaw(node->listen_endpoint()));
  ASSERT_GE(y.fd(), 0);
  Envelope intro;
  intro.sender = peer;
  intro.body = Probe{7, false, false, 0};
  ASSERT_TRUE(SendAll(y.fd(), wire::Encode(intro)));

  if (peer_is_smaller) {
    EXPECT_TRUE(y.AwaitProbeReply(7, absl::Seconds(5)));  // Y adopted
    EXPECT_TRUE(PeerClosed(x->fd(), absl::Seconds(5)));   // X retired
  } else {
    EXPECT_TRUE(x->AwaitProbeReply(7, absl::Seconds(5)));  // X kept
  }
  ::close(listener);
}

TEST(ConnectionTest, SimultaneousConnectUsesTheSmallerEndpointsConnection) {
  RunSimultaneousConnect(/*peer_is_smaller=*/true);
}

TEST(ConnectionTest, SimultaneousConnectKeepsOwnConnectionWhenSmaller) {
  RunSimultaneousConnect(/*peer_is_smaller=*/false);
}

// Frames queued to one peer by one handler go out in one gathered write:
// writing at once sent the first of them alone (two writes for three).
TEST(ConnectionTest, FramesQueuedInOneHandlerGoInOneWrite) {
  SinkNode sink(LoopbackOptions());
  ASSERT_NE(sink.node, nullptr);
  auto& node = sink.node;
  uint16_t port = 0;
  const int listener = ListenRaw(&port);
  ASSERT_GE(listener, 0);
  const NodeHandle peer{NodeId(3, 3), Endpoint::FromIpv4(0x7f000001, port)};
  std::optional<RawStream> x;
  ASSERT_NO_FATAL_FAILURE(RouteHelloAndAccept(sink, listener, peer, x));
  // The hello's write has completed once its queue is empty.
  ASSERT_TRUE(Eventually([&] { return node->Snapshot().transport.send_queue_bytes == 0; },
                         absl::Seconds(5)));
  const uint64_t writes = node->Snapshot().transport.frame_writes;

  Overlay* o = sink.overlay.get();
  node->Post([o, peer](Node&) {
    for (const char* m : {"one", "two", "three"}) o->Route(std::nullopt, m, peer);
  });
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(x->Next(absl::Seconds(5)).has_value());
  ASSERT_TRUE(Eventually([&] { return node->Snapshot().transport.send_queue_bytes == 0; },
                         absl::Seconds(5)));
  EXPECT_EQ(node->Snapshot().transport.frame_writes - writes, 1u);
  ::close(listener);
}

TEST(ConnectionTest, IdleConnectionsAreClosed) {
  RuntimeOptions o = LoopbackOptions();
  o.idle_timeout = absl::Milliseconds(200);
  auto node = StartNode(std::move(o));
  ASSERT_NE(node, nullptr);
  const int fd = ConnectRaw(node->listen_endpoint());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(PeerClosed(fd, absl::Seconds(5)));
  ::close(fd);
  EXPECT_TRUE(Eventually([&] { return node->Snapshot().transport.connections_closed == 1; },
                         absl::Seconds(5)));
  EXPECT_EQ(node->Snapshot().transport.connections_open, 0u);
}

TEST(ConnectionTest, IncomingConnectionsBeyondTheLimitAreRejected) {
  RuntimeOptions o = LoopbackOptions();
  o.max_connections = 2;
  o.reserved_outgoing_connections = 0;  // the next test has the reserve
  auto node = StartNode(std::move(o));
  ASSERT_NE(node, nullptr);
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) fds.push_back(ConnectRaw(node->listen_endpoint()));
  EXPECT_TRUE(Eventually([&] { return node->Snapshot().transport.connections_rejected == 2; },
                         absl::Seconds(5)));
  EXPECT_EQ(node->Snapshot().transport.connections_open, 2u);
  for (int fd : fds) ::close(fd);
}

// Raw listeners on loopback that the node connects to, and the handle each
// stands for.
struct RawPeer {
  int listener = -1;
  NodeHandle handle;
};

RawPeer ListenAsPeer(uint64_t id) {
  RawPeer p;
  uint16_t port = 0;
  p.listener = ListenRaw(&port);
  p.handle = NodeHandle{NodeId(id, id), Endpoint::FromIpv4(0x7f000001, port)};
  return p;
}

// LoopbackOptions with a cluster key: a peer that never answers the
// handshake keeps its connection busy (never idle).
RuntimeOptions SecuredOptions() {
  RuntimeOptions o = LoopbackOptions();
  o.security.cluster_key = "0123456789abcdef0123456789abcdef";
  return o;
}

// Closes the raw sockets in `fds` when the test ends (an assertion's early
// return included).
class ClosedAtExit {
 public:
  explicit ClosedAtExit(std::vector<int>& fds) : fds_(fds) {}
  ClosedAtExit(const ClosedAtExit&) = delete;
  ClosedAtExit& operator=(const ClosedAtExit&) = delete;
  ~ClosedAtExit() {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }

 private:
  std::vector<int>& fds_;
};

// The next connection to `listener`, or -1 if none arrives within `timeout`.
int AcceptWithin(int listener, absl::Duration timeout) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) return -1;
  return ::accept(listener, nullptr, nullptr);
}

// A node allowed two connections, with an application to send through,
// and three raw peers on loopback.
class TwoConnectionNode {
 public:
  explicit TwoConnectionNode(RuntimeOptions o) : sink_(WithTwoConnections(std::move(o))) {
    if (!ok()) return;
    for (uint64_t i = 0; i < 3; ++i) peers_[i] = ListenAsPeer(i + 1);
  }
  ~TwoConnectionNode() {
    for (RawPeer& p : peers_) ::close(p.listener);
  }
  bool ok() const { return sink_.node != nullptr; }
  NodeRuntime& node() { return *sink_.node; }
  int listener(int i) const { return peers_[i].listener; }
  // Sends a message to peer i (opening a connection to it if needed).
  void SendTo(int i) {
    Overlay* ov = sink_.overlay.get();
    const NodeHandle to = peers_[i].handle;
    sink_.node->Post([ov, to](Node&) { ov->Route(std::nullopt, "hello", to); });
  }

 private:
  static RuntimeOptions WithTwoConnections(RuntimeOptions o) {
    o.max_connections = 2;
    return o;
  }

  SinkNode sink_;
  RawPeer peers_[3];
};

// Outgoing connections count against max_connections too: at the bound, a
// new one closes the least recently used idle connection.
TEST(ConnectionTest, OutgoingConnectionAtTheLimitEvictsTheLeastRecentlyUsedIdleOne) {
  TwoConnectionNode n(LoopbackOptions());
  ASSERT_TRUE(n.ok());
  std::optional<RawStream> streams[3];
  for (int i = 0; i < 2; ++i) {
    n.SendTo(i);
    const int fd = AcceptWithin(n.listener(i), absl::Seconds(5));
    ASSERT_GE(fd, 0);
    streams[i].emplace(fd);
    ASSERT_TRUE(streams[i]->Next(absl::Seconds(5)).has_value());
  }
  EXPECT_EQ(n.node().Snapshot().transport.connections_open, 2u);
  n.SendTo(2);
  const int fd = AcceptWithin(n.listener(2), absl::Seconds(5));
  ASSERT_GE(fd, 0);
  streams[2].emplace(fd);
  EXPECT_TRUE(streams[2]->Next(absl::Seconds(5)).has_value());
  EXPECT_TRUE(PeerClosed(streams[0]->fd(), absl::Seconds(5)));  // the oldest made room
  const TransportStats t = n.node().Snapshot().transport;
  EXPECT_GE(t.connections_evicted, 1u);
  EXPECT_EQ(t.outgoing_refused, 0u);
  EXPECT_LE(t.connections_open, 2u);
}

// With no idle connection to close (both still handshaking with peers that
// never answer), the outgoing connection is not opened: the message is
// dropped and counted.
TEST(ConnectionTest, OutgoingConnectionAtTheLimitIsRefusedWhenNoneIsIdle) {
  TwoConnectionNode n(SecuredOptions());
  ASSERT_TRUE(n.ok());
  std::vector<int> silent;
  ClosedAtExit close_silent(silent);
  for (int i = 0; i < 2; ++i) {
    n.SendTo(i);
    const int fd = AcceptWithin(n.listener(i), absl::Seconds(5));
    ASSERT_GE(fd, 0);
    silent.push_back(fd);
  }
  n.SendTo(2);
  EXPECT_TRUE(Eventually([&] { return n.node().Snapshot().transport.outgoing_refused >= 1; },
                         absl::Seconds(1)));
  EXPECT_EQ(AcceptWithin(n.listener(2), absl::Milliseconds(100)), -1);
  EXPECT_EQ(n.node().Snapshot().transport.connections_evicted, 0u);
}

// Slots reserved for outgoing connections: an incoming flood (peers that
// connect and never finish the cluster-key handshake, so no slot is idle to
// evict) takes only max_connections minus the reserve, and the rest are
// refused (counted); the node still dials its peers. Without the reserve,
// the flood takes both slots and the outgoing connection is refused.
TEST(ConnectionTest, IncomingFloodLeavesTheReservedSlotsToOutgoingConnections) {
  RuntimeOptions o = SecuredOptions();
  o.reserved_outgoing_connections = 1;  // of TwoConnectionNode's two
  TwoConnectionNode n(std::move(o));
  ASSERT_TRUE(n.ok());
  std::vector<int> fds;
  ClosedAtExit close_fds(fds);
  for (int i = 0; i < 3; ++i) fds.push_back(ConnectRaw(n.node().listen_endpoint()));
  EXPECT_TRUE(Eventually([&] { return n.node().Snapshot().transport.connections_rejected == 2; },
                         absl::Seconds(1)));
  n.SendTo(0);
  const int fd = AcceptWithin(n.listener(0), absl::Seconds(1));
  EXPECT_GE(fd, 0);
  if (fd >= 0) fds.push_back(fd);
  const TransportStats t = n.node().Snapshot().transport;
  EXPECT_EQ(t.outgoing_refused, 0u);
  EXPECT_EQ(t.connections_evicted, 0u);
  EXPECT_EQ(t.connections_rejected, 2u);
}

// Incoming connections that send nothing are bounded in number and time:
// beyond max_pending_incoming the oldest is closed for the new one, and
// each is closed after pending_timeout (both counted). A connection whose
// first frame decodes leaves the pending set and stays open. Without the
// bound, silent connections held incoming slots for idle_timeout (5 min).
TEST(ConnectionTest, SilentIncomingConnectionsAreBoundedInNumberAndTime) {
  RuntimeOptions o = LoopbackOptions();
  o.max_pending_incoming = 2;
  o.pending_timeout = absl::Milliseconds(500);
  std::unique_ptr<NodeRuntime> node = StartNode(std::move(o));
  ASSERT_NE(node, nullptr);
  auto transport = [&] { return node->Snapshot().transport; };
  std::vector<int> silent;
  ClosedAtExit close_silent(silent);
  for (int i = 0; i < 2; ++i) {
    silent.push_back(ConnectRaw(node->listen_endpoint()));
    ASSERT_GE(silent.back(), 0);
    // One at a time, so the accepting order is the connecting order.
    ASSERT_TRUE(Eventually([&] { return transport().connections_accepted == silent.size(); },
                           absl::Seconds(2)));
  }
  // A peer that speaks at once: a probe.
  RawStream speaker(ConnectRaw(node->listen_endpoint()));
  ASSERT_GE(speaker.fd(), 0);
  EXPECT_TRUE(PeerClosed(silent[0], absl::Seconds(2)));  // the oldest made room for it
  EXPECT_EQ(transport().pending_evicted, 1u);
  Envelope probe;
  probe.sender = NodeHandle{NodeId(7, 7), Endpoint::FromIpv4(0x7f000001, 1)};
  probe.body = Probe{42, false, false, 0};
  ASSERT_TRUE(SendAll(speaker.fd(), wire::Encode(probe)));
  EXPECT_TRUE(speaker.AwaitProbeReply(42, absl::Seconds(2)));
  // The silent one left goes at pending_timeout; the speaker stays.
  EXPECT_TRUE(PeerClosed(silent[1], absl::Seconds(3)));
  EXPECT_TRUE(Eventually([&] { return transport().pending_timeouts == 1; }, absl::Seconds(2)));
  EXPECT_FALSE(PeerClosed(speaker.fd(), absl::Milliseconds(700)));
  const TransportStats t = transport();
  EXPECT_EQ(t.pending_evicted, 1u);
  EXPECT_EQ(t.pending_timeouts, 1u);
  EXPECT_EQ(t.connections_open, 1u);
}

}  // namespace
}  // namespace peter::pastry::net::testing

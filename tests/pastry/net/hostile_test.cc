// Hostile or broken peers on raw sockets: the node drops and counts what it
// cannot use, closes connections whose framing is lost, and keeps working.
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "net_test_util.h"
#include "pastry/wire/codec.h"
#include "pastry/wire/frame.h"

namespace peter::pastry::net::testing {
namespace {

std::string Le32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

// Stream framing for one segment of `words` words, followed by `body`.
std::string OneSegmentFrame(uint32_t words, const std::string& body) {
  return Le32(0) + Le32(words) + body;
}

std::string RandomBytes(size_t n, std::mt19937_64& rng) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::string ProbeFrame(uint16_t version) {
  Envelope e;
  e.version = version;
  e.sender = NodeHandle{NodeId(77, 77), Endpoint::FromIpv4(0x7f000001, 1)};
  e.body = Probe{1, false, false, 0};
  return wire::Encode(e);
}

class HostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(11);
    nodes_ = StartRing(2, rng);
    ASSERT_EQ(nodes_.size(), 2u);
    target_ = nodes_[0].get();
  }

  // The attacked node and its peer still route lookups to each other.
  void ExpectStillWorking() {
    for (const auto& node : nodes_) {
      for (const NodeRuntime* other : {nodes_[0].get(), nodes_[1].get()}) {
        absl::StatusOr<Node::LookupResult> r = node->Lookup(other->self().id, absl::Seconds(5));
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_EQ(r->root.id, other->self().id);
      }
    }
  }

  int Connect() {
    const int fd = ConnectRaw(target_->listen_endpoint());
    EXPECT_GE(fd, 0);
    return fd;
  }

  std::vector<std::unique_ptr<NodeRuntime>> nodes_;
  NodeRuntime* target_ = nullptr;
};

TEST_F(HostileTest, GarbageInsideValidFramingIsDroppedAndCounted) {
  const int fd = Connect();
  // A root pointer of all ones is no valid struct pointer.
  ASSERT_TRUE(SendAll(fd, OneSegmentFrame(4, std::string(32, '\xff'))));
  EXPECT_TRUE(Eventually(
      [&] { return target_->Snapshot().transport.frames_dropped_decode >= 1; }, absl::Seconds(5)));
  // The connection survives a bad frame: a good one still gets through.
  const uint64_t probes = target_->Snapshot().stats.messages_received[3];
  ASSERT_TRUE(SendAll(fd, ProbeFrame(kProtocolVersion)));
  EXPECT_TRUE(Eventually(
      [&] { return target_->Snapshot().stats.messages_received[3] > probes; }, absl::Seconds(5)));
  ::close(fd);
  ExpectStillWorking();
}

TEST_F(HostileTest, RandomBytesThenCloseAreCounted) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 20; ++round) {
    const TransportStats before = target_->Snapshot().transport;
    const int fd = Connect();
    ASSERT_TRUE(SendAll(fd, RandomBytes(1 + rng() % 3000, rng)));
    ::close(fd);
    EXPECT_TRUE(Eventually(
        [&] {
          const TransportStats t = target_->Snapshot().transport;
          return t.frames_dropped_decode + t.frames_dropped_oversize + t.frames_dropped_unknown_type +
                     t.frames_dropped_old_version >
                 before.frames_dropped_decode + before.frames_dropped_oversize +
                     before.frames_dropped_unknown_type + before.frames_dropped_old_version;
        },
        absl::Seconds(5)))
        << "round " << round;
  }
  ExpectStillWorking();
}

TEST_F(HostileTest, OversizedFrameClosesTheConnection) {
  const int fd = Connect();
  // 2^20 words = 8 MiB, over the 4 MiB default; only the header is sent.
  ASSERT_TRUE(SendAll(fd, OneSegmentFrame(1 << 20, "")));
  EXPECT_TRUE(PeerClosed(fd, absl::Seconds(5)));
  ::close(fd);
  EXPECT_EQ(target_->Snapshot().transport.frames_dropped_oversize, 1u);
  // Too many segments loses the framing too.
  const int fd2 = Connect();
  ASSERT_TRUE(SendAll(fd2, Le32(100000) + std::string(64, '\0')));
  EXPECT_TRUE(PeerClosed(fd2, absl::Seconds(5)));
  ::close(fd2);
  EXPECT_EQ(target_->Snapshot().transport.frames_dropped_oversize, 2u);
  ExpectStillWorking();
}

// Peers that each send most of a large frame and stall: together they may
// hold at most max_total_receive_bytes; the connection whose bytes pass it
// is closed and counted, the others and the ring keep working.
TEST(HostileLimitTest, PartialFramesOfAllConnectionsAreBounded) {
  RuntimeOptions o = LoopbackOptions();
  o.max_frame_bytes = 1 << 20;
  o.max_total_receive_bytes = 1 << 20;
  CapturedLog log = WarningsOf(o);
  auto target = StartNode(std::move(o));
  ASSERT_NE(target, nullptr);
  auto peer = StartActivePeer(*target);
  ASSERT_NE(peer, nullptr);
  // Frames of 768 KiB declared, 400 KiB of each sent: two fit (800 KiB),
  // the third passes 1 MiB.
  const std::string partial = OneSegmentFrame((768 << 10) / 8, std::string(400 << 10, '\0'));
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    fds.push_back(ConnectRaw(target->listen_endpoint()));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(SendAll(fds.back(), partial));
  }
  EXPECT_TRUE(Eventually([&] { return target->Snapshot().transport.receive_overflows >= 1; },
                         absl::Seconds(10)));
  // Exactly one of them was closed (whichever read passed the bound); the
  // two left hold 800 KiB, under it.
  int closed = 0;
  for (int fd : fds) closed += PeerClosed(fd, absl::Seconds(1)) ? 1 : 0;
  EXPECT_EQ(closed, 1);
  EXPECT_EQ(target->Snapshot().transport.receive_overflows, 1u);
  EXPECT_EQ(log.Count("partial frames of all connections over 1048576 bytes"), 1);
  // The node still routes to its peer.
  absl::StatusOr<Node::LookupResult> r = target->Lookup(peer->self().id, absl::Seconds(5));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->root.id, peer->self().id);
  for (int fd : fds) ::close(fd);
}

TEST_F(HostileTest, TruncatedFrameThenCloseIsCounted) {
  const std::string frame = ProbeFrame(kProtocolVersion);
  const int fd = Connect();
  ASSERT_TRUE(SendAll(fd, frame.substr(0, frame.size() - 3)));
  ::close(fd);
  EXPECT_TRUE(Eventually(
      [&] { return target_->Snapshot().transport.frames_dropped_decode == 1; }, absl::Seconds(5)));
  ExpectStillWorking();
}

TEST_F(HostileTest, OldProtocolVersionIsDroppedAndCounted) {
  const int fd = Connect();
  ASSERT_TRUE(SendAll(fd, ProbeFrame(0)));
  EXPECT_TRUE(Eventually(
      [&] { return target_->Snapshot().transport.frames_dropped_old_version == 1; },
      absl::Seconds(5)));
  ::close(fd);
  ExpectStillWorking();
}

// A well-formed probe from a stranger is answered over a new connection to
// the listen endpoint the stranger claims.
TEST_F(HostileTest, ProbeFromARawPeerIsAnsweredAtItsListenEndpoint) {
  uint16_t port = 0;
  const int listener = ListenRaw(&port);
  ASSERT_GE(listener, 0);
  Envelope e;
  e.sender = NodeHandle{NodeId(5, 5), Endpoint::FromIpv4(0x7f000001, port)};
  e.body = Probe{42, false, false, 0};
  const int fd = Connect();
  ASSERT_TRUE(SendAll(fd, wire::Encode(e)));
  // The node's reply comes over the connection we sent on (adopted for our
  // claimed endpoint) or a new one to our listener; accept either. Other
  // frames may come first or with it (the node probes a new leaf-set
  // member, or asks for its leaf set): look for the reply among them.
  wire::FrameAssembler frames;
  std::optional<Envelope> reply;
  EXPECT_TRUE(Eventually(
      [&] {
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) frames.Append(std::string_view(buf, static_cast<size_t>(n)));
        while (!reply.has_value()) {
          absl::StatusOr<std::optional<std::string_view>> frame = frames.Next();
          if (!frame.ok() || !frame->has_value()) break;
          absl::StatusOr<Envelope> e = wire::Decode(**frame);
          if (e.ok() && std::holds_alternative<ProbeReply>(e->body)) reply = *e;
        }
        return reply.has_value();
      },
      absl::Seconds(5)));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(std::get<ProbeReply>(reply->body).nonce, 42u);
  EXPECT_EQ(reply->sender.id, target_->self().id);
  ::close(fd);
  ::close(listener);
}

}  // namespace
}  // namespace peter::pastry::net::testing

// Secured nodes on loopback: rings form with a shared cluster key or with
// TLS certificates from one CA, and peers without valid credentials are
// refused and counted. Certificates are made at test time (test_pki.h).
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "net_test_util.h"
#include "pastry/net/runtime_impl.h"
#include "pastry/net/security.h"
#include "pastry/net/transport.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "tests/pastry/net/test_pki.h"

namespace peter::pastry::net::testing {
namespace {

using peter::testing::OpensslCertifiedId;
using peter::testing::TestPki;
using peter::testing::TlsFiles;

constexpr char kKey[] = "a cluster key of more than 16 bytes";

uint64_t Refused(NodeRuntime& node, AuthFailure why) {
  return node.Snapshot().transport.auth_failures[static_cast<size_t>(why)];
}

SecurityOptions TlsOptions(const TlsFiles& f) {
  SecurityOptions s;
  s.tls_cert_file = f.cert;
  s.tls_key_file = f.key;
  s.tls_ca_file = f.ca;
  return s;
}

// Starts a node with `security`, joining through `via` (if any).
std::unique_ptr<NodeRuntime> Start(const SecurityOptions& security, NodeRuntime* via,
                                   absl::Duration give_up = absl::Seconds(30)) {
  RuntimeOptions o = LoopbackOptions();
  o.security = security;
  o.bootstrap_retry_for = give_up;
  if (via != nullptr) o.bootstrap.push_back(via->listen_endpoint().ToString());
  return StartNode(std::move(o));
}

// A node that must not get in: `via` refuses it (counted under `why`) and it
// never becomes active. (A secured outsider gives up after its bootstrap
// deadline; a plain one, whose TCP connects succeed, keeps trying.)
void ExpectCannotJoin(const SecurityOptions& security, NodeRuntime& via, AuthFailure why) {
  const uint64_t before = Refused(via, why);
  std::unique_ptr<NodeRuntime> outsider = Start(security, &via, absl::Seconds(2));
  ASSERT_NE(outsider, nullptr);
  EXPECT_TRUE(Eventually([&] { return Refused(via, why) > before; }, absl::Seconds(10)))
      << AuthFailureName(why);
  const absl::Status s = outsider->WaitUntilActive(absl::Seconds(4));
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(outsider->Snapshot().active);
  // The ring never heard of it.
  for (const NodeHandle& h : via.Snapshot().leaf_set) EXPECT_NE(h.id, outsider->self().id);
}

class SecureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char path[] = "/tmp/peter-secure-XXXXXX";
    ASSERT_NE(mkdtemp(path), nullptr);
    dir_ = path;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

TEST_F(SecureTest, ClusterKeyRingFormsAndRoutes) {
  SecurityOptions s;
  s.cluster_key = kKey;
  std::vector<std::unique_ptr<NodeRuntime>> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(Start(s, i == 0 ? nullptr : nodes[0].get()));
    ASSERT_NE(nodes.back(), nullptr);
  }
  for (auto& n : nodes) ASSERT_TRUE(n->WaitUntilActive(absl::Seconds(20)).ok());
  EXPECT_TRUE(Eventually([&] { return LeafSetMismatch(nodes, 16).empty(); }, absl::Seconds(20)));
  absl::StatusOr<Node::LookupResult> r = nodes[2]->Lookup(nodes[1]->self().id, absl::Seconds(5));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->root.id, nodes[1]->self().id);
  for (auto& n : nodes) {
    for (uint64_t c : n->Snapshot().transport.auth_failures) EXPECT_EQ(c, 0u);
  }
}

TEST_F(SecureTest, WrongOrMissingClusterKeyCannotJoin) {
  SecurityOptions s;
  s.cluster_key = kKey;
  std::unique_ptr<NodeRuntime> member = Start(s, nullptr);
  ASSERT_TRUE(member->WaitUntilActive(absl::Seconds(10)).ok());

  SecurityOptions wrong;
  wrong.cluster_key = "not the cluster key, but long";
  ExpectCannotJoin(wrong, *member, AuthFailure::kKey);
  ExpectCannotJoin(SecurityOptions{}, *member, AuthFailure::kHello);
}

TEST_F(SecureTest, ShortClusterKeyIsRefusedAtStart) {
  RuntimeOptions o = LoopbackOptions();
  o.security.cluster_key = "short";
  absl::StatusOr<std::unique_ptr<NodeRuntime>> node = NodeRuntime::Start(o);
  EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SecureTest, TlsRingUsesCertifiedIds) {
  absl::StatusOr<TestPki> pki = TestPki::Create(dir_, "ca");
  ASSERT_TRUE(pki.ok()) << pki.status();
  std::vector<std::unique_ptr<NodeRuntime>> nodes;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<TlsFiles> files = pki->Issue("n" + std::to_string(i));
    ASSERT_TRUE(files.ok()) << files.status();
    nodes.push_back(Start(TlsOptions(*files), i == 0 ? nullptr : nodes[0].get()));
    ASSERT_NE(nodes.back(), nullptr);
    // The id is the certificate's, as the openssl tool computes it.
    absl::StatusOr<std::string> expected = OpensslCertifiedId(files->cert);
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(nodes.back()->self().id.ToHex(), *expected);
  }
  for (auto& n : nodes) ASSERT_TRUE(n->WaitUntilActive(absl::Seconds(20)).ok());
  EXPECT_TRUE(Eventually([&] { return LeafSetMismatch(nodes, 16).empty(); }, absl::Seconds(20)));
  absl::StatusOr<Node::LookupResult> r = nodes[1]->Lookup(nodes[2]->self().id, absl::Seconds(5));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->root.id, nodes[2]->self().id);
}

// A larger TLS ring: more connection churn (peers that may dial each other
// at once, duplicates retired by a half-close without close_notify), and a
// crashed node repaired around, with no peer refused on the way.
TEST_F(SecureTest, TlsRingRepairsAFailure) {
  absl::StatusOr<TestPki> pki = TestPki::Create(dir_, "ca");
  ASSERT_TRUE(pki.ok()) << pki.status();
  std::vector<std::unique_ptr<NodeRuntime>> nodes;
  for (int i = 0; i < 6; ++i) {
    absl::StatusOr<TlsFiles> files = pki->Issue("n" + std::to_string(i));
    ASSERT_TRUE(files.ok()) << files.status();
    nodes.push_back(Start(TlsOptions(*files), i == 0 ? nullptr : nodes[i / 2].get()));
    ASSERT_NE(nodes.back(), nullptr);
  }
  for (auto& n : nodes) ASSERT_TRUE(n->WaitUntilActive(absl::Seconds(20)).ok());
  EXPECT_TRUE(Eventually([&] { return LeafSetMismatch(nodes, 16).empty(); }, absl::Seconds(20)))
      << LeafSetMismatch(nodes, 16);
  nodes[3].reset();  // no Leave: a crash
  EXPECT_TRUE(Eventually([&] { return LeafSetMismatch(nodes, 16).empty(); }, absl::Seconds(30)))
      << LeafSetMismatch(nodes, 16);
  for (auto& n : nodes) {
    if (n == nullptr) continue;
    for (uint64_t c : n->Snapshot().transport.auth_failures) EXPECT_EQ(c, 0u);
  }
}

TEST_F(SecureTest, TlsRefusesAnExplicitId) {
  absl::StatusOr<TestPki> pki = TestPki::Create(dir_, "ca");
  ASSERT_TRUE(pki.ok()) << pki.status();
  absl::StatusOr<TlsFiles> files = pki->Issue("n");
  ASSERT_TRUE(files.ok()) << files.status();
  RuntimeOptions o = LoopbackOptions();
  o.security = TlsOptions(*files);
  o.id = NodeId(1, 2);
  EXPECT_EQ(NodeRuntime::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SecureTest, TlsMismatchedKeyIsRefusedAtStart) {
  absl::StatusOr<TestPki> pki = TestPki::Create(dir_, "ca");
  ASSERT_TRUE(pki.ok()) << pki.status();
  absl::StatusOr<TlsFiles> a = pki->Issue("a");
  absl::StatusOr<TlsFiles> b = pki->Issue("b");
  ASSERT_TRUE(a.ok() && b.ok());
  RuntimeOptions o = LoopbackOptions();
  o.security = TlsOptions(*a);
  o.security.tls_key_file = b->key;
  absl::StatusOr<std::unique_ptr<NodeRuntime>> node = NodeRuntime::Start(o);
  EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(node.status().message().find("TLS key \"" + b->key), std::string::npos)
      << node.status();
}

TEST_F(SecureTest, CertificateFromAnotherCaOrNoneCannotJoin) {
  absl::StatusOr<TestPki> pki = TestPki::Create(dir_, "ca");
  absl::StatusOr<TestPki> rogue = TestPki::Create(dir_, "rogue");
  ASSERT_TRUE(pki.ok() && rogue.ok());
  absl::StatusOr<TlsFiles> good = pki->Issue("good");
  absl::StatusOr<TlsFiles> bad = rogue->Issue("bad");
  ASSERT_TRUE(good.ok() && bad.ok());
  std::unique_ptr<NodeRuntime> member = Start(TlsOptions(*good), nullptr);
  ASSERT_TRUE(member->WaitUntilActive(absl::Seconds(10)).ok());

  ExpectCannotJoin(TlsOptions(*bad), *member, AuthFailure::kTls);
  ExpectCannotJoin(SecurityOptions{}, *member, AuthFailure::kTls);
}

// A peer of its own making: a bare transport on its own thread, with
// credentials the test chooses, that sends one envelope.
class RawPeer {
 public:
  explicit RawPeer(std::unique_ptr<PeerSecurity> security) {
    TransportConfig config;
    config.security = std::move(security);
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto logger = std::make_shared<spdlog::logger>("raw-peer", sink);
    logger->set_level(spdlog::level::off);
    transport_ = std::make_unique<TcpTransport>(io_, config, logger);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~RawPeer() {
    asio::post(io_, [this] { transport_->Shutdown(); });
    work_.reset();
    thread_.join();
  }
  void Send(const Endpoint& to, const Envelope& e) {
    asio::post(io_, [this, to, e] { transport_->Send(to, e); });
  }

 private:
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(io_)};
  std::unique_ptr<TcpTransport> transport_;
  std::thread thread_;
};

Envelope ProbeFrom(const NodeId& id) {
  Envelope e;
  e.sender = NodeHandle{id, Endpoint::FromIpv4(0x7f000001, 1)};
  e.body = Probe{1, false, false, 0};
  return e;
}

// A member's valid certificate does not let it speak as another node: not in
// the handshake (certificate_id), not in a frame's sender (sender_id).
TEST_F(SecureTest, AValidCertificateClaimingAnotherIdIsRefused) {
  absl::StatusOr<TestPki> pki = TestPki::Create(dir_, "ca");
  ASSERT_TRUE(pki.ok()) << pki.status();
  absl::StatusOr<TlsFiles> target_files = pki->Issue("target");
  absl::StatusOr<TlsFiles> liar_files = pki->Issue("liar");
  ASSERT_TRUE(target_files.ok() && liar_files.ok());
  std::unique_ptr<NodeRuntime> target = Start(TlsOptions(*target_files), nullptr);
  ASSERT_TRUE(target->WaitUntilActive(absl::Seconds(10)).ok());
  const Endpoint at = target->listen_endpoint();
  const uint64_t probes_before = target->Snapshot().stats.messages_received[3];

  {  // The hello claims an id the certificate does not certify.
    absl::StatusOr<std::unique_ptr<PeerSecurity>> sec =
        LoadPeerSecurity(TlsOptions(*liar_files));
    ASSERT_TRUE(sec.ok()) << sec.status();
    const NodeId claimed(0xabc, 0xdef);
    ASSERT_NE((*sec)->certified_id, claimed);
    (*sec)->self_id = claimed;
    RawPeer liar(std::move(*sec));
    liar.Send(at, ProbeFrom(claimed));
    EXPECT_TRUE(Eventually([&] { return Refused(*target, AuthFailure::kCertificateId) >= 1; },
                           absl::Seconds(10)));
  }
  {  // The handshake is honest; a frame then claims another sender.
    absl::StatusOr<std::unique_ptr<PeerSecurity>> sec =
        LoadPeerSecurity(TlsOptions(*liar_files));
    ASSERT_TRUE(sec.ok()) << sec.status();
    (*sec)->self_id = *(*sec)->certified_id;
    RawPeer liar(std::move(*sec));
    liar.Send(at, ProbeFrom(NodeId(0x5, 0x5)));
    EXPECT_TRUE(Eventually([&] { return Refused(*target, AuthFailure::kSenderId) >= 1; },
                           absl::Seconds(10)));
  }
  // Neither probe reached the core.
  EXPECT_EQ(target->Snapshot().stats.messages_received[3], probes_before);
  // An honest member with the same certificate is served: its probe does.
  absl::StatusOr<std::unique_ptr<PeerSecurity>> sec = LoadPeerSecurity(TlsOptions(*liar_files));
  ASSERT_TRUE(sec.ok()) << sec.status();
  const NodeId honest = *(*sec)->certified_id;
  (*sec)->self_id = honest;
  RawPeer peer(std::move(*sec));
  peer.Send(at, ProbeFrom(honest));
  EXPECT_TRUE(Eventually(
      [&] { return target->Snapshot().stats.messages_received[3] > probes_before; },
      absl::Seconds(10)));
}

// A peer that connects and says nothing is cut off after the handshake
// timeout (the connect timeout), and counted.
TEST_F(SecureTest, ASilentPeerTimesOut) {
  RuntimeOptions o = LoopbackOptions();
  o.security.cluster_key = kKey;
  o.connect_timeout = absl::Milliseconds(300);
  std::unique_ptr<NodeRuntime> node = StartNode(o);
  ASSERT_NE(node, nullptr);
  const int fd = ConnectRaw(node->listen_endpoint());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(PeerClosed(fd, absl::Seconds(5)));
  EXPECT_GE(Refused(*node, AuthFailure::kTimeout), 1u);
  ::close(fd);
}

}  // namespace
}  // namespace peter::pastry::net::testing

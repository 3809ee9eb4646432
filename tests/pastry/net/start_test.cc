// Start-up: addresses, ports in use, unreachable bootstraps, advertising.
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "net_test_util.h"

namespace peter::pastry::net::testing {
namespace {

TEST(StartTest, BadListenStringIsInvalidArgument) {
  for (const char* bad : {"nonsense", "127.0.0.1", "127.0.0.1:99999", "[::1", "::1:0",
                          "no-such-host.invalid:0", ""}) {
    absl::StatusOr<std::unique_ptr<NodeRuntime>> node = NodeRuntime::Start(LoopbackOptions(bad));
    EXPECT_EQ(node.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(StartTest, BadBootstrapStringIsInvalidArgument) {
  RuntimeOptions o = LoopbackOptions();
  o.bootstrap = {"127.0.0.1"};
  EXPECT_EQ(NodeRuntime::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.bootstrap = {"127.0.0.1:0"};
  EXPECT_EQ(NodeRuntime::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StartTest, BadOptionsAreInvalidArgument) {
  RuntimeOptions o = LoopbackOptions();
  o.pastry.leaf_set_size = 3;
  EXPECT_EQ(NodeRuntime::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
}

// --incarnation-file: each start's incarnation is larger than the file's,
// whatever the clock says, and is written back before the node joins; a
// file that is not ours stops the start with a clear error.
TEST(StartTest, IncarnationFileMakesEveryRunLarger) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "peter-start-XXXXXX").string();
  const std::string dir = ::mkdtemp(tmpl.data());
  const std::string path = dir + "/incarnation";
  // An earlier run's, far ahead of this machine's clock.
  std::ofstream(path) << "4000000000000000000\n";
  RuntimeOptions o = LoopbackOptions();
  o.incarnation_file = path;
  for (uint64_t run = 1; run <= 2; ++run) {
    auto node = StartNode(o);
    ASSERT_NE(node, nullptr);
    EXPECT_EQ(node->self().incarnation, 4'000'000'000'000'000'000u + run);
    std::ifstream in(path);
    uint64_t written = 0;
    in >> written;
    EXPECT_EQ(written, node->self().incarnation);
  }
  std::ofstream(path) << "garbage\n";
  absl::StatusOr<std::unique_ptr<NodeRuntime>> bad = NodeRuntime::Start(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(path), absl::string_view::npos) << bad.status();
  std::filesystem::remove_all(dir);
}

TEST(StartTest, PortInUseFailsClearly) {
  auto first = StartNode(LoopbackOptions());
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<NodeRuntime>> second =
      NodeRuntime::Start(LoopbackOptions(first->listen_endpoint().ToString()));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use"), absl::string_view::npos) << second.status();
  EXPECT_NE(second.status().message().find(first->listen_endpoint().ToString()),
            absl::string_view::npos);
}

TEST(StartTest, UnreachableBootstrapGivesUnavailablePromptly) {
  RuntimeOptions o = LoopbackOptions();
  o.bootstrap = {"127.0.0.1:" + std::to_string(UnusedPort())};
  o.bootstrap_retry_for = absl::Seconds(2);
  auto node = StartNode(std::move(o));
  ASSERT_NE(node, nullptr);
  const absl::Time start = absl::Now();
  absl::Status s = node->WaitUntilActive(absl::Seconds(30));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_NE(s.message().find("refused"), absl::string_view::npos) << s;
  EXPECT_GE(node->Snapshot().transport.connect_failures, 1u);
}

// A bootstrap that comes up late (e.g. started at the same time) is joined
// through by one of the core's join retries.
TEST(StartTest, BootstrapThatComesUpLaterIsJoined) {
  const uint16_t port = UnusedPort();
  RuntimeOptions o = LoopbackOptions();
  o.bootstrap = {"127.0.0.1:" + std::to_string(port)};
  o.pastry.join_timeout = absl::Milliseconds(500);
  auto joiner = StartNode(std::move(o));
  ASSERT_NE(joiner, nullptr);
  // Let several connects fail: the backoff would grow past join_timeout.
  ASSERT_TRUE(Eventually([&] { return joiner->Snapshot().transport.connect_failures >= 6; },
                         absl::Seconds(10)));
  auto bootstrap = StartNode(LoopbackOptions("127.0.0.1:" + std::to_string(port)));
  ASSERT_NE(bootstrap, nullptr);
  const absl::Time start = absl::Now();
  EXPECT_TRUE(joiner->WaitUntilActive(absl::Seconds(10)).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(StartTest, OwnAddressAsOnlyBootstrapStartsARing) {
  const uint16_t port = UnusedPort();
  RuntimeOptions o = LoopbackOptions("127.0.0.1:" + std::to_string(port));
  o.bootstrap = {"127.0.0.1:" + std::to_string(port)};
  auto node = StartNode(std::move(o));
  ASSERT_NE(node, nullptr);
  EXPECT_TRUE(node->WaitUntilActive(absl::Seconds(5)).ok());
}

TEST(StartTest, ListeningOnEveryInterfaceAdvertisesLoopback) {
  auto node = StartNode(LoopbackOptions("0.0.0.0:0"));
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->listen_endpoint().HostString(), "0.0.0.0");
  EXPECT_EQ(node->self().endpoint.HostString(), "127.0.0.1");
  EXPECT_EQ(node->self().endpoint.port, node->listen_endpoint().port);
  // Reachable through what it advertises.
  RuntimeOptions o = LoopbackOptions();
  o.bootstrap = {node->self().endpoint.ToString()};
  auto second = StartNode(std::move(o));
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->WaitUntilActive(absl::Seconds(10)).ok());
}

TEST(StartTest, ExplicitAdvertiseAddressAndId) {
  RuntimeOptions o = LoopbackOptions("[::]:0");
  o.advertise = "[::1]:0";
  o.id = NodeId(0x1234, 0x5678);
  auto node = StartNode(std::move(o));
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->self().endpoint.HostString(), "::1");
  EXPECT_EQ(node->self().endpoint.port, node->listen_endpoint().port);
  EXPECT_EQ(node->self().id, NodeId(0x1234, 0x5678));
}

// Destroying nodes while they connect, join and answer must not crash or
// hang.
TEST(StartTest, DestroyWhileConnectionsAreInFlight) {
  auto seed = StartNode(LoopbackOptions());
  ASSERT_NE(seed, nullptr);
  for (int i = 0; i < 10; ++i) {
    RuntimeOptions o = LoopbackOptions();
    o.bootstrap = {seed->self().endpoint.ToString(), "127.0.0.1:" + std::to_string(UnusedPort())};
    auto node = StartNode(std::move(o));
    ASSERT_NE(node, nullptr);
    if (i % 2 == 1) (void)node->WaitUntilActive(absl::Milliseconds(5 * i));
  }
  EXPECT_TRUE(seed->Lookup(NodeId(9, 9), absl::Seconds(5)).ok());
}

}  // namespace
}  // namespace peter::pastry::net::testing

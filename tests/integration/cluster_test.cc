// Real `peter node` processes, driven through their admin endpoints.
//
// ClusterTest runs issue 3's scenario: 16 nodes, each joined through a random
// earlier node, all become active with exact leaf sets and route 1,000
// lookups to the numerically closest node; a quarter are killed with
// SIGKILL, and within 10 s the survivors' leaf sets are exact again and
// 1,000 new lookups reach the right live roots; the killed nodes restart with
// their ids and the checks pass again. It runs on loopback, and across
// network namespaces (one per node, joined by a bridge) when run as root.
// NodeCommandTest checks the command's exits: flags, ports, signals.
//
// Every child is killed when its NodeProcess goes away, also on failure.
// Node logs go to a temporary directory, kept (and named) if a test fails.
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/integration/log_dir.h"
#include "tests/integration/netns_lab.h"
#include "tests/integration/node_process.h"

#ifndef PETER_BINARY
#error "PETER_BINARY must name the peter program"
#endif

namespace peter::integration {
namespace {

constexpr int kNodes = 16;
constexpr int kKilled = kNodes / 4;
constexpr int kLookups = 1000;
constexpr int kLookupsDuringRepair = 300;

uint64_t Seed() {
  const char* env = getenv("PETER_TEST_SEED");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 20261125;
}

// Seconds since `start`, for the phase timings printed by the scenario.
double Since(absl::Time start) { return absl::ToDoubleSeconds(absl::Now() - start); }

void ExpectAllRight(const Cluster::LookupReport& r, const char* phase) {
  std::printf("  %s: %d lookups in %.2f s, %d right, %d wrong, %d failed, mean hops %.2f\n",
              phase, r.sent, r.seconds, r.right, r.wrong, r.failed, r.mean_hops);
  EXPECT_EQ(r.right, r.sent) << phase << ": " << r.first_problem;
}

// Node 0 starts a ring; every other node joins through a random earlier
// one. All become active with exact leaf sets, and route right.
void StartAll(Cluster& cluster) {
  absl::Time t0 = absl::Now();
  ASSERT_TRUE(cluster.Start(0, std::nullopt).ok());
  for (int i = 1; i < kNodes; ++i) {
    int via = static_cast<int>(cluster.rng()() % i);
    absl::Status s = cluster.Start(i, via);
    ASSERT_TRUE(s.ok()) << s;
  }
  absl::Status s = cluster.WaitAllActive(absl::Seconds(30));
  ASSERT_TRUE(s.ok()) << s;
  std::printf("  %d nodes started (node 0 at %s) and active after %.2f s\n", kNodes,
              cluster.node(0).listen().c_str(), Since(t0));
  s = cluster.WaitLeafSetsCorrect(absl::Seconds(10));
  ASSERT_TRUE(s.ok()) << s;
  std::printf("  leaf sets exact after %.2f s\n", Since(t0));
  ExpectAllRight(cluster.Lookups(kLookups), "after joins");
}

// kill -9 a quarter of the nodes: lookups during the repair are all
// answered, and within 10 s the survivors' leaf sets are exact. Returns the
// killed nodes.
std::vector<int> KillQuarter(Cluster& cluster) {
  std::vector<int> live = cluster.Alive();
  std::shuffle(live.begin(), live.end(), cluster.rng());
  std::vector<int> killed(live.begin(), live.begin() + kKilled);
  absl::Time killed_at = absl::Now();
  for (int i : killed) cluster.Kill(i);
  // Sent at once, while the survivors are still detecting the failures:
  // per-hop acknowledgements must reroute them to the right live roots.
  // At most 3 s of them, so that the leaf sets are checked well within 10 s.
  ExpectAllRight(cluster.Lookups(kLookupsDuringRepair, absl::Seconds(3)), "during repair");
  absl::Status s =
      cluster.WaitLeafSetsCorrect(absl::Seconds(10) - (absl::Now() - killed_at));
  EXPECT_TRUE(s.ok()) << s;
  std::printf("  killed %d nodes; survivors' leaf sets exact %.2f s after the kill "
              "(first checked after the lookups above)\n",
              kKilled, Since(killed_at));
  ExpectAllRight(cluster.Lookups(kLookups), "after kill -9");
  return killed;
}

// Restarts `killed` with their ids, each through a random live node.
void Restart(Cluster& cluster, const std::vector<int>& killed) {
  absl::Time restarted_at = absl::Now();
  for (int i : killed) {
    std::vector<int> up = cluster.Alive();
    absl::Status s = cluster.Start(i, up[cluster.rng()() % up.size()]);
    ASSERT_TRUE(s.ok()) << s;
  }
  absl::Status s = cluster.WaitAllActive(absl::Seconds(30));
  ASSERT_TRUE(s.ok()) << s;
  s = cluster.WaitLeafSetsCorrect(absl::Seconds(10));
  EXPECT_TRUE(s.ok()) << s;
  std::printf("  restarted %d nodes; active with exact leaf sets after %.2f s\n",
              kKilled, Since(restarted_at));
  ExpectAllRight(cluster.Lookups(kLookups), "after restart");
}

// The scenario of issue 3 on `cluster`.
void RunScenario(Cluster& cluster) {
  absl::Time t0 = absl::Now();
  StartAll(cluster);
  if (::testing::Test::HasFatalFailure()) return;
  std::vector<int> killed = KillQuarter(cluster);
  Restart(cluster, killed);
  std::printf("  scenario took %.2f s\n", Since(t0));
}

TEST(ClusterTest, LoopbackSixteenNodesSurviveKillNine) {
  LogDir logs;
  Cluster cluster(PETER_BINARY, [](int) { return Cluster::Host{}; }, logs.path(), Seed());
  RunScenario(cluster);
}

// With L = 4 a 16-node ring is larger than a leaf set, so most routes take
// the routing table: multi-hop routes and table repair after kill -9.
TEST(ClusterTest, LoopbackSmallLeafSetRoutesThroughTheTable) {
  LogDir logs;
  Cluster cluster(PETER_BINARY, [](int) { return Cluster::Host{}; }, logs.path(),
                  Seed() + 2, /*leaf_set_size=*/4);
  RunScenario(cluster);
}

TEST(ClusterTest, NetworkNamespacesSixteenHosts) {
  std::string why = NetnsLab::Unsupported();
  if (!why.empty()) GTEST_SKIP() << why;
  absl::StatusOr<std::unique_ptr<NetnsLab>> lab = NetnsLab::Create(kNodes);
  ASSERT_TRUE(lab.ok()) << lab.status();
  ASSERT_TRUE((*lab)->Enter().ok());
  LogDir logs;
  NetnsLab* net = lab->get();
  Cluster cluster(
      PETER_BINARY,
      [net](int i) { return Cluster::Host{net->Prefix(i), net->Address(i)}; },
      logs.path(), Seed() + 1);
  RunScenario(cluster);
}

// The chaos soak's split: hosts 0 and 1 lose each other only; host 0 still
// reaches host 2, and the cut lifts.
TEST(ClusterTest, NetworkNamespacesSplitCutsOnePairOnly) {
  std::string why = NetnsLab::Unsupported();
  if (!why.empty()) GTEST_SKIP() << why;
  absl::StatusOr<std::unique_ptr<NetnsLab>> lab = NetnsLab::Create(3);
  ASSERT_TRUE(lab.ok()) << lab.status();
  NetnsLab& net = **lab;
  // `ip route get` in host i's namespace: 0 if it has a route to host j.
  auto routes = [&](int i, int j) {
    std::vector<std::string> args = net.Prefix(i);
    args.erase(args.begin());  // the program is "ip"
    for (const char* word : {"ip", "route", "get"}) args.push_back(word);
    args.push_back(net.Address(j));
    absl::StatusOr<Completed> done = RunToCompletion("ip", args, absl::Seconds(10));
    return done.ok() && done->status == 0;
  };
  ASSERT_TRUE(routes(0, 1) && routes(1, 0) && routes(0, 2));
  ASSERT_TRUE(net.SetReachable(0, 1, false).ok());
  EXPECT_FALSE(routes(0, 1));
  EXPECT_FALSE(routes(1, 0));
  EXPECT_TRUE(routes(0, 2));
  EXPECT_TRUE(routes(2, 1));
  ASSERT_TRUE(net.SetReachable(0, 1, true).ok());
  EXPECT_TRUE(routes(0, 1));
  EXPECT_TRUE(routes(1, 0));
}

// --- The command's exits. ---

// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// Runs `peter node args...`; expects a non-zero exit and one stderr line
// containing `words`.
void ExpectFailsWithOneLine(const std::vector<std::string>& args, const std::string& words,
                            absl::Duration timeout = absl::Seconds(10)) {
  std::vector<std::string> argv = {"node"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<Completed> done = RunToCompletion(PETER_BINARY, argv, timeout);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_TRUE(WIFEXITED(done->status) && WEXITSTATUS(done->status) != 0)
      << "status " << done->status;
  // Log lines (spdlog's "[...]" prefix) aside, exactly one line.
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < done->stderr_text.size()) {
    size_t end = done->stderr_text.find('\n', start);
    std::string line = done->stderr_text.substr(start, end - start);
    if (!line.empty() && line[0] != '[') lines.push_back(line);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  ASSERT_EQ(lines.size(), 1u) << done->stderr_text;
  EXPECT_NE(lines[0].find(words), std::string::npos) << lines[0];
}

TEST(NodeCommandTest, BadFlagsFail) {
  ExpectFailsWithOneLine({}, "--listen");
  ExpectFailsWithOneLine({"--listen", "127.0.0.1"}, "--listen");
  ExpectFailsWithOneLine({"--listen", "127.0.0.1:0", "--id", "xyz"}, "--id");
  ExpectFailsWithOneLine({"--listen", "127.0.0.1:0", "--leaf-set", "5"}, "--leaf-set");
  ExpectFailsWithOneLine({"--listen", "127.0.0.1:0", "--leaf-set", "many"}, "--leaf-set");
  ExpectFailsWithOneLine({"--listen", "127.0.0.1:0", "--bogus"}, "--bogus");
  ExpectFailsWithOneLine({"--listen", "127.0.0.1:0", "--log-level", "loud"}, "--log-level");
}

// --incarnation-file holding anything but an incarnation: the node does not
// start, says so in one line naming the file, and leaves the file alone.
TEST(NodeCommandTest, CorruptIncarnationFileFails) {
  LogDir dir;
  const std::string path = dir.path() + "/incarnation";
  std::ofstream(path) << "not a number\n";
  ExpectFailsWithOneLine({"--listen", "127.0.0.1:0", "--incarnation-file", path}, path);
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "not a number");
}

TEST(NodeCommandTest, PortsInUseFail) {
  LogDir logs;
  NodeSpec spec;
  spec.log_path = logs.path() + "/first.log";
  absl::StatusOr<std::unique_ptr<NodeProcess>> first = NodeProcess::Spawn(PETER_BINARY, spec);
  ASSERT_TRUE(first.ok()) << first.status();
  ExpectFailsWithOneLine({"--listen", (*first)->listen()}, (*first)->listen());
  ExpectFailsWithOneLine({"--listen", "127.0.0.1:0", "--admin",
                          absl::StrCat("127.0.0.1:", (*first)->admin_port())},
                         "admin");
}

TEST(NodeCommandTest, UnreachableBootstrapFailsAfterRetrying) {
  absl::Time start = absl::Now();
  ExpectFailsWithOneLine({"--listen", "127.0.0.1:0", "--join",
                          absl::StrCat("127.0.0.1:", UnusedPort()), "--join-timeout", "1"},
                         "join");
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));
}

// --log-level works after `node` (and before it): warn hides info logs.
TEST(NodeCommandTest, LogLevelApplies) {
  const std::string join = absl::StrCat("127.0.0.1:", UnusedPort());
  for (bool quiet : {false, true}) {
    std::vector<std::string> args = {"node", "--listen", "127.0.0.1:0", "--join", join,
                                     "--join-timeout", "0.2"};
    if (quiet) args.insert(args.begin(), {"--log-level", "warn"});
    absl::StatusOr<Completed> done = RunToCompletion(PETER_BINARY, args, absl::Seconds(10));
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(done->stderr_text.find("[info]") == std::string::npos, quiet)
        << done->stderr_text;
    EXPECT_NE(done->stderr_text.find("peter node: error:"), std::string::npos);
  }
  std::vector<std::string> after = {"node", "--listen", "127.0.0.1:0", "--join", join,
                                    "--join-timeout", "0.2", "--log-level", "error"};
  absl::StatusOr<Completed> done = RunToCompletion(PETER_BINARY, after, absl::Seconds(10));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->stderr_text.find("[info]"), std::string::npos) << done->stderr_text;
}

// SIGTERM and SIGINT: the node leaves (its peer hears it at once) and exits 0.
TEST(NodeCommandTest, SignalsLeaveGracefully) {
  LogDir logs;
  Cluster cluster(PETER_BINARY, [](int) { return Cluster::Host{}; }, logs.path(), Seed());
  ASSERT_TRUE(cluster.Start(0, std::nullopt).ok());
  for (int signal : {SIGTERM, SIGINT}) {
    ASSERT_TRUE(cluster.Start(1, 0).ok());
    ASSERT_TRUE(cluster.WaitAllActive(absl::Seconds(10)).ok());
    ASSERT_TRUE(cluster.WaitLeafSetsCorrect(absl::Seconds(10)).ok());
    absl::StatusOr<nlohmann::json> before = cluster.Get(0, "/status");
    ASSERT_TRUE(before.ok());
    ASSERT_EQ((*before)["leaf_set"].size(), 1u);

    std::optional<int> status = cluster.Stop(1, signal, absl::Seconds(10));
    ASSERT_TRUE(status.has_value()) << "did not exit";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;
    // Well before failure detection could notice (about 2 s).
    absl::Status s = cluster.WaitLeafSetsCorrect(absl::Milliseconds(500));
    EXPECT_TRUE(s.ok()) << s;
  }
  absl::StatusOr<std::pair<int, std::string>> metrics = cluster.GetRaw(0, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->second.find("peter_leaves_received_total 2"), std::string::npos);
}

}  // namespace
}  // namespace peter::integration

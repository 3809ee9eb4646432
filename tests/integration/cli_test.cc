// `peter node --config FILE`, `--resp-own-thread` and `peter status`
// against real `peter node` processes on loopback.
#include <dirent.h>
#include <sys/wait.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/log_dir.h"
#include "tests/integration/node_process.h"
#include "tests/pubsub/resp/test_client.h"

#ifndef PETER_BINARY
#error "PETER_BINARY must name the peter program"
#endif

namespace peter::integration {
namespace {

using resp::testing::TestClient;

constexpr absl::Duration kRunTimeout = absl::Seconds(20);

std::string Write(const LogDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

int ExitCode(const Completed& done) {
  return WIFEXITED(done.status) ? WEXITSTATUS(done.status) : -1;
}

std::string AdminOf(const NodeProcess& node) {
  return absl::StrCat(node.admin_host(), ":", node.admin_port());
}

// `peter status --json ADDR`, parsed; null on failure.
nlohmann::json StatusJson(const std::string& admin) {
  absl::StatusOr<Completed> done =
      RunToCompletion(PETER_BINARY, {"status", "--json", admin}, kRunTimeout);
  if (!done.ok() || ExitCode(*done) != 0) return nullptr;
  return nlohmann::json::parse(done->stdout_text, nullptr, false);
}

TEST(ConfigFileCliTest, FileSetsFlagsAndTheCommandLineWins) {
  LogDir logs;
  const std::string id = "0123456789abcdef0123456789abcdef";
  // The file's listen address is unusable: the command line's must win.
  const std::string config = Write(logs, "peter.toml",
                                   absl::StrCat("listen = \"256.0.0.1:1\"\n"
                                                "admin = \"127.0.0.1:0\"\n"
                                                "[node]\n"
                                                "id = \"", id, "\"\n"
                                                "leaf-set = 8\n"));
  NodeSpec spec;
  spec.admin = "";
  spec.extra = {"--config", config};
  spec.log_path = logs.path() + "/node.log";
  absl::StatusOr<std::unique_ptr<NodeProcess>> node = NodeProcess::Spawn(PETER_BINARY, spec);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ((*node)->id(), id);
  EXPECT_GT((*node)->admin_port(), 0);  // from the file
  EXPECT_EQ((*node)->listen().rfind("127.0.0.1:", 0), 0u);
}

TEST(ConfigFileCliTest, UnknownKeyIsAUsageErrorWithItsLine) {
  LogDir logs;
  const std::string config =
      Write(logs, "peter.toml", "listen = \"127.0.0.1:0\"\n# comment\nlisen = \"x\"\n");
  absl::StatusOr<Completed> done =
      RunToCompletion(PETER_BINARY, {"node", "--config", config}, kRunTimeout);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(ExitCode(*done), 2);
  EXPECT_NE(done->stderr_text.find(config + ":3: unknown key \"lisen\""), std::string::npos)
      << done->stderr_text;
}

TEST(ConfigFileCliTest, MissingFileAndBadValuesAreUsageErrors) {
  LogDir logs;
  absl::StatusOr<Completed> missing =
      RunToCompletion(PETER_BINARY, {"node", "--config", logs.path() + "/none.toml"},
                      kRunTimeout);
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(ExitCode(*missing), 2);
  EXPECT_NE(missing->stderr_text.find("none.toml"), std::string::npos) << missing->stderr_text;

  const std::string config =
      Write(logs, "bad.ini", "[node]\nlisten=127.0.0.1:0\nleaf-set=3\n");
  absl::StatusOr<Completed> bad =
      RunToCompletion(PETER_BINARY, {"node", "--config", config}, kRunTimeout);
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(ExitCode(*bad), 2);
  EXPECT_NE(bad->stderr_text.find("--leaf-set"), std::string::npos) << bad->stderr_text;
}

// Threads of process `pid` now.
int ThreadCount(pid_t pid) {
  int n = 0;
  DIR* dir = opendir(absl::StrCat("/proc/", pid, "/task").c_str());
  if (dir == nullptr) return -1;
  while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

// `--resp-own-thread` (or `resp-own-thread = true` in the configuration
// file) runs the Redis gateway on a thread of its own: one thread more than
// `--resp` alone, where it shares the node's network thread; it serves
// clients all the same.
TEST(RespOwnThreadCliTest, TheGatewayGetsAThreadOfItsOwnAndWorks) {
  LogDir logs;
  auto spawn = [&](const std::string& name, std::vector<std::string> extra) {
    NodeSpec spec;
    spec.admin = "";  // no admin endpoint: its threads would blur the count
    spec.extra = std::move(extra);
    spec.log_path = absl::StrCat(logs.path(), "/", name, ".log");
    return NodeProcess::Spawn(PETER_BINARY, spec);
  };
  absl::StatusOr<std::unique_ptr<NodeProcess>> shared = spawn("shared", {"--resp", "127.0.0.1:0"});
  ASSERT_TRUE(shared.ok()) << shared.status();
  const std::string config = Write(logs, "peter.toml",
                                   "resp = \"127.0.0.1:0\"\nresp-own-thread = true\n");
  for (const auto& extra : {std::vector<std::string>{"--resp", "127.0.0.1:0", "--resp-own-thread"},
                            std::vector<std::string>{"--config", config}}) {
    absl::StatusOr<std::unique_ptr<NodeProcess>> own = spawn("own", extra);
    ASSERT_TRUE(own.ok()) << own.status();
    ASSERT_GT((*own)->resp_port(), 0);
    EXPECT_EQ(ThreadCount((*own)->pid()), ThreadCount((*shared)->pid()) + 1) << extra[0];
    TestClient subscriber(static_cast<uint16_t>((*own)->resp_port()));
    TestClient publisher(static_cast<uint16_t>((*own)->resp_port()));
    ASSERT_TRUE(subscriber.connected() && publisher.connected());
    EXPECT_EQ(subscriber.Call({"SUBSCRIBE", "t"}), "*3\r\n$9\r\nsubscribe\r\n$1\r\nt\r\n:1\r\n");
    EXPECT_EQ(publisher.Call({"PUBLISH", "t", "m"}), ":1\r\n");
    EXPECT_EQ(subscriber.Read(std::chrono::seconds(10)), "*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$1\r\nm\r\n");
  }
}

TEST(StatusCliTest, ShowsATwoNodeRing) {
  LogDir logs;
  NodeSpec first;
  first.log_path = logs.path() + "/a.log";
  absl::StatusOr<std::unique_ptr<NodeProcess>> a = NodeProcess::Spawn(PETER_BINARY, first);
  ASSERT_TRUE(a.ok()) << a.status();
  NodeSpec second;
  second.join = {(*a)->listen()};
  second.log_path = logs.path() + "/b.log";
  absl::StatusOr<std::unique_ptr<NodeProcess>> b = NodeProcess::Spawn(PETER_BINARY, second);
  ASSERT_TRUE(b.ok()) << b.status();

  // Wait until b is active with a in its leaf set.
  nlohmann::json status;
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (absl::Now() < deadline) {
    status = StatusJson(AdminOf(**b));
    if (status.is_object() && status.value("active", false) &&
        status["leaf_set"].size() == 1) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(status.is_object());
  ASSERT_EQ(status["leaf_set"].size(), 1u) << status.dump();
  EXPECT_EQ(status["id"], (*b)->id());
  EXPECT_EQ(status["leaf_set"][0]["id"], (*a)->id());
  ASSERT_TRUE(status.contains("pubsub")) << status.dump();
  ASSERT_TRUE(status.contains("transport")) << status.dump();
  EXPECT_GE(status["transport"]["connections_open"].get<uint64_t>(), 1u);
  EXPECT_GT(status["transport"]["frames_received"].get<uint64_t>(), 0u);

  absl::StatusOr<Completed> text =
      RunToCompletion(PETER_BINARY, {"status", AdminOf(**b)}, kRunTimeout);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(ExitCode(*text), 0) << text->stderr_text;
  const std::string& out = text->stdout_text;
  EXPECT_EQ(out.rfind(absl::StrCat("node      ", (*b)->id(), "  active"), 0), 0u) << out;
  EXPECT_NE(out.find(absl::StrCat("leaf set  1 node\n          ", (*a)->id(), "  ",
                                  (*a)->listen())),
            std::string::npos) << out;
  EXPECT_NE(out.find("\nrouting   "), std::string::npos) << out;
  EXPECT_NE(out.find("\npubsub    0 topics"), std::string::npos) << out;
  EXPECT_NE(out.find("\ntransport "), std::string::npos) << out;
}

TEST(StatusCliTest, UnreachableEndpointAndBadAddressFailClearly) {
  // A node's listen port speaks the overlay's protocol, not HTTP; a closed
  // port refuses. Use a port that was just free.
  NodeSpec spec;
  spec.admin = "";
  absl::StatusOr<std::unique_ptr<NodeProcess>> node = NodeProcess::Spawn(PETER_BINARY, spec);
  ASSERT_TRUE(node.ok()) << node.status();
  std::string listen = (*node)->listen();
  (*node)->Kill();
  absl::StatusOr<Completed> down =
      RunToCompletion(PETER_BINARY, {"status", "--timeout", "2", listen}, kRunTimeout);
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(ExitCode(*down), 1);
  EXPECT_NE(down->stderr_text.find("cannot reach the admin endpoint at " + listen),
            std::string::npos) << down->stderr_text;

  absl::StatusOr<Completed> bad =
      RunToCompletion(PETER_BINARY, {"status", "no-port-here"}, kRunTimeout);
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(ExitCode(*bad), 2);
  EXPECT_NE(bad->stderr_text.find("want HOST:PORT"), std::string::npos) << bad->stderr_text;
}

}  // namespace
}  // namespace peter::integration

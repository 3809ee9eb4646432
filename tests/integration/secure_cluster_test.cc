// `peter node` with peer authentication, as processes on loopback: a TLS
// cluster (certificates made at test time by the openssl tool) forms and
// delivers a publish; nodes with a certificate from another CA, a wrong
// cluster key or no credentials stay outside, and the members count the
// refusals in /metrics. The config file takes the same keys.
#include <sys/wait.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/log_dir.h"
#include "tests/integration/node_process.h"
#include "tests/pastry/net/test_pki.h"
#include "tests/pubsub/resp/test_client.h"

#ifndef PETER_BINARY
#error "PETER_BINARY must name the peter program"
#endif

namespace peter::integration {
namespace {

using peter::testing::TestPki;
using peter::testing::TlsFiles;
using resp::testing::TestClient;

std::vector<std::string> TlsFlags(const TlsFiles& f) {
  return {"--tls-cert", f.cert, "--tls-key", f.key, "--tls-ca", f.ca};
}

std::string Write(const LogDir& logs, const std::string& name, const std::string& text) {
  const std::string path = logs.path() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

nlohmann::json Status(const NodeProcess& node) {
  httplib::Client client(node.admin_host(), node.admin_port());
  httplib::Result r = client.Get("/status");
  if (!r || r->status != 200) return nullptr;
  return nlohmann::json::parse(r->body, nullptr, false);
}

bool WaitActive(const NodeProcess& node) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    nlohmann::json s = Status(node);
    if (s.is_object() && s.value("active", false)) return true;
    absl::SleepFor(absl::Milliseconds(50));  // polling a process, not synchronising
  }
  return false;
}

// peter_auth_failures_total{reason="..."} from /metrics; -1 if absent.
long AuthFailures(const NodeProcess& node, const std::string& reason) {
  httplib::Client client(node.admin_host(), node.admin_port());
  httplib::Result r = client.Get("/metrics");
  if (!r || r->status != 200) return -1;
  const std::string key = absl::StrCat("peter_auth_failures_total{reason=\"", reason, "\"} ");
  const size_t at = r->body.find(key);
  if (at == std::string::npos) return -1;
  return std::stol(r->body.substr(at + key.size()));
}

class SecureClusterTest : public ::testing::Test {
 protected:
  std::unique_ptr<NodeProcess> Spawn(std::vector<std::string> extra, const NodeProcess* via,
                                     const std::string& name) {
    NodeSpec spec;
    spec.extra = std::move(extra);
    if (via != nullptr) spec.join = {via->listen()};
    spec.log_path = absl::StrCat(logs_.path(), "/", name, ".log");
    absl::StatusOr<std::unique_ptr<NodeProcess>> node = NodeProcess::Spawn(PETER_BINARY, spec);
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? std::move(*node) : nullptr;
  }

  // An outsider joining through `via` is refused (`via` counts it under
  // `reason`, in /metrics and /status) and stays inactive.
  void ExpectRefused(std::vector<std::string> extra, const NodeProcess& via,
                     const std::string& reason) {
    const long before = AuthFailures(via, reason);
    ASSERT_GE(before, 0) << "no peter_auth_failures_total{reason=\"" << reason << "\"}";
    std::unique_ptr<NodeProcess> outsider = Spawn(extra, &via, "outsider-" + reason);
    ASSERT_NE(outsider, nullptr);
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (AuthFailures(via, reason) <= before && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    EXPECT_GT(AuthFailures(via, reason), before) << reason;
    // Its join keeps failing: it is still not active a few seconds later.
    absl::SleepFor(absl::Seconds(3));
    nlohmann::json o = Status(*outsider);
    ASSERT_TRUE(o.is_object());
    EXPECT_FALSE(o.value("active", true));
    // /status and /metrics show the same counter. The outsider goes on
    // retrying and may be refused again between two reads, so /metrics is
    // read between two reads of /status that agree.
    bool compared = false;
    for (int attempt = 0; attempt < 20 && !compared; ++attempt) {
      const long status_before = StatusAuthFailures(via, reason);
      const long metrics = AuthFailures(via, reason);
      const long status_after = StatusAuthFailures(via, reason);
      ASSERT_GE(status_before, 0) << "no transport.auth_failures." << reason << " in /status";
      if (status_before != status_after) continue;  // refused again meanwhile
      EXPECT_EQ(metrics, status_before) << reason;
      compared = true;
    }
    EXPECT_TRUE(compared) << "the counter never held still for three reads";
  }

  // transport.auth_failures.<reason> from /status; -1 if absent.
  static long StatusAuthFailures(const NodeProcess& node, const std::string& reason) {
    nlohmann::json s = Status(node);
    if (!s.is_object()) return -1;
    const nlohmann::json& failures = s["transport"]["auth_failures"];
    if (!failures.is_object() || !failures.contains(reason)) return -1;
    return failures[reason].get<long>();
  }

  LogDir logs_;
};

TEST_F(SecureClusterTest, TlsClusterFormsDeliversAndKeepsOutsidersOut) {
  absl::StatusOr<TestPki> pki = TestPki::Create(logs_.path(), "cluster-ca");
  absl::StatusOr<TestPki> rogue = TestPki::Create(logs_.path(), "rogue-ca");
  ASSERT_TRUE(pki.ok() && rogue.ok()) << pki.status() << rogue.status();
  std::vector<std::unique_ptr<NodeProcess>> nodes;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<TlsFiles> files = pki->Issue(absl::StrCat("node", i));
    ASSERT_TRUE(files.ok()) << files.status();
    std::vector<std::string> extra = TlsFlags(*files);
    extra.insert(extra.end(), {"--resp", "127.0.0.1:0"});
    nodes.push_back(Spawn(extra, i == 0 ? nullptr : nodes[0].get(), absl::StrCat("node", i)));
    ASSERT_NE(nodes.back(), nullptr);
    absl::StatusOr<std::string> id = peter::testing::OpensslCertifiedId(files->cert);
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(nodes.back()->id(), *id);  // certified: the key picks the place in the ring
  }
  for (auto& n : nodes) ASSERT_TRUE(WaitActive(*n)) << n->id();

  TestClient subscriber(static_cast<uint16_t>(nodes[1]->resp_port()));
  TestClient publisher(static_cast<uint16_t>(nodes[2]->resp_port()));
  ASSERT_TRUE(subscriber.connected() && publisher.connected());
  EXPECT_EQ(subscriber.Call({"SUBSCRIBE", "secured"}),
            "*3\r\n$9\r\nsubscribe\r\n$7\r\nsecured\r\n:1\r\n");
  publisher.Command({"PUBLISH", "secured", "over tls"});
  EXPECT_EQ(publisher.Read(std::chrono::seconds(15)), ":0\r\n");
  EXPECT_EQ(subscriber.Read(std::chrono::seconds(10)),
            "*3\r\n$7\r\nmessage\r\n$7\r\nsecured\r\n$8\r\nover tls\r\n");

  absl::StatusOr<TlsFiles> bad = rogue->Issue("intruder");
  ASSERT_TRUE(bad.ok()) << bad.status();
  ExpectRefused(TlsFlags(*bad), *nodes[0], "tls");
  ExpectRefused({}, *nodes[0], "tls");  // no credentials: plain TCP
}

TEST_F(SecureClusterTest, ClusterKeyKeepsOutWrongAndMissingKeys) {
  const std::string key = Write(logs_, "cluster.key", "7f3a0c1e9b2d4f6a8c0e1f2a3b4c5d6e\n");
  const std::string wrong = Write(logs_, "wrong.key", "00000000000000000000000000000000\n");
  // Through the config file, as a deployment would set it.
  const std::string config = Write(logs_, "peter.toml",
                                   absl::StrCat("cluster-key-file = \"", key, "\"\n"));
  std::vector<std::unique_ptr<NodeProcess>> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(Spawn({"--config", config}, i == 0 ? nullptr : nodes[0].get(),
                          absl::StrCat("node", i)));
    ASSERT_NE(nodes.back(), nullptr);
  }
  for (auto& n : nodes) ASSERT_TRUE(WaitActive(*n)) << n->id();
  EXPECT_EQ(AuthFailures(*nodes[0], "key"), 0);

  ExpectRefused({"--cluster-key-file", wrong}, *nodes[0], "key");
  ExpectRefused({}, *nodes[0], "hello");
}

TEST_F(SecureClusterTest, BadSecurityFlagsAreUsageErrors) {
  absl::StatusOr<TestPki> pki = TestPki::Create(logs_.path(), "ca");
  ASSERT_TRUE(pki.ok()) << pki.status();
  absl::StatusOr<TlsFiles> files = pki->Issue("n");
  ASSERT_TRUE(files.ok()) << files.status();
  const std::string short_key = Write(logs_, "short.key", "tiny\n");
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  std::vector<std::string> with_id = TlsFlags(*files);
  with_id.insert(with_id.end(), {"--id", "0123456789abcdef0123456789abcdef"});
  const std::vector<Case> cases = {
      {with_id, "--id"},
      {{"--tls-cert", files->cert}, "go together"},
      {{"--cluster-key-file", short_key}, "at least 16 bytes"},
      {{"--cluster-key-file", logs_.path() + "/none"}, "cannot read"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"node", "--listen", "127.0.0.1:0"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    absl::StatusOr<Completed> done = RunToCompletion(PETER_BINARY, args, absl::Seconds(10));
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_TRUE(WIFEXITED(done->status) && WEXITSTATUS(done->status) == 2) << c.message;
    EXPECT_NE(done->stderr_text.find(c.message), std::string::npos) << done->stderr_text;
  }
}

}  // namespace
}  // namespace peter::integration

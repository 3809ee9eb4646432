// `peter node --resp`: Redis clients on different daemons of one cluster.
// A subscriber on one node gets what a publisher on another node published,
// for channels and for patterns, with Redis's reply bytes.
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
#include "tests/pubsub/resp/test_client.h"

#ifndef PETER_BINARY
#error "PETER_BINARY must name the peter program"
#endif

namespace peter::integration {
namespace {

using resp::testing::TestClient;

constexpr int kNodes = 5;

class RespClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < kNodes; ++i) {
      NodeSpec spec;
      spec.extra = {"--resp", "127.0.0.1:0"};
      if (i > 0) spec.join = {nodes_[0]->listen()};
      spec.log_path = absl::StrCat(logs_.path(), "/node-", i, ".log");
      absl::StatusOr<std::unique_ptr<NodeProcess>> node = NodeProcess::Spawn(PETER_BINARY, spec);
      ASSERT_TRUE(node.ok()) << node.status();
      ASSERT_GT((*node)->resp_port(), 0);
      nodes_.push_back(std::move(*node));
    }
    for (auto& node : nodes_) ASSERT_TRUE(WaitActive(*node)) << node->id();
  }

  static bool WaitActive(const NodeProcess& node) {
    httplib::Client client(node.admin_host(), node.admin_port());
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      httplib::Result r = client.Get("/status");
      if (r && r->status == 200 && nlohmann::json::parse(r->body).value("active", false)) {
        return true;
      }
    }
    return false;
  }

  uint16_t Port(int i) const { return static_cast<uint16_t>(nodes_[i]->resp_port()); }

  LogDir logs_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
};

TEST_F(RespClusterTest, AMessageCrossesNodes) {
  TestClient subscriber(Port(1));
  TestClient publisher(Port(3));
  ASSERT_TRUE(subscriber.connected() && publisher.connected());
  EXPECT_EQ(subscriber.Call({"SUBSCRIBE", "news"}),
            "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
  // PUBLISH counts the receivers on the node that took it (Redis Cluster).
  EXPECT_EQ(publisher.Call({"PUBLISH", "news", "hello"}), ":0\r\n");
  EXPECT_EQ(subscriber.Read(std::chrono::seconds(10)),
            "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
  // A local subscriber is counted.
  TestClient local(Port(3));
  EXPECT_EQ(local.Call({"SUBSCRIBE", "news"}), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
  EXPECT_EQ(publisher.Call({"PUBLISH", "news", "again"}), ":1\r\n");
  EXPECT_EQ(subscriber.Read(std::chrono::seconds(10)),
            "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nagain\r\n");
  EXPECT_EQ(local.Read(std::chrono::seconds(10)),
            "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nagain\r\n");
}

// After PSUBSCRIBE's confirmation the pattern still has to reach every node
// (docs/resp.md, "The window"): publish on a matching warm-up channel until
// one arrives, then every matching publish must arrive and no other.
TEST_F(RespClusterTest, PatternsMatchClusterWide) {
  TestClient subscriber(Port(2));
  TestClient publisher(Port(4));
  // A publish to a new topic waits while a young cluster's roots hold
  // (fresh_root_grace, 5 s): read its reply with room for that.
  auto publish = [&](const std::string& channel, const std::string& payload) {
    publisher.Command({"PUBLISH", channel, payload});
    return publisher.Read(std::chrono::seconds(15));
  };
  EXPECT_EQ(subscriber.Call({"PSUBSCRIBE", "user.*"}),
            "*3\r\n$10\r\npsubscribe\r\n$6\r\nuser.*\r\n:1\r\n");
  bool warm = false;
  for (int i = 0; i < 40 && !warm; ++i) {
    publish("user.warmup", "w");
    std::string got = subscriber.Read(std::chrono::milliseconds(500));
    warm = got.find("user.warmup") != std::string::npos;
  }
  ASSERT_TRUE(warm) << "the pattern never reached the publishing node";
  while (subscriber.Read(std::chrono::milliseconds(300)) != "<timeout>") {
  }
  EXPECT_EQ(publish("user.42", "hi"), ":0\r\n");
  EXPECT_EQ(subscriber.Read(std::chrono::seconds(10)),
            "*4\r\n$8\r\npmessage\r\n$6\r\nuser.*\r\n$7\r\nuser.42\r\n$2\r\nhi\r\n");
  // Not matching: nothing arrives; the next matching one does.
  EXPECT_EQ(publish("order.1", "no"), ":0\r\n");
  EXPECT_EQ(publish("user.7", "yes"), ":0\r\n");
  EXPECT_EQ(subscriber.Read(std::chrono::seconds(10)),
            "*4\r\n$8\r\npmessage\r\n$6\r\nuser.*\r\n$6\r\nuser.7\r\n$3\r\nyes\r\n");
}

TEST_F(RespClusterTest, ASubscriberKeepsReceivingWhenAnotherNodeDies) {
  TestClient subscriber(Port(1));
  TestClient publisher(Port(2));
  EXPECT_EQ(subscriber.Call({"SUBSCRIBE", "a", "b", "c", "d"}).substr(0, 4), "*3\r\n");
  for (int i = 0; i < 3; ++i) ASSERT_NE(subscriber.Read(), "<timeout>");  // b, c, d confirmed
  nodes_[4]->Kill();  // perhaps a root or an inner node of some of the trees
  nodes_[3]->Kill();
  // Every channel's messages published after the repair arrive. A publish
  // during the repair may fail; the client then sees an error reply.
  for (const std::string channel : {"a", "b", "c", "d"}) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    bool delivered = false;
    while (!delivered && absl::Now() < deadline) {
      const std::string reply = publisher.Call({"PUBLISH", channel, "after"});
      if (reply.rfind(":", 0) != 0) continue;  // an error: the repair is under way
      const std::string got = subscriber.Read(std::chrono::seconds(5));
      delivered = got == absl::StrCat("*3\r\n$7\r\nmessage\r\n$1\r\n", channel,
                                      "\r\n$5\r\nafter\r\n");
    }
    EXPECT_TRUE(delivered) << channel;
  }
}

}  // namespace
}  // namespace peter::integration

// The gateway over loopback TCP on the in-process fake cluster.
#include "pubsub/resp/gateway.h"

#include <atomic>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"
#include "pubsub/resp/pattern_directory.h"
#include "pubsub/resp/server.h"
#include "tests/pubsub/resp/fake_cluster.h"
#include "tests/pubsub/resp/test_client.h"

namespace peter::resp {
namespace {

using testing::FakeCluster;
using testing::Multibulk;
using testing::Push;
using testing::TestClient;
using testing::WaitFor;
using namespace std::chrono_literals;

std::string Sub(std::string verb, std::string name, int count) {
  return "*3\r\n$" + std::to_string(verb.size()) + "\r\n" + verb + "\r\n$" +
         std::to_string(name.size()) + "\r\n" + name + "\r\n:" + std::to_string(count) + "\r\n";
}

class GatewayTest : public ::testing::Test {
 protected:
  // Starts `n` nodes, each with a gateway.
  void StartNodes(int n, GatewayOptions options = {}) {
    for (int i = 0; i < n; ++i) {
      auto gw = Gateway::Start(cluster_.AddNode(), options);
      ASSERT_TRUE(gw.ok()) << gw.status();
      gateways_.push_back(std::move(*gw));
    }
  }
  uint16_t port(int i) { return gateways_[i]->port(); }
  // Publishes other than the pattern directory's own traffic.
  int DataPublishes() { return cluster_.publishes_except(std::string(kPatternsTopic)); }
  int HeldDataAcks() { return cluster_.held_publish_acks_except(std::string(kPatternsTopic)); }
  void TearDown() override {
    for (auto& g : gateways_) g->Stop();
  }
  void ExpectSecondClientWaitsForTheFourthSlot(TestClient& b);
  // Holds the node's acknowledgements; `a` pipelines three PUBLISHes to "ch".
  void HoldThreePublishesOf(TestClient& a);
  std::unique_ptr<TestClient> StartResp3SubscriberOfX();
  void ExpectSecondPatternPublishWaits(GatewayOptions options,
                                       const std::vector<std::string>& patterns);

  FakeCluster cluster_;
  std::vector<std::unique_ptr<Gateway>> gateways_;
};

TEST_F(GatewayTest, PublishReachesSubscribersOnOtherNodes) {
  StartNodes(3);
  TestClient a(port(0)), b(port(1)), c(port(2));
  EXPECT_EQ(a.Call({"SUBSCRIBE", "news", "x"}), Sub("subscribe", "news", 1));
  EXPECT_EQ(a.Read(), Sub("subscribe", "x", 2));
  EXPECT_EQ(c.Call({"SUBSCRIBE", "news"}), Sub("subscribe", "news", 1));
  // PUBLISH counts the receivers on the publishing node only (Redis Cluster).
  EXPECT_EQ(b.Call({"PUBLISH", "news", "hello"}), ":0\r\n");
  EXPECT_EQ(a.Read(), Push({"message", "news", "hello"}));
  EXPECT_EQ(c.Read(), Push({"message", "news", "hello"}));
  TestClient c2(port(2));  // c is in RESP2 subscribed state
  EXPECT_EQ(c2.Call({"PUBLISH", "news", "again"}), ":1\r\n");
  EXPECT_EQ(c.Read(), Push({"message", "news", "again"}));
  EXPECT_EQ(a.Read(), Push({"message", "news", "again"}));
  // One backend subscription per node and topic, whatever the clients.
  EXPECT_EQ(cluster_.subscriptions("news"), 2);
}

TEST_F(GatewayTest, SubscribeIsConfirmedOnlyOnceTheTopicIsActive) {
  StartNodes(2);
  cluster_.HoldActivations();
  TestClient a(port(0)), b(port(1));
  a.Command({"SUBSCRIBE", "late"});
  a.Send("*1\r\n$4\r\nPING\r\n");  // pipelined: must not overtake the confirmation
  ASSERT_TRUE(WaitFor([&] { return cluster_.subscribe_calls("late") == 1; }));
  EXPECT_EQ(a.Pending(), 0u);  // nothing can confirm while activations are held
  cluster_.ReleaseActivations();
  EXPECT_EQ(a.Read(), Sub("subscribe", "late", 1));
  EXPECT_EQ(a.Read(), Push({"pong", ""}));
  // Anything published after the confirmation is delivered.
  EXPECT_EQ(b.Call({"PUBLISH", "late", "m"}), ":0\r\n");
  EXPECT_EQ(a.Read(), Push({"message", "late", "m"}));
}

// One SUBSCRIBE of many channels (one already active for another client,
// one named twice) completes once the last of them is active, with one
// reply per name in the command's order (Redis: the repeated name's reply
// counts it once).
TEST_F(GatewayTest, SubscribeOfManyChannelsCompletesOnceAllAreActive) {
  StartNodes(1);
  TestClient b(port(0));
  ASSERT_EQ(b.Call({"SUBSCRIBE", "ch7"}), Sub("subscribe", "ch7", 1));
  cluster_.HoldActivations();
  TestClient a(port(0));
  std::vector<std::string> command = {"SUBSCRIBE"};
  for (int i = 0; i < 100; ++i) command.push_back("ch" + std::to_string(i));
  command.push_back("ch3");
  a.Command(command);
  a.Send("*1\r\n$4\r\nPING\r\n");
  ASSERT_TRUE(WaitFor([&] { return cluster_.subscribe_calls("ch99") == 1; }));
  EXPECT_EQ(a.Pending(), 0u);
  cluster_.ReleaseActivations();
  for (int i = 0; i < 100; ++i) {
    std::string ch = "ch" + std::to_string(i);
    ASSERT_EQ(a.Read(), Sub("subscribe", ch, i + 1)) << ch;
  }
  EXPECT_EQ(a.Read(), Sub("subscribe", "ch3", 100));
  EXPECT_EQ(a.Read(), Push({"pong", ""}));
}

TEST_F(GatewayTest, ClientLeavingWhileItsSubscribeWaitsIsDroppedAtOnce) {
  StartNodes(1);
  cluster_.HoldActivations();
  {
    TestClient a(port(0));
    a.Command({"SUBSCRIBE", "pending"});
    ASSERT_TRUE(WaitFor([&] { return cluster_.subscribe_calls("pending") == 1; }));
  }
  // No timeout or activation needed: the close is seen while it waits.
  EXPECT_TRUE(WaitFor([&] { return gateways_[0]->stats().clients_connected == 0; }));
  EXPECT_TRUE(WaitFor([&] { return cluster_.subscriptions("pending") == 0; }));
  cluster_.ReleaseActivations();
}

TEST_F(GatewayTest, SubscribeTimesOutWithAnError) {
  GatewayOptions options;
  options.subscribe_timeout = absl::Milliseconds(50);
  StartNodes(1, options);
  cluster_.HoldActivations();
  TestClient a(port(0));
  std::string reply = a.Call({"SUBSCRIBE", "never"});
  EXPECT_EQ(reply, "-ERR subscription not confirmed by the cluster within 50 ms\r\n");
  EXPECT_EQ(a.Call({"PING"}), "+PONG\r\n");  // not in subscribed state
  EXPECT_EQ(gateways_[0]->stats().subscribe_timeouts, 1u);
  EXPECT_TRUE(WaitFor([&] { return cluster_.subscriptions("never") == 0; }));
  cluster_.ReleaseActivations();
}

TEST_F(GatewayTest, PatternsWorkAcrossNodes) {
  StartNodes(3);
  TestClient a(port(0)), b(port(1)), c(port(2));
  EXPECT_EQ(a.Call({"PSUBSCRIBE", "news.*"}), Sub("psubscribe", "news.*", 1));
  EXPECT_EQ(c.Call({"PSUBSCRIBE", "n[a-f]ws.?"}), Sub("psubscribe", "n[a-f]ws.?", 1));
  // Once confirmed, the announcement has been accepted; wait until node 1
  // has taken it (the window docs/resp.md describes).
  ASSERT_TRUE(WaitFor([&] { return gateways_[1]->stats().known_patterns == 2; }));
  int before = DataPublishes();
  EXPECT_EQ(b.Call({"PUBLISH", "news.x", "hi"}), ":0\r\n");
  EXPECT_EQ(a.Read(), Push({"pmessage", "news.*", "news.x", "hi"}));
  EXPECT_EQ(c.Read(), Push({"pmessage", "n[a-f]ws.?", "news.x", "hi"}));
  // Cost: the channel plus one per matching pattern, whatever the cluster size.
  EXPECT_EQ(DataPublishes() - before, 3);
  before = DataPublishes();
  EXPECT_EQ(b.Call({"PUBLISH", "news.long", "x"}), ":0\r\n");
  EXPECT_EQ(a.Read(), Push({"pmessage", "news.*", "news.long", "x"}));
  EXPECT_EQ(DataPublishes() - before, 2);
  EXPECT_EQ(c.Pending(), 0u);
  // A local pattern subscriber counts in PUBLISH's reply.
  EXPECT_EQ(a.Call({"PUNSUBSCRIBE", "news.*"}), Sub("punsubscribe", "news.*", 0));
  ASSERT_TRUE(WaitFor([&] { return gateways_[1]->stats().known_patterns == 1; }));
  before = DataPublishes();
  EXPECT_EQ(b.Call({"PUBLISH", "news.y", "z"}), ":0\r\n");
  EXPECT_EQ(c.Read(), Push({"pmessage", "n[a-f]ws.?", "news.y", "z"}));
  EXPECT_EQ(DataPublishes() - before, 2);
  TestClient c2(port(2));
  EXPECT_EQ(c2.Call({"PUBLISH", "news.q", "w"}), ":1\r\n");
  EXPECT_EQ(c.Read(), Push({"pmessage", "n[a-f]ws.?", "news.q", "w"}));
}

// A PUBLISH looks for the node's own pattern subscribers only while it
// holds a pattern topic (Server::pattern_topics_): the count follows the
// pattern topics as they come, go and come back.
TEST_F(GatewayTest, PublishFindsLocalPatternsAsTheyComeAndGo) {
  StartNodes(1);
  TestClient a(port(0)), b(port(0)), p(port(0));
  EXPECT_EQ(p.Call({"PUBLISH", "news.x", "0"}), ":0\r\n");
  EXPECT_EQ(a.Call({"PSUBSCRIBE", "news.*"}), Sub("psubscribe", "news.*", 1));
  EXPECT_EQ(p.Call({"PUBLISH", "news.x", "1"}), ":1\r\n");
  EXPECT_EQ(a.Read(), Push({"pmessage", "news.*", "news.x", "1"}));
  EXPECT_EQ(b.Call({"PSUBSCRIBE", "*.x"}), Sub("psubscribe", "*.x", 1));
  EXPECT_EQ(p.Call({"PUBLISH", "news.x", "2"}), ":2\r\n");
  EXPECT_EQ(a.Read(), Push({"pmessage", "news.*", "news.x", "2"}));
  EXPECT_EQ(b.Read(), Push({"pmessage", "*.x", "news.x", "2"}));
  // One of two pattern topics dropped: the other is still found.
  EXPECT_EQ(a.Call({"PUNSUBSCRIBE", "news.*"}), Sub("punsubscribe", "news.*", 0));
  EXPECT_EQ(p.Call({"PUBLISH", "news.x", "3"}), ":1\r\n");
  EXPECT_EQ(b.Read(), Push({"pmessage", "*.x", "news.x", "3"}));
  EXPECT_EQ(b.Call({"PUNSUBSCRIBE", "*.x"}), Sub("punsubscribe", "*.x", 0));
  EXPECT_EQ(p.Call({"PUBLISH", "news.x", "4"}), ":0\r\n");
  // None left, then one again.
  EXPECT_EQ(a.Call({"PSUBSCRIBE", "news.*"}), Sub("psubscribe", "news.*", 1));
  EXPECT_EQ(p.Call({"PUBLISH", "news.x", "5"}), ":1\r\n");
  EXPECT_EQ(a.Read(), Push({"pmessage", "news.*", "news.x", "5"}));
  EXPECT_EQ(a.Pending(), 0u);
  EXPECT_EQ(b.Pending(), 0u);
}

// PUBLISH's reply counts the channel's members through Server::topic_index_,
// which follows the gateway's topics as they come, go and come back.
TEST_F(GatewayTest, PublishCountsChannelMembersAsTopicsComeAndGo) {
  StartNodes(1);
  TestClient a(port(0)), b(port(0)), p(port(0));
  EXPECT_EQ(p.Call({"PUBLISH", "ch", "0"}), ":0\r\n");
  EXPECT_EQ(a.Call({"SUBSCRIBE", "ch"}), Sub("subscribe", "ch", 1));
  b.Command({"SUBSCRIBE", "other", "ch"});
  EXPECT_EQ(b.Read(), Sub("subscribe", "other", 1));
  EXPECT_EQ(b.Read(), Sub("subscribe", "ch", 2));
  EXPECT_EQ(p.Call({"PUBLISH", "ch", "1"}), ":2\r\n");
  EXPECT_EQ(a.Read(), Push({"message", "ch", "1"}));
  EXPECT_EQ(b.Read(), Push({"message", "ch", "1"}));
  EXPECT_EQ(p.Call({"PUBSUB", "NUMSUB", "ch", "other", "none"}),
            "*6\r\n$2\r\nch\r\n:2\r\n$5\r\nother\r\n:1\r\n$4\r\nnone\r\n:0\r\n");
  EXPECT_EQ(a.Call({"UNSUBSCRIBE", "ch"}), Sub("unsubscribe", "ch", 0));
  EXPECT_EQ(p.Call({"PUBLISH", "ch", "2"}), ":1\r\n");
  EXPECT_EQ(b.Read(), Push({"message", "ch", "2"}));
  // The topic dropped with its last member, then taken again.
  EXPECT_EQ(b.Call({"UNSUBSCRIBE", "ch"}), Sub("unsubscribe", "ch", 1));
  EXPECT_EQ(p.Call({"PUBLISH", "ch", "3"}), ":0\r\n");
  EXPECT_EQ(p.Call({"PUBLISH", "other", "4"}), ":1\r\n");
  EXPECT_EQ(b.Read(), Push({"message", "other", "4"}));
  EXPECT_EQ(a.Call({"SUBSCRIBE", "ch"}), Sub("subscribe", "ch", 1));
  EXPECT_EQ(p.Call({"PUBLISH", "ch", "5"}), ":1\r\n");
  EXPECT_EQ(a.Read(), Push({"message", "ch", "5"}));
  EXPECT_EQ(a.Pending(), 0u);
  EXPECT_EQ(b.Pending(), 0u);
}

TEST_F(GatewayTest, OnePsubscribeOfManyPatternsIsOneAnnouncement) {
  StartNodes(1);
  TestClient a(port(0));
  ASSERT_TRUE(WaitFor([&] {
    return cluster_.active_subscriptions(std::string(kPatternsTopic)) == 1 &&
           cluster_.publishes(std::string(kPatternsTopic)) == 1;  // its query
  }));
  int before = cluster_.publishes(std::string(kPatternsTopic));
  std::vector<std::string> cmd = {"PSUBSCRIBE"};
  for (int i = 0; i < 100; ++i) cmd.push_back("p" + std::to_string(i) + "*");
  a.Command(cmd);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(a.Read(), Sub("psubscribe", cmd[i + 1], i + 1));
  }
  EXPECT_EQ(cluster_.publishes(std::string(kPatternsTopic)) - before, 1);
}

TEST_F(GatewayTest, PatternsExpireWithoutRefresh) {
  GatewayOptions options;
  options.pattern_refresh = absl::Milliseconds(50);
  options.pattern_ttl = absl::Milliseconds(200);
  StartNodes(2, options);
  TestClient a(port(0));
  EXPECT_EQ(a.Call({"PSUBSCRIBE", "p*"}), Sub("psubscribe", "p*", 1));
  ASSERT_TRUE(WaitFor([&] { return gateways_[1]->stats().known_patterns == 1; }));
  // Refreshed: still known well after one ttl.
  int publishes = cluster_.publishes(std::string(kPatternsTopic));
  ASSERT_TRUE(WaitFor([&] {
    return cluster_.publishes(std::string(kPatternsTopic)) > publishes + 6;
  }));
  EXPECT_EQ(gateways_[1]->stats().known_patterns, 1u);
  // A node that stops refreshing (here: stopped) is forgotten after the ttl.
  gateways_[0]->Stop();
  EXPECT_TRUE(WaitFor([&] { return gateways_[1]->stats().known_patterns == 0; }));
}

TEST_F(GatewayTest, ShardChannelsAreTheirOwnNamespace) {
  StartNodes(2);
  TestClient a(port(0)), b(port(1));
  EXPECT_EQ(a.Call({"SSUBSCRIBE", "s"}), Sub("ssubscribe", "s", 1));
  EXPECT_EQ(b.Call({"PUBLISH", "s", "plain"}), ":0\r\n");
  EXPECT_EQ(b.Call({"SPUBLISH", "s", "shard"}), ":0\r\n");
  EXPECT_EQ(a.Read(), Push({"smessage", "s", "shard"}));
  EXPECT_EQ(a.Pending(), 0u);
  EXPECT_EQ(cluster_.subscriptions(ShardTopic("s")), 1);
}

TEST_F(GatewayTest, DisconnectDropsSubscriptionsAtOnce) {
  StartNodes(1);
  {
    TestClient a(port(0));
    EXPECT_EQ(a.Call({"SUBSCRIBE", "c1"}), Sub("subscribe", "c1", 1));
    EXPECT_EQ(a.Call({"PSUBSCRIBE", "c*"}), Sub("psubscribe", "c*", 2));
    EXPECT_EQ(cluster_.subscriptions("c1"), 1);
  }
  EXPECT_TRUE(WaitFor([&] {
    return cluster_.subscriptions("c1") == 0 && cluster_.subscriptions(PatternTopic("c*")) == 0;
  }));
  EXPECT_TRUE(WaitFor([&] { return gateways_[0]->stats().clients_connected == 0; }));
}

TEST_F(GatewayTest, SlowSubscriberIsDisconnectedAtTheHardLimit) {
  GatewayOptions options;
  options.output_hard_limit = 256 << 10;
  options.output_soft_limit = 1 << 30;
  StartNodes(2, options);
  TestClient slow(port(0), /*rcvbuf=*/4096);
  EXPECT_EQ(slow.Call({"SUBSCRIBE", "firehose"}), Sub("subscribe", "firehose", 1));
  TestClient pub(port(1));
  std::string payload(64 << 10, 'x');
  for (int i = 0; i < 2000 && gateways_[0]->stats().slow_client_disconnects == 0; ++i) {
    ASSERT_EQ(pub.Call({"PUBLISH", "firehose", payload}), ":0\r\n");
  }
  EXPECT_EQ(gateways_[0]->stats().slow_client_disconnects, 1u);
  EXPECT_TRUE(WaitFor([&] { return cluster_.subscriptions("firehose") == 0; }));
}

TEST_F(GatewayTest, SlowSubscriberIsDisconnectedAfterTheSoftLimitTime) {
  GatewayOptions options;
  options.output_hard_limit = 1 << 30;
  options.output_soft_limit = 64 << 10;
  options.output_soft_limit_time = absl::Milliseconds(100);
  StartNodes(2, options);
  TestClient slow(port(0), /*rcvbuf=*/4096);
  EXPECT_EQ(slow.Call({"SUBSCRIBE", "firehose"}), Sub("subscribe", "firehose", 1));
  TestClient pub(port(1));
  std::string payload(16 << 10, 'x');
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (gateways_[0]->stats().slow_client_disconnects == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(pub.Call({"PUBLISH", "firehose", payload}), ":0\r\n");
  }
  EXPECT_EQ(gateways_[0]->stats().slow_client_disconnects, 1u);
}

TEST_F(GatewayTest, ProtocolErrorRepliesThenCloses) {
  StartNodes(1);
  TestClient a(port(0));
  a.Send("*1\r\n$4\r\nPING\r\n*x\r\n");
  EXPECT_EQ(a.Read(), "+PONG\r\n");
  EXPECT_EQ(a.Read(), "-ERR Protocol error: invalid multibulk length\r\n");
  EXPECT_TRUE(a.WaitClosed());
  EXPECT_EQ(gateways_[0]->stats().protocol_errors, 1u);
}

TEST_F(GatewayTest, RequirePass) {
  GatewayOptions options;
  options.requirepass = "sekret";
  StartNodes(1, options);
  TestClient a(port(0));
  EXPECT_EQ(a.Call({"SUBSCRIBE", "x"}), "-NOAUTH Authentication required.\r\n");
  EXPECT_EQ(a.Call({"AUTH", "bad"}),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  EXPECT_EQ(a.Call({"AUTH", "sekret"}), "+OK\r\n");
  EXPECT_EQ(a.Call({"PING"}), "+PONG\r\n");
  auto s = gateways_[0]->stats();
  EXPECT_EQ(s.auth_failures, 1u);
  EXPECT_EQ(s.noauth_rejections, 1u);
}

TEST_F(GatewayTest, BackendPublishFailureIsAnError) {
  StartNodes(1);
  TestClient a(port(0));
  cluster_.FailPublishes(absl::UnavailableError("no root"));
  EXPECT_EQ(a.Call({"PUBLISH", "x", "y"}), "-ERR publish failed: no root\r\n");
  cluster_.FailPublishes(absl::OkStatus());
  EXPECT_EQ(a.Call({"PUBLISH", "x", "y"}), ":0\r\n");
  EXPECT_GE(gateways_[0]->stats().backend_errors, 1u);
}

TEST_F(GatewayTest, ManyClientsManyChannels) {
  StartNodes(2);
  std::vector<std::unique_ptr<TestClient>> subs;
  for (int i = 0; i < 20; ++i) {
    subs.push_back(std::make_unique<TestClient>(port(i % 2)));
    std::string ch = "ch" + std::to_string(i % 5);
    ASSERT_EQ(subs.back()->Call({"SUBSCRIBE", ch}), Sub("subscribe", ch, 1));
  }
  TestClient pub(port(0));
  for (int k = 0; k < 5; ++k) {
    EXPECT_EQ(pub.Call({"PUBLISH", "ch" + std::to_string(k), "m"}), ":2\r\n");
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(subs[i]->Read(), Push({"message", "ch" + std::to_string(i % 5), "m"}));
  }
  EXPECT_EQ(pub.Call({"PUBSUB", "NUMSUB", "ch0", "nope"}),
            "*4\r\n$3\r\nch0\r\n:2\r\n$4\r\nnope\r\n:0\r\n");
}

TEST_F(GatewayTest, ClientList) {
  StartNodes(1);
  TestClient a(port(0)), b(port(0));
  EXPECT_EQ(a.Call({"CLIENT", "SETNAME", "alpha"}), "+OK\r\n");
  EXPECT_EQ(b.Call({"SUBSCRIBE", "x"}), Sub("subscribe", "x", 1));
  std::string all = a.Call({"CLIENT", "LIST"});
  EXPECT_NE(all.find("id=1 addr=127.0.0.1:"), std::string::npos) << all;
  EXPECT_NE(all.find(" name=alpha "), std::string::npos) << all;
  EXPECT_NE(all.find("id=2 "), std::string::npos) << all;
  std::string pubsub = a.Call({"CLIENT", "LIST", "TYPE", "pubsub"});
  EXPECT_EQ(pubsub.find("id=1 "), std::string::npos) << pubsub;
  EXPECT_NE(pubsub.find("id=2 addr"), std::string::npos) << pubsub;
  EXPECT_NE(pubsub.find(" flags=P "), std::string::npos) << pubsub;
  EXPECT_EQ(a.Call({"CLIENT", "LIST", "TYPE", "replica"}), "$0\r\n\r\n");
  std::string one = a.Call({"CLIENT", "LIST", "ID", "2", "99"});
  EXPECT_EQ(one.find("id=1 "), std::string::npos) << one;
  EXPECT_NE(one.find("id=2 "), std::string::npos) << one;
  // Redis's errors.
  EXPECT_EQ(a.Call({"CLIENT", "LIST", "TYPE", "foo"}), "-ERR Unknown client type 'foo'\r\n");
  EXPECT_EQ(a.Call({"CLIENT", "LIST", "ID", "1", "x"}), "-ERR Invalid client ID\r\n");
  EXPECT_EQ(a.Call({"CLIENT", "LIST", "foo"}), "-ERR syntax error\r\n");
  EXPECT_EQ(a.Call({"CLIENT", "LIST", "ID"}), "-ERR syntax error\r\n");
}

TEST_F(GatewayTest, ReservedChannelsAreRefused) {
  StartNodes(1);
  TestClient a(port(0));
  const std::string error = "-ERR channel names starting with '__peter.' are reserved by Peter\r\n";
  EXPECT_EQ(a.Call({"SUBSCRIBE", "ok", "__peter.patterns"}), error);
  EXPECT_EQ(a.Call({"PUBLISH", "__peter.patterns", "PA1forged"}), error);
  EXPECT_EQ(a.Call({"PING"}), "+PONG\r\n");  // nothing was subscribed
  EXPECT_EQ(a.Call({"SSUBSCRIBE", "__peter.x"}), Sub("ssubscribe", "__peter.x", 1));
  EXPECT_EQ(gateways_[0]->stats().reserved_rejections, 2u);
  EXPECT_EQ(cluster_.subscribe_calls("ok"), 0);
}

TEST(SetListenAddressTest, Forms) {
  GatewayOptions o;
  ASSERT_TRUE(SetListenAddress("0.0.0.0:6379", &o).ok());
  EXPECT_EQ(o.listen_host, "0.0.0.0");
  EXPECT_EQ(o.listen_port, 6379);
  ASSERT_TRUE(SetListenAddress("[::1]:7000", &o).ok());
  EXPECT_EQ(o.listen_host, "::1");
  ASSERT_TRUE(SetListenAddress(":0", &o).ok());
  EXPECT_EQ(o.listen_host, "127.0.0.1");
  ASSERT_TRUE(SetListenAddress("localhost:1", &o).ok());
  EXPECT_FALSE(SetListenAddress("6379", &o).ok());
  EXPECT_FALSE(SetListenAddress("host.example:6379", &o).ok());
  EXPECT_FALSE(SetListenAddress("1.2.3.4:65536", &o).ok());
  EXPECT_FALSE(SetListenAddress("1.2.3.4:x", &o).ok());
}

TEST_F(GatewayTest, TopicsTheBackendRefusesAreErrors) {
  StartNodes(1);
  TestClient a(port(0));
  EXPECT_EQ(a.Call({"SUBSCRIBE", "ok", ""}), "-ERR cannot subscribe to '': the node refused it\r\n");
  EXPECT_EQ(a.Call({"PUBLISH", "", "x"}), "-ERR publish failed: empty topic name\r\n");
  EXPECT_EQ(a.Call({"PSUBSCRIBE", std::string(2000, '*')}),
            "-ERR cannot subscribe to '" + std::string(2000, '*') + "': the node refused it\r\n");
  EXPECT_EQ(a.Call({"PING"}), "+PONG\r\n");  // subscribed to nothing
  EXPECT_EQ(cluster_.subscriptions("ok"), 0);
  EXPECT_EQ(gateways_[0]->stats().backend_errors, 3u);
}

TEST_F(GatewayTest, HostileInputNeverCrashes) {
  StartNodes(1);
  std::mt19937 rng(99);
  for (int i = 0; i < 200; ++i) {
    TestClient c(port(0));
    std::string junk(1 + rng() % 2000, '\0');
    for (char& ch : junk) ch = "*$\r\n0123456789-\"' abcSUBSCRIBE"[rng() % 27];
    if (i % 3 == 0) junk = "*3\r\n$9\r\nSUBSCRIBE\r\n" + junk;
    c.Send(junk);
    if (i % 2 == 0) c.Read(std::chrono::milliseconds(20));
  }
  TestClient ok(port(0));
  EXPECT_EQ(ok.Call({"PING"}), "+PONG\r\n");
  EXPECT_GT(gateways_[0]->stats().protocol_errors, 0u);
  EXPECT_TRUE(WaitFor([&] { return gateways_[0]->stats().clients_connected == 1; }));
}

TEST_F(GatewayTest, MaxClientsRefusesWithRedisError) {
  GatewayOptions options;
  options.max_clients = 2;
  StartNodes(1, options);
  TestClient a(port(0)), b(port(0));
  EXPECT_EQ(a.Call({"PING"}), "+PONG\r\n");
  EXPECT_EQ(b.Call({"PING"}), "+PONG\r\n");
  TestClient c(port(0));
  EXPECT_EQ(c.Read(), "-ERR max number of clients reached\r\n");
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_EQ(gateways_[0]->stats().clients_refused, 1u);
}

// A SUBSCRIBE that would take a client past max_subscriptions_per_client
// fails as a whole (nothing subscribed), is counted, and the client and the
// gateway keep working.
TEST_F(GatewayTest, SubscriptionsPerClientAreBounded) {
  GatewayOptions options;
  options.max_subscriptions_per_client = 3;
  StartNodes(1, options);
  TestClient a(port(0)), b(port(0));
  ASSERT_EQ(a.Call({"HELLO", "3"}).substr(0, 1), "%");  // RESP3: any command when subscribed
  EXPECT_EQ(a.Call({"SUBSCRIBE", "c1", "c2"}), ">3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n:1\r\n");
  EXPECT_EQ(a.Read(), ">3\r\n$9\r\nsubscribe\r\n$2\r\nc2\r\n:2\r\n");
  // Two new names (c1 is held already) would make four.
  EXPECT_EQ(a.Call({"PSUBSCRIBE", "p*", "q*"}),
            "-ERR max subscriptions per client (3) reached\r\n");
  EXPECT_EQ(gateways_[0]->stats().subscription_limit_rejections, 1u);
  // Names already held do not count again; one more fits.
  const std::string c1 = a.Call({"SUBSCRIBE", "c1", "c3"});
  EXPECT_EQ(c1.substr(0, 27), ">3\r\n$9\r\nsubscribe\r\n$2\r\nc1\r\n") << c1;
  EXPECT_EQ(a.Read(), ">3\r\n$9\r\nsubscribe\r\n$2\r\nc3\r\n:3\r\n");
  EXPECT_EQ(a.Call({"SSUBSCRIBE", "s1"}), "-ERR max subscriptions per client (3) reached\r\n");
  EXPECT_EQ(gateways_[0]->stats().subscription_limit_rejections, 2u);
  // The three subscriptions still deliver; other clients are not limited by a's.
  EXPECT_EQ(b.Call({"PUBLISH", "c3", "hi"}), ":1\r\n");
  EXPECT_EQ(a.Read(), ">3\r\n$7\r\nmessage\r\n$2\r\nc3\r\n$2\r\nhi\r\n");
  EXPECT_EQ(b.Call({"SUBSCRIBE", "p1", "p2", "p3"}), Sub("subscribe", "p1", 1));
}

// A multibulk request whose arguments together pass max_request_bytes is a
// protocol error (counted, the client closed) as soon as its headers say
// so, before the bytes are buffered; other clients are unaffected.
TEST_F(GatewayTest, RequestSizeIsBounded) {
  GatewayOptions options;
  options.parser.max_request_bytes = 64 << 10;
  StartNodes(1, options);
  TestClient a(port(0)), b(port(0));
  const std::string arg(40 << 10, 'x');
  // Two arguments of 40 KiB each: the second header passes the bound.
  a.Send("*3\r\n$7\r\nPUBLISH\r\n$" + std::to_string(arg.size()) + "\r\n" + arg +
         "\r\n$" + std::to_string(arg.size()) + "\r\n");
  EXPECT_EQ(a.Read(), "-ERR Protocol error: request over 65536 bytes\r\n");
  EXPECT_TRUE(a.WaitClosed());
  EXPECT_EQ(gateways_[0]->stats().requests_too_big, 1u);
  // The whole request counts, protocol included: exactly the bound is
  // fine, one byte more is not.
  auto publish_of = [](size_t total) {
    const std::string head = "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n";
    size_t payload = total - head.size() - 2;
    payload -= std::to_string(payload).size() + 3;  // "$<len>\r\n"
    return Multibulk({"PUBLISH", "ch", std::string(payload, 'y')});
  };
  ASSERT_EQ(publish_of(64 << 10).size(), 64u << 10);
  b.Send(publish_of(64 << 10));
  EXPECT_EQ(b.Read(), ":0\r\n");
  EXPECT_EQ(gateways_[0]->stats().requests_too_big, 1u);
  TestClient c(port(0));
  c.Send(publish_of((64 << 10) + 1));
  EXPECT_EQ(c.Read(), "-ERR Protocol error: request over 65536 bytes\r\n");
  EXPECT_EQ(gateways_[0]->stats().requests_too_big, 2u);
}

// Another node floods the pattern directory (an announcement of more
// patterns than max_cluster_patterns): it is ignored and counted, and the
// gateway's own patterns keep working.
TEST_F(GatewayTest, ClusterPatternDirectoryIsBounded) {
  GatewayOptions options;
  options.max_cluster_patterns = 50;
  StartNodes(1, options);
  Backend& intruder = cluster_.AddNode();
  TestClient a(port(0)), b(port(0));
  EXPECT_EQ(a.Call({"PSUBSCRIBE", "news.*"}), Sub("psubscribe", "news.*", 1));
  Announcement flood{77, 1, absl::Seconds(60), {}};
  for (int i = 0; i < 100; ++i) flood.patterns.push_back("flood" + std::to_string(i) + ".*");
  intruder.Publish(std::string(kPatternsTopic), EncodeAnnouncement(flood), [](absl::StatusOr<uint64_t>) {});
  ASSERT_TRUE(WaitFor([&] { return gateways_[0]->stats().pattern_directory_overflows == 1; }));
  EXPECT_LT(gateways_[0]->stats().known_patterns, 50u);
  EXPECT_EQ(b.Call({"PUBLISH", "news.today", "hi"}).substr(0, 1), ":");
  EXPECT_EQ(a.Read(), Push({"pmessage", "news.*", "news.today", "hi"}));
}

// An announcement stating a long ttl (here a day) is believed only
// max_pattern_ttl: the intruder's patterns are forgotten then.
TEST_F(GatewayTest, PatternAnnouncementTtlIsCapped) {
  GatewayOptions options;
  options.max_pattern_ttl = absl::Milliseconds(500);
  options.pattern_refresh = absl::Milliseconds(100);
  options.pattern_ttl = absl::Milliseconds(300);
  StartNodes(1, options);
  Backend& intruder = cluster_.AddNode();
  TestClient a(port(0)), b(port(0));
  EXPECT_EQ(a.Call({"PSUBSCRIBE", "news.*"}), Sub("psubscribe", "news.*", 1));
  Announcement day{77, 1, absl::Hours(24), {"flood.*"}};
  intruder.Publish(std::string(kPatternsTopic), EncodeAnnouncement(day), [](absl::StatusOr<uint64_t>) {});
  ASSERT_TRUE(WaitFor([&] { return gateways_[0]->stats().pattern_ttls_clipped == 1; }));
  EXPECT_TRUE(WaitFor([&] { return gateways_[0]->stats().known_patterns == 2; }));
  EXPECT_NE(b.Call({"INFO", "stats"}).find("pattern_ttls_clipped:1\r\n"), std::string::npos);
  // The gateway's own pattern stays (refreshed); the intruder's goes.
  EXPECT_TRUE(WaitFor([&] { return gateways_[0]->stats().known_patterns == 1; }));
}

// A client that pipelines requests without reading replies is not read from
// while its unsent output is over output_pause_bytes: the output stays
// bounded, and every reply still comes, in order.
TEST_F(GatewayTest, UnreadPipelineIsThrottledNotBuffered) {
  GatewayOptions options;
  options.output_pause_bytes = 4096;
  StartNodes(1, options);
  TestClient a(port(0), /*rcvbuf=*/4096);
  std::string pipeline;
  for (int i = 0; i < 20000; ++i) pipeline += "*2\r\n$4\r\nECHO\r\n$10\r\n0123456789\r\n";
  std::thread writer([&] { a.Send(pipeline); });  // blocks while the gateway throttles us
  for (int i = 0; i < 20000; ++i) ASSERT_EQ(a.Read(), "$10\r\n0123456789\r\n") << i;
  writer.join();
  EXPECT_EQ(gateways_[0]->stats().slow_client_disconnects, 0u);
  EXPECT_LT(gateways_[0]->stats().output_high_water, 4096u + 17);  // pause + one reply
  EXPECT_GT(gateways_[0]->stats().output_high_water, 0u);
}

// A client that is not subscribed (Redis's "normal" class, whose output
// Redis leaves unlimited by default) pipelines large ECHOs and PINGs and
// reads nothing: once output_pause_bytes are unsent the gateway stops
// reading it (back-pressure: nothing dropped, the client not closed), so
// what the gateway holds for it stays within the pause plus one reply of
// output and one request plus one read of input, however much it sends.
// Once it reads, every reply comes, in order.
TEST_F(GatewayTest, ClientThatNeverReadsLargeRepliesIsBounded) {
  GatewayOptions options;
  options.output_pause_bytes = 256 << 10;
  StartNodes(1, options);
  TestClient a(port(0), /*rcvbuf=*/4096);
  constexpr int kCount = 400;
  const std::string payload(100 << 10, 'p');  // 40 MiB of replies in all
  std::string pipeline;
  for (int i = 0; i < kCount; ++i) pipeline += Multibulk({i % 2 ? "PING" : "ECHO", payload});
  std::atomic<bool> sent{false};
  std::thread writer([&] {
    a.Send(pipeline);  // blocks while the gateway does not read
    sent = true;
  });
  ASSERT_TRUE(WaitFor([&] { return gateways_[0]->stats().commands > 0; }));
  // Far more than the socket buffers hold: it cannot all go while unread.
  EXPECT_FALSE(WaitFor([&] { return sent.load(); }, 500ms));
  const GatewayStats held = gateways_[0]->stats();
  EXPECT_LT(held.commands, static_cast<uint64_t>(kCount));
  const std::string reply = "$" + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
  EXPECT_LE(held.output_high_water, options.output_pause_bytes + reply.size());
  EXPECT_LE(held.input_high_water, Multibulk({"ECHO", payload}).size() + Server::kReadBytes);
  for (int i = 0; i < kCount; ++i) ASSERT_EQ(a.Read(), reply) << i;
  writer.join();
  EXPECT_EQ(gateways_[0]->stats().slow_client_disconnects, 0u);
  EXPECT_LE(gateways_[0]->stats().output_high_water, options.output_pause_bytes + reply.size());
}

// The output limits hold for every client, not only subscribers (Redis's
// pubsub class): a reply that takes a normal client's unsent output over
// output_hard_limit closes it, counted.
TEST_F(GatewayTest, OutputHardLimitClosesANormalClient) {
  GatewayOptions options;
  options.output_hard_limit = 64 << 10;
  options.output_soft_limit = 32 << 10;
  StartNodes(1, options);
  TestClient a(port(0));
  EXPECT_EQ(a.Call({"ECHO", std::string(60 << 10, 'x')}).size(), (60u << 10) + 10);
  a.Command({"ECHO", std::string(70 << 10, 'x')});
  EXPECT_TRUE(a.WaitClosed());
  EXPECT_EQ(gateways_[0]->stats().slow_client_disconnects, 1u);
}

// A client that reads nothing, holding output over the soft limit, is
// closed once output_soft_limit_time has passed (checked by housekeeping:
// with nothing read, no write completes to check it).
TEST_F(GatewayTest, SoftLimitClosesAClientThatNeverReads) {
  GatewayOptions options;
  options.output_soft_limit = 32 << 10;
  options.output_soft_limit_time = absl::Milliseconds(100);
  StartNodes(1, options);
  TestClient a(port(0), /*rcvbuf=*/4096);
  a.Command({"ECHO", std::string(6 << 20, 'x')});  // more than the socket buffers hold
  EXPECT_TRUE(WaitFor([&] { return gateways_[0]->stats().slow_client_disconnects == 1; }));
  EXPECT_TRUE(WaitFor([&] { return gateways_[0]->stats().clients_connected == 0; }));
}

// A burst whose copies take the gateway-wide output past
// max_total_output_bytes before they are written closes no one when the
// subscribers read: the eviction check runs after the writes waiting for
// the end of the loop's round (Server::FlushDeferredClients). Without that
// the reader, holding the whole unsent burst, was evicted.
TEST_F(GatewayTest, ABurstToAReaderPastTheOutputBoundEvictsNoOne) {
  GatewayOptions options;
  options.max_total_output_bytes = 16 << 10;
  StartNodes(1, options);
  TestClient reader(port(0)), pub(port(0));
  ASSERT_EQ(reader.Call({"SUBSCRIBE", "ch"}), Sub("subscribe", "ch", 1));
  constexpr int kCount = 200;
  const std::string payload(1 << 10, 'b');
  std::string pipeline;
  for (int i = 0; i < kCount; ++i) pipeline += Multibulk({"PUBLISH", "ch", payload});
  pub.Send(pipeline);  // about 200 KiB: reads of up to 64 KiB, each a batch
  const std::string message = Push({"message", "ch", payload});
  for (int i = 0; i < kCount; ++i) ASSERT_EQ(reader.Read(), message) << i;
  for (int i = 0; i < kCount; ++i) ASSERT_EQ(pub.Read(), ":1\r\n") << i;
  const GatewayStats s = gateways_[0]->stats();
  EXPECT_EQ(s.evicted_clients, 0u);
  EXPECT_EQ(s.clients_connected, 2u);
}

// Every slow subscriber stays within its own output limits, but together
// they would hold max_clients times them: past max_total_output_bytes the
// clients holding most output are closed, largest first (Redis 7's
// maxmemory-clients eviction), counted and logged, while a subscriber that
// reads keeps every message.
TEST_F(GatewayTest, OutputOfAllClientsIsBoundedByEvictingTheLargest) {
  GatewayOptions options;
  options.max_total_output_bytes = 2 << 20;  // each client's own limits stay at 32/8 MiB
  StartNodes(1, options);
  std::vector<std::unique_ptr<TestClient>> slow;
  for (int i = 0; i < 3; ++i) {
    slow.push_back(std::make_unique<TestClient>(port(0), /*rcvbuf=*/4096));
    ASSERT_EQ(slow.back()->Call({"SUBSCRIBE", "ch"}), Sub("subscribe", "ch", 1));
  }
  TestClient reader(port(0)), pub(port(0));
  ASSERT_EQ(reader.Call({"SUBSCRIBE", "ch"}), Sub("subscribe", "ch", 1));
  // 12.8 MiB to each subscriber: far more than the socket buffers hold.
  constexpr int kCount = 200;
  const std::string payload(64 << 10, 'm');
  const std::string message = Push({"message", "ch", payload});
  // One at a time: a burst (a pipeline) reaches the gateway as one batch,
  // whose copies wait for the batch's end in every subscriber's buffer,
  // the reader's too. And the next only once the reader has its message:
  // a reader on a thread of its own, descheduled under load while the
  // publishes went on, fell behind by more than a slow client held and was
  // evicted (4 evictions instead of 3, once). In step, the reader holds at
  // most one message (64 KiB) at the gateway, and at each eviction the
  // three slow clients together more than 2 MiB less that, so the largest
  // of them over 600 KiB.
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(pub.Call({"PUBLISH", "ch", payload}).substr(0, 1), ":") << i;
    ASSERT_EQ(reader.Read(), message) << i;
  }
  for (auto& c : slow) EXPECT_TRUE(c->WaitClosed());
  const GatewayStats s = gateways_[0]->stats();
  EXPECT_EQ(s.evicted_clients, 3u);
  EXPECT_EQ(s.slow_client_disconnects, 0u);  // no client passed its own limits
  EXPECT_LE(s.output_bytes, options.max_total_output_bytes);
  EXPECT_EQ(s.clients_connected, 2u);  // the reader and the publisher
  EXPECT_NE(pub.Call({"INFO", "stats"}).find("evicted_clients:3\r\n"), std::string::npos);
}

// PUBLISH does not hold up the client: many are in flight at once, their
// acknowledgements come back in any order (here reversed), and the replies
// still leave in command order, interleaved with the replies of commands
// answered at once. The messages reach the subscriber in publish order.
TEST_F(GatewayTest, PipelinedPublishRepliesKeepCommandOrder) {
  StartNodes(1);
  TestClient sub(port(0)), pub(port(0));
  EXPECT_EQ(sub.Call({"SUBSCRIBE", "ch"}), Sub("subscribe", "ch", 1));
  cluster_.HoldPublishAcks();
  constexpr int kCount = 100;
  std::string pipeline;
  for (int i = 0; i < kCount; ++i) {
    pipeline += Multibulk({"PUBLISH", "ch", std::to_string(i)});
    pipeline += Multibulk({"ECHO", std::to_string(i)});
  }
  pub.Send(pipeline);
  for (int i = 0; i < kCount; ++i) {
    ASSERT_EQ(sub.Read(), Push({"message", "ch", std::to_string(i)})) << i;
  }
  ASSERT_TRUE(WaitFor([&] { return cluster_.held_publish_acks("ch") == kCount; }));
  EXPECT_EQ(pub.Pending(), 0u);  // every reply waits behind the first PUBLISH's
  cluster_.ReleasePublishAcks();
  for (int i = 0; i < kCount; ++i) {
    std::string n = std::to_string(i);
    ASSERT_EQ(pub.Read(), ":1\r\n") << i;
    ASSERT_EQ(pub.Read(), "$" + std::to_string(n.size()) + "\r\n" + n + "\r\n") << i;
  }
  EXPECT_EQ(gateways_[0]->stats().publish_limit_waits, 0u);
}

// The reply places wrap around their ring and it grows while they do: a
// round of 10 places, all answered (the ring's first place is then its
// eleventh), then one of 40 (it wraps, and grows twice with its first
// place not at the start), then one of 100 (past the places a ring keeps
// once empty: it gives them back) and one of 10 in a ring grown anew;
// replies still in command order. The fake cluster answers a round's
// publishes last first, so every place but the first is filled before the
// places ahead of it (Client::ReplyPlace's second branch).
TEST_F(GatewayTest, PublishRepliesKeepOrderAsTheirPlacesWrapAndGrow) {
  StartNodes(1);
  TestClient sub(port(0)), pub(port(0));
  EXPECT_EQ(sub.Call({"SUBSCRIBE", "ch"}), Sub("subscribe", "ch", 1));
  int next = 0;
  for (int count : {5, 20, 50, 5}) {
    cluster_.HoldPublishAcks();
    std::string pipeline;
    for (int i = 0; i < count; ++i) {
      pipeline += Multibulk({"PUBLISH", "ch", std::to_string(next + i)});
      pipeline += Multibulk({"ECHO", std::string(300, static_cast<char>('a' + i % 26))});
    }
    pub.Send(pipeline);
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(sub.Read(), Push({"message", "ch", std::to_string(next + i)})) << i;
    }
    ASSERT_TRUE(WaitFor([&] { return cluster_.held_publish_acks("ch") == count; }));
    EXPECT_EQ(pub.Pending(), 0u);
    cluster_.ReleasePublishAcks();
    for (int i = 0; i < count; ++i) {
      ASSERT_EQ(pub.Read(), ":1\r\n") << i;
      ASSERT_EQ(pub.Read(),
                "$300\r\n" + std::string(300, static_cast<char>('a' + i % 26)) + "\r\n")
          << i;
    }
    next += count;
  }
}

// At max_client_publishes_in_flight unacknowledged PUBLISHes a client's
// commands wait; each acknowledgement lets the next ones go.
TEST_F(GatewayTest, PublishesInFlightPerClientAreBounded) {
  GatewayOptions options;
  options.max_client_publishes_in_flight = 8;
  StartNodes(1, options);
  TestClient pub(port(0));
  cluster_.HoldPublishAcks();
  std::string pipeline;
  for (int i = 0; i < 20; ++i) pipeline += Multibulk({"PUBLISH", "ch", std::to_string(i)});
  pipeline += Multibulk({"ECHO", "end"});
  pub.Send(pipeline);
  for (int round = 0; round < 3; ++round) {
    const int expect = round < 2 ? 8 : 4;
    ASSERT_TRUE(WaitFor([&] { return cluster_.held_publish_acks("ch") == expect; })) << round;
    if (round < 2) {
      ASSERT_TRUE(WaitFor([&] {
        return gateways_[0]->stats().publish_limit_waits >= static_cast<uint64_t>(round + 1);
      }));
    }
    // Held at the limit: no more reached the backend.
    EXPECT_EQ(cluster_.publishes("ch"), 8 * round + expect) << round;
    cluster_.ReleasePublishAcks();
  }
  for (int i = 0; i < 20; ++i) ASSERT_EQ(pub.Read(), ":0\r\n") << i;
  EXPECT_EQ(pub.Read(), "$3\r\nend\r\n");
}

// The gateway-wide bound: two clients share max_publishes_in_flight.
// Three PUBLISHes to "ch", pipelined.
std::string ThreePublishes() {
  std::string pipeline;
  for (int i = 0; i < 3; ++i) pipeline += Multibulk({"PUBLISH", "ch", std::to_string(i)});
  return pipeline;
}

void GatewayTest::HoldThreePublishesOf(TestClient& a) {
  cluster_.HoldPublishAcks();
  a.Send(ThreePublishes());
  ASSERT_TRUE(WaitFor([&] { return cluster_.held_publish_acks("ch") == 3; }));
}

// With max_publishes_in_flight 4 and 3 publishes already held: `b`'s three
// wait after the first; once the acks are let go, all of them are answered.
void GatewayTest::ExpectSecondClientWaitsForTheFourthSlot(TestClient& b) {
  b.Send(ThreePublishes());
  ASSERT_TRUE(WaitFor([&] {
    return gateways_[0]->stats().publish_limit_waits >= 1 &&
           cluster_.held_publish_acks("ch") == 4;
  }));
  EXPECT_EQ(cluster_.publishes("ch"), 4);
  cluster_.ReleasePublishAcks();
  ASSERT_TRUE(WaitFor([&] { return cluster_.held_publish_acks("ch") == 2; }));
  cluster_.ReleasePublishAcks();
  for (int i = 0; i < 3; ++i) ASSERT_EQ(b.Read(), ":0\r\n") << i;
  EXPECT_EQ(cluster_.publishes("ch"), 6);
}

// A gateway allowing 4 publishes in flight in all.
GatewayOptions FourPublishesInFlight() {
  GatewayOptions options;
  options.max_publishes_in_flight = 4;
  return options;
}

TEST_F(GatewayTest, PublishesInFlightOfAllClientsAreBounded) {
  StartNodes(1, FourPublishesInFlight());
  TestClient a(port(0)), b(port(0));
  ASSERT_NO_FATAL_FAILURE(HoldThreePublishesOf(a));
  ExpectSecondClientWaitsForTheFourthSlot(b);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(a.Read(), ":0\r\n") << i;
}

// A client that closes with PUBLISHes unanswered does not give their share
// of max_publishes_in_flight back: the node holds them until it answers.
TEST_F(GatewayTest, PublishesOfAClosedClientStayCountedUntilAnswered) {
  StartNodes(1, FourPublishesInFlight());
  TestClient a(port(0)), b(port(0));
  ASSERT_NO_FATAL_FAILURE(HoldThreePublishesOf(a));
  a.Close();
  ASSERT_TRUE(WaitFor([&] { return gateways_[0]->stats().clients_connected == 1; }));
  ExpectSecondClientWaitsForTheFourthSlot(b);  // a's three still count
}

std::string Push3(const std::vector<std::string>& items) {
  std::string s = Push(items);
  s[0] = '>';
  return s;
}

// One node with a 4 KiB output hard limit, and a RESP3 client on it
// subscribed to "x".
std::unique_ptr<TestClient> GatewayTest::StartResp3SubscriberOfX() {
  GatewayOptions options;
  options.output_hard_limit = 4096;
  StartNodes(1, options);
  auto c = std::make_unique<TestClient>(port(0));
  c->Command({"HELLO", "3"});
  EXPECT_NE(c->Read(), "<timeout>");
  EXPECT_EQ(c->Call({"SUBSCRIBE", "x"}), ">3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n");
  return c;
}

// A RESP3 client's pushes do not wait behind its own PUBLISH's unanswered
// reply (RESP3 marks them as pushes; Redis writes a reply at once, so its
// pushes never wait): a subscriber that reads fast is not disconnected
// while the node takes its time to answer its PUBLISH.
TEST_F(GatewayTest, Resp3PushesGoAheadOfAnUnansweredPublishReply) {
  auto subscriber = StartResp3SubscriberOfX();
  TestClient& c = *subscriber;
  TestClient other(port(0));
  cluster_.HoldPublishAcks();
  c.Send(Multibulk({"PUBLISH", "y", "1"}) + Multibulk({"PING"}));
  ASSERT_TRUE(WaitFor([&] { return cluster_.held_publish_acks("y") == 1; }));
  // 100 pushes of ~130 bytes: three times the hard limit, read as they come.
  const std::string payload(100, 'p');
  for (int i = 0; i < 100; ++i) {
    other.Command({"PUBLISH", "x", payload});
    ASSERT_EQ(c.Read(), Push3({"message", "x", payload})) << i;
  }
  EXPECT_EQ(c.Pending(), 0u);  // the replies still wait, in order
  cluster_.ReleasePublishAcks();
  EXPECT_EQ(c.Read(), ":0\r\n");
  EXPECT_EQ(c.Read(), "+PONG\r\n");
  EXPECT_EQ(gateways_[0]->stats().slow_client_disconnects, 0u);
}

// A push never overtakes a subscription's confirmation (nor HELLO's or
// RESET's reply) queued behind an unanswered PUBLISH, and later pushes do
// not overtake it either (push order). Output queued that way counts
// toward the output limits: a client whose own PUBLISH is never answered
// is disconnected at the hard limit, not left to grow.
TEST_F(GatewayTest, PushesWaitBehindAConfirmationQueuedBehindAPublish) {
  auto subscriber = StartResp3SubscriberOfX();
  TestClient& c = *subscriber;
  TestClient other(port(0));
  cluster_.HoldPublishAcks();
  c.Send(Multibulk({"PUBLISH", "y", "1"}) + Multibulk({"SUBSCRIBE", "z"}));
  ASSERT_TRUE(WaitFor([&] { return cluster_.held_publish_acks("y") == 1; }));
  ASSERT_TRUE(WaitFor([&] { return cluster_.subscriptions("z") == 1; }));
  other.Send(Multibulk({"PUBLISH", "z", "first"}) + Multibulk({"PUBLISH", "x", "second"}));
  ASSERT_TRUE(WaitFor([&] { return gateways_[0]->stats().messages_delivered == 2; }));
  EXPECT_EQ(c.Pending(), 0u);  // all behind the PUBLISH's reply
  cluster_.ReleasePublishAcks();
  EXPECT_EQ(c.Read(), ":0\r\n");
  EXPECT_EQ(c.Read(), ">3\r\n$9\r\nsubscribe\r\n$1\r\nz\r\n:2\r\n");
  EXPECT_EQ(c.Read(), Push3({"message", "z", "first"}));
  EXPECT_EQ(c.Read(), Push3({"message", "x", "second"}));
  // Once the confirmation is out, pushes go ahead of a new unanswered reply.
  c.Command({"PUBLISH", "y", "2"});
  ASSERT_TRUE(WaitFor([&] { return cluster_.held_publish_acks("y") == 1; }));
  other.Command({"PUBLISH", "x", "third"});
  EXPECT_EQ(c.Read(), Push3({"message", "x", "third"}));
  // Behind a new confirmation, pushes wait again, and count toward the limit.
  c.Command({"SUBSCRIBE", "w"});
  ASSERT_TRUE(WaitFor([&] { return cluster_.subscriptions("w") == 1; }));
  const std::string payload(100, 'p');
  std::string pipeline;
  for (int i = 0; i < 100; ++i) pipeline += Multibulk({"PUBLISH", "x", payload});
  other.Send(pipeline);
  ASSERT_TRUE(WaitFor([&] { return gateways_[0]->stats().slow_client_disconnects == 1; }));
  EXPECT_EQ(c.Pending(), 0u);  // nothing passed the queued confirmation
  EXPECT_TRUE(c.WaitClosed());
  EXPECT_GT(gateways_[0]->stats().output_high_water, 4096u);
  cluster_.ReleasePublishAcks();
}

// One node with `options`, where a client holds `patterns` (all matching
// "n.x"), so a PUBLISH to "n.x" costs cost = 1 + patterns node publishes.
// Another client pipelines two, with the limit at `cost`: the second waits
// until the first is answered.
void GatewayTest::ExpectSecondPatternPublishWaits(GatewayOptions options,
                                                  const std::vector<std::string>& patterns) {
  StartNodes(1, options);
  TestClient sub(port(0)), pub(port(0));
  std::vector<std::string> psubscribe = {"PSUBSCRIBE"};
  psubscribe.insert(psubscribe.end(), patterns.begin(), patterns.end());
  sub.Command(psubscribe);
  for (size_t i = 0; i < patterns.size(); ++i) {
    ASSERT_EQ(sub.Read(), Sub("psubscribe", patterns[i], static_cast<int>(i + 1)));
  }
  const int cost = static_cast<int>(patterns.size()) + 1;
  const int before = DataPublishes();
  cluster_.HoldPublishAcks();
  pub.Send(Multibulk({"PUBLISH", "n.x", "1"}) + Multibulk({"PUBLISH", "n.x", "2"}));
  ASSERT_TRUE(WaitFor([&] {
    return gateways_[0]->stats().publish_limit_waits == 1 && HeldDataAcks() == cost;
  }));
  EXPECT_EQ(DataPublishes() - before, cost);
  cluster_.ReleasePublishAcks();
  ASSERT_TRUE(WaitFor([&] { return HeldDataAcks() == cost; }));
  EXPECT_EQ(DataPublishes() - before, 2 * cost);
  cluster_.ReleasePublishAcks();
  const std::string receivers = ":" + std::to_string(cost - 1) + "\r\n";
  EXPECT_EQ(pub.Read(), receivers);
  EXPECT_EQ(pub.Read(), receivers);
  for (int i = 0; i < 2 * (cost - 1); ++i) ASSERT_NE(sub.Read(), "<timeout>") << i;
}

// A PUBLISH matching patterns makes one node publish per pattern besides
// the channel's: the publish limits count them all, so they bound what the
// node holds (here the channel and three copies, 4 of the gateway's 4: the
// second PUBLISH waits).
TEST_F(GatewayTest, PublishLimitsCountEveryPatternCopy) {
  GatewayOptions options;
  options.max_publishes_in_flight = 4;
  ExpectSecondPatternPublishWaits(options, {"n.*", "n.?", "*"});
}

// The per-client bound counts node publishes too: with 2 and one pattern,
// one PUBLISH fills it.
TEST_F(GatewayTest, PerClientPublishLimitCountsPatternCopies) {
  GatewayOptions options;
  options.max_client_publishes_in_flight = 2;
  ExpectSecondPatternPublishWaits(options, {"n.*"});
}

// A pattern copy the node could not publish is not a success: the pattern's
// subscribers would miss a message reported as published. The reply says
// the channel's own publish was accepted.
TEST_F(GatewayTest, FailedPatternCopyIsAnError) {
  StartNodes(1);
  TestClient psub(port(0)), sub(port(0)), pub(port(0));
  EXPECT_EQ(psub.Call({"PSUBSCRIBE", "n.*", "n.?"}), Sub("psubscribe", "n.*", 1));
  EXPECT_EQ(psub.Read(), Sub("psubscribe", "n.?", 2));
  EXPECT_EQ(sub.Call({"SUBSCRIBE", "n.x"}), Sub("subscribe", "n.x", 1));
  cluster_.FailPublishesTo(PatternTopic("n.*"), absl::ResourceExhaustedError("too many"));
  EXPECT_EQ(pub.Call({"PUBLISH", "n.x", "m"}),
            "-ERR publish accepted for the channel but failed for 1 of 2 matching patterns: "
            "too many\r\n");
  EXPECT_EQ(sub.Read(), Push({"message", "n.x", "m"}));
  EXPECT_EQ(psub.Read(), Push({"pmessage", "n.?", "n.x", "m"}));
  EXPECT_EQ(gateways_[0]->stats().backend_errors, 1u);
  cluster_.FailPublishesTo(PatternTopic("n.*"), absl::OkStatus());
  EXPECT_EQ(pub.Call({"PUBLISH", "n.x", "m"}), ":3\r\n");
}

// PUBLISH's message is lent by the parser (a view into its buffer, not a
// copied argument): whole or split across reads, pipelined, far larger
// than a read, to a channel, a pattern and a shard channel, every message
// arrives whole, and errors are as before.
TEST_F(GatewayTest, LentPublishMessagesArriveWhole) {
  StartNodes(1);
  TestClient sub(port(0)), psub(port(0)), ssub(port(0)), pub(port(0));
  EXPECT_EQ(sub.Call({"SUBSCRIBE", "ch"}), Sub("subscribe", "ch", 1));
  EXPECT_EQ(psub.Call({"PSUBSCRIBE", "c*"}), Sub("psubscribe", "c*", 1));
  EXPECT_EQ(ssub.Call({"SSUBSCRIBE", "ch"}), Sub("ssubscribe", "ch", 1));
  std::mt19937 rng(19);
  std::string big(300 << 10, '\0');
  for (char& ch : big) ch = static_cast<char>(rng());
  const std::string pipeline = Multibulk({"PUBLISH", "ch", "one"}) +
                               Multibulk({"publish", "ch", big}) + Multibulk({"PUBLISH", "ch"}) +
                               Multibulk({"SPUBLISH", "ch", big.substr(1)}) +
                               Multibulk({"ECHO", "x"}) + Multibulk({"PUBLISH", "ch", "two"});
  // Whole, then in pieces of 1 to 4,000 bytes.
  for (int round = 0; round < 2; ++round) {
    for (size_t at = 0; at < pipeline.size();) {
      const size_t n = round == 0 ? pipeline.size() : 1 + rng() % 4000;
      pub.Send(std::string_view(pipeline).substr(at, n));
      at += n;
    }
    EXPECT_EQ(pub.Read(), ":2\r\n");
    EXPECT_EQ(pub.Read(), ":2\r\n");
    EXPECT_EQ(pub.Read(), "-ERR wrong number of arguments for 'publish' command\r\n");
    EXPECT_EQ(pub.Read(), ":1\r\n");
    EXPECT_EQ(pub.Read(), "$1\r\nx\r\n");
    EXPECT_EQ(pub.Read(), ":2\r\n");
    for (const std::string& message : {std::string("one"), big, std::string("two")}) {
      EXPECT_TRUE(sub.Read() == Push({"message", "ch", message})) << round;
      EXPECT_TRUE(psub.Read() == Push({"pmessage", "c*", "ch", message})) << round;
    }
    EXPECT_TRUE(ssub.Read() == Push({"smessage", "ch", big.substr(1)})) << round;
  }
  EXPECT_EQ(gateways_[0]->stats().wrong_arity, 2u);
  EXPECT_EQ(gateways_[0]->stats().protocol_errors, 0u);
}

// A message to several clients of a topic is encoded once per protocol
// and the bytes shared: RESP2 and RESP3 subscribers of a channel and of a
// pattern each get their exact push, and a lone subscriber's is encoded
// for it alone.
TEST_F(GatewayTest, AMessageIsEncodedOncePerProtocolForItsClients) {
  StartNodes(1);
  std::vector<std::unique_ptr<TestClient>> subs;
  for (int i = 0; i < 7; ++i) {
    subs.push_back(std::make_unique<TestClient>(port(0)));
    if (i % 2 == 1) {
      ASSERT_EQ(subs[i]->Call({"HELLO", "3"}).substr(0, 1), "%");
    }
  }
  auto resp3 = [](std::string bytes) { return bytes.replace(0, 1, ">"); };
  for (int i = 0; i < 7; ++i) {
    std::vector<std::string> sub = {i < 4 ? "SUBSCRIBE" : i < 6 ? "PSUBSCRIBE" : "SSUBSCRIBE",
                                    i < 4 ? "ch" : i < 6 ? "c*" : "ch"};
    std::string confirm =
        Sub(absl::AsciiStrToLower(sub[0]), sub[1], 1);
    ASSERT_EQ(subs[i]->Call(sub), i % 2 == 1 ? resp3(confirm) : confirm) << i;
  }
  TestClient pub(port(0));
  for (int m = 0; m < 4; ++m) {
    const std::string payload(20 + m, static_cast<char>('a' + m));
    ASSERT_EQ(pub.Call({"PUBLISH", "ch", payload}), ":6\r\n");
    ASSERT_EQ(pub.Call({"SPUBLISH", "ch", payload}), ":1\r\n");
    for (int i = 0; i < 7; ++i) {
      std::string push = i < 4   ? Push({"message", "ch", payload})
                         : i < 6 ? Push({"pmessage", "c*", "ch", payload})
                                 : Push({"smessage", "ch", payload});
      ASSERT_EQ(subs[i]->Read(), i % 2 == 1 ? resp3(push) : push) << i;
    }
  }
  // Per message: the channel's 4 clients in 2 protocols, the pattern's 2 in
  // 2, the shard channel's one: 7 deliveries, 5 encodings.
  EXPECT_EQ(gateways_[0]->stats().messages_delivered, 4u * 7);
  EXPECT_EQ(gateways_[0]->stats().messages_encoded, 4u * 5);
}

// Messages waiting for the gateway's loop are bounded in bytes: beyond
// max_queued_message_bytes they are dropped and counted, and every message
// is either delivered, in order, or counted.
TEST_F(GatewayTest, QueuedMessagesAreBounded) {
  GatewayOptions options;
  options.max_queued_message_bytes = 1;  // one message at a time
  StartNodes(1, options);
  TestClient sub(port(0)), pub(port(0));
  EXPECT_EQ(sub.Call({"SUBSCRIBE", "ch"}), Sub("subscribe", "ch", 1));
  constexpr int kCount = 2000;
  std::string pipeline;
  for (int i = 0; i < kCount; ++i) pipeline += Multibulk({"PUBLISH", "ch", std::to_string(i)});
  pub.Send(pipeline);
  for (int i = 0; i < kCount; ++i) ASSERT_NE(pub.Read(), "<timeout>") << i;
  auto& g = *gateways_[0];
  ASSERT_TRUE(WaitFor([&] {
    return g.stats().messages_delivered + g.stats().messages_dropped == kCount;
  }));
  const uint64_t delivered = g.stats().messages_delivered;
  RecordProperty("dropped", static_cast<int>(g.stats().messages_dropped));
  int last = -1;
  for (uint64_t i = 0; i < delivered; ++i) {
    std::string push = sub.Read();
    size_t at = push.rfind("$");
    ASSERT_NE(at, std::string::npos) << push;
    int n = std::stoi(push.substr(push.find("\r\n", at) + 2));
    ASSERT_GT(n, last) << i;
    last = n;
  }
  EXPECT_EQ(sub.Pending(), 0u);
}

// The messages of the batch the loop is running are still in memory: they
// count toward max_queued_message_bytes until the batch is done (else the
// running batch and the queue could each hold the bound).
TEST(PosterTest, MessagesOfTheRunningBatchCountTowardTheBound) {
  asio::io_context io;
  std::shared_ptr<Poster> poster;
  std::vector<std::string> ran;
  bool second_taken = true;
  poster = std::make_shared<Poster>(
      &io, /*direct=*/false, [] {}, [] {},
      [&](const std::weak_ptr<Topic>&, std::string_view payload) {
        ran.emplace_back(payload);
        // The loop is busy with this batch, whose message is in memory.
        if (ran.size() == 1) second_taken = poster->PostMessage(20, {}, std::string(15, 'b'));
      },
      [](PublishAnswer&) {});
  ASSERT_TRUE(poster->PostMessage(20, {}, std::string(10, 'a')));
  io.run();
  EXPECT_FALSE(second_taken);
  EXPECT_EQ(ran.size(), 1u);
  // Once the batch is done, its bytes are given back.
  EXPECT_TRUE(poster->PostMessage(20, {}, std::string(15, 'c')));
  io.restart();
  io.run();
  EXPECT_EQ(ran.size(), 2u);
  poster->Disable();
}

// On the backend's loop (direct): callbacks run at once, in order, with no
// queue and so no bound to drop at; the batch's end (the clients' deferred
// writes) runs once, after them, in a posted handler; nothing after
// Disable.
TEST(PosterTest, DirectRunsAtOnceAndEndsEachBatchOnce) {
  asio::io_context io;
  int before = 0, after = 0;
  std::vector<std::string> ran;
  auto poster = std::make_shared<Poster>(
      &io, /*direct=*/true, [&] { ++before; }, [&] { ++after; },
      [&](const std::weak_ptr<Topic>&, std::string_view payload) { ran.emplace_back(payload); },
      [&](PublishAnswer&) { ran.emplace_back("answer"); });
  EXPECT_TRUE(poster->PostMessage(1, {}, "a"));
  EXPECT_TRUE(poster->PostMessage(1, {}, "bb"));
  poster->PostAnswer(PublishAnswer{});
  poster->Post([&] { ran.emplace_back("fn"); });
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "bb", "answer", "fn"}));
  EXPECT_EQ(before, 1);
  EXPECT_EQ(after, 0);
  io.run();
  EXPECT_EQ(after, 1);
  EXPECT_TRUE(poster->PostMessage(1, {}, "c"));
  EXPECT_EQ(before, 2);
  poster->Disable();
  poster->PostMessage(1, {}, "d");
  poster->Post([&] { ran.emplace_back("late"); });
  io.restart();
  io.run();
  EXPECT_EQ(after, 1);  // disabled before its batch ended
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "bb", "answer", "fn", "c"}));
}

// Many clients sending big requests at once (16 x 3 x 192 KiB): the
// request bytes the gateway holds for all of them stay within
// max_total_input_bytes (256 KiB) plus one request finishing and one read
// (up to Server::kReadBytes) per client, where they would reach about 3 MiB
// without the bound; reads
// pause (counted) and every request is still answered, in order.
TEST_F(GatewayTest, InputOfAllClientsIsBounded) {
  GatewayOptions options;
  options.max_total_input_bytes = 256 << 10;
  options.parser.max_request_bytes = 256 << 10;
  StartNodes(1, options);
  constexpr int kClients = 16, kRequests = 3;
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(std::make_unique<TestClient>(port(0)));
  std::vector<std::thread> threads;
  std::atomic<int> answered{0};
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      TestClient& c = *clients[i];
      std::vector<std::string> args;
      std::string pipeline;
      for (int r = 0; r < kRequests; ++r) {
        args.push_back(std::string(192 << 10, static_cast<char>('a' + (i + r) % 26)));
        pipeline += Multibulk({"ECHO", args.back()});
      }
      c.Send(pipeline);  // blocks while the gateway does not read
      for (int r = 0; r < kRequests; ++r) {
        if (c.Read(10s) == "$" + std::to_string(args[r].size()) + "\r\n" + args[r] + "\r\n") {
          ++answered;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(answered, kClients * kRequests);
  const GatewayStats s = gateways_[0]->stats();
  EXPECT_GT(s.input_limit_pauses, 0u);
  EXPECT_LE(s.input_high_water, (256u << 10) + (256u << 10) + kClients * Server::kReadBytes);
  EXPECT_TRUE(WaitFor([&] { return gateways_[0]->stats().input_bytes == 0; }));
  EXPECT_EQ(s.protocol_errors, 0u);
}

// A client whose request stalls half-way cannot hold the others paused
// at the gateway-wide bound: after a housekeeping tick without bytes from
// it, another paused client gets the turn; and a client whose request
// alone passes its own bound still gets the request-size error then.
TEST_F(GatewayTest, StalledRequestAtTheInputBoundPassesTheTurn) {
  GatewayOptions options;
  options.max_total_input_bytes = 32 << 10;
  options.parser.max_request_bytes = 64 << 10;
  StartNodes(1, options);
  TestClient holder(port(0)), big(port(0));
  // Most of a 65,024-byte request, then nothing: the total passes the bound.
  holder.Send("*2\r\n$4\r\nECHO\r\n$65000\r\n" + std::string(64000, 'h'));
  ASSERT_TRUE(WaitFor([&] { return gateways_[0]->stats().input_bytes >= 64000; }));
  big.Send("*2\r\n$4\r\nECHO\r\n");  // read, then `big` is paused
  ASSERT_TRUE(WaitFor([&] { return gateways_[0]->stats().input_limit_pauses == 1; }));
  big.Send("$100000\r\n" + std::string(1000, 'b'));
  EXPECT_EQ(big.Read(), "-ERR Protocol error: request over 65536 bytes\r\n");
  EXPECT_EQ(gateways_[0]->stats().requests_too_big, 1u);
  holder.Send(std::string(1000, 'h') + "\r\n");
  EXPECT_EQ(holder.Read(), "$65000\r\n" + std::string(65000, 'h') + "\r\n");
  EXPECT_TRUE(WaitFor([&] { return gateways_[0]->stats().input_bytes == 0; }));
}

// QUIT after pipelined PUBLISHes closes only once their replies are sent.
TEST_F(GatewayTest, QuitWaitsForPublishReplies) {
  StartNodes(1);
  TestClient pub(port(0));
  cluster_.HoldPublishAcks();
  pub.Send(Multibulk({"PUBLISH", "ch", "x"}) + Multibulk({"QUIT"}));
  ASSERT_TRUE(WaitFor([&] { return cluster_.held_publish_acks("ch") == 1; }));
  cluster_.ReleasePublishAcks();
  EXPECT_EQ(pub.Read(), ":0\r\n");
  EXPECT_EQ(pub.Read(), "+OK\r\n");
  EXPECT_TRUE(pub.WaitClosed());
}

// After QUIT its +OK is the last thing a client gets, as in Redis: a
// message published after the gateway read the QUIT is not sent, even when
// the +OK still waits behind an unanswered PUBLISH (RESP2: the message
// would queue behind it; RESP3: it would go ahead of it).
TEST_F(GatewayTest, NothingIsSentAfterQuitsReply) {
  StartNodes(1);
  for (int protocol : {2, 3}) {
    SCOPED_TRACE(protocol);
    TestClient sub(port(0)), watcher(port(0)), other(port(0));
    if (protocol == 3) {
      sub.Command({"HELLO", "3"});
      ASSERT_NE(sub.Read(), "<timeout>");
    }
    ASSERT_NE(sub.Call({"SUBSCRIBE", "x"}), "<timeout>");
    ASSERT_NE(watcher.Call({"SUBSCRIBE", "x"}), "<timeout>");
    cluster_.HoldPublishAcks();
    const uint64_t commands = gateways_[0]->stats().commands;
    sub.Send(Multibulk({"PUBLISH", "x", "before"}) + Multibulk({"QUIT"}));
    // Both read (the PUBLISH does not hold the client's commands back).
    ASSERT_TRUE(WaitFor([&] { return gateways_[0]->stats().commands == commands + 2; }));
    other.Command({"PUBLISH", "x", "after"});
    // Delivered to both subscribers in one go: once the watcher has it,
    // the quitting client's copy was written, or discarded.
    std::string seen;
    while (seen.find("after") == std::string::npos) {
      seen = watcher.Read();
      ASSERT_NE(seen, "<timeout>");
    }
    cluster_.ReleasePublishAcks();
    // The subscriber's own message may come before the PUBLISH's reply
    // (RESP3) or after it, but before +OK; "after" never comes.
    std::vector<std::string> got;
    for (std::string r = sub.Read(); r != "<closed>" && r != "<timeout>"; r = sub.Read()) {
      got.push_back(r);
    }
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back(), "+OK\r\n");
    for (const std::string& r : got) EXPECT_EQ(r.find("after"), std::string::npos) << r;
    EXPECT_TRUE(sub.WaitClosed());
  }
}

}  // namespace
}  // namespace peter::resp

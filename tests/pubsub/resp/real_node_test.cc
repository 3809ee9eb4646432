// The gateway on real embedded nodes (include/peter/node.h): three nodes on
// loopback, a gateway on each, through a test-only Backend adapter. Checks
// the Backend contract the gateway relies on (activation, self-delivery,
// done after the root accepted) with Scribe underneath.
#include <dirent.h>

#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "peter/node.h"
#include "pubsub/node/resp_backend.h"
#include "pubsub/resp/backend.h"
#include "pubsub/resp/gateway.h"
#include "pubsub/resp/server.h"  // Asio
#include "tests/pubsub/resp/test_client.h"

namespace peter::resp {
namespace {

using testing::Push;
using testing::TestClient;

// peter::Node as a Backend: a few lines, as an embedding would write them.
class NodeBackend : public Backend {
 public:
  explicit NodeBackend(Node& node) : node_(node) {}

  absl::StatusOr<std::unique_ptr<BackendSubscription>> Subscribe(
      std::string topic, MessageFn on_message, ActiveFn on_active) override {
    SubscribeOptions options;
    options.on_active = std::move(on_active);
    auto sub = node_.Subscribe(
        std::move(topic),
        [on_message = std::move(on_message)](const Message& m) { on_message(m.topic, m.payload); },
        std::move(options));
    if (!sub.ok()) return sub.status();
    return std::unique_ptr<BackendSubscription>(new Held(std::move(*sub)));
  }

  void Publish(std::string topic, pubsub::Payload payload, PublishDoneFn done) override {
    // The public callback is a std::function: copyable, so shared.
    node_.Publish(std::move(topic), std::string(payload),
                  [done = std::make_shared<PublishDoneFn>(std::move(done))](
                      absl::StatusOr<uint64_t> seq) { (*done)(std::move(seq)); });
  }

 private:
  struct Held : BackendSubscription {
    explicit Held(Subscription s) : sub(std::move(s)) {}
    Subscription sub;
  };
  Node& node_;
};

// Which backend the gateways run on: the adapter above (the gateway on a
// thread of its own, callbacks from the node's delivery thread), or the one
// `peter node --resp` uses (pubsub/node/resp_backend.h), with the gateway on
// the node's network thread or, with GatewayOptions::own_thread, on its own.
enum class Mode { kEmbeddingAdapter, kNodeLoop, kNodeOwnThread };

std::string ModeName(Mode mode) {
  switch (mode) {
    case Mode::kEmbeddingAdapter: return "EmbeddingAdapter";
    case Mode::kNodeLoop: return "PeterNodeBackend";
    case Mode::kNodeOwnThread: return "PeterNodeBackendOwnThread";
  }
  return "";
}

// Threads of this process now.
int ThreadCount() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

// Nodes on loopback (three by default), a gateway on each.
struct ThreeNodes {
  void Start(Mode mode = Mode::kEmbeddingAdapter, int count = 3, GatewayOptions options = {}) {
    options.own_thread = mode == Mode::kNodeOwnThread;
    for (int i = 0; i < count; ++i) {
      NodeOptions options;
      if (i > 0) options.bootstrap = {nodes[0]->listen_address()};
      auto node = Node::Start(std::move(options));
      ASSERT_TRUE(node.ok()) << node.status();
      ASSERT_TRUE((*node)->WaitUntilActive(absl::Seconds(20)).ok());
      nodes.push_back(std::move(*node));
    }
    for (auto& node : nodes) {
      if (mode != Mode::kEmbeddingAdapter) {
        backends.push_back(std::make_unique<node_internal::NodeBackend>(node.get()));
      } else {
        backends.push_back(std::make_unique<NodeBackend>(*node));
      }
      auto g = Gateway::Start(*backends.back(), options);
      ASSERT_TRUE(g.ok()) << g.status();
      gateways.push_back(std::move(*g));
    }
  }
  // Gateways stop before their backends and nodes go.
  ~ThreeNodes() {
    for (auto& g : gateways) g->Stop();
  }

  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<std::unique_ptr<Gateway>> gateways;
};

TEST(RealNodeGatewayTest, ChannelsAndPatternsAcrossThreeNodes) {
  ThreeNodes cluster;
  ASSERT_NO_FATAL_FAILURE(cluster.Start());
  auto& gateways = cluster.gateways;
  TestClient a(gateways[0]->port()), b(gateways[1]->port()), c(gateways[2]->port());
  TestClient a2(gateways[0]->port());
  EXPECT_EQ(a.Call({"SUBSCRIBE", "news"}), "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
  EXPECT_EQ(c.Call({"PSUBSCRIBE", "ne*"}), "*3\r\n$10\r\npsubscribe\r\n$3\r\nne*\r\n:1\r\n");
  // The pattern's announcement must reach node 1 before its publishes match
  // it (the documented window): wait for it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (gateways[1]->stats().known_patterns < 1) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::yield();
  }
  EXPECT_EQ(b.Call({"PUBLISH", "news", "from-b"}), ":0\r\n");
  EXPECT_EQ(a.Read(std::chrono::seconds(20)), Push({"message", "news", "from-b"}));
  EXPECT_EQ(c.Read(std::chrono::seconds(20)), Push({"pmessage", "ne*", "news", "from-b"}));
  // Published on the subscriber's own node: delivered through the tree too.
  EXPECT_EQ(a2.Call({"PUBLISH", "news", "from-a"}), ":1\r\n");
  EXPECT_EQ(a.Read(std::chrono::seconds(20)), Push({"message", "news", "from-a"}));
  EXPECT_EQ(c.Read(std::chrono::seconds(20)), Push({"pmessage", "ne*", "news", "from-a"}));
  for (auto& g : gateways) EXPECT_EQ(g->stats().backend_errors, 0u);
  for (auto& g : gateways) g->Stop();
}

// 10,000 PUBLISHes on each of three channels, pipelined by one client (many
// in flight at once through the node's gateway): every reply comes, and
// subscribers on each of the three nodes see the messages in the order the
// client sent them, whichever node roots the channel, even when the root's
// thread stalls past the hop-ack timeout and is routed around, as a
// sanitized build on a loaded machine does (docs/resp.md, order).
class PipelinedPublishTest : public ::testing::TestWithParam<Mode> {};

TEST_P(PipelinedPublishTest, ArriveInOrder) {
  ThreeNodes cluster;
  ASSERT_NO_FATAL_FAILURE(cluster.Start(GetParam()));
  auto& gateways = cluster.gateways;
  constexpr int kCount = 10000;
  for (const std::string channel : {"ordered-a", "ordered-b", "ordered-c"}) {
    std::vector<std::unique_ptr<TestClient>> subscribers;
    for (auto& g : gateways) {
      subscribers.push_back(std::make_unique<TestClient>(g->port()));
      ASSERT_EQ(subscribers.back()->Call({"SUBSCRIBE", channel}),
                "*3\r\n$9\r\nsubscribe\r\n$" + std::to_string(channel.size()) + "\r\n" +
                    channel + "\r\n:1\r\n");
    }
    TestClient publisher(gateways[1]->port());
    std::string pipeline;
    for (int i = 0; i < kCount; ++i) {
      pipeline += testing::Multibulk({"PUBLISH", channel, std::to_string(i)});
    }
    // The gateway may stop reading while its publishes are at their limit.
    std::thread writer([&] { publisher.Send(pipeline); });
    for (int i = 0; i < kCount; ++i) {
      ASSERT_EQ(publisher.Read(std::chrono::seconds(20)), ":1\r\n") << channel << " " << i;
    }
    writer.join();
    for (size_t s = 0; s < subscribers.size(); ++s) {
      for (int i = 0; i < kCount; ++i) {
        ASSERT_EQ(subscribers[s]->Read(std::chrono::seconds(20)),
                  Push({"message", channel, std::to_string(i)}))
            << channel << " subscriber on node " << s;
      }
    }
  }
  for (auto& g : gateways) EXPECT_EQ(g->stats().backend_errors, 0u);
  EXPECT_GT(gateways[1]->stats().publish_limit_waits, 0u);  // 256 in flight at most
  for (auto& g : gateways) g->Stop();
}

INSTANTIATE_TEST_SUITE_P(Backends, PipelinedPublishTest,
                         ::testing::Values(Mode::kEmbeddingAdapter, Mode::kNodeLoop,
                                           Mode::kNodeOwnThread),
                         [](const auto& info) { return ModeName(info.param); });

// On the node's backend the gateway runs on the node's network thread: it
// starts no thread of its own (every message and publish answer would
// otherwise cross between two threads), unless asked to.
TEST(RealNodeGatewayTest, OnTheNodesBackendTheGatewayRunsOnTheNodesThread) {
  auto node = Node::Start({});
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE((*node)->WaitUntilActive(absl::Seconds(20)).ok());
  node_internal::NodeBackend backend(node->get());
  for (bool own_thread : {false, true}) {
    const int before = ThreadCount();
    GatewayOptions options;
    options.own_thread = own_thread;
    auto gateway = Gateway::Start(backend, options);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    EXPECT_EQ(ThreadCount(), before + (own_thread ? 1 : 0)) << "own_thread " << own_thread;
    TestClient subscriber((*gateway)->port()), publisher((*gateway)->port());
    EXPECT_EQ(subscriber.Call({"SUBSCRIBE", "t"}), "*3\r\n$9\r\nsubscribe\r\n$1\r\nt\r\n:1\r\n");
    EXPECT_EQ(publisher.Call({"PUBLISH", "t", "m"}), ":1\r\n");
    EXPECT_EQ(subscriber.Read(std::chrono::seconds(20)), Push({"message", "t", "m"}));
    (*gateway)->Stop();
    EXPECT_EQ(ThreadCount(), before);
  }
}

// Publishes the gateway makes between BeginPublishes and EndPublishes on
// the node's thread (a read's PUBLISHes) reach the node inside
// EndPublishes, in order, as one call into it: on one node, the root's
// answers have all come when it returns, with no handler of their own.
// Outside such a pair, they wait for a handler of their own as before.
// (Fails if the publishes are not held: the answers come after the
// handler.)
TEST(RealNodeGatewayTest, PublishesHeldUntilEndPublishesRunInItInOrder) {
  auto node = Node::Start({});
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE((*node)->WaitUntilActive(absl::Seconds(20)).ok());
  node_internal::NodeBackend backend(node->get());
  std::mutex mu;
  std::vector<std::string> order;
  auto note = [&](std::string what) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(std::move(what));
  };
  // The topic's first publish makes the node its root (not at once).
  std::promise<absl::Status> warm;
  asio::post(*backend.loop(), [&] {
    backend.Publish("held", "warm", [&](absl::StatusOr<uint64_t> seq) {
      warm.set_value(seq.status());
    });
  });
  ASSERT_TRUE(warm.get_future().get().ok());
  asio::post(*backend.loop(), [&] {
    backend.BeginPublishes();
    for (int i = 0; i < 3; ++i) {
      backend.Publish("held", std::to_string(i), [&, i](absl::StatusOr<uint64_t> seq) {
        note(seq.ok() ? "answer " + std::to_string(i) : seq.status().ToString());
      });
    }
    note("published");
    backend.EndPublishes();
    note("end returned");
    backend.Publish("held", "alone", [&](absl::StatusOr<uint64_t> seq) {
      note(seq.ok() ? "answer alone" : seq.status().ToString());
    });
    note("handler returned");
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (order.size() >= 7) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::yield();
  }
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(order, (std::vector<std::string>{"published", "answer 0", "answer 1", "answer 2",
                                             "end returned", "handler returned",
                                             "answer alone"}));
}

// A subscriber that reads nothing while its channel is flooded is cut off
// at the output hard limit (counted), and the node, whose thread the
// gateway may share, goes on: the publisher's replies and another
// subscriber's messages all come, and its subscription is dropped (from
// inside the node's delivery, when it was the channel's last).
class SlowSubscriberTest : public ::testing::TestWithParam<Mode> {};

TEST_P(SlowSubscriberTest, IsCutOffAndTheNodeGoesOn) {
  GatewayOptions options;
  options.output_hard_limit = 256 << 10;
  options.output_soft_limit = 128 << 10;
  options.output_pause_bytes = 64 << 10;
  ThreeNodes cluster;
  ASSERT_NO_FATAL_FAILURE(cluster.Start(GetParam(), 1, options));
  Gateway& gateway = *cluster.gateways[0];
  TestClient slow(gateway.port(), /*rcvbuf=*/4096), reader(gateway.port());
  TestClient publisher(gateway.port());
  const std::string subscribed = "*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n";
  ASSERT_EQ(slow.Call({"SUBSCRIBE", "flood"}), subscribed);
  ASSERT_EQ(reader.Call({"SUBSCRIBE", "flood"}), subscribed);
  const std::string payload(16 << 10, 'x');
  int published = 0;
  for (; published < 5000 && gateway.stats().slow_client_disconnects == 0; ++published) {
    std::string reply = publisher.Call({"PUBLISH", "flood", payload});
    ASSERT_TRUE(reply == ":2\r\n" || reply == ":1\r\n") << published << " " << reply;
    ASSERT_EQ(reader.Read(std::chrono::seconds(20)), Push({"message", "flood", payload}))
        << published;
  }
  EXPECT_EQ(gateway.stats().slow_client_disconnects, 1u) << published << " published";
  EXPECT_TRUE(slow.WaitClosed(std::chrono::seconds(20)));
  EXPECT_EQ(publisher.Call({"PUBLISH", "flood", "last"}), ":1\r\n");
  EXPECT_EQ(reader.Read(std::chrono::seconds(20)), Push({"message", "flood", "last"}));
  EXPECT_EQ(gateway.stats().clients_connected, 2u);

  // Alone on its channel: cutting it off drops the channel's subscription
  // from inside the node's delivery; subscribing again afterwards works.
  TestClient alone(gateway.port(), /*rcvbuf=*/4096);
  ASSERT_EQ(alone.Call({"SUBSCRIBE", "alone"}),
            "*3\r\n$9\r\nsubscribe\r\n$5\r\nalone\r\n:1\r\n");
  for (int i = 0; i < 5000 && gateway.stats().slow_client_disconnects < 2; ++i) {
    std::string reply = publisher.Call({"PUBLISH", "alone", payload});
    ASSERT_TRUE(reply == ":1\r\n" || reply == ":0\r\n") << i << " " << reply;
  }
  EXPECT_EQ(gateway.stats().slow_client_disconnects, 2u);
  EXPECT_TRUE(alone.WaitClosed(std::chrono::seconds(20)));
  EXPECT_EQ(publisher.Call({"PUBLISH", "alone", "nobody"}), ":0\r\n");
  TestClient again(gateway.port());
  ASSERT_EQ(again.Call({"SUBSCRIBE", "alone"}),
            "*3\r\n$9\r\nsubscribe\r\n$5\r\nalone\r\n:1\r\n");
  EXPECT_EQ(publisher.Call({"PUBLISH", "alone", "back"}), ":1\r\n");
  EXPECT_EQ(again.Read(std::chrono::seconds(20)), Push({"message", "alone", "back"}));
  EXPECT_EQ(gateway.stats().backend_errors, 0u);
  gateway.Stop();
}

INSTANTIATE_TEST_SUITE_P(Backends, SlowSubscriberTest,
                         ::testing::Values(Mode::kEmbeddingAdapter, Mode::kNodeLoop,
                                           Mode::kNodeOwnThread),
                         [](const auto& info) { return ModeName(info.param); });

}  // namespace
}  // namespace peter::resp

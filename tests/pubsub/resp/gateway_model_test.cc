// A seeded random walk of subscribes, unsubscribes and publishes by many
// clients on three nodes, checked against a model: every message published
// after a subscription was confirmed (and before it was dropped) reaches the
// subscriber exactly once, in order per channel and per pattern, and PUBLISH
// counts the receivers on the publishing node.
#include <map>
#include <random>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "pubsub/resp/gateway.h"
#include "pubsub/resp/glob.h"
#include "pubsub/resp/pattern_directory.h"
#include "tests/pubsub/resp/fake_cluster.h"
#include "tests/pubsub/resp/test_client.h"

namespace peter::resp {
namespace {

using testing::TestClient;

struct ModelClient {
  int node = 0;
  std::unique_ptr<TestClient> conn;
  std::set<std::string> channels, patterns;
  // What must arrive, by stream: "c:<channel>" or "p:<pattern>".
  std::map<std::string, std::vector<std::string>> expected, received;
};

std::vector<std::string> ParsePush(const std::string& raw) {
  std::vector<std::string> out;
  size_t pos = raw.find("\r\n") + 2;
  while (pos < raw.size()) {
    size_t eol = raw.find("\r\n", pos);
    if (raw[pos] == '$') {
      size_t len = std::stoul(raw.substr(pos + 1, eol - pos - 1));
      out.push_back(raw.substr(eol + 2, len));
      pos = eol + 2 + len + 2;
    } else {
      out.push_back(raw.substr(pos + 1, eol - pos - 1));
      pos = eol + 2;
    }
  }
  return out;
}

// Reads one reply; a message is recorded (and returned).
std::vector<std::string> ReadOne(ModelClient& c) {
  std::string raw = c.conn->Read();
  if (raw == "<timeout>" || raw == "<closed>") return {raw};
  auto push = ParsePush(raw);
  if (push[0] == "message") c.received["c:" + push[1]].push_back(push[2]);
  if (push[0] == "pmessage") c.received["p:" + push[1]].push_back(push[2] + "/" + push[3]);
  return push;
}

// Reads until a reply that is not a message, recording the messages.
std::vector<std::string> Reply(ModelClient& c) {
  while (true) {
    auto push = ReadOne(c);
    if (push[0] != "message" && push[0] != "pmessage") return push;
  }
}

std::vector<std::string> Call(ModelClient& c, const std::vector<std::string>& args) {
  c.conn->Command(args);
  return Reply(c);
}

TEST(GatewayModelTest, RandomWalkMatchesModel) {
  testing::FakeCluster cluster;
  cluster.set_active_delay(std::chrono::milliseconds(1));
  std::vector<std::unique_ptr<Gateway>> gateways;
  for (int i = 0; i < 3; ++i) {
    auto g = Gateway::Start(cluster.AddNode(), {});
    ASSERT_TRUE(g.ok());
    gateways.push_back(std::move(*g));
  }
  // Every node on the patterns topic first: then a confirmed PSUBSCRIBE is
  // known to every node before its client can act (the fake cluster delivers
  // an announcement everywhere before reporting it accepted).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (cluster.active_subscriptions(std::string(kPatternsTopic)) < 3) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::yield();
  }
  std::mt19937 rng(424242);
  std::vector<ModelClient> subs(6);
  for (size_t i = 0; i < subs.size(); ++i) {
    subs[i].node = static_cast<int>(i % 3);
    subs[i].conn = std::make_unique<TestClient>(gateways[subs[i].node]->port());
    // Each subscriber's own end-of-test marker channel.
    std::string marker = "cx-end" + std::to_string(i);  // matches no pattern
    ASSERT_EQ(Call(subs[i], {"SUBSCRIBE", marker})[0], "subscribe");
    subs[i].channels.insert(marker);
  }
  std::vector<std::unique_ptr<TestClient>> pubs;
  for (int n = 0; n < 3; ++n) pubs.push_back(std::make_unique<TestClient>(gateways[n]->port()));
  const std::vector<std::string> channels = {"ch0", "ch1", "ch2", "news"};
  const std::vector<std::string> patterns = {"ch*", "ch[0-1]", "?ews", "[^c]*"};
  int published = 0;
  for (int step = 0; step < 400; ++step) {
    ModelClient& c = subs[rng() % subs.size()];
    int op = rng() % 10;
    if (op < 2) {
      std::string ch = channels[rng() % channels.size()];
      ASSERT_EQ(Call(c, {"SUBSCRIBE", ch})[1], ch);
      c.channels.insert(ch);
    } else if (op < 3) {
      std::string ch = channels[rng() % channels.size()];
      ASSERT_EQ(Call(c, {"UNSUBSCRIBE", ch})[1], ch);
      c.channels.erase(ch);
    } else if (op < 4) {
      std::string p = patterns[rng() % patterns.size()];
      ASSERT_EQ(Call(c, {"PSUBSCRIBE", p})[1], p);
      c.patterns.insert(p);
    } else if (op < 5) {
      std::string p = patterns[rng() % patterns.size()];
      ASSERT_EQ(Call(c, {"PUNSUBSCRIBE", p})[1], p);
      c.patterns.erase(p);
    } else {
      int node = rng() % 3;
      std::string ch = channels[rng() % channels.size()];
      std::string payload = "m" + std::to_string(published++);
      long long local = 0;
      for (ModelClient& s : subs) {
        bool on_node = s.node == node;
        if (s.channels.count(ch)) {
          s.expected["c:" + ch].push_back(payload);
          local += on_node;
        }
        for (const auto& p : s.patterns) {
          if (!GlobMatch(p, ch)) continue;
          s.expected["p:" + p].push_back(ch + "/" + payload);
          local += on_node;
        }
      }
      ASSERT_EQ(pubs[node]->Call({"PUBLISH", ch, payload}), ":" + std::to_string(local) + "\r\n")
          << "step " << step;
    }
  }
  // Drain: everything up to each subscriber's marker.
  for (size_t i = 0; i < subs.size(); ++i) {
    std::string marker = "cx-end" + std::to_string(i);  // matches no pattern
    ASSERT_EQ(pubs[0]->Call({"PUBLISH", marker, "."}), subs[i].node == 0 ? ":1\r\n" : ":0\r\n");
    // The marker is recorded as a message like any other; then nothing is
    // left to arrive (the fake cluster delivers in publish order).
    auto& got = subs[i].received["c:" + marker];
    while (got.empty()) {
      auto reply = ReadOne(subs[i]);
      ASSERT_FALSE(reply.empty()) << "subscriber " << i;
      ASSERT_NE(reply[0], "<timeout>") << "subscriber " << i;
    }
    subs[i].received.erase("c:" + marker);
    EXPECT_EQ(subs[i].received, subs[i].expected) << "subscriber " << i;
  }
  EXPECT_GT(published, 100);
  EXPECT_EQ(gateways[0]->stats().backend_errors, 0u);
  for (auto& g : gateways) g->Stop();
}

}  // namespace
}  // namespace peter::resp

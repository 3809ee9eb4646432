// The C++ API (include/peter/node.h) against real `peter node` processes on
// loopback: embedded nodes subscribe and publish through a cluster of
// daemons, and the topic's root daemon is killed with SIGKILL mid-stream.
//
// A reliable subscriber must receive every message whose publish the root
// confirmed, exactly once, in sequence order with no gap; a best-effort one
// everything published after the repair.
#include <stdlib.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "peter/node.h"
#include "pubsub/topic_id.h"
#include "spdlog/spdlog.h"
#include "tests/integration/cluster.h"
#include "tests/integration/log_dir.h"

#ifndef PETER_BINARY
#error "PETER_BINARY must name the peter program"
#endif

namespace peter::integration {
namespace {

constexpr int kDaemons = 8;
constexpr int kBefore = 100;  // messages before the kill
constexpr int kAfter = 100;   // after it
constexpr absl::Duration kWait = absl::Seconds(30);

// Every message a subscription received, in arrival order.
class Recorder {
 public:
  MessageHandler Handler() {
    return [this](const Message& m) {
      std::lock_guard lock(mu_);
      got_.push_back({m.seq, std::string(m.payload)});
      cv_.notify_all();
    };
  }
  // Waits until every payload in `want` has arrived.
  bool WaitForAll(const std::set<std::string>& want, absl::Duration timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
      std::set<std::string> have;
      for (const auto& [seq, payload] : got_) have.insert(payload);
      return std::includes(have.begin(), have.end(), want.begin(), want.end());
    });
  }
  std::vector<std::pair<uint64_t, std::string>> got() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<uint64_t, std::string>> got_;
};

std::unique_ptr<Node> Embedded(const std::string& bootstrap) {
  NodeOptions options;
  options.bootstrap = {bootstrap};
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(options));
  EXPECT_TRUE(node.ok()) << node.status();
  if (!node.ok()) return nullptr;
  EXPECT_TRUE((*node)->WaitUntilActive(kWait).ok());
  return std::move(*node);
}

// The daemon that roots `topic`, by a lookup of its id; -1 if another node.
int RootDaemon(Cluster& cluster, const std::string& topic) {
  const std::string key = pubsub::TopicIdOf(topic).ToHex();
  absl::StatusOr<nlohmann::json> route = cluster.Get(0, "/route?key=" + key);
  if (!route.ok()) return -1;
  const std::string root = (*route)["root"]["id"];
  for (int i : cluster.Alive()) {
    if (cluster.node(i).id() == root) return i;
  }
  return -1;
}

// Publishes `payload` until the root confirms it (a publish that timed out
// may or may not have gone out: its payload is then not required).
bool PublishConfirmed(Node& node, const std::string& topic, const std::string& payload,
                      std::set<std::string>& confirmed) {
  absl::StatusOr<uint64_t> seq = node.PublishAndWait(topic, payload);
  if (seq.ok()) confirmed.insert(payload);
  return seq.ok();
}

TEST(PubSubClusterTest, ReliableSubscribersLoseNothingWhenTheRootIsKilled) {
  spdlog::set_level(spdlog::level::warn);  // the embedded nodes log to stdout
  LogDir logs;
  Cluster cluster(PETER_BINARY, [](int) { return Cluster::Host{}; }, logs.path(), 20261125);
  ASSERT_TRUE(cluster.Start(0, std::nullopt).ok());
  for (int i = 1; i < kDaemons; ++i) ASSERT_TRUE(cluster.Start(i, i - 1).ok());
  ASSERT_TRUE(cluster.WaitAllActive(kWait).ok());

  std::unique_ptr<Node> subscriber = Embedded(cluster.node(1).listen());
  std::unique_ptr<Node> publisher = Embedded(cluster.node(2).listen());
  ASSERT_NE(subscriber, nullptr);
  ASSERT_NE(publisher, nullptr);

  // A topic rooted at a daemon (not at an embedded node), so it can be killed.
  std::string topic;
  int root = -1;
  for (int k = 0; root < 0 && k < 100; ++k) {
    topic = absl::StrCat("orders-", k);
    root = RootDaemon(cluster, topic);
  }
  ASSERT_GE(root, 0);

  Recorder reliable, best_effort;
  absl::StatusOr<Subscription> r =
      subscriber->Subscribe(topic, reliable.Handler(), {.reliable = true});
  absl::StatusOr<Subscription> b =
      subscriber->Subscribe(topic, best_effort.Handler());
  ASSERT_TRUE(r.ok() && b.ok());
  ASSERT_TRUE(r->WaitUntilActive(kWait).ok());
  ASSERT_TRUE(b->WaitUntilActive(kWait).ok());

  std::set<std::string> confirmed;
  for (int i = 0; i < kBefore; ++i) {
    ASSERT_TRUE(PublishConfirmed(*publisher, topic, absl::StrCat("before-", i), confirmed));
  }
  const absl::Time killed_at = absl::Now();
  cluster.Kill(root);
  // Publish through the repair: some publishes may time out.
  int unconfirmed = 0;
  std::set<std::string> after_repair;
  for (int i = 0; i < kAfter; ++i) {
    const std::string payload = absl::StrCat("after-", i);
    if (!PublishConfirmed(*publisher, topic, payload, confirmed)) ++unconfirmed;
  }
  // Once the new root confirms publishes again and the subscriber is back
  // on the tree, everything published is delivered to both.
  ASSERT_TRUE(r->WaitUntilActive(kWait).ok());
  for (int i = 0; i < 20; ++i) {
    const std::string payload = absl::StrCat("repaired-", i);
    ASSERT_TRUE(PublishConfirmed(*publisher, topic, payload, confirmed));
    after_repair.insert(payload);
  }
  std::printf("  root daemon %d killed; %d of %d publishes unconfirmed during repair; "
              "repair published within %.1f s\n",
              root, unconfirmed, kAfter, absl::ToDoubleSeconds(absl::Now() - killed_at));

  ASSERT_TRUE(reliable.WaitForAll(confirmed, kWait));
  ASSERT_TRUE(best_effort.WaitForAll(after_repair, kWait));
  // Reliable: consecutive sequence numbers, each payload once.
  const auto got = reliable.got();
  std::set<std::string> seen;
  for (size_t i = 0; i < got.size(); ++i) {
    if (i > 0) {
      EXPECT_EQ(got[i].first, got[i - 1].first + 1) << "at " << i;
    }
    EXPECT_TRUE(seen.insert(got[i].second).second) << "duplicate " << got[i].second;
  }
  // Best effort: increasing sequence numbers, no duplicate.
  const auto loose = best_effort.got();
  for (size_t i = 1; i < loose.size(); ++i) EXPECT_GT(loose[i].first, loose[i - 1].first);
}

}  // namespace
}  // namespace peter::integration

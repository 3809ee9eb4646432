// An in-process "cluster" for the gateway's tests: FakeCluster is a bus, and
// each Node() is one node's Backend on it. Subscriptions become active after
// a controllable delay (or only when released); a publish reaches every
// active subscription of its topic on every node, then reports done. Topic
// names follow Scribe's rules (not empty, at most 1024 bytes). All
// callbacks run on the bus's own thread, as a real node's would on its own.
#ifndef PETER_TESTS_PUBSUB_RESP_FAKE_CLUSTER_H_
#define PETER_TESTS_PUBSUB_RESP_FAKE_CLUSTER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "pubsub/resp/backend.h"

namespace peter::resp::testing {

class FakeCluster {
 public:
  using Duration = std::chrono::milliseconds;

  FakeCluster();
  ~FakeCluster();  // REQUIRES: every node's subscriptions are destroyed

  // A new node; the cluster owns it.
  Backend& AddNode();

  // Delay before a new subscription reports on_active(true).
  void set_active_delay(Duration d);
  // While held, subscriptions do not become active; Release activates them.
  void HoldActivations();
  void ReleaseActivations();
  // Subsequent publishes fail with `status` (OK: succeed again).
  void FailPublishes(absl::Status status);
  // Subsequent publishes to `topic` only fail with `status` (OK: succeed).
  void FailPublishesTo(const std::string& topic, absl::Status status);
  // While held, publishes still reach their subscribers, but their `done`
  // waits; Release runs the held ones in the reverse of their order, the
  // order the gateway must not depend on.
  void HoldPublishAcks();
  void ReleasePublishAcks();
  int held_publish_acks(const std::string& topic);
  // Of every topic but `topic`, read at one instant (the difference of two
  // reads could count a publish in one and not the other).
  int held_publish_acks_except(const std::string& topic);

  // Observations (any thread).
  int subscriptions(const std::string& topic);       // live, all nodes
  int active_subscriptions(const std::string& topic);
  int subscribe_calls(const std::string& topic);     // ever
  int publishes(const std::string& topic);           // ever
  int publishes_except(const std::string& topic);  // ever; one instant, as above

 private:
  class NodeBackend;
  class Sub;
  struct Entry;

  void Schedule(Duration delay, std::function<void()> fn);
  void Loop();
  void Activate(std::shared_ptr<Entry> entry);
  void Unregister(Entry* entry);

  std::mutex mu_;
  std::condition_variable cv_;
  std::mutex callback_mu_;  // held while a callback runs
  bool stopping_ = false;
  Duration active_delay_{0};
  bool hold_ = false;
  std::vector<std::shared_ptr<Entry>> held_;
  absl::Status publish_status_;
  std::map<std::string, absl::Status> topic_status_;
  bool hold_acks_ = false;
  std::vector<std::pair<std::string, std::function<void()>>> held_acks_;
  std::multimap<std::string, std::shared_ptr<Entry>> entries_;
  std::map<std::string, int> subscribe_calls_, publishes_;
  int total_publishes_ = 0;
  struct Task {
    std::chrono::steady_clock::time_point when;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Task& o) const { return when != o.when ? when > o.when : seq > o.seq; }
  };
  std::priority_queue<Task, std::vector<Task>, std::greater<Task>> tasks_;
  uint64_t seq_ = 0;
  std::vector<std::unique_ptr<NodeBackend>> nodes_;
  std::thread thread_;
};

}  // namespace peter::resp::testing

#endif  // PETER_TESTS_PUBSUB_RESP_FAKE_CLUSTER_H_

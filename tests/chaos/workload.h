// The chaos soak's load: embedded peter::Nodes in the driver process that
// publish to a few topics at a steady rate and subscribe to all of them,
// some reliably and some best effort, recording every publish (when it was
// sent, when and with which sequence number the root confirmed it) and every
// delivery (payload, sequence number, arrival time).
#ifndef PETER_TESTS_CHAOS_WORKLOAD_H_
#define PETER_TESTS_CHAOS_WORKLOAD_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "peter/node.h"

namespace peter::chaos {

struct PublishRecord {
  int topic = 0;
  absl::Time sent;
  absl::Time done;                // when the completion ran (InfinitePast: not yet)
  std::optional<uint64_t> seq;    // the root's number, if confirmed
  bool timed_out = false;         // DeadlineExceeded or another error
};

struct DeliveryRecord {
  std::string payload;
  uint64_t seq = 0;
  absl::Time at;
};

// One subscription's history.
struct SubscriberLog {
  int node = 0;  // index of the subscriber node
  int topic = 0;
  bool reliable = false;
  std::vector<DeliveryRecord> deliveries;
};

struct WorkloadOptions {
  std::string listen_ip = "127.0.0.1";
  std::string bootstrap;            // a daemon's overlay address
  std::vector<std::string> topics;
  int publishers = 2;
  int reliable_subscribers = 2;     // nodes, each subscribing to every topic
  int best_effort_subscribers = 2;  // nodes, each subscribing to every topic
  double rate = 50;                 // publishes per second, all topics together
  std::string log_path;             // the embedded nodes' log file
  // The nodes' ids (publishers first), random where absent.
  std::vector<pastry::NodeId> ids;
};

class Workload {
 public:
  explicit Workload(WorkloadOptions options);
  ~Workload();  // stops publishing, then the nodes

  // Starts the embedded nodes (publishers and subscribers), joined through
  // options.bootstrap; returns once all are active.
  absl::Status StartNodes(absl::Duration timeout);
  // The embedded nodes' ids, for the cluster's ground truth.
  std::vector<pastry::NodeId> NodeIds() const;
  // Subscribes and waits until every subscription is active.
  absl::Status Subscribe(absl::Duration timeout);
  // Starts / stops the publishing thread.
  void StartPublishing();
  void StopPublishing();

  // True when every subscription is on its tree and has been delivered a
  // message sent at or after `since`.
  bool AllDeliveringSince(absl::Time since);
  // Waits until every publish has completed and every confirmed one has
  // reached every reliable subscription of its topic (or the timeout);
  // returns how many are still missing. Gives up early once the count has
  // not changed for 10 s.
  int64_t WaitReliableComplete(absl::Duration timeout);

  // Snapshots (copies, taken under the lock).
  absl::flat_hash_map<std::string, PublishRecord> Publishes();
  std::vector<SubscriberLog> Logs();
  int64_t published() const { return published_.load(); }
  const std::vector<std::string>& topics() const { return options_.topics; }
  std::vector<PubSubStats> Stats();
  // The embedded nodes' topic states, one line per node.
  std::string DebugTopics();

 private:
  void PublishLoop();
  void RecordDelivery(size_t log, const Message& m);

  WorkloadOptions options_;
  std::vector<std::unique_ptr<Node>> publishers_;
  std::vector<std::unique_ptr<Node>> subscribers_;
  std::vector<Subscription> subscriptions_;  // parallel to logs_

  std::mutex mu_;
  absl::flat_hash_map<std::string, PublishRecord> publishes_;  // by payload
  std::vector<SubscriberLog> logs_;
  // Per log: the send time of the newest delivered message's publish.
  std::vector<absl::Time> newest_sent_;

  std::atomic<bool> publishing_{false};
  std::atomic<int64_t> published_{0};
  std::thread publish_thread_;
};

}  // namespace peter::chaos

#endif  // PETER_TESTS_CHAOS_WORKLOAD_H_

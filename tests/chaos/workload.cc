#include "tests/chaos/workload.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/spdlog.h"

namespace peter::chaos {

Workload::Workload(WorkloadOptions options) : options_(std::move(options)) {}

Workload::~Workload() {
  StopPublishing();
  subscriptions_.clear();
  subscribers_.clear();
  publishers_.clear();
}

absl::Status Workload::StartNodes(absl::Duration timeout) {
  std::shared_ptr<spdlog::logger> logger;
  if (!options_.log_path.empty()) {
    logger = spdlog::basic_logger_mt("embedded", options_.log_path);
    logger->set_level(spdlog::level::info);
    logger->flush_on(spdlog::level::warn);
  }
  size_t started = 0;
  auto start = [&](std::vector<std::unique_ptr<Node>>& into, int count) -> absl::Status {
    for (int i = 0; i < count; ++i) {
      NodeOptions node_options;
      if (started < options_.ids.size()) node_options.id = options_.ids[started];
      ++started;
      node_options.listen = options_.listen_ip + ":0";
      node_options.bootstrap = {options_.bootstrap};
      node_options.logger = logger;
      absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(node_options));
      if (!node.ok()) return node.status();
      if (absl::Status s = (*node)->WaitUntilActive(timeout); !s.ok()) return s;
      into.push_back(std::move(*node));
    }
    return absl::OkStatus();
  };
  if (absl::Status s = start(publishers_, options_.publishers); !s.ok()) return s;
  return start(subscribers_,
               options_.reliable_subscribers + options_.best_effort_subscribers);
}

std::vector<pastry::NodeId> Workload::NodeIds() const {
  std::vector<pastry::NodeId> ids;
  for (const auto& n : publishers_) ids.push_back(n->self().id);
  for (const auto& n : subscribers_) ids.push_back(n->self().id);
  return ids;
}

absl::Status Workload::Subscribe(absl::Duration timeout) {
  for (size_t n = 0; n < subscribers_.size(); ++n) {
    const bool reliable = static_cast<int>(n) < options_.reliable_subscribers;
    for (size_t t = 0; t < options_.topics.size(); ++t) {
      size_t log;
      {
        std::lock_guard lock(mu_);
        log = logs_.size();
        SubscriberLog entry;
        entry.node = static_cast<int>(n);
        entry.topic = static_cast<int>(t);
        entry.reliable = reliable;
        logs_.push_back(std::move(entry));
        newest_sent_.push_back(absl::InfinitePast());
      }
      SubscribeOptions sub_options;
      sub_options.reliable = reliable;
      absl::StatusOr<Subscription> sub = subscribers_[n]->Subscribe(
          options_.topics[t], [this, log](const Message& m) { RecordDelivery(log, m); },
          std::move(sub_options));
      if (!sub.ok()) return sub.status();
      subscriptions_.push_back(std::move(*sub));
    }
  }
  for (const Subscription& sub : subscriptions_) {
    if (absl::Status s = sub.WaitUntilActive(timeout); !s.ok()) {
      return absl::DeadlineExceededError(
          absl::StrCat("subscription to ", sub.topic(), " not active: ", s.message()));
    }
  }
  return absl::OkStatus();
}

void Workload::RecordDelivery(size_t log, const Message& m) {
  std::lock_guard lock(mu_);
  std::string payload(m.payload);
  auto it = publishes_.find(payload);
  if (it != publishes_.end()) newest_sent_[log] = std::max(newest_sent_[log], it->second.sent);
  logs_[log].deliveries.push_back({std::move(payload), m.seq, absl::Now()});
}

void Workload::StartPublishing() {
  if (publishing_.exchange(true)) return;
  publish_thread_ = std::thread([this] { PublishLoop(); });
}

void Workload::StopPublishing() {
  if (!publishing_.exchange(false)) return;
  publish_thread_.join();
}

void Workload::PublishLoop() {
  const absl::Duration period = absl::Seconds(1) / options_.rate;
  const absl::Time start = absl::Now();
  for (int64_t n = 0; publishing_.load(); ++n) {
    const absl::Time due = start + n * period;
    if (absl::Time now = absl::Now(); due > now) absl::SleepFor(due - now);
    const int topic = static_cast<int>(n % options_.topics.size());
    Node& publisher = *publishers_[n % publishers_.size()];
    std::string payload = absl::StrCat("m", n, "-t", topic);
    {
      std::lock_guard lock(mu_);
      PublishRecord& r = publishes_[payload];
      r.topic = topic;
      r.sent = absl::Now();
      r.done = absl::InfinitePast();
    }
    publisher.Publish(options_.topics[topic], payload,
                      [this, payload](absl::StatusOr<uint64_t> seq) {
                        std::lock_guard lock(mu_);
                        PublishRecord& r = publishes_[payload];
                        r.done = absl::Now();
                        if (seq.ok()) {
                          r.seq = *seq;
                        } else {
                          r.timed_out = true;
                        }
                      });
    published_.fetch_add(1);
  }
}

bool Workload::AllDeliveringSince(absl::Time since) {
  for (const Subscription& sub : subscriptions_) {
    if (!sub.active()) return false;
  }
  std::lock_guard lock(mu_);
  return std::all_of(newest_sent_.begin(), newest_sent_.end(),
                     [&](absl::Time t) { return t >= since; });
}

int64_t Workload::WaitReliableComplete(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  int64_t last_missing = -1;
  absl::Time last_change = absl::Now();
  while (true) {
    int64_t missing = 0;
    {
      std::lock_guard lock(mu_);
      for (const SubscriberLog& log : logs_) {
        if (!log.reliable) continue;
        absl::flat_hash_set<std::string_view> got;
        for (const DeliveryRecord& d : log.deliveries) got.insert(d.payload);
        for (const auto& [payload, r] : publishes_) {
          // A publish not yet completed counts as missing until it is.
          const bool pending = !r.seq && r.done == absl::InfinitePast();
          if (r.topic == log.topic && (pending || (r.seq && !got.contains(payload)))) {
            ++missing;
          }
        }
      }
    }
    // Repairs are retried every repair_retry (500 ms): a count that has not
    // moved for kStuck will not move any more.
    constexpr absl::Duration kStuck = absl::Seconds(10);
    if (missing != last_missing) {
      last_missing = missing;
      last_change = absl::Now();
    }
    if (missing == 0 || absl::Now() >= deadline || absl::Now() - last_change > kStuck) {
      return missing;
    }
    absl::SleepFor(absl::Milliseconds(500));
  }
}

absl::flat_hash_map<std::string, PublishRecord> Workload::Publishes() {
  std::lock_guard lock(mu_);
  return publishes_;
}

std::vector<SubscriberLog> Workload::Logs() {
  std::lock_guard lock(mu_);
  return logs_;
}

std::string Workload::DebugTopics() {
  std::string out;
  auto one = [&](Node& n) {
    absl::StrAppend(&out, "\n  ", n.self().id.ToHex().substr(0, 8), ":");
    for (const TopicStatus& t : n.topics()) {
      absl::StrAppend(&out, " [", t.id_hex.substr(0, 8), t.is_root ? " root" : "",
                      t.attached ? " att" : " DET", " parent ", t.parent_id_hex.substr(0, 8),
                      " children ", t.children, " next ", t.next_seq, " last ", t.last_seq,
                      "]");
    }
  };
  for (const auto& n : publishers_) one(*n);
  for (const auto& n : subscribers_) one(*n);
  return out;
}

std::vector<PubSubStats> Workload::Stats() {
  std::vector<PubSubStats> out;
  for (const auto& n : publishers_) out.push_back(n->pubsub_stats());
  for (const auto& n : subscribers_) out.push_back(n->pubsub_stats());
  return out;
}

}  // namespace peter::chaos

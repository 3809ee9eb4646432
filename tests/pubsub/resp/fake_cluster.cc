#include "tests/pubsub/resp/fake_cluster.h"

#include <atomic>

namespace peter::resp::testing {

struct FakeCluster::Entry {
  std::string topic;
  Backend::MessageFn on_message;
  Backend::ActiveFn on_active;
  bool active = false;
  std::atomic<bool> dead{false};
};

class FakeCluster::Sub : public BackendSubscription {
 public:
  Sub(FakeCluster& cluster, std::shared_ptr<Entry> entry)
      : cluster_(cluster), entry_(std::move(entry)) {}
  ~Sub() override { cluster_.Unregister(entry_.get()); }

 private:
  FakeCluster& cluster_;
  std::shared_ptr<Entry> entry_;
};

// Scribe's rules for topic names (pubsub/scribe.cc).
absl::Status CheckTopic(const std::string& topic) {
  if (topic.empty()) return absl::InvalidArgumentError("empty topic name");
  if (topic.size() > 1024) return absl::InvalidArgumentError("topic name too long");
  return absl::OkStatus();
}

class FakeCluster::NodeBackend : public Backend {
 public:
  explicit NodeBackend(FakeCluster& cluster) : cluster_(cluster) {}

  absl::StatusOr<std::unique_ptr<BackendSubscription>> Subscribe(
      std::string topic, MessageFn on_message, ActiveFn on_active) override {
    if (absl::Status s = CheckTopic(topic); !s.ok()) return s;
    auto entry = std::make_shared<Entry>();
    entry->topic = topic;
    entry->on_message = std::move(on_message);
    entry->on_active = std::move(on_active);
    Duration delay;
    {
      std::lock_guard<std::mutex> lock(cluster_.mu_);
      cluster_.entries_.emplace(topic, entry);
      cluster_.subscribe_calls_[topic]++;
      delay = cluster_.active_delay_;
    }
    cluster_.Schedule(delay, [this, entry] { cluster_.Activate(entry); });
    return std::unique_ptr<BackendSubscription>(new Sub(cluster_, entry));
  }

  void Publish(std::string topic, pubsub::Payload payload, PublishDoneFn done) override {
    // Move-only: shared by the copies of the scheduled function.
    auto shared_done = std::make_shared<PublishDoneFn>(std::move(done));
    cluster_.Schedule(Duration(0), [this, topic = std::move(topic),
                                    payload = std::move(payload), done = std::move(shared_done)] {
      absl::Status status = CheckTopic(topic);
      std::vector<std::shared_ptr<Entry>> targets;
      {
        std::lock_guard<std::mutex> lock(cluster_.mu_);
        cluster_.publishes_[topic]++;
        cluster_.total_publishes_++;
        if (status.ok()) status = cluster_.publish_status_;
        if (auto it = cluster_.topic_status_.find(topic);
            status.ok() && it != cluster_.topic_status_.end()) {
          status = it->second;
        }
        if (status.ok()) {
          auto [begin, end] = cluster_.entries_.equal_range(topic);
          for (auto it = begin; it != end; ++it) {
            if (it->second->active) targets.push_back(it->second);
          }
        }
      }
      std::lock_guard<std::mutex> callbacks(cluster_.callback_mu_);
      for (auto& entry : targets) {
        if (!entry->dead) entry->on_message(topic, payload);
      }
      {
        std::lock_guard<std::mutex> lock(cluster_.mu_);
        if (cluster_.hold_acks_) {
          cluster_.held_acks_.emplace_back(topic, [done, status] { Answer(done, status); });
          return;
        }
      }
      Answer(done, status);
    });
  }

 private:
  // The fake numbers nothing: an accepted publish is answered with 0.
  static void Answer(const std::shared_ptr<PublishDoneFn>& done, const absl::Status& status) {
    if (status.ok()) {
      (*done)(uint64_t{0});
    } else {
      (*done)(status);
    }
  }

  FakeCluster& cluster_;
};

FakeCluster::FakeCluster() : thread_([this] { Loop(); }) {}

FakeCluster::~FakeCluster() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Backend& FakeCluster::AddNode() {
  std::lock_guard<std::mutex> lock(mu_);
  nodes_.push_back(std::make_unique<NodeBackend>(*this));
  return *nodes_.back();
}

void FakeCluster::set_active_delay(Duration d) {
  std::lock_guard<std::mutex> lock(mu_);
  active_delay_ = d;
}

void FakeCluster::HoldActivations() {
  std::lock_guard<std::mutex> lock(mu_);
  hold_ = true;
}

void FakeCluster::ReleaseActivations() {
  std::vector<std::shared_ptr<Entry>> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = false;
    held.swap(held_);
  }
  for (auto& entry : held) Schedule(Duration(0), [this, entry] { Activate(entry); });
}

void FakeCluster::FailPublishes(absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  publish_status_ = std::move(status);
}

void FakeCluster::FailPublishesTo(const std::string& topic, absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (status.ok()) {
    topic_status_.erase(topic);
  } else {
    topic_status_[topic] = std::move(status);
  }
}

void FakeCluster::HoldPublishAcks() {
  std::lock_guard<std::mutex> lock(mu_);
  hold_acks_ = true;
}

void FakeCluster::ReleasePublishAcks() {
  std::vector<std::pair<std::string, std::function<void()>>> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held.swap(held_acks_);
  }
  for (auto it = held.rbegin(); it != held.rend(); ++it) Schedule(Duration(0), it->second);
}

int FakeCluster::held_publish_acks(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& [t, fn] : held_acks_) n += t == topic ? 1 : 0;
  return n;
}

int FakeCluster::held_publish_acks_except(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& [t, fn] : held_acks_) n += t != topic ? 1 : 0;
  return n;
}

int FakeCluster::subscriptions(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(entries_.count(topic));
}

int FakeCluster::active_subscriptions(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [begin, end] = entries_.equal_range(topic);
  int n = 0;
  for (auto it = begin; it != end; ++it) n += it->second->active;
  return n;
}

int FakeCluster::subscribe_calls(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  return subscribe_calls_[topic];
}

int FakeCluster::publishes(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  return publishes_[topic];
}

int FakeCluster::publishes_except(const std::string& topic) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = publishes_.find(topic);
  return total_publishes_ - (it == publishes_.end() ? 0 : it->second);
}

void FakeCluster::Activate(std::shared_ptr<Entry> entry) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (entry->dead) return;
    if (hold_) {
      held_.push_back(entry);
      return;
    }
    entry->active = true;
  }
  std::lock_guard<std::mutex> callbacks(callback_mu_);
  if (!entry->dead) entry->on_active(true);
}

void FakeCluster::Unregister(Entry* entry) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    entry->dead = true;
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.get() == entry) {
        entries_.erase(it);
        break;
      }
    }
  }
  // No callback of this subscription runs after we return.
  if (std::this_thread::get_id() != thread_.get_id()) {
    std::lock_guard<std::mutex> callbacks(callback_mu_);
  }
}

void FakeCluster::Schedule(Duration delay, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push(Task{std::chrono::steady_clock::now() + delay, seq_++, std::move(fn)});
  }
  cv_.notify_all();
}

void FakeCluster::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (tasks_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto when = tasks_.top().when;
    if (when > std::chrono::steady_clock::now()) {
      cv_.wait_until(lock, when);
      continue;
    }
    std::function<void()> fn = tasks_.top().fn;
    tasks_.pop();
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace peter::resp::testing

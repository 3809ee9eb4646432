// A hand-driven pastry::Overlay for Scribe unit tests: records what Scribe
// routes or sends, time stands still, timers never fire unless a test runs
// the zero-delay ones (RunZeroDelayTimers: what the event loop runs once it
// has handled what it read), and the node that the overlay makes a key's
// root is whatever the test says.
#ifndef PETER_TESTS_PUBSUB_FAKE_OVERLAY_H_
#define PETER_TESTS_PUBSUB_FAKE_OVERLAY_H_

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "peter/pastry/application.h"
#include "pubsub/messages.h"
#include "pubsub/scribe.h"
#include "pubsub/wire/codec.h"

namespace peter::pubsub::testing {

inline NodeHandle Handle(uint64_t n) {
  return NodeHandle{NodeId(n, n), pastry::Endpoint::FromIpv4(0x0a000000 + n, 4000)};
}

struct Sent {
  std::optional<NodeId> key;
  ScribeMessage msg;
  std::optional<NodeHandle> hint;
};

class FakeOverlay final : public pastry::Overlay {
 public:
  explicit FakeOverlay(std::vector<Sent>* sent) : sent_(sent) {}
  // Each message of a bundle or list is recorded on its own; `payloads`
  // records each payload's node and how many messages it carried, `raw`
  // its node and bytes.
  void Route(std::optional<NodeId> key, std::string payload,
             std::optional<NodeHandle> hint) override {
    wire::Received received = wire::DecodeReceived(payload).value();
    payloads.emplace_back(hint, received.messages.size());
    raw.emplace_back(hint, payload);
    for (ScribeMessage& m : received.messages) sent_->push_back(Sent{key, std::move(m), hint});
  }
  // Every key's closest node is `closest` (this node unless changed),
  // followed by `replicas`.
  std::vector<NodeHandle> ReplicaSet(const NodeId&, int k) const override {
    std::vector<NodeHandle> set = {closest};
    set.insert(set.end(), replicas.begin(), replicas.end());
    if (static_cast<int>(set.size()) > k) set.resize(k);
    return set;
  }
  // A new version whenever a test has changed `closest` or `replicas`.
  uint64_t LeafSetVersion() const override {
    if (closest != seen_closest_ || replicas != seen_replicas_) {
      seen_closest_ = closest;
      seen_replicas_ = replicas;
      ++version_;
    }
    return version_;
  }
  NodeHandle LocalHandle() const override { return Handle(1); }
  // The replica peers stand for the leaf set.
  std::vector<NodeHandle> LeafSet() const override { return replicas; }
  bool IsActive() const override { return true; }
  absl::Time Now() const override { return now; }
  TimerId ScheduleTimer(absl::Duration delay, std::function<void()> job) override {
    const TimerId id = ++timers_;
    if (delay <= absl::ZeroDuration()) due_.emplace_back(id, std::move(job));
    return id;
  }
  void CancelTimer(TimerId) override {}
  // Runs the zero-delay timers, in the order scheduled, until none is left
  // (a job may schedule more).
  void RunZeroDelayTimers() {
    while (RunNextZeroDelayTimer()) {
    }
  }
  // Runs the first zero-delay timer scheduled; false if none is due.
  bool RunNextZeroDelayTimer() {
    if (due_.empty()) return false;
    std::function<void()> job = std::move(due_.front().second);
    due_.erase(due_.begin());
    job();
    return true;
  }

  NodeHandle closest = Handle(1);
  std::vector<NodeHandle> replicas;
  std::vector<std::pair<std::optional<NodeHandle>, size_t>> payloads;
  std::vector<std::pair<std::optional<NodeHandle>, std::string>> raw;  // each payload's bytes
  absl::Time now = absl::UnixEpoch();  // stands still unless a test moves it

 private:
  std::vector<Sent>* sent_;
  TimerId timers_ = 0;
  std::vector<std::pair<TimerId, std::function<void()>>> due_;
  mutable NodeHandle seen_closest_ = Handle(1);
  mutable std::vector<NodeHandle> seen_replicas_;
  mutable uint64_t version_ = 1;
};

// A Scribe on a FakeOverlay, with what it sent (the fixture of the tests
// that drive Scribe by hand).
class ScribeOnFakeOverlay : public ::testing::Test {
 protected:
  explicit ScribeOnFakeOverlay(ScribeOptions options = {})
      : scribe_(
            [this](pastry::Application*) {
              auto overlay = std::make_unique<FakeOverlay>(&sent_);
              overlay_ = overlay.get();
              return overlay;
            },
            options) {}

  // What was sent of type T, once the event loop has run what is due (the
  // Replicate a root sends for the numbers of one batch of work).
  template <typename T>
  std::vector<std::pair<T, std::optional<NodeHandle>>> SentOf() {
    overlay_->RunZeroDelayTimers();
    std::vector<std::pair<T, std::optional<NodeHandle>>> out;
    for (const Sent& s : sent_) {
      if (auto* m = std::get_if<T>(&s.msg)) out.emplace_back(*m, s.hint);
    }
    return out;
  }

  std::vector<Sent> sent_;
  FakeOverlay* overlay_ = nullptr;
  Scribe scribe_;
};

}  // namespace peter::pubsub::testing

#endif  // PETER_TESTS_PUBSUB_FAKE_OVERLAY_H_

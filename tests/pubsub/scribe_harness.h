// A Pastry ring on the simulated network with one Scribe per node, and
// recording subscribers: the fixture of the Scribe tests.
#ifndef PETER_TESTS_PUBSUB_SCRIBE_HARNESS_H_
#define PETER_TESTS_PUBSUB_SCRIBE_HARNESS_H_

#include <algorithm>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/functional/function_ref.h"
#include "gtest/gtest.h"
#include "pastry/sim/rng.h"
#include "pastry/sim/scenario.h"
#include "pastry/sim/sim_network.h"
#include "pubsub/scribe.h"
#include "pubsub/wire/codec.h"

namespace peter::pubsub::testing {

struct Received {
  uint64_t seq = 0;
  std::string payload;
};

class ScribeRing {
 public:
  using SimNetwork = pastry::sim::SimNetwork;

  static SimNetwork::Config Config(uint64_t seed) {
    SimNetwork::Config config;
    config.seed = seed;
    return config;
  }

  // `n` nodes with random ids joining concurrently; returns once all are
  // active and `settle` has passed.
  // `overlay`: every node's overlay options.
  ScribeRing(uint64_t seed, int n, ScribeOptions options = {},
             absl::Duration settle = absl::Seconds(5), pastry::Options overlay = {})
      : ScribeRing(Config(seed), n, std::move(options), settle, std::move(overlay)) {}
  // As above on a network with the caller's loss and jitter.
  ScribeRing(SimNetwork::Config config, int n, ScribeOptions options = {},
             absl::Duration settle = absl::Seconds(5), pastry::Options overlay = {})
      : net_(config), rng_(config.seed), options_(std::move(options)),
        overlay_(std::move(overlay)) {
    for (int i = 0; i < n; ++i) {
      net_.AddNode(rng_.RandomId(), overlay_);
      Attach(i);
    }
    net_.StartRing(0);
    for (int i = 1; i < n; ++i) {
      int bootstrap = static_cast<int>(rng_.Below(i));
      net_.Schedule(net_.Now() + absl::Milliseconds(2 * i),
                    [this, i, bootstrap] { net_.Join(i, bootstrap); });
    }
    net_.RunFor(absl::Milliseconds(2 * n));
    all_active_ = pastry::sim::RunUntilAllActive(net_, absl::Seconds(60));
    net_.RunFor(settle);
  }

  // Adds a node with `id` that joins through `bootstrap`; returns its index.
  int AddNode(const pastry::NodeId& id, int bootstrap) {
    const int i = net_.AddNode(id, overlay_);
    Attach(i);
    net_.Join(i, bootstrap);
    return i;
  }

  // How node i's Scribe reaches the overlay: registers `scribe` (or an
  // application standing in front of it) with node i and returns the
  // overlay the Scribe is to use. A test adapter (a node that speaks an
  // older version, say) for the Scribes made from now on (AddNode,
  // Restart); empty for the plain registration.
  using Adapter =
      std::function<std::unique_ptr<pastry::Overlay>(int i, pastry::Application* scribe)>;
  void set_adapter(Adapter adapter) { adapter_ = std::move(adapter); }

  bool all_active() const { return all_active_; }
  SimNetwork& net() { return net_; }
  pastry::sim::Rng& rng() { return rng_; }
  int size() const { return net_.size(); }
  bool alive(int i) const { return scribes_[i] != nullptr; }
  Scribe& scribe(int i) { return *scribes_[i]; }

  // Calls into node i's Scribe from outside the event loop.
  void Call(int i, absl::FunctionRef<void(Scribe&)> fn) {
    fn(*scribes_[i]);
    net_.Reschedule(i);
  }

  // Subscribes node i to `topic`, recording what it receives.
  SubscriptionId Subscribe(int i, const std::string& topic, bool reliable = false) {
    SubscribeOptions options;
    options.reliable = reliable;
    return Subscribe(i, topic, std::move(options));
  }
  // As above with the caller's options (on_anycast, since_seq ...); any
  // on_message is replaced by the recorder.
  SubscriptionId Subscribe(int i, const std::string& topic, SubscribeOptions options) {
    auto* log = &log_[{i, topic}];
    options.on_message = [log](const Delivery& d) {
      log->push_back(Received{d.seq, std::string(d.payload)});
    };
    SubscriptionId id = 0;
    Call(i, [&](Scribe& s) { id = s.Subscribe(topic, std::move(options)).value(); });
    return id;
  }

  void Publish(int i, const std::string& topic, std::string payload) {
    Call(i, [&](Scribe& s) { (void)s.Publish(topic, std::move(payload)); });
  }

  // Publishes with completion; the outcome lands in *out when it comes.
  // REQUIRES: *out outlives the run.
  void PublishAcked(int i, const std::string& topic, std::string payload,
                    std::optional<absl::StatusOr<uint64_t>>* out) {
    Call(i, [&](Scribe& s) {
      absl::Status status = s.Publish(topic, std::move(payload),
                                      [out](absl::StatusOr<uint64_t> seq) {
                                        *out = std::move(seq);
                                      });
      if (!status.ok()) *out = status;
    });
  }

  const std::vector<Received>& log(int i, const std::string& topic) {
    return log_[{i, topic}];
  }

  // Silent failure of node i; its Scribe goes with it.
  void Crash(int i) {
    net_.Crash(i);
    scribes_[i].reset();
  }

  // kill -9 and restart of node i: the same id on the same endpoint, with a
  // new Scribe and no state, joining through `bootstrap`.
  void Restart(int i, int bootstrap) {
    net_.Restart(i, overlay_);
    scribes_[i] = MakeScribe(i);
    net_.Join(i, bootstrap);
  }

  // The live node that roots `topic`, per the Scribes' own state; -1 if none.
  int RootOf(const std::string& topic) {
    for (int i = 0; i < size(); ++i) {
      if (alive(i) && scribes_[i]->IsRoot(topic)) return i;
    }
    return -1;
  }

  ScribeStats TotalStats() {
    ScribeStats total;
    for (int i = 0; i < size(); ++i) {
      if (!alive(i)) continue;
      const ScribeStats& s = scribes_[i]->stats();
      total.joins_sent += s.joins_sent;
      total.duplicates += s.duplicates;
      total.delivered += s.delivered;
      total.skipped += s.skipped;
      total.malformed += s.malformed;
      total.loops_refused += s.loops_refused;
      total.repairs_requested += s.repairs_requested;
      total.repairs_served += s.repairs_served;
      total.parent_failures += s.parent_failures;
      total.handovers += s.handovers;
      total.roots_taken += s.roots_taken;
      total.published += s.published;
      total.messages_in += s.messages_in;
      total.messages_out += s.messages_out;
      total.dropped += s.dropped;
      total.gaps_filled += s.gaps_filled;
      total.publish_acks_sent += s.publish_acks_sent;
      total.publish_acks_received += s.publish_acks_received;
      total.publish_resends += s.publish_resends;
      total.publish_timeouts += s.publish_timeouts;
      total.publishes_deduplicated += s.publishes_deduplicated;
      total.publishes_rerouted += s.publishes_rerouted;
      total.publishes_held_for_order += s.publishes_held_for_order;
      total.publishes_order_forced += s.publishes_order_forced;
      total.publishes_passed_on += s.publishes_passed_on;
      total.root_cache_hits += s.root_cache_hits;
      total.root_cache_misses += s.root_cache_misses;
      total.anycasts_sent += s.anycasts_sent;
      total.anycasts_visited += s.anycasts_visited;
      total.anycasts_accepted += s.anycasts_accepted;
      total.anycasts_failed += s.anycasts_failed;
      total.pushdowns += s.pushdowns;
      total.moves += s.moves;
      total.joins_refused += s.joins_refused;
      total.children_adopted += s.children_adopted;
      total.children_expired += s.children_expired;
      total.data_forwarded += s.data_forwarded;
      total.replicate_lists_sent += s.replicate_lists_sent;
      total.replicates_listed += s.replicates_listed;
      total.replica_ack_lists_sent += s.replica_ack_lists_sent;
      total.replica_acks_listed += s.replica_acks_listed;
    }
    return total;
  }

 private:
  std::unique_ptr<Scribe> MakeScribe(int i) {
    return std::make_unique<Scribe>(
        [this, i](pastry::Application* app) {
          if (adapter_) return adapter_(i, app);
          return net_.node(i).RegisterApplication(kScribeAppId, app);
        },
        options_);
  }
  void Attach(int i) {
    scribes_.push_back(MakeScribe(i));
    net_.Reschedule(i);
  }

  SimNetwork net_;
  pastry::sim::Rng rng_;
  ScribeOptions options_;
  pastry::Options overlay_;
  Adapter adapter_;
  bool all_active_ = false;
  std::vector<std::unique_ptr<Scribe>> scribes_;
  std::map<std::pair<int, std::string>, std::vector<Received>> log_;
};

// Runs the ring until every node of `nodes` is on `topic`'s tree (10 s at most).
inline bool RunUntilAttached(ScribeRing& ring, const std::vector<int>& nodes,
                             const std::string& topic) {
  return ring.net().RunUntil(
      [&] {
        for (int i : nodes) {
          if (!ring.scribe(i).IsAttached(topic)) return false;
        }
        return true;
      },
      absl::Seconds(10), absl::Milliseconds(10));
}

// `count` distinct nodes other than `except`, drawn with the ring's rng.
inline std::vector<int> OtherNodes(ScribeRing& ring, int except, size_t count) {
  std::vector<int> out;
  while (out.size() < count) {
    const int n = static_cast<int>(ring.rng().Below(ring.size()));
    if (n != except && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

// A reliable subscriber's `log` against the publishes confirmed (number ->
// payload): consecutive numbers, every confirmed payload exactly once and
// under its confirmed number. Returns how often each payload was delivered.
inline std::map<std::string, int> ExpectConfirmedOnceInOrder(
    const std::vector<Received>& log, const std::map<uint64_t, std::string>& confirmed,
    const std::string& who) {
  std::map<std::string, int> times;
  for (size_t i = 0; i < log.size(); ++i) {
    if (i > 0) {
      EXPECT_EQ(log[i].seq, log[i - 1].seq + 1) << who << " at " << i;
    }
    ++times[log[i].payload];
    auto c = confirmed.find(log[i].seq);
    if (c != confirmed.end()) {
      EXPECT_EQ(log[i].payload, c->second) << who << ": #" << log[i].seq;
    }
  }
  for (const auto& [seq, payload] : confirmed) {
    EXPECT_EQ(times[payload], 1) << who << ": " << payload << " (#" << seq << ") delivered "
                                 << times[payload] << " times";
  }
  return times;
}

// The Scribe messages a simulated envelope carries: one, a bundle's (in
// order), or none (for send filters and delivery observers; a filter that
// drops the envelope drops them all).
inline std::vector<ScribeMessage> ScribeOf(const pastry::Envelope& envelope) {
  const auto* route = std::get_if<pastry::RouteMsg>(&envelope.body);
  if (route == nullptr || route->app != kScribeAppId) return {};
  absl::StatusOr<wire::Received> decoded = wire::DecodeReceived(route->payload);
  if (!decoded.ok()) return {};
  return std::vector<ScribeMessage>(std::make_move_iterator(decoded->messages.begin()),
                                    std::make_move_iterator(decoded->messages.end()));
}

// Whether any of `messages` is a T.
template <typename T>
bool AnyOf(const std::vector<ScribeMessage>& messages) {
  return std::any_of(messages.begin(), messages.end(),
                     [](const ScribeMessage& m) { return std::holds_alternative<T>(m); });
}

// `log` holds exactly the sequence numbers first..last, in order.
inline void ExpectExactly(const std::vector<Received>& log, uint64_t first, uint64_t last) {
  ASSERT_EQ(log.size(), last - first + 1);
  for (size_t k = 0; k < log.size(); ++k) EXPECT_EQ(log[k].seq, first + k);
}

}  // namespace peter::pubsub::testing

#endif  // PETER_TESTS_PUBSUB_SCRIBE_HARNESS_H_

// Scribe on the simulated network, two properties that need whole runs:
//  - the same seed gives the same run, message for message, whatever the
//    heap layout (nothing Scribe sends may depend on addresses);
//  - a best-effort publish that the overlay delivers to the root twice (a
//    hop whose acknowledgement is late sends it again on another route) is
//    numbered once.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pastry/core/messages.h"
#include "tests/pubsub/scribe_harness.h"

namespace peter::pubsub::testing {
namespace {

std::string TopicName(int k) { return absl::StrCat("topic-", k); }

// Everything observable about one run: one hash per message crossing the
// simulated network (time, ends, type, and for routed messages the key
// and payload), every subscriber's log, and the summed counters.
struct Trace {
  std::vector<uint64_t> messages;
  std::vector<std::string> logs;
  std::vector<uint64_t> counters;
};

// 300 nodes, 30 topics of 1..20 members (half reliable), acknowledged and
// best-effort publishes and anycasts from random nodes, and 10% of the
// nodes (the roots of the first topics among them) failing mid-stream.
Trace RunScenario(uint64_t seed) {
  constexpr int kNodes = 300, kTopics = 30, kMessages = 12;
  ScribeRing ring(seed, kNodes);
  EXPECT_TRUE(ring.all_active());
  Trace trace;
  ring.net().network().set_delivery_observer([&](const pastry::sim::Delivery& d) {
    std::string record = absl::StrCat(absl::ToUnixNanos(d.at), " ", d.from, ">", d.to, " ",
                                      d.envelope.body.index());
    if (const auto* route = std::get_if<pastry::RouteMsg>(&d.envelope.body)) {
      absl::StrAppend(&record, " ", static_cast<int>(route->kind), " ", route->app, " ",
                      route->key.has_value() ? route->key->ToHex() : "-", " ", route->payload);
    }
    trace.messages.push_back(std::hash<std::string>{}(record));
  });
  std::vector<std::vector<int>> members(kTopics);
  for (int k = 0; k < kTopics; ++k) {
    const int count = 1 + static_cast<int>(ring.rng().Below(20));
    std::set<int> chosen;
    while (static_cast<int>(chosen.size()) < count) {
      chosen.insert(static_cast<int>(ring.rng().Below(kNodes)));
    }
    for (int node : chosen) {
      SubscribeOptions options;
      options.reliable = ring.rng().Bernoulli(0.5);
      const bool accepts = ring.rng().Bernoulli(0.5);
      options.on_anycast = [accepts](const Delivery&) { return accepts; };
      ring.Subscribe(node, TopicName(k), std::move(options));
      members[k].push_back(node);
    }
  }
  ring.net().RunFor(absl::Seconds(5));
  std::vector<std::optional<absl::StatusOr<uint64_t>>> acked(kTopics * kMessages);
  std::vector<std::string> anycast_outcomes(kTopics * kMessages);
  const absl::Time start = ring.net().Now();
  for (int q = 0; q < kTopics * kMessages; ++q) {
    ring.net().Schedule(start + absl::Milliseconds(25) * q, [&, q] {
      const int k = q % kTopics;
      int from = static_cast<int>(ring.rng().Below(kNodes));
      while (!ring.alive(from)) from = static_cast<int>(ring.rng().Below(kNodes));
      const std::string payload = absl::StrCat(q);
      switch (q % 3) {
        case 0:
          ring.Publish(from, TopicName(k), payload);
          break;
        case 1:
          ring.PublishAcked(from, TopicName(k), payload, &acked[q]);
          break;
        default:
          ring.Call(from, [&](Scribe& s) {
            (void)s.Anycast(TopicName(k), payload,
                            [&anycast_outcomes, q](absl::StatusOr<pastry::NodeHandle> r) {
                              anycast_outcomes[q] = r.ok() ? r->id.ToHex() : r.status().ToString();
                            });
          });
      }
    });
  }
  ring.net().Schedule(start + absl::Seconds(3), [&] {
    int failed = 0;
    for (int k = 0; k < 3; ++k) {
      const int root = ring.RootOf(TopicName(k));
      if (root >= 0) {
        ring.Crash(root);
        ++failed;
      }
    }
    while (failed < kNodes / 10) {
      const int victim = static_cast<int>(ring.rng().Below(kNodes));
      if (!ring.alive(victim)) continue;
      ring.Crash(victim);
      ++failed;
    }
  });
  ring.net().RunUntil(start + absl::Milliseconds(25) * (kTopics * kMessages) + absl::Seconds(20));
  ring.net().network().set_delivery_observer({});

  for (int k = 0; k < kTopics; ++k) {
    for (int node : members[k]) {
      std::string log = absl::StrCat(node, "/", k, ":");
      for (const Received& r : ring.log(node, TopicName(k))) {
        absl::StrAppend(&log, " ", r.seq, "=", r.payload);
      }
      trace.logs.push_back(std::move(log));
    }
  }
  for (size_t q = 0; q < acked.size(); ++q) {
    std::string outcome = "-";
    if (acked[q].has_value()) {
      outcome = acked[q]->ok() ? absl::StrCat(**acked[q]) : acked[q]->status().ToString();
    }
    trace.logs.push_back(absl::StrCat("publish ", q, ": ", outcome, " anycast: ",
                                      anycast_outcomes[q]));
  }
  const ScribeStats s = ring.TotalStats();
  trace.counters = {s.joins_sent,         s.delivered,        s.duplicates,
                    s.repairs_served,     s.parent_failures,  s.roots_taken,
                    s.published,          s.messages_out,     s.publish_resends,
                    s.publishes_deduplicated, s.anycasts_accepted, s.anycasts_failed,
                    s.skipped,            s.children_adopted, s.data_forwarded};
  return trace;
}

// Scatters the heap between the runs: blocks of many sizes, every other one
// freed, so the second run's objects land at other addresses and in
// another order.
std::vector<std::unique_ptr<char[]>> ScatterHeap(uint64_t seed) {
  pastry::sim::Rng rng(seed);
  std::vector<std::unique_ptr<char[]>> blocks;
  for (int i = 0; i < 20000; ++i) {
    blocks.push_back(std::make_unique<char[]>(16 + rng.Below(4096)));
  }
  for (size_t i = 0; i < blocks.size(); i += 2) blocks[i].reset();
  return blocks;
}

TEST(ScribeDeterminismTest, SameSeedSameRunWhateverTheHeapLayout) {
  const Trace first = RunScenario(7);
  auto junk = ScatterHeap(99);
  const Trace second = RunScenario(7);
  ASSERT_GT(first.messages.size(), 100000u);
  EXPECT_EQ(first.counters, second.counters);
  EXPECT_EQ(first.logs, second.logs);
  ASSERT_EQ(first.messages.size(), second.messages.size());
  for (size_t i = 0; i < first.messages.size(); ++i) {
    ASSERT_EQ(first.messages[i], second.messages[i]) << "runs part at message " << i;
  }
  // The scenario exercises what it claims to.
  EXPECT_GT(first.counters[4], 0u);  // parent failures
  EXPECT_GT(first.counters[3], 0u);  // repairs served
  EXPECT_GT(first.counters[10], 0u);  // anycasts accepted
}

// ---------------------------------------------------------------------------
// Best-effort publishes duplicated by the overlay. With 300 ms of jitter a
// hop's acknowledgement is often later than its timeout, and the hop sends
// the message again on another route; both copies reach the root. Before
// best-effort publishes carried an origin, the root numbered both, and
// every member got the payload twice under two sequence numbers.

class ScribePlainDuplicateTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ScribePlainDuplicateTest, OverlayDuplicateOfAPlainPublishIsNumberedOnce) {
  constexpr int kNodes = 100, kTopics = 10, kMessages = 30;
  ScribeRing::SimNetwork::Config config = ScribeRing::Config(GetParam());
  config.jitter = absl::Milliseconds(300);
  ScribeRing ring(config, kNodes);
  ASSERT_TRUE(ring.all_active());
  std::vector<std::vector<int>> members(kTopics);
  for (int k = 0; k < kTopics; ++k) {
    std::set<int> chosen;
    while (chosen.size() < 10) chosen.insert(static_cast<int>(ring.rng().Below(kNodes)));
    members[k].assign(chosen.begin(), chosen.end());
    for (int node : members[k]) ring.Subscribe(node, TopicName(k), /*reliable=*/true);
  }
  for (int k = 0; k < kTopics; ++k) ASSERT_TRUE(RunUntilAttached(ring, members[k], TopicName(k)));
  for (int q = 0; q < kTopics * kMessages; ++q) {
    ring.Publish(static_cast<int>(ring.rng().Below(kNodes)), TopicName(q % kTopics),
                 absl::StrCat(q));
    ring.net().RunFor(absl::Milliseconds(20));
  }
  ring.net().RunFor(absl::Seconds(20));

  const ScribeStats stats = ring.TotalStats();
  // The overlay did deliver second copies to roots, and they were dropped.
  EXPECT_GT(stats.publishes_deduplicated, 0u);
  EXPECT_EQ(stats.publish_acks_sent, 0u);  // best effort asks for none
  for (int k = 0; k < kTopics; ++k) {
    for (int node : members[k]) {
      const std::vector<Received>& log = ring.log(node, TopicName(k));
      std::set<std::string> payloads;
      for (const Received& r : log) {
        EXPECT_TRUE(payloads.insert(r.payload).second)
            << "node " << node << " got payload " << r.payload << " twice (seq " << r.seq << ")";
      }
      // Reliable members of a tree without failures: everything, numbered
      // 1..kMessages without holes.
      ExpectExactly(log, 1, kMessages);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, ScribePlainDuplicateTest, ::testing::Values(1, 2));

}  // namespace
}  // namespace peter::pubsub::testing

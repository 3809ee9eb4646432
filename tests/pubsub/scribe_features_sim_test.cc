// Scribe's anycast, acknowledged publishes through cached roots, and the
// bottleneck remover at scale on the simulated network: 1,000 Pastry nodes,
// 100 topics with 1-50 random subscribers each. Seeded and deterministic.
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pubsub/topic_id.h"
#include "tests/pubsub/scribe_harness.h"
#include "tests/sim_scale.h"

namespace peter::pubsub::testing {
namespace {

constexpr int kNodes = peter::testing::kSimNodes;  // 1,000 (sim_scale.h)
constexpr int kTopics = 100;

std::string TopicName(int k) { return absl::StrCat("topic-", k); }

// 1..50 distinct random nodes per topic.
std::vector<std::vector<int>> RandomMembers(ScribeRing& ring) {
  std::vector<std::vector<int>> members(kTopics);
  for (int k = 0; k < kTopics; ++k) {
    const int count = 1 + static_cast<int>(ring.rng().Below(50));
    std::set<int> chosen;
    while (static_cast<int>(chosen.size()) < count) {
      chosen.insert(static_cast<int>(ring.rng().Below(kNodes)));
    }
    members[k].assign(chosen.begin(), chosen.end());
  }
  return members;
}

bool AllAttached(ScribeRing& ring, const std::vector<std::vector<int>>& members) {
  for (int k = 0; k < kTopics; ++k) {
    for (int node : members[k]) {
      if (ring.alive(node) && !ring.scribe(node).IsAttached(TopicName(k))) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Anycast: 30% of the members accept, none in every tenth topic. 1,000
// anycasts from random nodes. Each is accepted by exactly one accepting
// member (the one reported), or gets NotFound where nobody accepts.

class ScribeAnycastSimTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ScribeAnycastSimTest, ExactlyOneAcceptorOrNotFound) {
  ScribeRing ring(GetParam(), kNodes);
  ASSERT_TRUE(ring.all_active());
  auto members = RandomMembers(ring);
  std::vector<int> acceptors(kTopics, 0);
  std::map<std::string, std::vector<int>> accepted_by;  // payload -> nodes
  for (int k = 0; k < kTopics; ++k) {
    for (int node : members[k]) {
      const bool accepts = k % 10 != 0 && ring.rng().Bernoulli(0.3);
      acceptors[k] += accepts ? 1 : 0;
      SubscribeOptions options;
      options.on_anycast = [&accepted_by, node, accepts](const Delivery& d) {
        if (accepts) accepted_by[std::string(d.payload)].push_back(node);
        return accepts;
      };
      ring.Subscribe(node, TopicName(k), std::move(options));
    }
  }
  ASSERT_TRUE(ring.net().RunUntil([&] { return AllAttached(ring, members); },
                                  absl::Seconds(10), absl::Milliseconds(50)));
  ring.net().RunFor(absl::Seconds(3));  // round trips measured

  constexpr int kAnycasts = 1000;
  std::vector<std::optional<absl::StatusOr<pastry::NodeHandle>>> outcomes(kAnycasts);
  std::vector<absl::Duration> took(kAnycasts);
  for (int n = 0; n < kAnycasts; ++n) {
    const int from = static_cast<int>(ring.rng().Below(kNodes));
    ring.net().Schedule(ring.net().Now() + absl::Milliseconds(2 * n), [&, n, from] {
      const absl::Time sent = ring.net().Now();
      ring.Call(from, [&](Scribe& s) {
        ASSERT_TRUE(s.Anycast(TopicName(n % kTopics), absl::StrCat("a", n),
                              [&, n, sent](absl::StatusOr<pastry::NodeHandle> h) {
                                ASSERT_FALSE(outcomes[n].has_value()) << "twice: " << n;
                                outcomes[n] = std::move(h);
                                took[n] = ring.net().Now() - sent;
                              })
                        .ok());
      });
    });
  }
  ring.net().RunFor(absl::Milliseconds(2 * kAnycasts) + absl::Seconds(6));

  int accepted = 0, not_found = 0;
  std::vector<absl::Duration> accept_times, not_found_times;
  for (int n = 0; n < kAnycasts; ++n) {
    (n % kTopics % 10 == 0 ? not_found_times : accept_times).push_back(took[n]);
    const int k = n % kTopics;
    ASSERT_TRUE(outcomes[n].has_value()) << n;
    const auto& got = accepted_by[absl::StrCat("a", n)];
    if (acceptors[k] == 0) {
      EXPECT_EQ(outcomes[n]->status().code(), absl::StatusCode::kNotFound) << n;
      EXPECT_TRUE(got.empty());
      ++not_found;
      continue;
    }
    ASSERT_TRUE(outcomes[n]->ok()) << n << " " << outcomes[n]->status();
    ASSERT_EQ(got.size(), 1u) << n;
    EXPECT_EQ(**outcomes[n], ring.net().node(got[0]).self()) << n;
    ++accepted;
  }
  const ScribeStats stats = ring.TotalStats();
  EXPECT_EQ(stats.anycasts_accepted, static_cast<uint64_t>(accepted));
  EXPECT_EQ(stats.malformed, 0u);
  std::sort(accept_times.begin(), accept_times.end());
  std::sort(not_found_times.begin(), not_found_times.end());
  std::printf("%d accepted, %d not found; %.1f tree nodes visited per anycast; "
              "accepted in median %.0f ms (max %.0f), not found in median %.0f ms "
              "(max %.0f)\n",
              accepted, not_found,
              static_cast<double>(stats.anycasts_visited) / kAnycasts,
              absl::ToDoubleMilliseconds(accept_times[accept_times.size() / 2]),
              absl::ToDoubleMilliseconds(accept_times.back()),
              absl::ToDoubleMilliseconds(not_found_times[not_found_times.size() / 2]),
              absl::ToDoubleMilliseconds(not_found_times.back()));
}

INSTANTIATE_TEST_SUITE_P(Seeds, ScribeAnycastSimTest,
                         ::testing::ValuesIn(peter::testing::SimSeeds({1, 2})));

// ---------------------------------------------------------------------------
// Acknowledged publishes through cached roots while 10% of the nodes fail,
// the roots of ten topics among them. One publisher per topic (so it caches
// the root); half the subscriptions reliable. Every acknowledgement's number
// is the one subscribers deliver the payload under; reliable subscribers
// hold every acknowledged message exactly once, in order, without gaps.

struct Sent {
  int topic;
  std::string payload;
  std::optional<absl::StatusOr<uint64_t>> outcome;
};

void AckedPublishesThroughFailures(uint64_t seed, ScribeOptions options) {
  ScribeRing ring(seed, kNodes, options);
  ASSERT_TRUE(ring.all_active());
  auto members = RandomMembers(ring);
  std::map<std::pair<int, int>, bool> reliable;  // (topic, node)
  for (int k = 0; k < kTopics; ++k) {
    for (int node : members[k]) {
      reliable[{k, node}] = ring.rng().Bernoulli(0.5);
      ring.Subscribe(node, TopicName(k), reliable[{k, node}]);
    }
  }
  std::vector<int> publisher(kTopics);
  std::set<int> publishers;
  for (int k = 0; k < kTopics; ++k) {
    publisher[k] = static_cast<int>(ring.rng().Below(kNodes));
    publishers.insert(publisher[k]);
  }
  ASSERT_TRUE(ring.net().RunUntil([&] { return AllAttached(ring, members); },
                                  absl::Seconds(10), absl::Milliseconds(50)));
  constexpr int kMessages = 3000;  // one every 5 ms for 15 s
  std::vector<Sent> sent(kMessages);
  const absl::Time start = ring.net().Now();
  for (int n = 0; n < kMessages; ++n) {
    ring.net().Schedule(start + absl::Milliseconds(5 * n), [&ring, &sent, &publisher, n] {
      const int k = n % kTopics;
      sent[n].topic = k;
      sent[n].payload = absl::StrCat("m", n);
      ring.PublishAcked(publisher[k], TopicName(k), sent[n].payload, &sent[n].outcome);
    });
  }
  ring.net().RunFor(absl::Seconds(4));
  int crashed = 0;
  for (int k = 0; k < 10; ++k) {
    const int root = ring.RootOf(TopicName(k));
    if (root >= 0 && !publishers.contains(root)) {
      ring.Crash(root);
      ++crashed;
    }
  }
  while (crashed < kNodes / 10) {
    const int victim = static_cast<int>(ring.rng().Below(kNodes));
    if (!ring.alive(victim) || publishers.contains(victim)) continue;
    ring.Crash(victim);
    ++crashed;
  }
  ring.net().RunFor(absl::Seconds(11) + absl::Seconds(15));

  int acked = 0, timed_out = 0;
  std::vector<std::map<uint64_t, std::string>> by_seq(kTopics);
  for (const Sent& s : sent) {
    ASSERT_TRUE(s.outcome.has_value()) << s.payload;
    if (s.outcome->ok()) {
      ++acked;
      auto [it, fresh] = by_seq[s.topic].emplace(**s.outcome, s.payload);
      EXPECT_TRUE(fresh) << "seq " << **s.outcome << " acknowledged twice in topic " << s.topic;
    } else {
      EXPECT_EQ(s.outcome->status().code(), absl::StatusCode::kDeadlineExceeded);
      ++timed_out;
    }
  }
  int reliable_checked = 0;
  for (int k = 0; k < kTopics; ++k) {
    for (int node : members[k]) {
      if (!ring.alive(node)) continue;
      const auto& log = ring.log(node, TopicName(k));
      const std::string who = absl::StrCat("node ", node, " topic ", k);
      std::set<std::string> payloads;
      for (size_t i = 0; i < log.size(); ++i) {
        if (i > 0) {
          ASSERT_GT(log[i].seq, log[i - 1].seq) << who;
        }
        ASSERT_TRUE(payloads.insert(log[i].payload).second) << who << " twice";
        auto it = by_seq[k].find(log[i].seq);
        if (it != by_seq[k].end()) {
          EXPECT_EQ(it->second, log[i].payload) << who;
        }
      }
      if (!reliable[{k, node}]) continue;
      ++reliable_checked;
      ASSERT_FALSE(log.empty()) << who;
      EXPECT_EQ(log.front().seq, 1u) << who;
      EXPECT_EQ(log.back().seq, log.size()) << who << ": a gap";
      for (const auto& [seq, payload] : by_seq[k]) {
        EXPECT_TRUE(payloads.contains(payload)) << who << " misses " << payload;
      }
    }
  }
  EXPECT_GT(reliable_checked, 500);
  const ScribeStats stats = ring.TotalStats();
  EXPECT_GT(stats.root_cache_hits, stats.root_cache_misses);
  EXPECT_GT(stats.publish_resends, 0u);  // the crashed cached roots
  EXPECT_EQ(stats.malformed, 0u);
  // Nearly everything is acknowledged; what is not may still be published.
  EXPECT_GE(acked, kMessages * 95 / 100);
  std::printf("%d acknowledged, %d timed out; cache hits %llu, misses %llu, "
              "resends %llu, resends recognised %llu, rerouted %llu\n",
              acked, timed_out, (unsigned long long)stats.root_cache_hits,
              (unsigned long long)stats.root_cache_misses,
              (unsigned long long)stats.publish_resends,
              (unsigned long long)stats.publishes_deduplicated,
              (unsigned long long)stats.publishes_rerouted);
  std::printf("push-downs %llu, moves %llu, refused %llu; parent failures %llu, "
              "numbers skipped by best-effort subscribers %llu\n",
              (unsigned long long)stats.pushdowns, (unsigned long long)stats.moves,
              (unsigned long long)stats.joins_refused,
              (unsigned long long)stats.parent_failures,
              (unsigned long long)stats.skipped);
}

class ScribeAckedFailureTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ScribeAckedFailureTest, CachedRootsSurviveTenPercentFailing) {
  AckedPublishesThroughFailures(GetParam(), ScribeOptions{});
}

INSTANTIATE_TEST_SUITE_P(Seeds, ScribeAckedFailureTest,
                         ::testing::ValuesIn(peter::testing::SimSeeds({1, 2})));

// The same with max_children 4: trees rebuilt through the bottleneck
// remover while nodes fail.
TEST(ScribeAckedFailureTest, WithMaxChildrenFour) {
  ScribeOptions options;
  options.max_children = 4;
  AckedPublishesThroughFailures(1, options);
}

// ---------------------------------------------------------------------------
// max_children 4: the bottleneck remover keeps every node within it, and
// every subscriber still gets every message once, in order.

class ScribeSmallFanoutSimTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ScribeSmallFanoutSimTest, EveryoneGetsEverythingWithinMaxChildren) {
  ScribeOptions options;
  options.max_children = 4;
  ScribeRing ring(GetParam(), kNodes, options);
  ASSERT_TRUE(ring.all_active());
  auto members = RandomMembers(ring);
  for (int k = 0; k < kTopics; ++k) {
    for (int node : members[k]) ring.Subscribe(node, TopicName(k));
  }
  ASSERT_TRUE(ring.net().RunUntil([&] { return AllAttached(ring, members); },
                                  absl::Seconds(10), absl::Milliseconds(50)));
  std::vector<std::vector<std::string>> sent(kTopics);
  size_t peak = 0;
  for (int n = 0; n < 2000; ++n) {
    const int k = n % kTopics;
    const int from = static_cast<int>(ring.rng().Below(kNodes));
    std::string payload = absl::StrCat("m", n);
    sent[k].push_back(payload);
    ring.net().Schedule(ring.net().Now() + absl::Seconds(2) + absl::Milliseconds(n),
                        [&ring, from, k, payload] {
                          ring.Publish(from, TopicName(k), payload);
                        });
  }
  // Settled children are checked every 100 ms while messages flow.
  for (int step = 0; step < 50; ++step) {
    ring.net().RunFor(absl::Milliseconds(100));
    if (step < 20) continue;
    for (int i = 0; i < kNodes; ++i) {
      for (const TopicInfo& t : ring.scribe(i).Topics()) peak = std::max(peak, t.child_count);
    }
  }
  EXPECT_LE(peak, 4u);
  for (int k = 0; k < kTopics; ++k) {
    for (int node : members[k]) {
      const auto& log = ring.log(node, TopicName(k));
      const std::string who = absl::StrCat("node ", node, " topic ", k);
      ASSERT_EQ(log.size(), sent[k].size()) << who;
      for (size_t i = 0; i < log.size(); ++i) ASSERT_EQ(log[i].seq, i + 1) << who;
    }
  }
  const ScribeStats stats = ring.TotalStats();
  EXPECT_GT(stats.pushdowns, 0u);
  EXPECT_EQ(stats.joins_refused, 0u);
  EXPECT_EQ(stats.skipped, 0u);
  std::printf("max_children 4: %llu push-downs, %llu moves, peak children %zu\n",
              (unsigned long long)stats.pushdowns, (unsigned long long)stats.moves, peak);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ScribeSmallFanoutSimTest,
                         ::testing::ValuesIn(peter::testing::SimSeeds({1, 2})));

}  // namespace
}  // namespace peter::pubsub::testing

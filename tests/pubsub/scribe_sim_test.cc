// Scribe at scale on the simulated network: 1,000 Pastry nodes, 100 topics
// with random subscriber sets, publishers on random nodes; then 10% of the
// nodes (topic roots among them) failing while messages flow. Seeded and
// deterministic.
#include <algorithm>
#include <cstdio>
#include <map>
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

struct Member {
  int node;
  bool reliable;
};

std::string TopicName(int k) { return absl::StrCat("topic-", k); }

// Random subscriber sets of 1..50 distinct nodes per topic.
std::vector<std::vector<Member>> Subscribe(ScribeRing& ring, double reliable_share) {
  std::vector<std::vector<Member>> members(kTopics);
  for (int k = 0; k < kTopics; ++k) {
    const int count = 1 + static_cast<int>(ring.rng().Below(50));
    std::set<int> chosen;
    while (static_cast<int>(chosen.size()) < count) {
      chosen.insert(static_cast<int>(ring.rng().Below(kNodes)));
    }
    for (int node : chosen) {
      const bool reliable = ring.rng().Bernoulli(reliable_share);
      members[k].push_back(Member{node, reliable});
      ring.Subscribe(node, TopicName(k), reliable);
    }
  }
  return members;
}

bool AllAttached(ScribeRing& ring, const std::vector<std::vector<Member>>& members) {
  for (int k = 0; k < kTopics; ++k) {
    for (const Member& m : members[k]) {
      if (ring.alive(m.node) && !ring.scribe(m.node).IsAttached(TopicName(k))) {
        return false;
      }
    }
  }
  return true;
}

// Checks one subscriber's log: strictly increasing sequence numbers, and
// the same payload under a number as every other subscriber of the topic.
void CheckOrder(const std::vector<Received>& log, std::map<uint64_t, std::string>& truth,
                const std::string& who) {
  for (size_t i = 0; i < log.size(); ++i) {
    if (i > 0) {
      ASSERT_GT(log[i].seq, log[i - 1].seq) << who << " at " << i;
    }
    auto [it, fresh] = truth.emplace(log[i].seq, log[i].payload);
    ASSERT_EQ(it->second, log[i].payload) << who << " seq " << log[i].seq;
  }
}

class ScribeSimTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ScribeSimTest, EverySubscriberGetsEveryMessageOnceInOrder) {
  ScribeRing ring(GetParam(), kNodes);
  ASSERT_TRUE(ring.all_active());
  auto members = Subscribe(ring, 0.0);
  ASSERT_TRUE(ring.net().RunUntil([&] { return AllAttached(ring, members); },
                                  absl::Seconds(10), absl::Milliseconds(50)));
  // 2,000 messages, 20 per topic, from random nodes over two seconds.
  std::vector<std::vector<std::string>> sent(kTopics);
  for (int n = 0; n < 2000; ++n) {
    const int k = n % kTopics;
    const int from = static_cast<int>(ring.rng().Below(kNodes));
    std::string payload = absl::StrCat("m", n);
    sent[k].push_back(payload);
    ring.net().Schedule(ring.net().Now() + absl::Milliseconds(n),
                        [&ring, from, k, payload] { ring.Publish(from, TopicName(k), payload); });
  }
  ring.net().RunFor(absl::Seconds(4));

  size_t deliveries = 0;
  for (int k = 0; k < kTopics; ++k) {
    std::map<uint64_t, std::string> truth;
    for (const Member& m : members[k]) {
      const auto& log = ring.log(m.node, TopicName(k));
      const std::string who = absl::StrCat("node ", m.node, " topic ", k);
      CheckOrder(log, truth, who);
      ASSERT_EQ(log.size(), sent[k].size()) << who;
      EXPECT_EQ(log.front().seq, 1u) << who;
      deliveries += log.size();
    }
    std::set<std::string> got;
    for (const auto& [seq, payload] : truth) got.insert(payload);
    EXPECT_EQ(got, std::set<std::string>(sent[k].begin(), sent[k].end()));
  }
  ScribeStats stats = ring.TotalStats();
  EXPECT_EQ(stats.published, 2000u);
  EXPECT_EQ(stats.delivered, deliveries);
  EXPECT_EQ(stats.skipped, 0u);
  EXPECT_EQ(stats.malformed, 0u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ScribeSimTest,
                         ::testing::ValuesIn(peter::testing::SimSeeds({1, 2, 3})));

struct Published {
  int topic;
  std::string payload;
  absl::Time at;
  int from = -1;
};

// 10% of the nodes, the roots of the first ten topics among them, fail
// silently while one message every 5 ms flows. Afterwards reliable
// subscribers hold every message of their topics exactly once, in order;
// best-effort ones every message published once the tree is repaired.
class ScribeFailureTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ScribeFailureTest, TenPercentFailMidStream) {
  constexpr absl::Duration kRepair = absl::Seconds(10);
  ScribeRing ring(GetParam(), kNodes);
  ASSERT_TRUE(ring.all_active());
  auto members = Subscribe(ring, 0.5);
  ASSERT_TRUE(ring.net().RunUntil([&] { return AllAttached(ring, members); },
                                  absl::Seconds(10), absl::Milliseconds(50)));
  const absl::Time start = ring.net().Now();
  std::vector<Published> sent;
  // Acknowledged publishes: a plain one in flight to a root that dies is
  // lost by design (nothing resends it); an acknowledged one is resent
  // until a root numbers it, which is what reliable delivery builds on.
  std::vector<std::optional<absl::StatusOr<uint64_t>>> outcomes(4000);
  for (int n = 0; n < 4000; ++n) {
    const absl::Time at = start + absl::Milliseconds(5 * n);
    ring.net().Schedule(at, [&ring, &sent, &outcomes, n, at] {
      int from = static_cast<int>(ring.rng().Below(kNodes));
      while (!ring.alive(from)) from = static_cast<int>(ring.rng().Below(kNodes));
      sent.push_back(Published{n % kTopics, absl::StrCat("m", n), at, from});
      ring.PublishAcked(from, TopicName(n % kTopics), sent.back().payload,
                        &outcomes[n]);
    });
  }
  ring.net().RunFor(absl::Seconds(5));
  int crashed = 0;
  for (int k = 0; k < 10; ++k) {
    const int root = ring.RootOf(TopicName(k));
    if (root >= 0 && ring.alive(root)) {
      ring.Crash(root);
      ++crashed;
    }
  }
  while (crashed < kNodes / 10) {
    const int victim = static_cast<int>(ring.rng().Below(kNodes));
    if (!ring.alive(victim)) continue;
    ring.Crash(victim);
    ++crashed;
  }
  const absl::Time repaired = ring.net().Now() + kRepair;
  ring.net().RunFor(absl::Seconds(15) + kRepair);

  // Every publish of a live publisher is confirmed; one whose publisher
  // crashed before the confirmation is promised to no one.
  std::set<std::string> confirmed;
  for (int n = 0; n < 4000; ++n) {
    if (!ring.alive(sent[n].from) && !outcomes[n].has_value()) continue;
    ASSERT_TRUE(outcomes[n].has_value()) << "m" << n << " never completed";
    if (outcomes[n]->ok()) {
      confirmed.insert(sent[n].payload);
    } else {
      ADD_FAILURE() << "m" << n << ": " << outcomes[n]->status();
    }
  }
  int reliable_checked = 0, best_effort_checked = 0, missing = 0;
  for (int k = 0; k < kTopics; ++k) {
    std::map<uint64_t, std::string> truth;
    std::vector<std::string> all, late;
    for (const Published& p : sent) {
      if (p.topic != k || !confirmed.contains(p.payload)) continue;
      all.push_back(p.payload);
      if (p.at >= repaired) late.push_back(p.payload);
    }
    for (const Member& m : members[k]) {
      if (!ring.alive(m.node)) continue;
      const auto& log = ring.log(m.node, TopicName(k));
      const std::string who = absl::StrCat("node ", m.node, " topic ", k,
                                           m.reliable ? " reliable" : " best-effort");
      CheckOrder(log, truth, who);
      std::set<std::string> got;
      for (const Received& r : log) got.insert(r.payload);
      const auto& expected = m.reliable ? all : late;
      for (const std::string& payload : expected) {
        if (!got.contains(payload)) {
          ++missing;
          ADD_FAILURE() << who << " misses " << payload;
          if (missing > 20) {
            std::printf("topic %d: root %d closest %d\n", k, ring.RootOf(TopicName(k)),
                        ring.net().ClosestLiveNode(TopicIdOf(TopicName(k))));
            for (const Member& x : members[k]) {
              if (!ring.alive(x.node)) continue;
              const auto& l = ring.log(x.node, TopicName(k));
              std::printf("  member %d attached %d last %llu count %zu\n", x.node,
                          ring.scribe(x.node).IsAttached(TopicName(k)),
                          l.empty() ? 0ULL : (unsigned long long)l.back().seq, l.size());
            }
            return;
          }
        }
      }
      if (m.reliable) {
        ++reliable_checked;
        ASSERT_FALSE(log.empty()) << who;
        EXPECT_EQ(log.back().seq - log.front().seq + 1, log.size()) << who;
      } else {
        ++best_effort_checked;
      }
    }
  }
  EXPECT_GT(reliable_checked, 500);
  EXPECT_GT(best_effort_checked, 500);
  ScribeStats stats = ring.TotalStats();
  EXPECT_EQ(stats.malformed, 0u);
  std::printf("parent failures %llu, repairs %llu requested / %llu served, "
              "skipped %llu, duplicates dropped %llu, roots taken %llu\n",
              (unsigned long long)stats.parent_failures,
              (unsigned long long)stats.repairs_requested,
              (unsigned long long)stats.repairs_served,
              (unsigned long long)stats.skipped,
              (unsigned long long)stats.duplicates,
              (unsigned long long)stats.roots_taken);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ScribeFailureTest,
                         ::testing::ValuesIn(peter::testing::SimSeeds({1, 2, 3})));

// docs/chaos.md, "A root killed and restarted faster than failure detection
// loses confirmed messages": the root of a topic is killed and restarted
// with the same id on the same endpoint 1.2 s later (its neighbours detect
// a failure 0.9-1.9 s after it) while two publishers send acknowledged
// publishes every 10 ms. The restarted root starts without the topic's
// state. Every publish must be confirmed, and every reliable subscriber
// must hold every confirmed message exactly once, in order, under the
// number its publisher was given. Round trips of at most 30 ms (a data
// centre, as in the chaos soak), so the restart and its join are quick.
// Before the overlay's Suspect ignored hops sent to a restarted node's
// previous run, 3 of these 12 seeds failed: each late hop timeout made the
// new run suspect, a replica holder got the publishes routed meanwhile,
// became root again and numbered them under numbers the restarted root had
// also given.
class QuickRootRestartTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(QuickRootRestartTest, ReliableSubscribersLoseNothingConfirmed) {
  constexpr int kCount = 40;
  constexpr int kMessages = 800;
  const std::string topic = "restarted-root";
  ScribeRing::SimNetwork::Config config = ScribeRing::Config(GetParam());
  config.plane.per_unit = absl::Microseconds(10);
  ScribeRing ring(config, kCount);
  ASSERT_TRUE(ring.all_active());
  // Subscribers and publishers are other nodes than the topic's root.
  const int root = ring.net().ClosestLiveNode(TopicIdOf(topic));
  ASSERT_GE(root, 0);
  std::vector<int> subscribers;
  while (subscribers.size() < 6) {
    const int n = static_cast<int>(ring.rng().Below(kCount));
    if (n == root || std::find(subscribers.begin(), subscribers.end(), n) != subscribers.end()) {
      continue;
    }
    subscribers.push_back(n);
    ring.Subscribe(n, topic, /*reliable=*/true);
  }
  ASSERT_TRUE(RunUntilAttached(ring, subscribers, topic));
  std::vector<int> publishers;
  while (publishers.size() < 2) {
    const int n = static_cast<int>(ring.rng().Below(kCount));
    if (n != root && std::find(publishers.begin(), publishers.end(), n) == publishers.end()) {
      publishers.push_back(n);
    }
  }
  const absl::Time start = ring.net().Now();
  std::vector<std::optional<absl::StatusOr<uint64_t>>> outcomes(kMessages);
  for (int n = 0; n < kMessages; ++n) {
    ring.net().Schedule(start + absl::Milliseconds(10 * n), [&ring, &outcomes, &publishers,
                                                             &topic, n] {
      ring.PublishAcked(publishers[n % 2], topic, absl::StrCat("m", n), &outcomes[n]);
    });
  }
  ring.net().RunFor(absl::Seconds(2));
  ring.Crash(root);
  ring.net().RunFor(absl::Milliseconds(1200));
  int bootstrap = root;
  while (bootstrap == root) bootstrap = static_cast<int>(ring.rng().Below(kCount));
  ring.Restart(root, bootstrap);
  ring.net().RunFor(absl::Seconds(40));
  EXPECT_EQ(ring.RootOf(topic), root) << "the restarted node is closest and must be root";

  std::map<uint64_t, std::string> confirmed;  // number -> payload
  for (int n = 0; n < kMessages; ++n) {
    ASSERT_TRUE(outcomes[n].has_value()) << "m" << n << " never completed";
    ASSERT_TRUE(outcomes[n]->ok()) << "m" << n << ": " << outcomes[n]->status();
    auto [it, fresh] = confirmed.emplace(**outcomes[n], absl::StrCat("m", n));
    EXPECT_TRUE(fresh) << "m" << n << " confirmed under " << **outcomes[n] << ", as was "
                       << it->second;
  }
  for (int s : subscribers) {
    const auto& log = ring.log(s, topic);
    const std::string who = absl::StrCat("subscriber ", s);
    std::map<uint64_t, std::string> got;
    for (size_t i = 0; i < log.size(); ++i) {
      if (i > 0) {
        EXPECT_EQ(log[i].seq, log[i - 1].seq + 1) << who << " at " << i;
      }
      EXPECT_TRUE(got.emplace(log[i].seq, log[i].payload).second) << who;
    }
    int missing = 0;
    for (const auto& [seq, payload] : confirmed) {
      auto it = got.find(seq);
      if (it == got.end() || it->second != payload) {
        if (++missing <= 5) {
          ADD_FAILURE() << who << ": " << payload << " confirmed as " << seq << ", delivered as "
                        << (it == got.end() ? "nothing" : it->second);
        }
      }
    }
    EXPECT_EQ(missing, 0) << who;
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, QuickRootRestartTest, ::testing::Range<uint64_t>(1, 13));

}  // namespace
}  // namespace peter::pubsub::testing

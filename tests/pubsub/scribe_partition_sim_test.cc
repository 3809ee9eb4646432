// A topic's root cut off from every other node for longer than failure
// detection (docs/chaos.md, "A root cut off for longer than failure
// detection numbers ..."): its successor takes the topic over and numbers
// publishes; when the cut heals the old root, closer to the topic, takes
// the role back. No number may be given to two publishes, and reliable
// subscribers must get every confirmed message once, in order, under its
// confirmed number. On the simulated network, 20 nodes, round trips of at
// most 30 ms (a data centre, as in the chaos soak). Seeded and
// deterministic.
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pubsub/topic_id.h"
#include "pubsub/wire/codec.h"
#include "tests/pubsub/scribe_harness.h"

namespace peter::pubsub::testing {
namespace {

constexpr int kNodes = 20;
const char kTopic[] = "partitioned";

ScribeRing::SimNetwork::Config DataCentre(uint64_t seed) {
  ScribeRing::SimNetwork::Config config = ScribeRing::Config(seed);
  config.plane.per_unit = absl::Microseconds(10);
  return config;
}

struct Case {
  uint64_t seed;
  // Also publishes from the cut-off root itself (a gateway client on it),
  // as well as from a node on the other side.
  bool publish_at_root;
};

std::string Name(const ::testing::TestParamInfo<Case>& info) {
  return absl::StrCat(info.param.publish_at_root ? "BothSides" : "OtherSide", "_Seed",
                      info.param.seed);
}

class RootPartitionTest : public ::testing::TestWithParam<Case> {};

// The acknowledged publishes' outcomes (`payloads`, `outcomes`) against the
// reliable subscribers' logs: each number confirmed once, and delivered
// once under it; a publish may time out (it was held, or its root was cut
// off): it may or may not have been published then, but at most once, as
// each publish in `unacknowledged` (added to it). Returns what was
// confirmed, number -> payload.
std::map<uint64_t, std::string> ExpectEveryNumberOnce(
    ScribeRing& ring, const std::vector<int>& subscribers,
    const std::vector<std::string>& payloads,
    const std::vector<std::optional<absl::StatusOr<uint64_t>>>& outcomes,
    std::set<std::string>& unacknowledged) {
  std::map<uint64_t, std::string> confirmed;
  for (size_t k = 0; k < payloads.size(); ++k) {
    EXPECT_TRUE(outcomes[k].has_value()) << payloads[k] << " never completed";
    if (!outcomes[k].has_value()) continue;
    if (!outcomes[k]->ok()) {
      EXPECT_TRUE(absl::IsDeadlineExceeded(outcomes[k]->status()))
          << payloads[k] << ": " << outcomes[k]->status();
      unacknowledged.insert(payloads[k]);
      continue;
    }
    auto [it, fresh] = confirmed.emplace(**outcomes[k], payloads[k]);
    EXPECT_TRUE(fresh) << payloads[k] << " confirmed under " << **outcomes[k] << ", as was "
                       << it->second;
  }
  EXPECT_GE(confirmed.size(), payloads.size() / 2);
  for (int s : subscribers) {
    const std::string who = absl::StrCat("subscriber ", s);
    std::map<std::string, int> times =
        ExpectConfirmedOnceInOrder(ring.log(s, kTopic), confirmed, who);
    for (const std::string& payload : unacknowledged) {
      EXPECT_LE(times[payload], 1) << who << ": " << payload << " delivered " << times[payload]
                                   << " times";
    }
  }
  return confirmed;
}

TEST_P(RootPartitionTest, NoNumberGivenTwiceAcrossTheHeal) {
  ScribeRing ring(DataCentre(GetParam().seed), kNodes);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf(kTopic));
  ASSERT_GE(root, 0);
  const std::vector<int> others = OtherNodes(ring, root, 4);
  std::vector<int> publishers = {others[0]};
  if (GetParam().publish_at_root) publishers.push_back(root);
  const std::vector<int> subscribers(others.begin() + 1, others.end());
  for (int s : subscribers) ring.Subscribe(s, kTopic, /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, subscribers, kTopic));

  // Cut off: what is sent to or from the root waits in the connections
  // (TCP buffers) and arrives when the cut heals, as in the chaos soak.
  bool cut = false;
  ring.net().network().set_hold_filter(
      [&](int from, int to, const pastry::Envelope&) { return cut && (from == root || to == root); });

  // One publish per publisher every 50 ms: 2 s before the cut, through a
  // cut of 7 s (failure detection takes about 2 s, the old root's lease
  // 3 s), and 6 s after it heals.
  std::vector<std::string> payloads;
  std::vector<std::optional<absl::StatusOr<uint64_t>>> outcomes(1000);
  bool lone = false;           // the root lost every leaf-set neighbour
  bool successor_root = false;  // another node numbered the topic meanwhile
  const absl::Time start = ring.net().Now();
  for (int step = 0; ring.net().Now() - start < absl::Seconds(15); ++step) {
    const absl::Duration at = ring.net().Now() - start;
    const bool was_cut = cut;
    cut = at >= absl::Seconds(2) && at < absl::Seconds(9);
    if (was_cut && !cut) ring.net().network().ReleaseHeld();
    for (int p : publishers) {
      ASSERT_LT(payloads.size(), outcomes.size());
      payloads.push_back(absl::StrCat("p", p, "-", step));
      ring.PublishAcked(p, kTopic, payloads.back(), &outcomes[payloads.size() - 1]);
    }
    ring.net().RunFor(absl::Milliseconds(50));
    if (!cut) continue;
    lone = lone || ring.net().node(root).leaf_set().Members().empty();
    for (int i = 0; i < ring.size(); ++i) {
      if (i != root && ring.scribe(i).IsRoot(kTopic) && ring.scribe(i).stats().published > 0) {
        successor_root = true;
      }
    }
  }
  cut = false;
  ring.net().RunFor(absl::Seconds(30));
  ASSERT_TRUE(lone) << "the cut-off root never declared all its neighbours dead";
  ASSERT_TRUE(successor_root) << "no successor numbered the topic during the cut";
  ASSERT_EQ(ring.RootOf(kTopic), root)
      << "the closest node roots the topic again; the old root's leaf set has "
      << ring.net().node(root).leaf_set().Members().size() << " members";

  std::set<std::string> timed_out;
  const std::map<uint64_t, std::string> confirmed =
      ExpectEveryNumberOnce(ring, subscribers, payloads, outcomes, timed_out);
  const ScribeStats& stats = ring.scribe(root).stats();
  std::printf("seed %llu: %zu publishes, %zu confirmed, %zu timed out; old root: %llu held "
              "for a lease, %llu of them as a lone root, %llu rival roots merged\n",
              static_cast<unsigned long long>(GetParam().seed), payloads.size(),
              confirmed.size(), timed_out.size(),
              static_cast<unsigned long long>(stats.lease_waits),
              static_cast<unsigned long long>(stats.lone_root_waits),
              static_cast<unsigned long long>(stats.rival_roots_merged));
}

std::vector<Case> Cases() {
  std::vector<Case> out;
  for (bool both : {false, true}) {
    for (uint64_t seed = 1; seed <= 4; ++seed) out.push_back(Case{seed, both});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Seeds, RootPartitionTest, ::testing::ValuesIn(Cases()), Name);

// A cut of the root about as long as failure detection (the chaos soak's
// seed 2: node 6, root of chaos-2-4, cut off for 1.67 s). Routes around
// the root end at the node next to it, which takes the topic over once the
// lease it granted has run out, if it has declared the root dead (in the
// simulation some nodes do within 1.3 s); the root keeps numbering its
// own publishes under its lease meanwhile, and what it multicasts waits in
// its connections until the heal. Acknowledged publishers on both sides
// (one on the root), a best-effort one on the other side. Every number must
// name one message: a reliable subscriber gets each confirmed publish once,
// under its confirmed number, and no payload twice. Before numbers waited
// for the replicas (docs/scribe.md, "Two roots after a cut") the cuts of
// 1.7 s and longer failed on several seeds: the root's own publishes
// reached subscribers at the heal, the successor's numbering won the
// merge, and their resends were numbered and delivered again.
struct ShortCut {
  uint64_t seed;
  absl::Duration cut;
};

std::string ShortCutName(const ::testing::TestParamInfo<ShortCut>& info) {
  return absl::StrCat("Cut", absl::ToInt64Milliseconds(info.param.cut), "ms_Seed",
                      info.param.seed);
}

class ShortRootCutTest : public ::testing::TestWithParam<ShortCut> {};

TEST_P(ShortRootCutTest, EveryNumberNamesOneMessage) {
  ScribeRing ring(DataCentre(GetParam().seed), kNodes);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf(kTopic));
  ASSERT_GE(root, 0);
  const std::vector<int> others = OtherNodes(ring, root, 6);
  // Acknowledged publishes from two nodes and the root itself, best-effort
  // ones from a third node; three reliable subscribers.
  const std::vector<int> acked = {others[0], others[1], root};
  const int best_effort = others[2];
  const std::vector<int> subscribers(others.begin() + 3, others.end());
  for (int s : subscribers) ring.Subscribe(s, kTopic, /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, subscribers, kTopic));

  bool cut = false;
  ring.net().network().set_hold_filter(
      [&](int from, int to, const pastry::Envelope&) { return cut && (from == root || to == root); });
  std::vector<std::string> payloads;  // acknowledged
  std::vector<std::optional<absl::StatusOr<uint64_t>>> outcomes(1000);
  std::set<std::string> unacknowledged;
  const absl::Time start = ring.net().Now();
  const absl::Duration cut_at = absl::Seconds(2);
  for (int step = 0; ring.net().Now() - start < absl::Seconds(8); ++step) {
    const absl::Duration at = ring.net().Now() - start;
    const bool was_cut = cut;
    cut = at >= cut_at && at < cut_at + GetParam().cut;
    if (was_cut && !cut) ring.net().network().ReleaseHeld();
    for (int p : acked) {
      ASSERT_LT(payloads.size(), outcomes.size());
      payloads.push_back(absl::StrCat("p", p, "-", step));
      ring.PublishAcked(p, kTopic, payloads.back(), &outcomes[payloads.size() - 1]);
    }
    unacknowledged.insert(absl::StrCat("b", best_effort, "-", step));
    ring.Publish(best_effort, kTopic, absl::StrCat("b", best_effort, "-", step));
    ring.net().RunFor(absl::Milliseconds(50));
  }
  cut = false;
  ring.net().RunFor(absl::Seconds(30));

  const std::map<uint64_t, std::string> confirmed =
      ExpectEveryNumberOnce(ring, subscribers, payloads, outcomes, unacknowledged);
  const ScribeStats total = ring.TotalStats();
  std::printf("seed %llu, cut %s: %zu acknowledged publishes, %zu confirmed; %llu roots taken, "
              "%llu hand-overs, %llu passed on\n",
              static_cast<unsigned long long>(GetParam().seed),
              absl::FormatDuration(GetParam().cut).c_str(), payloads.size(), confirmed.size(),
              static_cast<unsigned long long>(total.roots_taken),
              static_cast<unsigned long long>(total.handovers),
              static_cast<unsigned long long>(total.publishes_passed_on));
}

std::vector<ShortCut> ShortCuts() {
  std::vector<ShortCut> out;
  for (int ms : {1000, 1300, 1700, 2200}) {
    for (uint64_t seed = 1; seed <= 8; ++seed) out.push_back(ShortCut{seed, absl::Milliseconds(ms)});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Seeds, ShortRootCutTest, ::testing::ValuesIn(ShortCuts()),
                         ShortCutName);

// Cuts of 3 s, longer than failure detection: a successor takes the topic
// over, and after the heal the old root sees part of its leaf set again.
// Seeds 5, 12 and 25 had both roots release the same numbers while a
// replica granted leases to both.
std::vector<ShortCut> LongerCuts() {
  std::vector<ShortCut> out;
  for (uint64_t seed = 1; seed <= 25; ++seed) out.push_back(ShortCut{seed, absl::Seconds(3)});
  return out;
}

INSTANTIATE_TEST_SUITE_P(LongerCuts, ShortRootCutTest, ::testing::ValuesIn(LongerCuts()),
                         ShortCutName);

}  // namespace
}  // namespace peter::pubsub::testing

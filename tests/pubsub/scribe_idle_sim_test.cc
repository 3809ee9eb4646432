// Idle topics on the simulated network: a root forgets a topic nobody
// subscribes to once no publish came for topic_idle_timeout, its replicas
// follow, and a publish soon after continues the numbering. Before, every
// channel ever published kept its state on its root and replicas for good,
// and a node that had taken max_topics of them refused every new one.
// Seeded and deterministic.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pubsub/messages.h"
#include "pubsub/topic_id.h"
#include "pubsub/wire/codec.h"
#include "tests/pubsub/scribe_harness.h"

namespace peter::pubsub::testing {
namespace {

constexpr int kNodes = 10;

ScribeOptions IdleOptions() {
  ScribeOptions options;
  options.max_topics = 50;
  options.topic_idle_timeout = absl::Seconds(30);
  return options;
}

struct Counts {
  uint64_t forgotten = 0;
  uint64_t refused = 0;
  uint64_t conflicts = 0;
  size_t topics = 0;
  uint64_t replay_bytes = 0;
  uint64_t numberings_dropped = 0;
};

Counts Count(ScribeRing& ring) {
  Counts c;
  for (int i = 0; i < ring.size(); ++i) {
    const ScribeStats& s = ring.scribe(i).stats();
    c.forgotten += s.topics_forgotten;
    c.refused += s.topics_refused;
    c.conflicts += s.replica_conflicts + s.replica_stale_terms;
    c.topics += ring.scribe(i).topic_count();
    c.replay_bytes += ring.scribe(i).RecountReplayBytes();
    c.numberings_dropped += s.numberings_dropped;
  }
  return c;
}

// Publishes one acknowledged message on each of `topics` new channels from
// node 0; returns how many were confirmed.
int PublishWave(ScribeRing& ring, int wave, int topics) {
  std::vector<std::optional<absl::StatusOr<uint64_t>>> out(topics);
  for (int k = 0; k < topics; ++k) {
    ring.PublishAcked(0, absl::StrCat("once-", wave, "-", k), "m", &out[k]);
  }
  ring.net().RunFor(absl::Seconds(5));
  int confirmed = 0;
  for (const auto& o : out) confirmed += o.has_value() && o->ok();
  return confirmed;
}

// Three topic names the same node roots in a ring of `seed`: found in a
// ring of its own (the same seed makes the same node ids), publishing once
// to each candidate.
std::vector<std::string> NamesOfOneRoot(uint64_t seed, const ScribeOptions& options) {
  ScribeRing probe(seed, kNodes, options);
  std::vector<std::vector<std::string>> by_root(kNodes);
  for (int k = 0; k < 40; ++k) {
    const std::string name = absl::StrCat("same-", k);
    probe.Publish(0, name, "m");
    probe.net().RunFor(absl::Seconds(1));
    const int root = probe.RootOf(name);
    if (root < 0) continue;
    by_root[root].push_back(name);
    if (by_root[root].size() == 3) return by_root[root];
  }
  return {};
}

class ScribeIdleSimTest : public ::testing::TestWithParam<uint64_t> {
 protected:
  // The set-up of the tests at the cap of numberings remembered: a ring
  // whose nodes keep max_topics 2 and forget a topic idle for 10 s, and
  // three topic names (names_) that one node roots.
  // Use as ASSERT_NO_FATAL_FAILURE(MakeRingAtTheCap()).
  void MakeRingAtTheCap() {
    ScribeOptions options = IdleOptions();
    options.max_topics = 2;
    options.topic_idle_timeout = absl::Seconds(10);
    names_ = NamesOfOneRoot(GetParam(), options);
    ASSERT_EQ(names_.size(), 3u);
    ring_ = std::make_unique<ScribeRing>(GetParam(), kNodes, options);
    ASSERT_TRUE(ring_->all_active());
  }

  std::vector<std::string> names_;
  std::unique_ptr<ScribeRing> ring_;
};

// Six waves of 40 channels published once each, a minute apart: about 24
// topics per wave on each node with the replicas, so without forgetting
// the third wave passes max_topics (50) and its publishes are refused.
TEST_P(ScribeIdleSimTest, ChannelsPublishedOnceAreForgottenAndNewOnesWork) {
  ScribeRing ring(GetParam(), kNodes, IdleOptions());
  ASSERT_TRUE(ring.all_active());
  for (int wave = 0; wave < 6; ++wave) {
    EXPECT_EQ(PublishWave(ring, wave, 40), 40) << "wave " << wave;
    ring.net().RunFor(absl::Seconds(60));
  }
  ring.net().RunFor(absl::Seconds(60));  // the last wave's, and replica_ttl
  const Counts c = Count(ring);
  EXPECT_EQ(c.refused, 0u);
  EXPECT_EQ(c.forgotten, 240u);  // each root forgot each of its topics once
  EXPECT_EQ(c.topics, 0u);
  EXPECT_EQ(c.replay_bytes, 0u);  // the replicas' copies went too
  EXPECT_EQ(c.conflicts, 0u);
}

// A topic with a subscriber is kept however long nothing is published.
TEST_P(ScribeIdleSimTest, ATopicWithASubscriberIsKept) {
  ScribeRing ring(GetParam(), kNodes, IdleOptions());
  ASSERT_TRUE(ring.all_active());
  ring.Subscribe(3, "kept");
  ring.net().RunFor(absl::Seconds(2));
  ring.Publish(0, "kept", "one");
  ring.net().RunFor(absl::Minutes(10));
  ring.Publish(0, "kept", "two");
  ring.net().RunFor(absl::Seconds(2));
  const std::vector<Received>& log = ring.log(3, "kept");
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].seq, log[0].seq + 1);
  EXPECT_EQ(log[1].payload, "two");
  EXPECT_EQ(Count(ring).forgotten, 0u);
}

// Forgotten while its replicas still hold its numbering (within
// replica_ttl): a new publish goes on from the number after the last one,
// under a higher term, and the replicas take it without a conflict. A root
// that started again from 1 would give numbers its replicas hold other
// messages under.
TEST_P(ScribeIdleSimTest, APublishSoonAfterForgettingContinuesTheNumbering) {
  ScribeRing ring(GetParam(), kNodes, IdleOptions());
  ASSERT_TRUE(ring.all_active());
  std::vector<std::optional<absl::StatusOr<uint64_t>>> before(3);
  for (auto& o : before) ring.PublishAcked(0, "again", "old", &o);
  ring.net().RunFor(absl::Seconds(2));
  for (auto& o : before) ASSERT_TRUE(o.has_value() && o->ok());
  const uint64_t last = **before.back();
  ring.net().RunFor(absl::Seconds(35));  // past topic_idle_timeout, within replica_ttl
  ASSERT_EQ(ring.RootOf("again"), -1);
  ASSERT_EQ(Count(ring).forgotten, 1u);
  ring.Subscribe(5, "again");
  ring.net().RunFor(absl::Seconds(2));
  std::optional<absl::StatusOr<uint64_t>> after;
  ring.PublishAcked(0, "again", "new", &after);
  ring.net().RunFor(absl::Seconds(2));
  ASSERT_TRUE(after.has_value() && after->ok());
  EXPECT_EQ(**after, last + 1);
  const std::vector<Received>& log = ring.log(5, "again");
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].payload, "new");
  EXPECT_EQ(log[0].seq, last + 1);
  EXPECT_EQ(Count(ring).conflicts, 0u);
}

// Forgotten for longer than 2 x replica_ttl: the replicas dropped their
// copies (replica_ttl after the last refresh) and the root its remembered
// numbering, so a publish then starts a new numbering. A subscriber that
// had the old messages, left and comes back gets the new one and none of
// the old again; one new to the topic gets the new one; a publisher's
// later publishes are numbered on from it, none acknowledged as a resend
// of an old one.
TEST_P(ScribeIdleSimTest, APublishLongAfterForgettingStartsAfresh) {
  ScribeRing ring(GetParam(), kNodes, IdleOptions());
  ASSERT_TRUE(ring.all_active());
  const SubscriptionId old_sub = ring.Subscribe(5, "late", /*reliable=*/true);
  ring.net().RunFor(absl::Seconds(2));
  std::vector<std::optional<absl::StatusOr<uint64_t>>> before(3);
  for (auto& o : before) ring.PublishAcked(0, "late", "old", &o);
  ring.net().RunFor(absl::Seconds(2));
  for (auto& o : before) ASSERT_TRUE(o.has_value() && o->ok());
  ASSERT_EQ(ring.log(5, "late").size(), 3u);
  ring.Call(5, [&](Scribe& s) { ASSERT_TRUE(s.Unsubscribe(old_sub).ok()); });
  ring.net().RunFor(absl::Seconds(35));  // forgotten
  ASSERT_EQ(Count(ring).forgotten, 1u);
  ring.net().RunFor(absl::Seconds(70));  // past 2 x replica_ttl after that
  Counts c = Count(ring);
  ASSERT_EQ(c.topics, 0u);
  ASSERT_EQ(c.replay_bytes, 0u);
  ring.Subscribe(5, "late", /*reliable=*/true);
  ring.Subscribe(7, "late", /*reliable=*/true);
  ring.net().RunFor(absl::Seconds(2));
  std::vector<std::optional<absl::StatusOr<uint64_t>>> after(3);
  for (size_t k = 0; k < after.size(); ++k) {
    ring.PublishAcked(0, "late", absl::StrCat("new", k), &after[k]);
  }
  ring.net().RunFor(absl::Seconds(5));
  for (auto& o : after) ASSERT_TRUE(o.has_value() && o->ok());
  EXPECT_EQ(**after[1], **after[0] + 1);
  EXPECT_EQ(**after[2], **after[1] + 1);
  for (int node : {5, 7}) {
    const std::vector<Received>& log = ring.log(node, "late");
    const size_t old = node == 5 ? 3 : 0;
    ASSERT_EQ(log.size(), old + 3) << "node " << node;
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(log[old + k].payload, absl::StrCat("new", k)) << "node " << node;
      EXPECT_EQ(log[old + k].seq, **after[k]) << "node " << node;
    }
  }
  c = Count(ring);
  EXPECT_EQ(c.conflicts, 0u);
  EXPECT_EQ(ring.TotalStats().publishes_deduplicated, 0u);
}

// At max_topics numberings remembered (forgotten within 2 x replica_ttl)
// the oldest goes to make room for a topic forgotten now, whose replicas
// still hold their copies. Before, the new one was forgotten without its
// numbering: its root, made again by a subscriber's join, learned the
// numbering from the replicas' state and multicast the three old messages
// to that subscriber, which had subscribed after them.
TEST_P(ScribeIdleSimTest, PastTheCapTheOldestNumberingMakesRoom) {
  ASSERT_NO_FATAL_FAILURE(MakeRingAtTheCap());
  ScribeRing& ring = *ring_;
  const std::vector<std::string>& names = names_;
  std::vector<std::optional<absl::StatusOr<uint64_t>>> first(2);
  for (int k = 0; k < 2; ++k) ring.PublishAcked(0, names[k], "a", &first[k]);
  ring.net().RunFor(absl::Seconds(2));
  for (auto& o : first) ASSERT_TRUE(o.has_value() && o->ok());
  ring.net().RunFor(absl::Seconds(12));  // both forgotten, both remembered
  ASSERT_EQ(Count(ring).forgotten, 2u);
  ring.net().RunFor(absl::Seconds(32));  // their replicas' copies dropped
  ASSERT_EQ(Count(ring).replay_bytes, 0u);
  std::vector<std::optional<absl::StatusOr<uint64_t>>> before(3);
  for (auto& o : before) ring.PublishAcked(0, names[2], "old", &o);
  ring.net().RunFor(absl::Seconds(2));
  for (auto& o : before) ASSERT_TRUE(o.has_value() && o->ok());
  const uint64_t last = **before.back();
  ring.net().RunFor(absl::Seconds(12));  // forgotten: two remembered already
  ASSERT_EQ(Count(ring).forgotten, 3u);
  EXPECT_EQ(Count(ring).numberings_dropped, 1u);  // the oldest made room
  ASSERT_GT(Count(ring).replay_bytes, 0u);  // the replicas hold "old"
  int subscriber = 1;
  while (subscriber == ring.RootOf(names[2]) || ring.scribe(subscriber).topic_count() > 0) {
    ++subscriber;
    ASSERT_LT(subscriber, kNodes) << "no node without topics to subscribe from";
  }
  ring.Subscribe(subscriber, names[2], /*reliable=*/true);
  ring.net().RunFor(absl::Seconds(2));
  std::optional<absl::StatusOr<uint64_t>> after;
  ring.PublishAcked(0, names[2], "new", &after);
  ring.net().RunFor(absl::Seconds(12));
  ASSERT_TRUE(after.has_value() && after->ok()) << (after ? after->status().ToString() : "none");
  EXPECT_GT(**after, last);
  const std::vector<Received>& log = ring.log(subscriber, names[2]);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].payload, "new");
  EXPECT_EQ(log[0].seq, **after);
  EXPECT_EQ(Count(ring).conflicts, 0u);
  EXPECT_EQ(Count(ring).refused, 0u);
}

// A topic made again (a publish after it was forgotten) and forgotten
// again is remembered as of the second time: making room for a third drops
// the other, older one, not it (its first entry in the age order is stale).
TEST_P(ScribeIdleSimTest, AtTheCapATopicForgottenTwiceCountsItsLatestAge) {
  ASSERT_NO_FATAL_FAILURE(MakeRingAtTheCap());
  ScribeRing& ring = *ring_;
  const std::vector<std::string>& names = names_;
  auto publish = [&ring](const std::string& name) {
    std::optional<absl::StatusOr<uint64_t>> out;
    ring.PublishAcked(0, name, "m", &out);
    ring.net().RunFor(absl::Seconds(6));
    EXPECT_TRUE(out.has_value() && out->ok())
        << name << ": " << (out ? out->status().ToString() : "no answer");
    return out.has_value() && out->ok();
  };
  ASSERT_TRUE(publish(names[0]));
  const int root = ring.RootOf(names[0]);  // of all three
  ASSERT_GE(root, 0);
  ASSERT_TRUE(publish(names[1]));
  ring.net().RunFor(absl::Seconds(12));  // both forgotten, both remembered
  ASSERT_EQ(Count(ring).forgotten, 2u);
  ASSERT_TRUE(ring.scribe(root).RemembersNumbering(names[0]));
  ASSERT_TRUE(ring.scribe(root).RemembersNumbering(names[1]));
  ASSERT_TRUE(publish(names[0]));  // made again: no longer remembered
  EXPECT_FALSE(ring.scribe(root).RemembersNumbering(names[0]));
  ring.net().RunFor(absl::Seconds(12));  // forgotten again
  ASSERT_EQ(Count(ring).forgotten, 3u);
  ASSERT_TRUE(ring.scribe(root).RemembersNumbering(names[0]));
  ASSERT_TRUE(publish(names[2]));
  ring.net().RunFor(absl::Seconds(12));  // forgotten: one must make room
  ASSERT_EQ(Count(ring).forgotten, 4u);
  EXPECT_EQ(Count(ring).numberings_dropped, 1u);
  EXPECT_TRUE(ring.scribe(root).RemembersNumbering(names[0]));
  EXPECT_FALSE(ring.scribe(root).RemembersNumbering(names[1]));
  EXPECT_TRUE(ring.scribe(root).RemembersNumbering(names[2]));
}

// The maintenance pass ages out only the replay buffers that hold
// something: with 200 subscribed topics and two published once it looks at
// the two roots' buffers each pass, and at none once their message aged
// out (replay_max_age). Before, it walked every topic on every node on
// every pass (session 19's profile: 5% of a node with 100,000 channels).
TEST_P(ScribeIdleSimTest, MaintenanceTrimsOnlyTheReplayBuffersThatHoldSomething) {
  ScribeRing ring(GetParam(), kNodes, ScribeOptions{});
  ASSERT_TRUE(ring.all_active());
  for (int i = 0; i < kNodes; ++i) {
    for (int k = 0; k < 20; ++k) ring.Subscribe(i, absl::StrCat("quiet-", i, "-", k));
  }
  ring.net().RunFor(absl::Seconds(5));
  ring.Publish(0, "quiet-0-0", "m");
  ring.Publish(1, "quiet-1-0", "m");
  ring.net().RunFor(absl::Seconds(1));
  ASSERT_EQ(ring.log(0, "quiet-0-0").size(), 1u);
  ASSERT_EQ(ring.log(1, "quiet-1-0").size(), 1u);
  size_t topics = 0;
  for (int i = 0; i < kNodes; ++i) topics += ring.scribe(i).topic_count();
  ASSERT_GE(topics, 200u);
  auto visits = [&ring] {
    uint64_t v = 0;
    for (int i = 0; i < kNodes; ++i) v += ring.scribe(i).stats().replay_trim_visits;
    return v;
  };
  // Ten seconds: about ten passes (heartbeat_interval) on each node; only
  // the two roots stored a message (the subscribers are not reliable).
  uint64_t before = visits();
  ring.net().RunFor(absl::Seconds(10));
  EXPECT_GT(visits() - before, 0u);
  EXPECT_LE(visits() - before, 2u * 12);  // walking every topic: about 200 * 10
  // Once the two messages aged out, no buffer is looked at.
  ring.net().RunFor(ScribeOptions{}.replay_max_age);
  before = visits();
  ring.net().RunFor(absl::Seconds(10));
  EXPECT_EQ(visits() - before, 0u);
}

// A burst fills a root's replay buffer (replay_capacity 64: 64 slots), and
// a message four seconds later keeps the topic's buffer from emptying once the
// burst ages out (replay_max_age): the maintenance pass packs the one
// entry left into two slots. Before, the ring kept its 64 slots for as
// long as the topic held any message.
TEST_P(ScribeIdleSimTest, AReplayBufferTrimmedByAgeGivesItsSlotsBack) {
  ScribeOptions options;
  options.replay_capacity = 64;
  options.replay_max_age = absl::Seconds(5);
  ScribeRing ring(GetParam(), kNodes, options);
  ASSERT_TRUE(ring.all_active());
  ring.Subscribe(3, "burst");
  ring.net().RunFor(absl::Seconds(2));
  for (int k = 0; k < 64; ++k) ring.Publish(0, "burst", absl::StrCat("m", k));
  ring.net().RunFor(absl::Seconds(1));
  const int root = ring.RootOf("burst");
  ASSERT_GE(root, 0);
  EXPECT_GE(ring.scribe(root).ReplaySlots("burst"), 64u);
  ring.net().RunFor(absl::Seconds(3));
  ring.Publish(0, "burst", "late");
  ring.net().RunFor(absl::Seconds(3));  // the burst aged out, "late" not
  ASSERT_EQ(ring.log(3, "burst").size(), 65u);
  ASSERT_EQ(ring.RootOf("burst"), root);
  EXPECT_GT(ring.scribe(root).RecountReplayBytes(), 0u);
  EXPECT_LE(ring.scribe(root).ReplaySlots("burst"), 2u);
}

// Copies out of order (here one Replicate of 64 numbers past the 64 held,
// newest first: none pushes the oldest out before it is stored) grow a
// replica's ring past its bound (replay_capacity + 1) to twice that; the
// trim after them leaves 64 copies in 130 slots. The maintenance pass packs
// them into the bound again. Before, the ring kept the 130 slots for as long
// as the replica lived. The Replicates are made by hand, as from node 0, and
// given to node 1's Scribe: the ways a ring takes copies out of order (a
// hand-over's numbers below the newest held, KeepAsReplica over a replica
// held) are rare and hard to time.
TEST_P(ScribeIdleSimTest, AReplicaRingGrownPastItsBoundShrinksBack) {
  ScribeOptions options;
  options.replay_capacity = 64;
  ScribeRing ring(GetParam(), kNodes, options);
  ASSERT_TRUE(ring.all_active());
  const std::string topic = "copies";
  const TopicId id = TopicIdOf(topic);
  const NodeHandle root = ring.net().handle(0);
  auto numbers = [&](uint64_t first, uint64_t last, bool newest_first) {
    ReplicateMsg r{id, last + 1, false, {}, 0, last + 1, 1, {}};
    for (uint64_t seq = first; seq <= last; ++seq) {
      r.messages.push_back(StoredMessage{seq, absl::StrCat("m", seq), root.id, seq, 1});
    }
    if (newest_first) std::reverse(r.messages.begin(), r.messages.end());
    ring.Call(1, [&](Scribe& s) {
      s.Deliver(pastry::RouteMessage{std::nullopt, root, root, 1, wire::Encode(r)});
    });
  };
  numbers(1, 64, /*newest_first=*/false);
  EXPECT_EQ(ring.scribe(1).ReplaySlots(topic), 64u);
  numbers(65, 128, /*newest_first=*/true);
  ASSERT_EQ(ring.scribe(1).ReplaySlots(topic), 130u);
  ring.net().RunFor(absl::Seconds(2));  // a maintenance pass or two
  EXPECT_EQ(ring.scribe(1).ReplaySlots(topic), 65u);
  // The newest 64 copies held: 65 to 128.
  uint64_t bytes = 0;
  for (uint64_t seq = 65; seq <= 128; ++seq) bytes += absl::StrCat("m", seq).size();
  EXPECT_EQ(ring.scribe(1).RecountReplayBytes(), bytes);
}

INSTANTIATE_TEST_SUITE_P(Seeds, ScribeIdleSimTest, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace peter::pubsub::testing

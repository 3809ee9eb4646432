// Idle topics on the simulated network: a root forgets a topic nobody
// subscribes to once no publish came for topic_idle_timeout, its replicas
// follow, and a publish soon after continues the numbering. Before, every
// channel ever published kept its state on its root and replicas for good,
// and a node that had taken max_topics of them refused every new one.
// Seeded and deterministic.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
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

class ScribeIdleSimTest : public ::testing::TestWithParam<uint64_t> {};

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

INSTANTIATE_TEST_SUITE_P(Seeds, ScribeIdleSimTest, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace peter::pubsub::testing

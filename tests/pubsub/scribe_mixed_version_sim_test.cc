// A rolling upgrade on the simulated network: one node speaks Scribe
// version 1 (before bundles) among version-2 nodes (docs/scribe.md,
// "Bundles", the mixed-version paragraph). A version-1 node must never be
// sent a bundle: its decoder drops one as an unknown type, and every
// message in it is lost. Seeded and deterministic.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pubsub/topic_id.h"
#include "pubsub/wire/codec.h"
#include "tests/pubsub/scribe_harness.h"

namespace peter::pubsub::testing {
namespace {

// `bytes` (one Scribe message as wire::Encode writes it) as version 1 wrote
// it: the root struct's version field, the first of its data section, set
// to 1. Cap'n Proto's framing: the segment count less one and the segment
// sizes, padded to a word; then the root struct pointer, whose offset (in
// words, from the end of the pointer) finds the data section.
std::string AsVersionOne(std::string bytes) {
  uint32_t segments_less_one = 0;
  std::memcpy(&segments_less_one, bytes.data(), 4);
  const size_t table = (4 * (size_t{segments_less_one} + 2) + 7) / 8 * 8;
  uint32_t pointer = 0;
  std::memcpy(&pointer, bytes.data() + table, 4);
  const size_t data = table + 8 + 8 * static_cast<size_t>(static_cast<int32_t>(pointer) >> 2);
  bytes[data] = 1;
  bytes[data + 1] = 0;
  return bytes;
}

// Makes a node's Scribe look like version 1 to its peers: every payload it
// sends (and every join it rewrites in Forward) carries version 1, a bundle
// it would send goes as one payload per message, and a bundle it is sent
// is dropped unread, as version 1's decoder drops it, and counted. The
// Scribe reaches the overlay through it; it is the application registered
// with the node in the Scribe's place.
class VersionOneNode final : public pastry::Application, public pastry::Overlay {
 public:
  struct Counts {
    int bundles_received = 0;  // each would have been lost at version 1
    int bundles_split = 0;
    int not_version_one = 0;  // AsVersionOne missed the field (a test bug)
  };

  VersionOneNode(pastry::Node& node, pastry::Application* scribe, Counts* counts)
      : scribe_(scribe), counts_(counts), overlay_(node.RegisterApplication(kScribeAppId, this)) {}

  bool Forward(pastry::RouteMessage& msg, NodeHandle& next_hop) override {
    const std::string before = msg.payload;
    const bool go_on = scribe_->Forward(msg, next_hop);
    if (msg.payload != before) msg.payload = Patched(std::move(msg.payload));
    return go_on;
  }
  void Deliver(const pastry::RouteMessage& msg) override {
    absl::StatusOr<wire::Received> received = wire::DecodeReceived(msg.payload);
    if (received.ok() && received->messages.size() > 1) {
      ++counts_->bundles_received;
      return;
    }
    scribe_->Deliver(msg);
  }
  void Update(const NodeHandle& node, bool joined) override { scribe_->Update(node, joined); }

  void Route(std::optional<NodeId> key, std::string payload,
             std::optional<NodeHandle> hint) override {
    absl::StatusOr<wire::Received> received = wire::DecodeReceived(payload);
    if (received.ok() && received->messages.size() > 1) {
      ++counts_->bundles_split;
      for (const ScribeMessage& m : received->messages) {
        overlay_->Route(key, Patched(wire::Encode(m)), hint);
      }
      return;
    }
    overlay_->Route(key, Patched(std::move(payload)), hint);
  }
  std::vector<NodeHandle> ReplicaSet(const NodeId& key, int k) const override {
    return overlay_->ReplicaSet(key, k);
  }
  uint64_t LeafSetVersion() const override { return overlay_->LeafSetVersion(); }
  NodeHandle LocalHandle() const override { return overlay_->LocalHandle(); }
  std::vector<NodeHandle> LeafSet() const override { return overlay_->LeafSet(); }
  bool IsActive() const override { return overlay_->IsActive(); }
  absl::Time Now() const override { return overlay_->Now(); }
  TimerId ScheduleTimer(absl::Duration delay, std::function<void()> fn) override {
    return overlay_->ScheduleTimer(delay, std::move(fn));
  }
  void CancelTimer(TimerId id) override { overlay_->CancelTimer(id); }

 private:
  std::string Patched(std::string bytes) {
    std::string old = AsVersionOne(std::move(bytes));
    absl::StatusOr<wire::Received> read = wire::DecodeReceived(old);
    if (!read.ok() || read->version != 1) ++counts_->not_version_one;
    return old;
  }

  pastry::Application* scribe_;
  Counts* counts_;
  std::unique_ptr<pastry::Overlay> overlay_;
};

// The live nodes ordered by closeness to `key`, closest first.
std::vector<int> ByCloseness(ScribeRing& ring, const NodeId& key) {
  std::vector<int> nodes;
  for (int i = 0; i < ring.size(); ++i) {
    if (ring.alive(i)) nodes.push_back(i);
  }
  std::sort(nodes.begin(), nodes.end(), [&](int a, int b) {
    return NodeId::CloserTo(key, ring.net().node(a).self().id, ring.net().node(b).self().id);
  });
  return nodes;
}

class MixedVersionTest : public ::testing::TestWithParam<uint64_t> {};

// Twelve version-2 nodes and one version-1 node, V. Eight topics: two
// rooted at V, two each at the nodes V is the second and the third closest
// to (V one of the root's replica peers), two anywhere. Every node
// subscribes, reliable, to every topic; V and three others publish bursts
// of five to every topic in one batch of work (the root's acknowledgements
// to one publisher, the replicas' traffic and the data to one child go in
// one batch). Every publish is confirmed; every subscriber delivers every
// message exactly once, in order, each publisher's in the order published;
// no bundle reaches V, and no node counts a malformed message. The
// version-2 nodes do bundle among themselves.
TEST_P(MixedVersionTest, AVersionOneNodeNeverGetsABundleAndLosesNothing) {
  ScribeRing ring(GetParam(), 12);
  ASSERT_TRUE(ring.all_active());
  VersionOneNode::Counts v1_counts;
  ring.set_adapter([&](int i, pastry::Application* scribe) -> std::unique_ptr<pastry::Overlay> {
    return std::make_unique<VersionOneNode>(ring.net().node(i), scribe, &v1_counts);
  });
  const int v1 = ring.AddNode(ring.rng().RandomId(), 0);
  ring.set_adapter(nullptr);
  ASSERT_TRUE(pastry::sim::RunUntilAllActive(ring.net(), absl::Seconds(60)));
  ring.net().RunFor(absl::Seconds(5));

  std::vector<std::string> topics;
  const std::vector<size_t> wanted_rank = {0, 0, 1, 1, 2, 2};
  size_t next_rank = 0;
  for (int k = 0; topics.size() < 8 && k < 100000; ++k) {
    const std::string name = absl::StrCat("mixed-", k);
    const std::vector<int> order = ByCloseness(ring, TopicIdOf(name));
    if (next_rank < wanted_rank.size()) {
      if (order[wanted_rank[next_rank]] != v1) continue;
      ++next_rank;
    } else if (order[0] == v1 || order[1] == v1 || order[2] == v1) {
      continue;
    }
    topics.push_back(name);
  }
  ASSERT_EQ(topics.size(), 8u);

  std::vector<int> everyone;
  for (int i = 0; i < ring.size(); ++i) everyone.push_back(i);
  for (const std::string& topic : topics) {
    for (int i : everyone) ring.Subscribe(i, topic, /*reliable=*/true);
  }
  for (const std::string& topic : topics) {
    EXPECT_TRUE(RunUntilAttached(ring, everyone, topic)) << topic << ": not every node on the tree";
  }

  std::vector<int> publishers = OtherNodes(ring, v1, 3);
  publishers.push_back(v1);
  struct Publish {
    int publisher;
    std::string topic;
    std::string payload;
    std::optional<absl::StatusOr<uint64_t>> outcome;
  };
  std::vector<std::unique_ptr<Publish>> publishes;
  for (int round = 0; round < 4; ++round) {
    for (int p : publishers) {
      ring.Call(p, [&](Scribe& s) {
        for (const std::string& topic : topics) {
          for (int k = 0; k < 5; ++k) {
            auto publish = std::make_unique<Publish>(
                Publish{p, topic, absl::StrCat(p, "/", topic, "/", round, ".", k), std::nullopt});
            Publish* out = publish.get();
            absl::Status status =
                s.Publish(topic, publish->payload,
                          [out](absl::StatusOr<uint64_t> seq) { out->outcome = std::move(seq); });
            if (!status.ok()) publish->outcome = status;
            publishes.push_back(std::move(publish));
          }
        }
      });
    }
    ring.net().RunFor(absl::Milliseconds(200));
  }
  ring.net().RunFor(absl::Seconds(10));

  std::map<std::string, std::map<uint64_t, std::string>> confirmed;  // topic -> seq -> payload
  std::map<std::pair<int, std::string>, uint64_t> last_of;          // publisher, topic -> seq
  for (const auto& p : publishes) {
    if (!p->outcome.has_value() || !p->outcome->ok()) {
      ADD_FAILURE() << p->payload << ": not confirmed";
      continue;
    }
    const uint64_t seq = **p->outcome;
    EXPECT_TRUE(confirmed[p->topic].emplace(seq, p->payload).second) << p->payload;
    uint64_t& last = last_of[{p->publisher, p->topic}];
    EXPECT_GT(seq, last) << p->payload << ": numbered before the publish before it";
    last = seq;
  }
  for (const std::string& topic : topics) {
    EXPECT_EQ(confirmed[topic].size(), publishers.size() * 4 * 5) << topic;
    for (int i : everyone) {
      const std::vector<Received>& log = ring.log(i, topic);
      const std::string who = absl::StrCat("node ", i, i == v1 ? " (version 1)" : "", " on ", topic);
      ExpectConfirmedOnceInOrder(log, confirmed[topic], who);
      EXPECT_EQ(log.size(), confirmed[topic].size()) << who;
    }
  }

  EXPECT_EQ(v1_counts.bundles_received, 0);
  EXPECT_EQ(v1_counts.not_version_one, 0);
  EXPECT_EQ(ring.TotalStats().malformed, 0u);
  uint64_t bundles = 0;
  for (int i : everyone) {
    if (i != v1) bundles += ring.scribe(i).stats().bundles_sent;
  }
  EXPECT_GT(bundles, 0u);
  std::printf("seed %lu: %lu bundles among version-2 nodes, %d split at the version-1 node\n",
              static_cast<unsigned long>(GetParam()), static_cast<unsigned long>(bundles),
              v1_counts.bundles_split);
}

INSTANTIATE_TEST_SUITE_P(Seeds, MixedVersionTest, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace peter::pubsub::testing

// A rolling upgrade on the simulated network: one node speaks an older
// Scribe version among nodes of this build (docs/scribe.md, "Bundles" and
// "Replicate and ReplicaAck lists", the mixed-version paragraphs): version
// 1 (before bundles), version 2 (before lists of Replicates and
// ReplicaAcks), version 3 (before lists of publishes, data and
// PublishAcks) or version 4 (before runs in those lists). An
// older node must never be sent what its decoder cannot read: it drops a
// bundle (version 1) or a list (those of versions it is older than) as an
// unknown type, and every message in it is lost. Seeded and deterministic.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pubsub/topic_id.h"
#include "pubsub/wire/codec.h"
#include "tests/pubsub/scribe_harness.h"

namespace peter::pubsub::testing {
namespace {

// `bytes` (one Scribe message as wire::Encode writes it) as `version` wrote
// it: the root struct's version field, the first of its data section, set
// to it. Cap'n Proto's framing: the segment count less one and the segment
// sizes, padded to a word; then the root struct pointer, whose offset (in
// words, from the end of the pointer) finds the data section.
std::string AsVersion(std::string bytes, uint16_t version) {
  uint32_t segments_less_one = 0;
  std::memcpy(&segments_less_one, bytes.data(), 4);
  const size_t table = (4 * (size_t{segments_less_one} + 2) + 7) / 8 * 8;
  uint32_t pointer = 0;
  std::memcpy(&pointer, bytes.data() + table, 4);
  const size_t data = table + 8 + 8 * static_cast<size_t>(static_cast<int32_t>(pointer) >> 2);
  bytes[data] = static_cast<char>(version & 0xff);
  bytes[data + 1] = static_cast<char>(version >> 8);
  return bytes;
}

// Makes a node's Scribe look like `version` (1 to 4) to its peers: every
// payload it sends (and every join it rewrites in Forward) carries that
// version, a payload it would send that the version could not have written
// (a bundle at 1, a list at 2 or 3, a run at 4: wire::Received::reader_version) goes as one
// payload per message, and one it is sent that the version cannot read is
// dropped unread, as that version's decoder drops it, and counted. The
// Scribe reaches the overlay through it; it is the application registered
// with the node in the Scribe's place.
class OlderNode final : public pastry::Application, public pastry::Overlay {
 public:
  struct Counts {
    int unreadable_received = 0;  // each would have been lost at that version
    int split = 0;
    int wrong_version = 0;  // AsVersion missed the field (a test bug)
  };

  OlderNode(pastry::Node& node, pastry::Application* scribe, uint16_t version, Counts* counts)
      : scribe_(scribe),
        version_(version),
        counts_(counts),
        overlay_(node.RegisterApplication(kScribeAppId, this)) {}

  bool Forward(pastry::RouteMessage& msg, NodeHandle& next_hop) override {
    const std::string before = msg.payload;
    const bool go_on = scribe_->Forward(msg, next_hop);
    if (msg.payload != before) msg.payload = Patched(std::move(msg.payload));
    return go_on;
  }
  void Deliver(const pastry::RouteMessage& msg) override {
    absl::StatusOr<wire::Received> received = wire::DecodeReceived(msg.payload);
    if (received.ok() && received->reader_version > version_) {
      ++counts_->unreadable_received;
      return;
    }
    scribe_->Deliver(msg);
  }
  void Update(const NodeHandle& node, bool joined) override { scribe_->Update(node, joined); }

  void Route(std::optional<NodeId> key, std::string payload,
             std::optional<NodeHandle> hint) override {
    absl::StatusOr<wire::Received> received = wire::DecodeReceived(payload);
    if (received.ok() && received->reader_version > version_) {
      ++counts_->split;
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
    std::string old = AsVersion(std::move(bytes), version_);
    absl::StatusOr<wire::Received> read = wire::DecodeReceived(old);
    if (!read.ok() || read->version != version_) ++counts_->wrong_version;
    return old;
  }

  pastry::Application* scribe_;
  const uint16_t version_;
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

// The older node's version and the seed.
class MixedVersionTest : public ::testing::TestWithParam<std::tuple<uint16_t, uint64_t>> {};

// Twelve nodes of this build and one older node (version 1 to 4), V. Eight
// topics: two rooted at V, two each at the nodes V is the second and the
// third closest to (V one of the root's replica peers), two anywhere. Every node
// subscribes, reliable, to every topic; V and three others publish bursts
// of five to every topic in one batch of work (the root's acknowledgements
// to one publisher, the replicas' traffic and the data to one child go in
// one batch). Every publish is confirmed; every subscriber delivers every
// message exactly once, in order, each publisher's in the order published;
// nothing V cannot read reaches it (no bundle at version 1, no list of
// Replicates or ReplicaAcks at version 1 or 2, no `listed` list below 4,
// no run below 5), and no node counts a malformed message. The nodes of
// this build do bundle, send lists, and send runs (each publisher's burst
// to a cached root) among themselves.
TEST_P(MixedVersionTest, AnOlderNodeGetsNothingItCannotReadAndLosesNothing) {
  const uint16_t version = std::get<0>(GetParam());
  const uint64_t seed = std::get<1>(GetParam());
  ScribeRing ring(seed, 12);
  ASSERT_TRUE(ring.all_active());
  OlderNode::Counts old_counts;
  ring.set_adapter([&](int i, pastry::Application* scribe) -> std::unique_ptr<pastry::Overlay> {
    return std::make_unique<OlderNode>(ring.net().node(i), scribe, version, &old_counts);
  });
  const int older = ring.AddNode(ring.rng().RandomId(), 0);
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
      if (order[wanted_rank[next_rank]] != older) continue;
      ++next_rank;
    } else if (order[0] == older || order[1] == older || order[2] == older) {
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

  std::vector<int> publishers = OtherNodes(ring, older, 3);
  publishers.push_back(older);
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
      const std::string who =
          absl::StrCat("node ", i, i == older ? absl::StrCat(" (version ", version, ")") : "",
                       " on ", topic);
      ExpectConfirmedOnceInOrder(log, confirmed[topic], who);
      EXPECT_EQ(log.size(), confirmed[topic].size()) << who;
    }
  }

  EXPECT_EQ(old_counts.unreadable_received, 0);
  EXPECT_EQ(old_counts.wrong_version, 0);
  EXPECT_EQ(ring.TotalStats().malformed, 0u);
  uint64_t bundles = 0;
  uint64_t lists = 0;
  uint64_t runs = 0;
  for (int i : everyone) {
    if (i == older) continue;
    const ScribeStats& stats = ring.scribe(i).stats();
    bundles += stats.bundles_sent;
    lists += stats.replicate_lists_sent + stats.replica_ack_lists_sent + stats.message_lists_sent;
    runs += stats.message_runs_sent;
  }
  EXPECT_GT(bundles, 0u);
  EXPECT_GT(lists, 0u);
  EXPECT_GT(runs, 0u);
  std::printf("version %u, seed %lu: %lu bundles, %lu lists and %lu runs among the newer nodes, "
              "%d split at the older node\n",
              static_cast<unsigned>(version), static_cast<unsigned long>(seed),
              static_cast<unsigned long>(bundles), static_cast<unsigned long>(lists),
              static_cast<unsigned long>(runs), old_counts.split);
}

INSTANTIATE_TEST_SUITE_P(Seeds, MixedVersionTest,
                         ::testing::Combine(::testing::Values<uint16_t>(1, 2, 3, 4),
                                            ::testing::Values<uint64_t>(1, 2, 3)));

}  // namespace
}  // namespace peter::pubsub::testing

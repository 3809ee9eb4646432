// When a topic's root confirms a publish (PublishAck): only once every node
// of its replica set holds the message, so a root that fails right after
// numbering loses nothing it confirmed (docs/chaos.md, "confirmed before
// replicated"). On the simulated network, 20 nodes, round trips of at most
// 30 ms (a data centre, as in the chaos soak). Seeded and deterministic.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
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
const char kTopic[] = "confirmed";

// Whether one of `messages` (an envelope's) is a Replicate carrying `payload`.
bool CarriesPayload(const std::vector<ScribeMessage>& messages, const std::string& payload) {
  return std::any_of(messages.begin(), messages.end(), [&](const ScribeMessage& m) {
    const auto* r = std::get_if<ReplicateMsg>(&m);
    return r != nullptr && std::any_of(r->messages.begin(), r->messages.end(),
                                       [&](const StoredMessage& s) {
                                         return s.payload == payload;
                                       });
  });
}

ScribeRing::SimNetwork::Config DataCentre(uint64_t seed) {
  ScribeRing::SimNetwork::Config config = ScribeRing::Config(seed);
  config.plane.per_unit = absl::Microseconds(10);
  return config;
}

// What goes wrong at the publish "lost".
enum class Fault {
  // The root crashes right after numbering it: its copies to the replicas
  // and the multicast are lost with it (still in its socket buffers), the
  // acknowledgement it may send is not.
  kRootCrashesBeforeReplicated,
  // As above, but the root stays up, cut off from every other node for the
  // rest of the test.
  kRootCutOffBeforeReplicated,
  // The replicas hold it; the root crashes before its acknowledgement
  // leaves. The publisher's resend reaches the new root, which must know
  // it (the replicas keep each message's origin) and not number it again.
  kRootCrashesBeforeAckSent,
  // One replica peer crashes before it holds the message: the root must
  // not wait for it forever.
  kReplicaCrashes,
  // The copy to one replica peer is lost, the peer stays: the root sends
  // it again.
  kReplicaCopyLost,
};

struct Case {
  Fault fault;
  uint64_t seed;
};

std::string Name(const ::testing::TestParamInfo<Case>& info) {
  const char* names[] = {"RootCrashesBeforeReplicated", "RootCutOffBeforeReplicated",
                         "RootCrashesBeforeAckSent", "ReplicaCrashes", "ReplicaCopyLost"};
  return absl::StrCat(names[static_cast<int>(info.param.fault)], "_Seed",
                      info.param.seed);
}

class ConfirmAfterReplicasTest : public ::testing::TestWithParam<Case> {};

// Every publish is confirmed, under a number no other publish got, and
// every reliable subscriber delivers every message exactly once, in order,
// under the number its publisher was given.
TEST_P(ConfirmAfterReplicasTest, ConfirmedPublishSurvivesTheFault) {
  const Fault fault = GetParam().fault;
  ScribeRing ring(DataCentre(GetParam().seed), kNodes);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf(kTopic));
  ASSERT_GE(root, 0);
  const std::vector<int> others = OtherNodes(ring, root, 4);
  const int publisher = others[0];
  const std::vector<int> subscribers(others.begin() + 1, others.end());
  for (int s : subscribers) ring.Subscribe(s, kTopic, /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, subscribers, kTopic));

  std::vector<std::string> payloads;
  for (int n = 0; n < 10; ++n) payloads.push_back(absl::StrCat("m", n));
  payloads.push_back("lost");
  const size_t lost = payloads.size() - 1;
  for (int n = 0; n < 10; ++n) payloads.push_back(absl::StrCat("n", n));
  std::vector<std::optional<absl::StatusOr<uint64_t>>> outcomes(payloads.size());
  auto publish = [&](size_t k) { ring.PublishAcked(publisher, kTopic, payloads[k], &outcomes[k]); };
  for (size_t k = 0; k < lost; ++k) {
    publish(k);
    ring.net().RunFor(absl::Milliseconds(20));
  }
  ring.net().RunFor(absl::Seconds(1));
  for (size_t k = 0; k < lost; ++k) {
    ASSERT_TRUE(outcomes[k].has_value() && outcomes[k]->ok()) << payloads[k];
  }

  bool triggered = false;
  bool cut = false;        // every message from or to the root is lost
  bool crashing = false;   // the root's sends are lost, but acknowledgements
  int victim = -1;         // the node that crashes
  ring.net().network().set_send_filter([&](int from, int to, const pastry::Envelope& e) {
    if (cut) return from == root || to == root;
    if (crashing) {
      if (from != root) return false;
      return !AnyOf<PublishAckMsg>(ScribeOf(e));
    }
    if (triggered || from != root) return false;
    const std::vector<ScribeMessage> m = ScribeOf(e);
    if (m.empty()) return false;
    switch (fault) {
      case Fault::kRootCrashesBeforeReplicated:
        if (!CarriesPayload(m, "lost")) return false;
        triggered = crashing = true;  // the rest of this Stamp's sends too
        victim = root;
        return true;
      case Fault::kRootCutOffBeforeReplicated:
        if (!CarriesPayload(m, "lost")) return false;
        triggered = cut = true;
        return true;
      case Fault::kRootCrashesBeforeAckSent:
        if (!AnyOf<PublishAckMsg>(m)) return false;
        triggered = true;
        victim = root;
        return true;
      case Fault::kReplicaCrashes:
      case Fault::kReplicaCopyLost:
        if (!CarriesPayload(m, "lost")) return false;
        triggered = true;
        if (fault == Fault::kReplicaCrashes) victim = to;
        return true;
    }
    return false;
  });
  publish(lost);
  // Runs the next events until the fault has struck, then the crash.
  ASSERT_TRUE(ring.net().RunUntil([&] { return triggered; }, absl::Seconds(1),
                                  absl::ZeroDuration()));
  if (victim >= 0) {
    ring.Crash(victim);
    crashing = false;
  }
  for (size_t k = lost + 1; k < payloads.size(); ++k) {
    ring.net().RunFor(absl::Milliseconds(20));
    publish(k);
  }
  ring.net().RunFor(absl::Seconds(30));

  std::map<uint64_t, std::string> confirmed;  // number -> payload
  for (size_t k = 0; k < payloads.size(); ++k) {
    ASSERT_TRUE(outcomes[k].has_value()) << payloads[k] << " never completed";
    ASSERT_TRUE(outcomes[k]->ok()) << payloads[k] << ": " << outcomes[k]->status();
    auto [it, fresh] = confirmed.emplace(**outcomes[k], payloads[k]);
    EXPECT_TRUE(fresh) << payloads[k] << " confirmed under " << **outcomes[k] << ", as was "
                       << it->second;
  }
  for (int s : subscribers) {
    if (!ring.alive(s)) continue;  // the crashed replica may be one
    ExpectConfirmedOnceInOrder(ring.log(s, kTopic), confirmed, absl::StrCat("subscriber ", s));
  }
}

std::vector<Case> Cases() {
  std::vector<Case> out;
  for (Fault f : {Fault::kRootCrashesBeforeReplicated, Fault::kRootCutOffBeforeReplicated,
                  Fault::kRootCrashesBeforeAckSent, Fault::kReplicaCrashes,
                  Fault::kReplicaCopyLost}) {
    for (uint64_t seed = 1; seed <= 4; ++seed) out.push_back(Case{f, seed});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Faults, ConfirmAfterReplicasTest, ::testing::ValuesIn(Cases()), Name);

// The normal path: the root sends each acknowledgement only once every
// replica peer confirmed holding the message (replicas = 4: the 4 other
// nodes of the root's replica set), or at once with replicas = 0; the
// multicast waits as long (a number leaves the root once its replicas hold
// it). Prints what the wait adds to a publish's confirmation and to its
// delivery to a subscriber.
class ConfirmPathTest : public ::testing::TestWithParam<std::tuple<int, uint64_t>> {};

TEST_P(ConfirmPathTest, AckWaitsForEveryReplicaPeer) {
  const auto [replicas, seed] = GetParam();
  ScribeOptions options;
  options.replicas = replicas;
  ScribeRing ring(DataCentre(seed), kNodes, options);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf(kTopic));
  ASSERT_GE(root, 0);
  const std::vector<int> others = OtherNodes(ring, root, 2);
  const int publisher = others[0];
  const int subscriber = others[1];
  ring.Subscribe(subscriber, kTopic, /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, {subscriber}, kTopic));

  std::map<uint64_t, absl::Time> arrived;           // request -> at the root
  std::map<uint64_t, absl::Time> delivered;         // seq -> at the subscriber
  std::map<uint64_t, std::set<int>> holders;        // seq -> confirmed by
  struct Ack {
    uint64_t request, seq;
    absl::Time at;
    size_t holders;
  };
  std::vector<Ack> acks;
  ring.net().network().set_delivery_observer([&](const pastry::sim::Delivery& d) {
    if (d.to != root && d.to != subscriber) return;
    for (const ScribeMessage& m : ScribeOf(d.envelope)) {
      if (d.to == subscriber) {
        if (const auto* data = std::get_if<DataMsg>(&m)) delivered.emplace(data->seq, d.at);
        continue;
      }
      if (const auto* p = std::get_if<PublishMsg>(&m)) arrived.emplace(p->request, d.at);
      if (const auto* a = std::get_if<ReplicaAckMsg>(&m); a != nullptr && a->last != 0) {
        for (uint64_t seq = a->first; seq <= a->last; ++seq) holders[seq].insert(d.from);
      }
    }
  });
  ring.net().network().set_send_filter([&](int from, int, const pastry::Envelope& e) {
    if (from != root) return false;
    for (const ScribeMessage& m : ScribeOf(e)) {
      if (const auto* a = std::get_if<PublishAckMsg>(&m)) {
        acks.push_back(Ack{a->request, a->seq, ring.net().Now(), holders[a->seq].size()});
      }
    }
    return false;
  });

  constexpr int kPublishes = 20;
  std::vector<std::optional<absl::StatusOr<uint64_t>>> outcomes(kPublishes);
  std::vector<absl::Duration> took(kPublishes);
  std::vector<absl::Time> sent_at(kPublishes);
  for (int k = 0; k < kPublishes; ++k) {
    const absl::Time sent = ring.net().Now();
    sent_at[k] = sent;
    ring.Call(publisher, [&, k, sent](Scribe& s) {
      ASSERT_TRUE(s.Publish(kTopic, absl::StrCat("m", k),
                            [&, k, sent](absl::StatusOr<uint64_t> seq) {
                              outcomes[k] = std::move(seq);
                              took[k] = ring.net().Now() - sent;
                            })
                      .ok());
    });
    ring.net().RunFor(absl::Milliseconds(50));
  }
  ring.net().RunFor(absl::Seconds(2));

  for (int k = 0; k < kPublishes; ++k) {
    ASSERT_TRUE(outcomes[k].has_value() && outcomes[k]->ok()) << "m" << k;
  }
  ASSERT_EQ(acks.size(), size_t{kPublishes}) << "one acknowledgement each, no resend";
  absl::Duration waited, total, to_subscriber;
  for (int k = 0; k < kPublishes; ++k) {
    const Ack& a = acks[k];
    ASSERT_TRUE(arrived.contains(a.request));
    ASSERT_TRUE(delivered.contains(**outcomes[k])) << "m" << k << " never reached the subscriber";
    to_subscriber += delivered[**outcomes[k]] - sent_at[k];
    if (replicas == 0) {
      EXPECT_EQ(a.at, arrived[a.request]) << "#" << a.seq << " acknowledged at once";
    } else {
      EXPECT_GE(a.holders, static_cast<size_t>(replicas))
          << "#" << a.seq << " acknowledged before every replica held it";
      EXPECT_GT(a.at, arrived[a.request]);
    }
    waited += a.at - arrived[a.request];
    total += took[k];
  }
  uint64_t waiting = 0;
  for (int i = 0; i < ring.size(); ++i) waiting += ring.scribe(i).stats().publish_acks_waiting_replicas;
  EXPECT_EQ(waiting, replicas == 0 ? 0u : static_cast<uint64_t>(kPublishes));
  std::printf("replicas %d: the root waited %s per publish on average; publish to "
              "confirmation %s, to the subscriber %s\n",
              replicas, absl::FormatDuration(waited / kPublishes).c_str(),
              absl::FormatDuration(total / kPublishes).c_str(),
              absl::FormatDuration(to_subscriber / kPublishes).c_str());
}

INSTANTIATE_TEST_SUITE_P(Replicas, ConfirmPathTest,
                         ::testing::Combine(::testing::Values(0, 4),
                                            ::testing::Values<uint64_t>(1, 2, 3)));

// bench/resp-three-nodes' 1 x 100 case on the simulated network: 3 nodes
// (each root of some topics and replica of the others'), 100 topics with
// one subscriber each, round-robin over the nodes, publishes from node 0 to
// the topics in turn, in bursts of one round. Every subscriber gets every
// message once, in order, and every number went through the replicas.
// Also the load-independent cost measure of root-state replication
// (docs/benchmarks.md): the instructions of PETER_REPLICATION_COST_ROUNDS
// rounds (default 100) under callgrind, minus those of half as many.
TEST(ScribeReplicationCostTest, ThreeNodesOneHundredTopicsOneSubscriberEach) {
  constexpr int kCostTopics = 100;
  int rounds = 100;
  if (const char* value = std::getenv("PETER_REPLICATION_COST_ROUNDS")) {
    rounds = std::atoi(value);
  }
  ScribeRing ring(DataCentre(3), 3);
  ASSERT_TRUE(ring.all_active());
  auto topic = [](int k) { return absl::StrCat("cost-", k); };
  for (int k = 0; k < kCostTopics; ++k) ring.Subscribe(k % 3, topic(k));
  ring.net().RunFor(absl::Seconds(5));
  for (int r = 0; r < rounds; ++r) {
    for (int k = 0; k < kCostTopics; ++k) {
      ring.Publish(0, topic(k), absl::StrCat(std::string(56, 'x'), r));
    }
    ring.net().RunFor(absl::Milliseconds(2));
  }
  ring.net().RunFor(absl::Seconds(5));
  for (int k = 0; k < kCostTopics; ++k) {
    const std::vector<Received>& log = ring.log(k % 3, topic(k));
    ASSERT_EQ(log.size(), static_cast<size_t>(rounds)) << topic(k);
    for (int r = 0; r < rounds; ++r) {
      ASSERT_EQ(log[r].payload, absl::StrCat(std::string(56, 'x'), r)) << topic(k);
      if (r > 0) {
        ASSERT_EQ(log[r].seq, log[r - 1].seq + 1) << topic(k);
      }
    }
  }
  uint64_t published = 0;
  uint64_t replicate_batches = 0;
  for (int i = 0; i < 3; ++i) {
    published += ring.scribe(i).stats().published;
    replicate_batches += ring.scribe(i).stats().replicate_batches;
    EXPECT_EQ(ring.scribe(i).stats().publish_acks_unconfirmed, 0u) << i;
    EXPECT_EQ(ring.scribe(i).stats().replica_conflicts, 0u) << i;
  }
  EXPECT_EQ(published, static_cast<uint64_t>(rounds) * kCostTopics);
  EXPECT_GT(replicate_batches, 0u);
  // Each root's Replicates of one batch of work go to a replica in one list,
  // and the replica's acknowledgements back in one.
  EXPECT_GT(ring.TotalStats().replicate_lists_sent, 0u);
  EXPECT_GT(ring.TotalStats().replica_ack_lists_sent, 0u);
  std::printf("%lu Replicates in %lu lists, %lu ReplicaAcks in %lu lists\n",
              static_cast<unsigned long>(ring.TotalStats().replicates_listed),
              static_cast<unsigned long>(ring.TotalStats().replicate_lists_sent),
              static_cast<unsigned long>(ring.TotalStats().replica_acks_listed),
              static_cast<unsigned long>(ring.TotalStats().replica_ack_lists_sent));
}

// Issue 6, the replica window: 3 nodes, one publisher's burst of 1,000
// acknowledged publishes to one topic, far more than the replay buffer (64
// here) while the replicas' confirmations reach the root 50 ms late. The
// root holds what its window (32 numbers) cannot take and numbers it as
// the confirmations come: every publish is confirmed under its own number,
// in order, every subscriber gets every message once, and none is released
// unconfirmed. Before, the root numbered the whole burst at once and
// released 936 numbers unconfirmed at the replay_capacity bound.
TEST(ScribeReplicaWindowTest, SlowReplicasHoldTheBurstAtTheRoot) {
  ScribeRing ring(DataCentre(5), 3, ScribeOptions{.replay_capacity = 64});
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf(kTopic));
  ASSERT_GE(root, 0);
  const int publisher = (root + 1) % 3;
  const std::vector<int> subscribers = {0, 1, 2};
  for (int s : subscribers) ring.Subscribe(s, kTopic, /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, subscribers, kTopic));
  constexpr int kBurst = 1000;
  std::vector<std::optional<absl::StatusOr<uint64_t>>> outcomes(kBurst);
  // The first publish makes the root take its lease; then the burst.
  ring.PublishAcked(publisher, kTopic, "b0", &outcomes[0]);
  ring.net().RunFor(absl::Seconds(1));
  ASSERT_TRUE(outcomes[0].has_value() && outcomes[0]->ok());
  bool slow = true;
  ring.net().network().set_hold_filter([&](int from, int to, const pastry::Envelope& e) {
    return slow && to == root && from != root && AnyOf<ReplicaAckMsg>(ScribeOf(e));
  });
  for (int k = 1; k < kBurst; ++k) {
    ring.PublishAcked(publisher, kTopic, absl::StrCat("b", k), &outcomes[k]);
  }
  auto done = [&] {
    return std::all_of(outcomes.begin(), outcomes.end(),
                       [](const auto& o) { return o.has_value(); });
  };
  for (int round = 0; round < 400 && !done(); ++round) {
    ring.net().RunFor(absl::Milliseconds(50));
    slow = false;
    ring.net().network().ReleaseHeld();
    slow = true;
  }
  ring.net().network().set_hold_filter(nullptr);
  ring.net().network().ReleaseHeld();
  ring.net().RunFor(absl::Seconds(2));
  for (int k = 0; k < kBurst; ++k) {
    ASSERT_TRUE(outcomes[k].has_value() && outcomes[k]->ok())
        << k << " " << (outcomes[k].has_value() ? outcomes[k]->status().ToString() : "none");
    EXPECT_EQ(**outcomes[k], static_cast<uint64_t>(k + 1)) << k;
  }
  for (int s : subscribers) {
    const std::vector<Received>& log = ring.log(s, kTopic);
    ExpectExactly(log, 1, kBurst);
    for (int k = 0; k < kBurst && k < static_cast<int>(log.size()); ++k) {
      ASSERT_EQ(log[k].payload, absl::StrCat("b", k)) << s;
    }
  }
  const ScribeStats& at_root = ring.scribe(root).stats();
  EXPECT_EQ(at_root.published, static_cast<uint64_t>(kBurst));
  EXPECT_GT(at_root.publishes_held_for_window, 0u);
  EXPECT_EQ(at_root.publishes_window_forced, 0u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ring.scribe(i).stats().publish_acks_unconfirmed, 0u) << i;
  }
  std::printf("%lu publishes held for the window, %lu resends\n",
              static_cast<unsigned long>(at_root.publishes_held_for_window),
              static_cast<unsigned long>(ring.scribe(publisher).stats().publish_resends));
}

// The same burst, published at the root, whose two replicas crash while
// its window is full: the held publishes are not stuck behind numbers no
// replica will confirm. As before the window, the root left alone holds
// them for lone_root_grace, then numbers and releases on its own: every
// publish is confirmed (publish_timeout raised past failure detection plus
// the grace), and the subscriber at the root gets every message once, in
// order.
TEST(ScribeReplicaWindowTest, ARootWhoseReplicasDieStillNumbersWhatItHeld) {
  ScribeRing ring(DataCentre(6), 3,
                  ScribeOptions{.replay_capacity = 64, .publish_timeout = absl::Seconds(20)});
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf(kTopic));
  ASSERT_GE(root, 0);
  ring.Subscribe(root, kTopic, /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, {root}, kTopic));
  constexpr int kBurst = 300;
  std::vector<std::optional<absl::StatusOr<uint64_t>>> outcomes(kBurst);
  ring.PublishAcked(root, kTopic, "b0", &outcomes[0]);
  ring.net().RunFor(absl::Seconds(1));
  ASSERT_TRUE(outcomes[0].has_value() && outcomes[0]->ok());
  // The replicas confirm nothing more: they crash.
  ring.net().network().set_send_filter([&](int from, int to, const pastry::Envelope& e) {
    return to == root && from != root && AnyOf<ReplicaAckMsg>(ScribeOf(e));
  });
  for (int k = 1; k < kBurst; ++k) {
    ring.PublishAcked(root, kTopic, absl::StrCat("b", k), &outcomes[k]);
  }
  ring.net().RunFor(absl::Milliseconds(20));
  EXPECT_GT(ring.scribe(root).stats().publishes_held_for_window, 0u);
  for (int i = 0; i < 3; ++i) {
    if (i != root) ring.Crash(i);
  }
  ring.net().network().set_send_filter(nullptr);
  ring.net().RunFor(absl::Seconds(25));
  for (int k = 0; k < kBurst; ++k) {
    ASSERT_TRUE(outcomes[k].has_value() && outcomes[k]->ok())
        << k << " " << (outcomes[k].has_value() ? outcomes[k]->status().ToString() : "none");
    EXPECT_EQ(**outcomes[k], static_cast<uint64_t>(k + 1)) << k;
  }
  const std::vector<Received>& log = ring.log(root, kTopic);
  ExpectExactly(log, 1, kBurst);
  EXPECT_EQ(ring.scribe(root).stats().published, static_cast<uint64_t>(kBurst));
  EXPECT_GT(ring.scribe(root).stats().lone_root_waits + ring.scribe(root).stats().lease_waits,
            0u);
}

// A root whose two replica peers crashed while `waiting` numbers of its own
// best-effort publishes ("m1".."m<waiting>", after "m0", confirmed the long
// way) waited for their confirmations, 4 s later: past failure detection
// (about 2 s), so it is alone in the topic's replica set, and within the
// caller's lone_root_grace, so it releases nothing yet (ReleaseConfirmed)
// and, with root leases on, holds no lease. With leases off (root_lease 0,
// LeasesOff) it needs none: such a root would otherwise get its lease
// (AloneForGood) when it may release them too, and release them at its next
// tick at the latest, so leases off leave the at-once gate's own checks
// alone to hold its next publish back, and for seconds rather than part of
// a tick. Returns the root's index.
int LoneRootWithNumbersWaiting(ScribeRing& ring, int waiting) {
  const int root = ring.net().ClosestLiveNode(TopicIdOf(kTopic));
  EXPECT_GE(root, 0);
  if (root < 0) return root;
  ring.Subscribe(root, kTopic, /*reliable=*/true);
  EXPECT_TRUE(RunUntilAttached(ring, {root}, kTopic));
  std::optional<absl::StatusOr<uint64_t>> first;
  ring.PublishAcked(root, kTopic, "m0", &first);  // two replica peers: the long way
  ring.net().RunFor(absl::Seconds(1));
  EXPECT_TRUE(first.has_value() && first->ok() && **first == 1u);
  ring.net().network().set_send_filter([&ring, root](int from, int to, const pastry::Envelope& e) {
    return to == root && from != root && AnyOf<ReplicaAckMsg>(ScribeOf(e));
  });
  // Best effort: no publish of this node's is in flight afterwards, which
  // would close the at-once path on its own (their order).
  for (int k = 1; k <= waiting; ++k) ring.Publish(root, kTopic, absl::StrCat("m", k));
  ring.net().RunFor(absl::Milliseconds(100));
  EXPECT_EQ(ring.scribe(root).stats().published, static_cast<uint64_t>(waiting + 1));
  for (int i = 0; i < ring.size(); ++i) {
    if (i != root) ring.Crash(i);
  }
  ring.net().network().set_send_filter(nullptr);
  // Past failure detection (about 2 s), within lone_root_grace.
  ring.net().RunFor(absl::Seconds(4));
  EXPECT_EQ(ring.log(root, kTopic).size(), 1u);  // m1.. still wait
  return root;
}

// A root's own publish is numbered at once (inside Publish) only where a
// publish arriving would be numbered now (Scribe::MayNumberNow): a root
// whose replica peers all crashed is alone in the topic's replica set once
// failure detection has removed them, but holds no lease for
// lone_root_grace after the loss, and its own publishes wait with the
// others (lone_root_waits) rather than being numbered at once. After the
// grace they are numbered, in order, and the next is numbered at once.
TEST(ScribeReplicaWindowTest, ALoneRootNumbersItsOwnAtOnceOnlyAfterLoneRootGrace) {
  // Failure detection (about 2 s) well within the grace.
  ScribeRing ring(DataCentre(7), 3,
                  ScribeOptions{.lone_root_grace = absl::Seconds(8),
                                .publish_timeout = absl::Seconds(20)});
  ASSERT_TRUE(ring.all_active());
  const int root = LoneRootWithNumbersWaiting(ring, 0);  // #1 "m0" took the long way
  ASSERT_GE(root, 0);
  Scribe& scribe = ring.scribe(root);
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 0u);
  std::vector<std::optional<absl::StatusOr<uint64_t>>> outcomes(4);
  const uint64_t lone_waits = scribe.stats().lone_root_waits;
  ring.PublishAcked(root, kTopic, "m1", &outcomes[1]);
  ring.PublishAcked(root, kTopic, "m2", &outcomes[2]);
  EXPECT_FALSE(outcomes[1].has_value());
  EXPECT_FALSE(outcomes[2].has_value());
  ring.net().RunFor(absl::Milliseconds(100));
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 0u);
  EXPECT_GT(scribe.stats().lone_root_waits, lone_waits);  // held: no lease yet
  EXPECT_FALSE(outcomes[1].has_value());
  ASSERT_TRUE(ring.net().RunUntil([&] { return outcomes[2].has_value(); }, absl::Seconds(10),
                                  absl::Milliseconds(10)));
  ring.PublishAcked(root, kTopic, "m3", &outcomes[3]);
  ASSERT_TRUE(outcomes[3].has_value());  // alone and leased: at once
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 1u);
  for (int k = 1; k < 4; ++k) {
    ASSERT_TRUE(outcomes[k].has_value() && outcomes[k]->ok()) << k;
    EXPECT_EQ(**outcomes[k], static_cast<uint64_t>(k + 1)) << k;
  }
  ring.net().RunFor(absl::Milliseconds(100));
  const std::vector<Received>& log = ring.log(root, kTopic);
  ExpectExactly(log, 1, 4);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(log[k].payload, absl::StrCat("m", k)) << k;
}

ScribeOptions LeasesOff(size_t replay_capacity) {
  return ScribeOptions{.replay_capacity = replay_capacity,
                       .root_lease = absl::ZeroDuration(),
                       .lone_root_grace = absl::Seconds(8),
                       .publish_timeout = absl::Seconds(20)};
}

// The at-once gate (NumbersAtOnce): numbers waiting for replicas. A lone
// root's own publish numbered at once while #2 and #3 wait would be
// confirmed (its done callback run) before them, and before the
// subscriber got them. It takes the long way, is numbered #4 behind them,
// and is confirmed once they are released, in order; the next is numbered
// at once. Fails when NumbersAtOnce skips its `unconfirmed` check.
TEST(ScribeReplicaWindowTest, ALoneRootsOwnPublishDoesNotOvertakeNumbersWaiting) {
  ScribeRing ring(DataCentre(7), 3, LeasesOff(1024));
  ASSERT_TRUE(ring.all_active());
  const int root = LoneRootWithNumbersWaiting(ring, 2);
  ASSERT_GE(root, 0);
  Scribe& scribe = ring.scribe(root);
  std::optional<absl::StatusOr<uint64_t>> mine, next;
  ring.PublishAcked(root, kTopic, "m3", &mine);
  EXPECT_FALSE(mine.has_value());
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 0u);
  ring.net().RunFor(absl::Milliseconds(100));
  EXPECT_FALSE(mine.has_value());
  EXPECT_EQ(ring.log(root, kTopic).size(), 1u);
  ASSERT_TRUE(ring.net().RunUntil([&] { return mine.has_value(); }, absl::Seconds(10),
                                  absl::Milliseconds(10)));
  ASSERT_TRUE(mine->ok()) << mine->status();
  EXPECT_EQ(**mine, 4u);
  EXPECT_EQ(ring.log(root, kTopic).size(), 4u);  // its predecessors before its confirmation
  ring.PublishAcked(root, kTopic, "m4", &next);
  ASSERT_TRUE(next.has_value());  // nothing waits any more: at once
  ASSERT_TRUE(next->ok()) << next->status();
  EXPECT_EQ(**next, 5u);
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 1u);
  const std::vector<Received>& log = ring.log(root, kTopic);
  ExpectExactly(log, 1, 5);
  for (int k = 0; k < 5 && k < static_cast<int>(log.size()); ++k) {
    EXPECT_EQ(log[k].payload, absl::StrCat("m", k)) << k;
  }
}

// The same with the replica window full (replay_capacity 8: four numbers,
// #2..#5, wait): the root's own publish is not numbered at once, takes the
// long way, and the full window holds it on arrival
// (publishes_held_for_window) rather than numbering it past the window;
// it is numbered #6 once the window has room (here: the lone root releases
// its numbers after lone_root_grace) and delivered after #2..#5. Fails
// when MayNumberNow skips its WindowFull check (numbered past the window
// on arrival), and, with NumbersAtOnce's `unconfirmed` check also
// skipped, numbered at once ahead of #2..#5.
TEST(ScribeReplicaWindowTest, ALoneRootsOwnPublishWaitsForAFullReplicaWindow) {
  ScribeRing ring(DataCentre(7), 3, LeasesOff(8));
  ASSERT_TRUE(ring.all_active());
  const int root = LoneRootWithNumbersWaiting(ring, 4);
  ASSERT_GE(root, 0);
  Scribe& scribe = ring.scribe(root);
  EXPECT_EQ(scribe.stats().publishes_held_for_window, 0u);  // exactly full
  std::optional<absl::StatusOr<uint64_t>> mine;
  ring.PublishAcked(root, kTopic, "m5", &mine);
  EXPECT_FALSE(mine.has_value());
  ring.net().RunFor(absl::Milliseconds(100));
  EXPECT_FALSE(mine.has_value());
  EXPECT_EQ(scribe.stats().publishes_held_for_window, 1u);
  EXPECT_EQ(scribe.stats().published, 5u);
  EXPECT_EQ(ring.log(root, kTopic).size(), 1u);
  ASSERT_TRUE(ring.net().RunUntil([&] { return mine.has_value(); }, absl::Seconds(10),
                                  absl::Milliseconds(10)));
  ASSERT_TRUE(mine->ok()) << mine->status();
  EXPECT_EQ(**mine, 6u);
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 0u);
  EXPECT_EQ(scribe.stats().publishes_window_forced, 0u);
  EXPECT_EQ(scribe.stats().publish_acks_unconfirmed, 0u);
  const std::vector<Received>& log = ring.log(root, kTopic);
  ExpectExactly(log, 1, 6);
  for (int k = 0; k < 6 && k < static_cast<int>(log.size()); ++k) {
    EXPECT_EQ(log[k].payload, absl::StrCat("m", k)) << k;
  }
}

}  // namespace
}  // namespace peter::pubsub::testing

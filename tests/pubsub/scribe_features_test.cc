// Scribe's publish acknowledgements, cached roots, anycast, bottleneck
// remover and status snapshot over real Pastry nodes on the simulated
// network: a handful of nodes, driven by hand.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pubsub/scribe.h"
#include "pubsub/topic_id.h"
#include "tests/pubsub/scribe_harness.h"

namespace peter::pubsub::testing {
namespace {

using Outcome = std::optional<absl::StatusOr<uint64_t>>;
using AnycastOutcome = std::optional<absl::StatusOr<pastry::NodeHandle>>;

// Nodes of the ring other than `except`, up to `count`.
std::vector<int> Others(ScribeRing& ring, std::set<int> except, int count) {
  std::vector<int> out;
  for (int i = 0; i < ring.size() && static_cast<int>(out.size()) < count; ++i) {
    if (!except.contains(i)) out.push_back(i);
  }
  return out;
}

const pastry::NodeHandle& HandleOf(ScribeRing& ring, int i) {
  return ring.net().node(i).self();
}

TEST(PublishAckTest, AcksCarryTheSequenceNumberAndTheRootIsCached) {
  ScribeRing ring(11, 8);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf("acks"));
  std::vector<int> subs = Others(ring, {root}, 4);
  const int publisher = subs.back();
  subs.pop_back();
  for (int i : subs) ring.Subscribe(i, "acks");
  ASSERT_TRUE(RunUntilAttached(ring, subs, "acks"));

  std::vector<Outcome> outcomes(5);
  for (int k = 0; k < 5; ++k) {
    ring.PublishAcked(publisher, "acks", "m" + std::to_string(k), &outcomes[k]);
    ASSERT_TRUE(ring.net().RunUntil([&] { return outcomes[k].has_value(); },
                                    absl::Seconds(6), absl::Milliseconds(1)));
    ASSERT_TRUE(outcomes[k]->ok()) << outcomes[k]->status();
    EXPECT_EQ(**outcomes[k], k + 1u);
  }
  ASSERT_TRUE(ring.scribe(publisher).CachedRoot("acks").has_value());
  EXPECT_EQ(*ring.scribe(publisher).CachedRoot("acks"), HandleOf(ring, root));
  const ScribeStats& stats = ring.scribe(publisher).stats();
  EXPECT_EQ(stats.root_cache_misses, 1u);  // the first one was routed
  EXPECT_EQ(stats.root_cache_hits, 4u);
  EXPECT_EQ(stats.publish_acks_received, 5u);
  EXPECT_EQ(stats.publish_resends, 0u);
  EXPECT_EQ(ring.scribe(root).stats().publish_acks_sent, 5u);

  ring.Publish(publisher, "acks", "plain");  // the cheap publish still works
  ring.net().RunFor(absl::Seconds(1));
  for (int i : subs) {
    ExpectExactly(ring.log(i, "acks"), 1, 6);
    for (int k = 0; k < 5; ++k) {
      EXPECT_EQ(ring.log(i, "acks")[k].payload, "m" + std::to_string(k));
    }
  }
}

// On one node (no replica peer) a publish of the root's own is numbered,
// delivered and acknowledged before Publish returns: no message to itself,
// no pending publish, no cached root (issue 6). Order, numbering and the
// counters are those of the long way, which the first publish (no topic
// state yet) still takes.
TEST(PublishAckTest, ARootWithNoReplicaPeerNumbersItsOwnPublishesAtOnce) {
  ScribeRing ring(16, 1);
  ASSERT_TRUE(ring.all_active());
  constexpr int kCount = 40;
  std::vector<Outcome> outcomes(kCount + 1);
  ring.PublishAcked(0, "solo", "m0", &outcomes[0]);  // no state for "solo": the long way
  EXPECT_FALSE(outcomes[0].has_value());
  ASSERT_TRUE(ring.net().RunUntil([&] { return outcomes[0].has_value(); }, absl::Seconds(6),
                                  absl::Milliseconds(1)));
  ring.Subscribe(0, "solo", /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, {0}, "solo"));
  for (int k = 1; k <= kCount; ++k) {
    ring.PublishAcked(0, "solo", "m" + std::to_string(k), &outcomes[k]);
    ASSERT_TRUE(outcomes[k].has_value()) << k;  // before the network ran
    ASSERT_TRUE(outcomes[k]->ok()) << outcomes[k]->status();
    EXPECT_EQ(**outcomes[k], k + 1u);
    ASSERT_EQ(ring.log(0, "solo").size(), static_cast<size_t>(k));
  }
  ring.Publish(0, "solo", "plain");  // the publish without completion too
  ASSERT_EQ(ring.log(0, "solo").size(), kCount + 1u);
  ring.net().RunFor(absl::Seconds(1));
  ExpectExactly(ring.log(0, "solo"), 2, kCount + 2);
  for (int k = 1; k <= kCount; ++k) {
    EXPECT_EQ(ring.log(0, "solo")[k - 1].payload, "m" + std::to_string(k));
  }
  // Kept with their origins, but only the first (the long way: a resend of
  // it must be recognised) is indexed by it (Scribe::Stamp).
  EXPECT_EQ(ring.scribe(0).OriginsIndexed("solo"), 1u);
  const ScribeStats& stats = ring.scribe(0).stats();
  EXPECT_EQ(stats.publishes_numbered_at_once, kCount + 1u);
  EXPECT_EQ(stats.published, kCount + 2u);
  EXPECT_EQ(stats.delivered, kCount + 1u);
  EXPECT_EQ(stats.root_cache_misses, 1u);  // the first publish only
  EXPECT_EQ(stats.root_cache_hits, 0u);
  EXPECT_EQ(stats.publish_acks_sent, 1u);
  EXPECT_EQ(stats.publish_acks_received, 1u);
  EXPECT_EQ(stats.publish_resends, 0u);
  EXPECT_EQ(stats.duplicates, 0u);
  EXPECT_EQ(stats.dropped, 0u);
}

// A subscriber's handler that publishes to its own topic: its publish is
// not numbered at once (a callback of this Scribe is running), and every
// subscriber gets the message being delivered before the one published from
// the handler (TopicState::delivering holds a delivery of the topic that
// starts inside another until that one ends).
TEST(PublishAckTest, APublishFromAHandlerIsDeliveredAfterTheMessageItAnswers) {
  ScribeRing ring(17, 1);
  ASSERT_TRUE(ring.all_active());
  std::vector<std::string> order;
  Scribe& scribe = ring.scribe(0);
  for (const char* name : {"a", "b"}) {
    SubscribeOptions options;
    options.on_message = [&order, &scribe, name](const Delivery& d) {
      order.push_back(std::string(name) + ":" + std::string(d.payload));
      if (std::string_view(name) == "a" && d.payload == "question") {
        ASSERT_TRUE(scribe.Publish("chat", "answer").ok());
      }
    };
    ring.Call(0, [&](Scribe& s) { ASSERT_TRUE(s.Subscribe("chat", std::move(options)).ok()); });
  }
  ASSERT_TRUE(ring.net().RunUntil([&] { return scribe.IsAttached("chat"); }, absl::Seconds(6),
                                  absl::Milliseconds(1)));
  Outcome outcome;
  ring.PublishAcked(0, "chat", "question", &outcome);
  ASSERT_TRUE(outcome.has_value());
  ring.net().RunFor(absl::Seconds(1));
  EXPECT_EQ(order, (std::vector<std::string>{"a:question", "b:question", "a:answer", "b:answer"}));
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 1u);
}

// A done callback that publishes again, whose publish's done publishes
// again, and so on: the publish made in a done is not numbered at once, so
// its done runs later, not inside the one before (numbered at once, each
// done would run inside the last: a chain as deep as the publishes).
TEST(PublishAckTest, ADoneThatPublishesAgainDoesNotRecurse) {
  ScribeRing ring(19, 1);
  ASSERT_TRUE(ring.all_active());
  ring.Subscribe(0, "chain", /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, {0}, "chain"));
  Scribe& scribe = ring.scribe(0);
  constexpr int kChain = 200;
  int depth = 0;
  int max_depth = 0;
  int completed = 0;
  std::function<void(absl::StatusOr<uint64_t>)> done = [&](absl::StatusOr<uint64_t> seq) {
    ASSERT_TRUE(seq.ok()) << seq.status();
    max_depth = std::max(max_depth, ++depth);
    if (++completed < kChain) {
      ASSERT_TRUE(
          scribe.Publish("chain", "m", [&done](absl::StatusOr<uint64_t> s) { done(std::move(s)); })
              .ok());
    }
    --depth;
  };
  ring.Call(0, [&](Scribe& s) {
    ASSERT_TRUE(
        s.Publish("chain", "m", [&done](absl::StatusOr<uint64_t> s) { done(std::move(s)); }).ok());
  });
  ASSERT_TRUE(ring.net().RunUntil([&] { return completed == kChain; }, absl::Seconds(20),
                                  absl::Milliseconds(1)));
  EXPECT_EQ(max_depth, 1);
  ExpectExactly(ring.log(0, "chain"), 1, kChain);
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 1u);  // the first only
}

// A publish behind an earlier one of this node to the topic still in
// flight waits its turn: numbered at once, it would overtake it. The
// earlier one is an acknowledged publish from a handler to a cached root,
// the node itself: a message to itself, numbered when it is dispatched.
TEST(PublishAckTest, APublishBehindOneInFlightIsNotNumberedAtOnce) {
  ScribeRing ring(18, 1);
  ASSERT_TRUE(ring.all_active());
  Outcome warm;  // no state for "log" yet: the long way, and its root cached
  ring.PublishAcked(0, "log", "warm", &warm);
  ASSERT_TRUE(ring.net().RunUntil([&] { return warm.has_value(); }, absl::Seconds(6),
                                  absl::Milliseconds(1)));
  ASSERT_TRUE(ring.scribe(0).CachedRoot("log").has_value());
  ring.Subscribe(0, "log", /*reliable=*/true);
  Scribe& scribe = ring.scribe(0);
  Outcome first;
  SubscribeOptions options;
  options.on_message = [&](const Delivery&) {
    ASSERT_TRUE(scribe
                    .Publish("log", "first",
                             [&first](absl::StatusOr<uint64_t> seq) { first = std::move(seq); })
                    .ok());
  };
  ring.Call(0, [&](Scribe& s) { ASSERT_TRUE(s.Subscribe("trigger", std::move(options)).ok()); });
  ASSERT_TRUE(RunUntilAttached(ring, {0}, "log"));
  ASSERT_TRUE(ring.net().RunUntil([&] { return scribe.IsAttached("trigger"); },
                                  absl::Seconds(6), absl::Milliseconds(1)));
  Outcome second;
  ring.Call(0, [&](Scribe& s) {
    ASSERT_TRUE(s.Publish("trigger", "go").ok());  // at once; its handler sends "first"
    EXPECT_FALSE(first.has_value());
    ASSERT_TRUE(s.Publish("log", "second", [&second](absl::StatusOr<uint64_t> seq) {
                   second = std::move(seq);
                 }).ok());
    EXPECT_FALSE(second.has_value());
    EXPECT_TRUE(ring.log(0, "log").empty());  // both wait in the node's messages to itself
  });
  ASSERT_TRUE(ring.net().RunUntil([&] { return second.has_value(); }, absl::Seconds(6),
                                  absl::Milliseconds(1)));
  ASSERT_TRUE(first.has_value() && first->ok());
  ASSERT_TRUE(second->ok());
  EXPECT_EQ(**first, 2u);
  EXPECT_EQ(**second, 3u);
  ASSERT_EQ(ring.log(0, "log").size(), 2u);
  EXPECT_EQ(ring.log(0, "log")[0].payload, "first");
  EXPECT_EQ(ring.log(0, "log")[1].payload, "second");
}

// A root that holds publishes (a fresh root's grace: the one-node ring is
// younger than fresh_root_grace) does not number its own at once: that
// would overtake what it holds. Its publish is held behind the others.
// Once the grace is over, but before the tick that releases the hold
// (ReleaseHolds), the held publishes are still there: a publish then is
// not numbered at once either, but goes the long way, and its arrival
// numbers what was held first (OnDeliverPublish), then it, without
// waiting for the tick. With nothing held, at once again. The at-once path
// passes the gate a publish arriving passes (MayNumberNow). The held ones
// are best effort: an acknowledged one in flight would keep the next
// publish off the at-once path on its own (their order).
TEST(PublishAckTest, ARootThatHoldsPublishesDoesNotNumberItsOwnAtOnce) {
  ScribeOptions options;
  options.fresh_root_grace = absl::Seconds(10);
  ScribeRing ring(20, 1, options);
  ASSERT_TRUE(ring.all_active());
  Scribe& scribe = ring.scribe(0);
  ring.Publish(0, "held", "first");  // no state for "held": routed, and held
  ring.Subscribe(0, "held", /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, {0}, "held"));
  ring.Publish(0, "held", "second");
  ring.net().RunFor(absl::Milliseconds(100));
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 0u);
  EXPECT_EQ(scribe.stats().published, 0u);  // both held
  // The node started with the simulation (at the Unix epoch): its hold
  // ends fresh_root_grace after.
  const absl::Time grace_end = absl::UnixEpoch() + options.fresh_root_grace;
  ASSERT_LT(ring.net().Now(), grace_end);
  ring.net().RunUntil(grace_end);
  ASSERT_EQ(scribe.stats().published, 0u);  // no tick since the grace ended
  Outcome third;
  absl::Time third_at;
  ring.Call(0, [&](Scribe& s) {
    ASSERT_TRUE(s.Publish("held", "third", [&](absl::StatusOr<uint64_t> seq) {
                   third = std::move(seq);
                   third_at = ring.net().Now();
                 }).ok());
  });
  EXPECT_FALSE(third.has_value());  // not at once: "first" and "second" are held
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 0u);
  ASSERT_TRUE(ring.net().RunUntil([&] { return third.has_value(); }, options.tick_interval,
                                  absl::Microseconds(100)));
  ASSERT_TRUE(third->ok()) << third->status();
  EXPECT_EQ(**third, 3u);
  // Numbered, with what was held, on its arrival, which takes no simulated
  // time (a message to itself), not by the next tick (2 ms later here).
  EXPECT_EQ(third_at, grace_end);
  Outcome fourth;
  ring.PublishAcked(0, "held", "fourth", &fourth);
  ASSERT_TRUE(fourth.has_value());  // nothing held: at once
  ASSERT_TRUE(fourth->ok()) << fourth->status();
  EXPECT_EQ(**fourth, 4u);
  EXPECT_EQ(scribe.stats().publishes_numbered_at_once, 1u);
  ExpectExactly(ring.log(0, "held"), 1, 4);
  EXPECT_EQ(ring.log(0, "held")[0].payload, "first");
  EXPECT_EQ(ring.log(0, "held")[1].payload, "second");
  EXPECT_EQ(ring.log(0, "held")[2].payload, "third");
  EXPECT_EQ(ring.log(0, "held")[3].payload, "fourth");
}

// The cached root is no longer the root (a closer node took over): it
// passes the publish on, and the next acknowledgement updates the cache.
TEST(PublishAckTest, AFormerRootPassesThePublishOnAndTheCacheFollows) {
  ScribeRing ring(12, 6);
  ASSERT_TRUE(ring.all_active());
  const int old_root = ring.net().ClosestLiveNode(TopicIdOf("moved"));
  std::vector<int> subs = Others(ring, {old_root}, 3);
  const int publisher = subs.back();
  subs.pop_back();
  for (int i : subs) ring.Subscribe(i, "moved", /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, subs, "moved"));
  Outcome first, second;
  ring.PublishAcked(publisher, "moved", "a", &first);
  ASSERT_TRUE(ring.net().RunUntil([&] { return first.has_value(); }, absl::Seconds(6),
                                  absl::Milliseconds(1)));
  ASSERT_EQ(*ring.scribe(publisher).CachedRoot("moved"), HandleOf(ring, old_root));

  const int newcomer = ring.AddNode(TopicIdOf("moved"), 0);
  ASSERT_TRUE(ring.net().RunUntil([&] { return ring.RootOf("moved") == newcomer; },
                                  absl::Seconds(10), absl::Milliseconds(10)));
  ring.net().RunFor(absl::Seconds(1));
  ring.PublishAcked(publisher, "moved", "b", &second);
  ASSERT_TRUE(ring.net().RunUntil([&] { return second.has_value(); }, absl::Seconds(6),
                                  absl::Milliseconds(1)));
  ASSERT_TRUE(second->ok()) << second->status();
  EXPECT_EQ(**second, 2u);
  EXPECT_EQ(ring.scribe(old_root).stats().publishes_rerouted, 1u);
  EXPECT_EQ(ring.scribe(publisher).stats().root_cache_hits, 1u);
  EXPECT_EQ(*ring.scribe(publisher).CachedRoot("moved"), HandleOf(ring, newcomer));
  ring.net().RunFor(absl::Seconds(1));
  for (int i : subs) ExpectExactly(ring.log(i, "moved"), 1, 2);
}

// The cached root crashes: publishes sent straight to it are lost, resent
// (routed) after publish_retry, and numbered once by the new root, which
// continues the numbering; reliable subscribers get each message once.
TEST(PublishAckTest, CachedRootCrashesAndResendsReachTheNewRoot) {
  ScribeRing ring(13, 8);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf("crash"));
  std::vector<int> subs = Others(ring, {root}, 5);
  const int publisher = subs.back();
  subs.pop_back();
  for (int i : subs) ring.Subscribe(i, "crash", /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, subs, "crash"));
  std::vector<Outcome> outcomes(8);
  for (int k = 0; k < 3; ++k) {
    ring.PublishAcked(publisher, "crash", "a" + std::to_string(k), &outcomes[k]);
    ring.net().RunFor(absl::Milliseconds(200));
  }
  ring.net().RunFor(absl::Seconds(3));  // replicated
  ASSERT_EQ(*ring.scribe(publisher).CachedRoot("crash"), HandleOf(ring, root));
  ring.Crash(root);
  for (int k = 3; k < 8; ++k) {
    ring.PublishAcked(publisher, "crash", "b" + std::to_string(k), &outcomes[k]);
    ring.net().RunFor(absl::Milliseconds(300));
  }
  ring.net().RunFor(absl::Seconds(10));
  std::set<uint64_t> seqs;
  for (int k = 0; k < 8; ++k) {
    ASSERT_TRUE(outcomes[k].has_value()) << k;
    ASSERT_TRUE(outcomes[k]->ok()) << k << " " << outcomes[k]->status();
    seqs.insert(**outcomes[k]);
  }
  EXPECT_EQ(seqs, (std::set<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_GE(ring.scribe(publisher).stats().publish_resends, 1u);
  const int new_root = ring.RootOf("crash");
  ASSERT_GE(new_root, 0);
  EXPECT_EQ(*ring.scribe(publisher).CachedRoot("crash"), HandleOf(ring, new_root));
  for (int i : subs) {
    ExpectExactly(ring.log(i, "crash"), 1, 8);
    // The number each publish was acknowledged with is the one delivered.
    for (int k = 0; k < 8; ++k) {
      EXPECT_EQ(ring.log(i, "crash")[**outcomes[k] - 1].payload,
                (k < 3 ? "a" : "b") + std::to_string(k));
    }
  }
}

// No acknowledgement in time: DeadlineExceeded, although the message is
// published later (here a fresh root holds publishes: the ring started less
// than fresh_root_grace ago).
TEST(PublishAckTest, TimeoutIsDeadlineExceededAndTheMessageMayStillArrive) {
  ScribeOptions options;
  options.publish_timeout = absl::Milliseconds(300);
  options.fresh_root_grace = absl::Seconds(10);
  ScribeRing ring(14, 6, options);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf("late"));
  const std::vector<int> others = Others(ring, {root}, 2);
  Outcome outcome;
  ring.PublishAcked(others[0], "late", "x", &outcome);
  ring.Subscribe(others[1], "late");
  ASSERT_TRUE(ring.net().RunUntil([&] { return outcome.has_value(); }, absl::Seconds(2),
                                  absl::Milliseconds(10)));
  EXPECT_EQ(outcome->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ring.scribe(others[0]).stats().publish_timeouts, 1u);
  EXPECT_FALSE(ring.scribe(others[0]).CachedRoot("late").has_value());
  ring.net().RunFor(absl::Seconds(10));
  ExpectExactly(ring.log(others[1], "late"), 1, 1);

  // The timed-out publish no longer holds the topic's publish path: the
  // next one is routed and caches the root, and the one after it goes
  // straight to the cached root (a leaked path kept every later publish
  // on the first one's route).
  for (int k = 0; k < 2; ++k) {
    Outcome next;
    ring.PublishAcked(others[0], "late", "y" + std::to_string(k), &next);
    ASSERT_TRUE(ring.net().RunUntil([&] { return next.has_value(); }, absl::Seconds(2),
                                    absl::Milliseconds(10)));
    ASSERT_TRUE(next->ok()) << next->status();
  }
  EXPECT_EQ(ring.scribe(others[0]).stats().root_cache_hits, 1u);
}

// In a ring that has been stable for fresh_root_grace, a root without state
// for a topic knows the topic is new and numbers its first publish at once;
// after losing a leaf-set neighbour it holds again for fresh_root_grace.
// At max_pending_acks the overlay gives up the hop with the earliest
// deadline and reroutes its copy untracked (docs/limits.md): a message is
// lost there if both copies are. An acknowledged publish is not lost track
// of: its publisher still holds it and resends it after publish_retry, and
// it is numbered once. Here the publisher's bound is one hop, and both
// copies of its publish are lost: the tracked one (unanswered, given up
// when the next routed message takes the slot) and the untracked one.
TEST(PublishAckTest, APublishWhoseCopiesAreLostAtMaxPendingAcksIsResent) {
  pastry::Options overlay;
  overlay.max_pending_acks = 1;
  ScribeRing ring(15, 8, {}, absl::Seconds(5), overlay);
  ASSERT_TRUE(ring.all_active());
  const NodeId topic = TopicIdOf("bound");
  const int root = ring.net().ClosestLiveNode(topic);
  const std::vector<int> others = Others(ring, {root}, 2);
  const int publisher = others[0];
  const int sub = others[1];
  ring.Subscribe(sub, "bound", /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, {sub}, "bound"));
  std::vector<uint64_t> lost;  // the hop ids of the copies lost
  ring.net().network().set_send_filter([&](int from, int, const pastry::Envelope& e) {
    const auto* msg = std::get_if<pastry::RouteMsg>(&e.body);
    if (from != publisher || msg == nullptr || msg->key != topic || lost.size() >= 2) {
      return false;
    }
    lost.push_back(msg->id);
    return true;
  });
  Outcome outcome, other;
  ring.PublishAcked(publisher, "bound", "m", &outcome);
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_NE(lost[0], 0u);  // tracked
  // Another routed message takes the one slot: the lost hop is given up at
  // once, and its copy, untracked, is lost too.
  ring.PublishAcked(publisher, "elsewhere", "x", &other);
  ASSERT_EQ(lost.size(), 2u);
  EXPECT_EQ(lost[1], 0u);  // untracked
  EXPECT_GE(ring.net().node(publisher).stats().pending_ack_overflows, 1u);
  ASSERT_TRUE(ring.net().RunUntil([&] { return outcome.has_value(); }, absl::Seconds(30),
                                  absl::Milliseconds(10)));
  ASSERT_TRUE(outcome->ok()) << outcome->status();
  EXPECT_GE(ring.scribe(publisher).stats().publish_resends, 1u);
  ring.net().RunFor(absl::Seconds(2));
  ASSERT_EQ(ring.log(sub, "bound").size(), 1u);
  EXPECT_EQ(ring.log(sub, "bound")[0].seq, **outcome);
  EXPECT_EQ(ring.log(sub, "bound")[0].payload, "m");
}

TEST(PublishAckTest, AStableRootNumbersANewTopicAtOnceAndHoldsAfterALoss) {
  ScribeOptions options;
  options.publish_timeout = absl::Seconds(1);
  ScribeRing ring(17, 8, options);
  ASSERT_TRUE(ring.all_active());
  ring.net().RunFor(options.fresh_root_grace);
  const int root = ring.net().ClosestLiveNode(TopicIdOf("new"));
  const std::vector<int> others = Others(ring, {root}, 2);
  Outcome first;
  ring.PublishAcked(others[0], "new", "x", &first);
  ASSERT_TRUE(ring.net().RunUntil([&] { return first.has_value(); }, absl::Seconds(2),
                                  absl::Milliseconds(10)));
  EXPECT_TRUE(first->ok()) << first->status();

  // Kill a node that is not the root of "held"'s topic: its neighbours,
  // the root among them once the ring notices, hold a fresh topic again.
  const int held_root = ring.net().ClosestLiveNode(TopicIdOf("held"));
  const std::vector<int> bystanders = Others(ring, {held_root, others[0]}, 1);
  ring.Crash(bystanders[0]);
  ring.net().RunFor(absl::Seconds(4));  // detected and repaired
  Outcome second;
  ring.PublishAcked(others[0], "held", "y", &second);
  ASSERT_TRUE(ring.net().RunUntil([&] { return second.has_value(); }, absl::Seconds(3),
                                  absl::Milliseconds(10)));
  // In a ring of 8 with L=16 every node is every other's leaf-set member.
  EXPECT_EQ(second->status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(PublishAckTest, LocalErrorsAreReturnedAndTheCallbackDoesNotRun) {
  ScribeRing ring(15, 3);
  ASSERT_TRUE(ring.all_active());
  int calls = 0;
  auto count = [&calls](absl::StatusOr<uint64_t>) { ++calls; };
  auto count_any = [&calls](absl::StatusOr<pastry::NodeHandle>) { ++calls; };
  Scribe& s = ring.scribe(1);
  EXPECT_EQ(s.Publish("t", std::string((1 << 20) + 1, 'x'), count).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Publish("", "x", count).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Publish("t", "x", PublishCallback()).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Anycast("", "x", count_any).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.Anycast("t", "x", AnycastCallback()).code(),
            absl::StatusCode::kInvalidArgument);
  ring.net().RunFor(absl::Seconds(6));
  EXPECT_EQ(calls, 0);
}

TEST(PublishAckTest, TooManyInFlightIsResourceExhausted) {
  ScribeOptions options;
  options.max_pending_publishes = 2;
  options.fresh_root_grace = absl::Seconds(20);  // the ring is younger: publishes are held
  options.publish_timeout = absl::Seconds(5);
  ScribeRing ring(16, 4, options);
  ASSERT_TRUE(ring.all_active());
  std::vector<Outcome> outcomes(3);
  for (int k = 0; k < 3; ++k) ring.PublishAcked(1, "full", "x", &outcomes[k]);
  ASSERT_TRUE(outcomes[2].has_value());  // at once, from Publish itself
  EXPECT_EQ(outcomes[2]->status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(outcomes[0].has_value());
  ring.net().RunFor(absl::Seconds(7));  // the fresh root holds them past publish_timeout
  for (int k = 0; k < 2; ++k) {
    ASSERT_TRUE(outcomes[k].has_value());
    EXPECT_EQ(outcomes[k]->status().code(), absl::StatusCode::kDeadlineExceeded);
  }
}

// ---------------------------------------------------------------------------
// Anycast

struct AnycastMember {
  int node;
  bool accepts;
  int offered = 0;
  int accepted = 0;
};

void SubscribeForAnycast(ScribeRing& ring, const std::string& topic, AnycastMember& m) {
  SubscribeOptions options;
  options.on_message = [](const Delivery&) {};
  options.on_anycast = [&m](const Delivery& d) {
    EXPECT_EQ(d.payload, "job");
    ++m.offered;
    if (m.accepts) ++m.accepted;
    return m.accepts;
  };
  ring.Call(m.node, [&](Scribe& s) { ASSERT_TRUE(s.Subscribe(topic, options).ok()); });
}

AnycastOutcome RunAnycast(ScribeRing& ring, int from, const std::string& topic) {
  AnycastOutcome outcome;
  ring.Call(from, [&](Scribe& s) {
    ASSERT_TRUE(s.Anycast(topic, "job", [&outcome](absl::StatusOr<pastry::NodeHandle> h) {
                   outcome = std::move(h);
                 }).ok());
  });
  EXPECT_TRUE(ring.net().RunUntil([&] { return outcome.has_value(); }, absl::Seconds(6),
                                  absl::Milliseconds(1)));
  return outcome;
}

TEST(AnycastTest, ExactlyOneAcceptingSubscriberTakesEachAnycast) {
  ScribeRing ring(21, 12);
  ASSERT_TRUE(ring.all_active());
  std::vector<AnycastMember> members = {{1, false}, {3, true}, {5, false}, {7, true}, {9, false}};
  std::vector<int> nodes;
  for (AnycastMember& m : members) {
    SubscribeForAnycast(ring, "work", m);
    nodes.push_back(m.node);
  }
  ASSERT_TRUE(RunUntilAttached(ring, nodes, "work"));
  for (int k = 0; k < 10; ++k) {
    const int from = k % 2 == 0 ? 11 : 5;  // an outsider, and a member that declines
    std::vector<int> before;
    for (const AnycastMember& m : members) before.push_back(m.accepted);
    AnycastOutcome outcome = RunAnycast(ring, from, "work");
    ASSERT_TRUE(outcome.has_value());
    ASSERT_TRUE(outcome->ok()) << outcome->status();
    int acceptors = 0;
    for (size_t j = 0; j < members.size(); ++j) {
      if (members[j].accepted == before[j]) continue;
      ++acceptors;
      EXPECT_EQ(**outcome, HandleOf(ring, members[j].node));
    }
    EXPECT_EQ(acceptors, 1) << "anycast " << k;
  }
  EXPECT_EQ(ring.TotalStats().anycasts_accepted, 10u);
  EXPECT_EQ(ring.TotalStats().anycasts_sent, 10u);
  EXPECT_EQ(ring.TotalStats().anycasts_failed, 0u);
}

// Nobody accepts: every subscriber is offered the anycast exactly once
// (the walk visits each tree node once), then NotFound.
TEST(AnycastTest, NoneAcceptsAskEveryMemberOnceThenNotFound) {
  ScribeRing ring(22, 12);
  ASSERT_TRUE(ring.all_active());
  std::vector<AnycastMember> members = {{0, false}, {2, false}, {4, false}, {6, false},
                                        {8, false}, {10, false}};
  std::vector<int> nodes;
  for (AnycastMember& m : members) {
    SubscribeForAnycast(ring, "idle", m);
    nodes.push_back(m.node);
  }
  // A subscription without on_anycast takes none.
  ring.Subscribe(11, "idle");
  nodes.push_back(11);
  ASSERT_TRUE(RunUntilAttached(ring, nodes, "idle"));
  AnycastOutcome outcome = RunAnycast(ring, 3, "idle");
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(outcome->status().message(), "no subscriber accepted");
  for (const AnycastMember& m : members) EXPECT_EQ(m.offered, 1) << m.node;
  EXPECT_EQ(ring.scribe(3).stats().anycasts_failed, 1u);

  // A topic nobody subscribed to has no tree: Unavailable.
  outcome = RunAnycast(ring, 3, "no-such-topic");
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->status().code(), absl::StatusCode::kUnavailable);
}

// A member crashed and its parent has not noticed yet: a walk that must
// visit it is lost, and the requester gets DeadlineExceeded.
TEST(AnycastTest, AWalkLostOnACrashedMemberTimesOut) {
  ScribeRing ring(23, 10);
  ASSERT_TRUE(ring.all_active());
  std::vector<AnycastMember> members = {{1, false}, {2, false}, {4, false},
                                        {6, false}, {8, false}};
  std::vector<int> nodes;
  for (AnycastMember& m : members) {
    SubscribeForAnycast(ring, "lost", m);
    nodes.push_back(m.node);
  }
  ASSERT_TRUE(RunUntilAttached(ring, nodes, "lost"));
  int leaf = -1;  // a member without children, not the root
  for (int i : nodes) {
    if (ring.scribe(i).ChildCount("lost") == 0 && !ring.scribe(i).IsRoot("lost")) leaf = i;
  }
  ASSERT_GE(leaf, 0);
  ring.Crash(leaf);
  AnycastOutcome outcome = RunAnycast(ring, 9, "lost");
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ring.scribe(9).stats().anycasts_failed, 1u);
}

// ---------------------------------------------------------------------------
// Bottleneck remover

TEST(BottleneckTest, SmallMaxChildrenEveryoneStillGetsEverything) {
  ScribeOptions options;
  options.max_children = 2;
  ScribeRing ring(31, 40, options);
  ASSERT_TRUE(ring.all_active());
  std::vector<int> all;
  for (int i = 0; i < 40; ++i) {
    all.push_back(i);
    ring.Subscribe(i, "crowd", /*reliable=*/i % 2 == 0);
  }
  ASSERT_TRUE(RunUntilAttached(ring, all, "crowd"));
  ring.net().RunFor(absl::Seconds(3));  // moves settle; round trips measured
  for (int k = 0; k < 20; ++k) {
    ring.Publish(k % 40, "crowd", "m" + std::to_string(k));
    ring.net().RunFor(absl::Milliseconds(5));
  }
  ring.net().RunFor(absl::Seconds(3));
  for (int i : all) {
    EXPECT_LE(ring.scribe(i).ChildCount("crowd"), 2u) << i;
    ExpectExactly(ring.log(i, "crowd"), 1, 20);
  }
  const ScribeStats stats = ring.TotalStats();
  EXPECT_GT(stats.pushdowns, 0u);
  EXPECT_EQ(stats.joins_refused, 0u);
  EXPECT_EQ(stats.skipped, 0u);
  EXPECT_EQ(stats.parent_failures, 0u);
  // Everyone but the root is someone's child: 39 children in all.
  size_t children = 0;
  for (int i : all) children += ring.scribe(i).ChildCount("crowd");
  EXPECT_EQ(children, 39u);
  std::printf("max_children 2, 40 subscribers: %llu push-downs, %llu moves, "
              "%llu messages in\n",
              (unsigned long long)stats.pushdowns, (unsigned long long)stats.moves,
              (unsigned long long)stats.messages_in);
}

// ---------------------------------------------------------------------------
// Status snapshot

TEST(TopicsSnapshotTest, ReportsRootSubscribersAndNumbers) {
  ScribeRing ring(41, 6);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf("status"));
  std::vector<int> subs = Others(ring, {root}, 2);
  subs.push_back(root);
  for (int i : subs) ring.Subscribe(i, "status");
  ASSERT_TRUE(RunUntilAttached(ring, subs, "status"));
  for (int k = 0; k < 3; ++k) ring.Publish(subs[0], "status", "x");
  ring.net().RunFor(absl::Seconds(1));

  std::vector<TopicInfo> topics = ring.scribe(root).Topics();
  ASSERT_EQ(topics.size(), 1u);
  const TopicInfo& r = topics[0];
  EXPECT_EQ(r.id_hex, TopicIdOf("status").ToHex());
  EXPECT_EQ(r.name, "status");
  EXPECT_TRUE(r.is_root);
  EXPECT_TRUE(r.attached);
  EXPECT_TRUE(r.parent_id_hex.empty());
  EXPECT_EQ(r.child_count, ring.scribe(root).ChildCount("status"));
  EXPECT_EQ(r.next_seq, 4u);
  EXPECT_EQ(r.last_seq, 3u);
  EXPECT_EQ(r.local_subscribers, 1u);
  EXPECT_EQ(ring.scribe(root).root_count(), 1u);
  EXPECT_EQ(ring.scribe(root).children_total(), r.child_count);

  const TopicInfo s = ring.scribe(subs[0]).Topics().at(0);
  EXPECT_FALSE(s.is_root);
  EXPECT_TRUE(s.attached);
  EXPECT_FALSE(s.parent_id_hex.empty());
  EXPECT_EQ(s.last_seq, 3u);
  const ScribeStats stats = ring.TotalStats();
  EXPECT_GT(stats.messages_in, 0u);
  EXPECT_GT(stats.messages_out, 0u);
}

}  // namespace
}  // namespace peter::pubsub::testing

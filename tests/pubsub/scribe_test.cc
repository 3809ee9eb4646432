// Scribe over real Pastry nodes on the simulated network: a handful of
// nodes, driven by hand.
#include "pubsub/scribe.h"

#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pubsub/topic_id.h"
#include "tests/pubsub/scribe_harness.h"

namespace peter::pubsub::testing {
namespace {

constexpr absl::Duration kTenthSecond = absl::Milliseconds(100);
// A publish reaches subscribers after the root's replicas hold it: a route
// to the root, a replica round trip, the tree (simulated time).
constexpr absl::Duration kDelivery = absl::Milliseconds(300);

TEST(ScribeTest, SubscribersGetEveryMessageOnceInOrder) {
  ScribeRing ring(1, 5);
  ASSERT_TRUE(ring.all_active());
  for (int i : {1, 2, 3}) ring.Subscribe(i, "news");
  ASSERT_TRUE(RunUntilAttached(ring, {1, 2, 3}, "news"));
  for (int k = 0; k < 20; ++k) {
    ring.Publish(k % 2 == 0 ? 4 : 0, "news", "m" + std::to_string(k));
    ring.net().RunFor(absl::Milliseconds(1));
  }
  ring.net().RunFor(absl::Seconds(2));
  for (int i : {1, 2, 3}) {
    ExpectExactly(ring.log(i, "news"), 1, 20);
    // Every subscriber sees the same message under the same number.
    for (size_t k = 0; k < 20; ++k) {
      EXPECT_EQ(ring.log(i, "news")[k].payload, ring.log(1, "news")[k].payload);
    }
  }
  EXPECT_TRUE(ring.log(4, "news").empty());
  EXPECT_EQ(ring.TotalStats().published, 20u);
  EXPECT_EQ(ring.TotalStats().malformed, 0u);
}

TEST(ScribeTest, SubscriptionReportsActiveAndRejectsBadInput) {
  ScribeRing ring(2, 4);
  ASSERT_TRUE(ring.all_active());
  bool active = false;
  SubscribeOptions options;
  options.on_message = [](const Delivery&) {};
  options.on_active = [&active](bool a) { active = a; };
  ring.Call(2, [&](Scribe& s) { ASSERT_TRUE(s.Subscribe("t", options).ok()); });
  ring.net().RunFor(absl::Seconds(1));
  EXPECT_TRUE(active);
  EXPECT_TRUE(ring.scribe(2).IsAttached("t"));
  EXPECT_EQ(ring.RootOf("t"), ring.net().ClosestLiveNode(TopicIdOf("t")));

  Scribe& s = ring.scribe(1);
  EXPECT_FALSE(s.Subscribe("", options).ok());
  EXPECT_FALSE(s.Subscribe(std::string(2000, 'x'), options).ok());
  EXPECT_FALSE(s.Subscribe("t", SubscribeOptions{}).ok());  // no handler
  EXPECT_FALSE(s.Publish("t", std::string((1 << 20) + 1, 'x')).ok());
  EXPECT_EQ(s.Unsubscribe(12345).code(), absl::StatusCode::kNotFound);
}

TEST(ScribeTest, UnsubscribePrunesTheTree) {
  ScribeRing ring(3, 5);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf("u"));
  std::vector<int> subs;
  for (int i = 0; i < 5; ++i) {
    if (i != root) subs.push_back(i);
  }
  std::vector<SubscriptionId> ids;
  for (int i : subs) ids.push_back(ring.Subscribe(i, "u"));
  ASSERT_TRUE(RunUntilAttached(ring, subs, "u"));
  ring.Publish(root, "u", "before");
  ring.net().RunFor(kDelivery);
  for (size_t k = 0; k < subs.size(); ++k) {
    ring.Call(subs[k], [&](Scribe& s) { ASSERT_TRUE(s.Unsubscribe(ids[k]).ok()); });
  }
  ring.net().RunFor(absl::Seconds(1));
  for (int i : subs) EXPECT_EQ(ring.scribe(i).topic_count(), 0u) << i;
  EXPECT_EQ(ring.scribe(root).ChildCount("u"), 0u);
  ring.Publish(root, "u", "after");
  ring.net().RunFor(kDelivery);
  for (int i : subs) EXPECT_EQ(ring.log(i, "u").size(), 1u);
}

TEST(ScribeTest, TreeSurvivesHeartbeatsWithoutChurn) {
  ScribeRing ring(4, 5);
  ASSERT_TRUE(ring.all_active());
  for (int i = 0; i < 5; ++i) ring.Subscribe(i, "quiet");
  ASSERT_TRUE(RunUntilAttached(ring, {0, 1, 2, 3, 4}, "quiet"));
  const uint64_t joins = ring.TotalStats().joins_sent;
  ring.net().RunFor(absl::Seconds(30));
  EXPECT_EQ(ring.TotalStats().joins_sent, joins);  // no spurious re-joins
  EXPECT_EQ(ring.TotalStats().parent_failures, 0u);
  ring.Publish(2, "quiet", "x");
  ring.net().RunFor(kDelivery);
  for (int i = 0; i < 5; ++i) ExpectExactly(ring.log(i, "quiet"), 1, 1);
}

// A node that joins closer to the topic id than the root takes the root
// role over; the numbering continues and nobody misses a message.
TEST(ScribeTest, CloserNodeTakesOverTheRootAndNumberingContinues) {
  ScribeRing ring(5, 6);
  ASSERT_TRUE(ring.all_active());
  std::vector<int> subs = {1, 2, 3, 4};
  for (int i : subs) ring.Subscribe(i, "handover", /*reliable=*/i % 2 == 0);
  ASSERT_TRUE(RunUntilAttached(ring, subs, "handover"));
  for (int k = 0; k < 5; ++k) ring.Publish(5, "handover", "a" + std::to_string(k));
  ring.net().RunFor(kTenthSecond);
  const int old_root = ring.RootOf("handover");
  ASSERT_GE(old_root, 0);

  const int newcomer = ring.AddNode(TopicIdOf("handover"), 0);
  ASSERT_TRUE(ring.net().RunUntil([&] { return ring.net().node(newcomer).active(); },
                                  absl::Seconds(10), absl::Milliseconds(10)));
  ring.net().RunFor(absl::Seconds(1));
  EXPECT_EQ(ring.RootOf("handover"), newcomer);
  EXPECT_GE(ring.scribe(old_root).stats().handovers, 1u);
  for (int k = 0; k < 5; ++k) ring.Publish(5, "handover", "b" + std::to_string(k));
  ring.net().RunFor(absl::Seconds(2));
  for (int i : subs) {
    ExpectExactly(ring.log(i, "handover"), 1, 10);
    EXPECT_EQ(ring.log(i, "handover").back().payload, "b4");
  }
}

// Hand-over of a replay buffer larger than one message may carry (5 MiB of
// payloads; a receiver decodes at most 4 MiB): the state goes in parts.
TEST(ScribeTest, HandOverOfLargeStateIsSentInParts) {
  ScribeRing ring(7, 4);
  ASSERT_TRUE(ring.all_active());
  ring.Subscribe(1, "big", /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, {1}, "big"));
  for (int k = 0; k < 5; ++k) ring.Publish(2, "big", std::string(1 << 20, 'a' + k));
  ring.net().RunFor(absl::Seconds(1));
  const int newcomer = ring.AddNode(TopicIdOf("big"), 0);
  ASSERT_TRUE(ring.net().RunUntil([&] { return ring.net().node(newcomer).active(); },
                                  absl::Seconds(10), absl::Milliseconds(10)));
  ring.net().RunFor(absl::Seconds(1));
  ASSERT_EQ(ring.RootOf("big"), newcomer);
  ring.Publish(2, "big", "after");
  ring.net().RunFor(absl::Seconds(1));
  ExpectExactly(ring.log(1, "big"), 1, 6);
  EXPECT_EQ(ring.TotalStats().malformed, 0u);
}

// The root fails: its children re-join the next-closest node, which
// continues the numbering from its replica; reliable subscribers miss
// nothing published meanwhile.
TEST(ScribeTest, RootFailureKeepsNumberingAndReliableSubscribersMissNothing) {
  ScribeRing ring(6, 8);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf("fail"));
  std::vector<int> subs;
  for (int i = 0; i < 8; ++i) {
    if (i != root) subs.push_back(i);
  }
  for (int i : subs) ring.Subscribe(i, "fail", /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, subs, "fail"));
  const int publisher = subs.back();
  subs.pop_back();
  for (int k = 0; k < 5; ++k) ring.Publish(publisher, "fail", "a" + std::to_string(k));
  ring.net().RunFor(absl::Seconds(3));  // replicated
  ring.Crash(root);
  for (int k = 0; k < 10; ++k) {
    ring.Publish(publisher, "fail", "b" + std::to_string(k));
    ring.net().RunFor(absl::Milliseconds(500));
  }
  ring.net().RunFor(absl::Seconds(10));
  EXPECT_EQ(ring.RootOf("fail"), ring.net().ClosestLiveNode(TopicIdOf("fail")));
  for (int i : subs) {
    ExpectExactly(ring.log(i, "fail"), 1, 15);
    EXPECT_EQ(ring.log(i, "fail").back().payload, "b9");
  }
}

// The replay buffer takes a delivered message's payload itself, after the
// subscribers had it (Accept), not a copy. A handler that publishes from
// inside its delivery (routed to this root and numbered, delivered and
// stored before it returns, trimming the oldest entries: with a buffer of
// one, the entry of the message being delivered) must neither alter what
// the other subscribers are handed nor what the buffer keeps: a late
// reliable subscriber, replayed from the buffer, gets the same bytes under
// the same numbers. The payloads are longer than a std::string holds in
// place, so bytes freed under a delivery would show.
TEST(ScribeTest, PublishFromAHandlerLeavesDeliveriesAndReplayIntact) {
  const std::string a = "the first message, longer than a small string";
  const std::string b = "the second message, longer than a small string";
  const std::map<uint64_t, std::string> expected{
      {1, a}, {2, "echo of " + a}, {3, b}, {4, "echo of " + b}};
  for (const size_t capacity : {size_t{1}, size_t{4}}) {
    SCOPED_TRACE(capacity);
    ScribeOptions options;
    options.replicas = 0;  // numbered, delivered and stored at once
    options.replay_capacity = capacity;
    ScribeRing ring(7, 2, options);
    ASSERT_TRUE(ring.all_active());
    const int root = ring.net().ClosestLiveNode(TopicIdOf("t"));
    const int late = 1 - root;
    Scribe* scribe = &ring.scribe(root);
    std::map<uint64_t, std::string> echoing, other;
    SubscribeOptions echo;
    echo.on_message = [&](const Delivery& d) {
      echoing.emplace(d.seq, std::string(d.payload));
      if (d.payload.substr(0, 4) != "echo") {
        ASSERT_TRUE(scribe->Publish("t", "echo of " + std::string(d.payload)).ok());
      }
    };
    SubscribeOptions plain;
    plain.on_message = [&](const Delivery& d) { other.emplace(d.seq, std::string(d.payload)); };
    ring.Call(root, [&](Scribe& s) {
      ASSERT_TRUE(s.Subscribe("t", echo).ok());
      ASSERT_TRUE(s.Subscribe("t", plain).ok());
    });
    ASSERT_TRUE(RunUntilAttached(ring, {root}, "t"));
    for (const std::string& m : {a, b}) {
      ring.Publish(root, "t", m);
      ring.net().RunFor(kTenthSecond);
    }
    EXPECT_EQ(echoing, expected);
    EXPECT_EQ(other, expected);

    SubscribeOptions from_start;
    from_start.reliable = true;
    from_start.since_seq = 1;
    ring.Subscribe(late, "t", std::move(from_start));
    ring.net().RunFor(absl::Seconds(2));
    std::map<uint64_t, std::string> replayed;
    for (const Received& r : ring.log(late, "t")) replayed.emplace(r.seq, r.payload);
    // The newest `capacity` messages: the replay buffer's.
    const std::map<uint64_t, std::string> kept(std::prev(expected.end(), capacity),
                                               expected.end());
    EXPECT_EQ(replayed, kept);
  }
}

// The same through many turns of the replay buffer's ring (a buffer of 3:
// a ring of 4 slots): every message's echo is numbered, delivered and
// stored before the message itself is stored, so every other number goes
// into the middle of a full ring, across its end. A late reliable
// subscriber gets the newest three, in order, with their own bytes, and
// the byte count is what the buffer holds.
TEST(ScribeTest, PublishesFromAHandlerThroughManyTurnsOfTheReplayRing) {
  ScribeOptions options;
  options.replicas = 0;  // numbered, delivered and stored at once
  options.replay_capacity = 3;
  ScribeRing ring(7, 2, options);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf("t"));
  const int late = 1 - root;
  Scribe* scribe = &ring.scribe(root);
  std::map<uint64_t, std::string> delivered;
  SubscribeOptions echo;
  echo.on_message = [&](const Delivery& d) {
    delivered.emplace(d.seq, std::string(d.payload));
    if (d.payload.substr(0, 4) != "echo") {
      ASSERT_TRUE(scribe->Publish("t", "echo of " + std::string(d.payload)).ok());
    }
  };
  ring.Call(root, [&](Scribe& s) { ASSERT_TRUE(s.Subscribe("t", echo).ok()); });
  ASSERT_TRUE(RunUntilAttached(ring, {root}, "t"));
  std::map<uint64_t, std::string> expected;
  for (int k = 1; k <= 15; ++k) {
    const std::string m = "message " + std::to_string(k) + ", longer than a small string";
    expected.emplace(2 * k - 1, m);
    expected.emplace(2 * k, "echo of " + m);
    ring.Publish(root, "t", m);
    ring.net().RunFor(kTenthSecond);
  }
  EXPECT_EQ(delivered, expected);
  EXPECT_EQ(scribe->stats().replay_bytes, scribe->RecountReplayBytes());

  SubscribeOptions from_start;
  from_start.reliable = true;
  from_start.since_seq = 1;
  ring.Subscribe(late, "t", std::move(from_start));
  ring.net().RunFor(absl::Seconds(2));
  std::vector<std::pair<uint64_t, std::string>> replayed;
  for (const Received& r : ring.log(late, "t")) replayed.emplace_back(r.seq, r.payload);
  const std::vector<std::pair<uint64_t, std::string>> kept(std::prev(expected.end(), 3),
                                                            expected.end());
  EXPECT_EQ(replayed, kept);
}

// A publish from a delivery handler on the root, with nothing to wait for
// (no replicas), is numbered at once, inside the delivery of the message
// before it. Every local subscriber still gets the numbers in order: the
// new one is delivered once the delivery in progress has reached them all.
// It used to be delivered there and then, so the subscribers after the
// publishing one got #2 before #1 (and #4 before #3).
TEST(ScribeTest, PublishFromAHandlerOnTheRootKeepsLocalDeliveryInOrder) {
  ScribeOptions options;
  options.replicas = 0;  // numbered and delivered at once
  ScribeRing ring(7, 2, options);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf("t"));
  Scribe* scribe = &ring.scribe(root);
  std::vector<uint64_t> first, echoing, last;
  auto recorder = [](std::vector<uint64_t>* order) {
    SubscribeOptions o;
    o.on_message = [order](const Delivery& d) { order->push_back(d.seq); };
    return o;
  };
  SubscribeOptions echo;
  echo.on_message = [&](const Delivery& d) {
    echoing.push_back(d.seq);
    if (d.payload.substr(0, 4) != "echo") {
      ASSERT_TRUE(scribe->Publish("t", "echo of " + std::string(d.payload)).ok());
    }
  };
  ring.Call(root, [&](Scribe& s) {
    ASSERT_TRUE(s.Subscribe("t", recorder(&first)).ok());
    ASSERT_TRUE(s.Subscribe("t", echo).ok());
    ASSERT_TRUE(s.Subscribe("t", recorder(&last)).ok());
  });
  ASSERT_TRUE(RunUntilAttached(ring, {root}, "t"));
  for (const std::string m : {"a", "b"}) {
    ring.Publish(root, "t", m);
    ring.net().RunFor(kTenthSecond);
  }
  const std::vector<uint64_t> in_order{1, 2, 3, 4};
  EXPECT_EQ(first, in_order);
  EXPECT_EQ(echoing, in_order);
  EXPECT_EQ(last, in_order);
}
// With root_lease 0 a replica that takes the topic over (TakeReplica)
// numbers at once, and delivers there and then what its root released and
// this node had not had yet (here the next-closest node's late subscriber
// asked for everything from 1 and got no repair before the root failed):
// a local subscriber's handler that publishes from that delivery is
// numbered inside the take-over. Every message, released, taken over or
// published from the handler, still reaches this node's subscriber and the
// tree once, in order. Each case failed before:
// - the handler's numbers wait for the new root's replicas, and the
//   take-over's last step (the frontier moved past what nobody kept)
//   skipped them: once the replicas held them they were taken for
//   duplicates, delivered nowhere;
// - two publishes per delivery into a replay buffer of 4 pushed out
//   released messages the take-over had not delivered yet: skipped;
// - numbers the failed root released after its last Replicate are
//   tentative here (they wait for the new root's replicas); the byte bound
//   took them out with the handler's first publish, as they were only
//   marked waiting after the released ones were delivered: lost.
TEST(ScribeTest, PublishFromAHandlerWhileTakingOverTheRootIsDelivered) {
  struct Case {
    int echoes;     // publishes per message delivered
    bool tentative;  // the root fails with two numbers its replicas hold unreleased
  };
  for (const Case c : {Case{1, false}, Case{2, false}, Case{1, true}}) {
    SCOPED_TRACE(::testing::Message() << c.echoes << " echoes, tentative " << c.tentative);
    const int echoes = c.echoes;
    ScribeOptions options;
    options.root_lease = absl::ZeroDuration();
    options.replay_capacity = c.tentative ? 8 : 4;  // the replica keeps all six
    options.reorder_timeout = absl::Seconds(60);  // no repair before the root fails
    // The six 2-byte messages fit (in the replica, and what the next node
    // holds of them); with the first echo (10 bytes) stored, the oldest go
    // until the bound holds, up to the first number that waits.
    if (c.tentative) options.max_replay_bytes = 20;
    ScribeRing ring(6, 5, options);
    ASSERT_TRUE(ring.all_active());
    const TopicId id = TopicIdOf("t");
    const int root = ring.net().ClosestLiveNode(id);
    int next = -1;
    for (int i = 0; i < ring.size(); ++i) {
      if (i != root && (next < 0 || NodeId::CloserTo(id, ring.net().id(i), ring.net().id(next)))) {
        next = i;
      }
    }
    int other = 0;
    while (other == root || other == next) ++other;
    ring.Subscribe(other, "t", /*reliable=*/true);
    ASSERT_TRUE(RunUntilAttached(ring, {other}, "t"));
    for (int k = 0; k < 4; ++k) ring.Publish(other, "t", "a" + std::to_string(k));
    ring.net().RunFor(absl::Seconds(3));  // released, and the commit index replicated
    ASSERT_EQ(ring.log(other, "t").size(), 4u);

    int originals = 4;
    if (c.tentative) {
      for (int k = 0; k < 2; ++k) ring.Publish(other, "t", "b" + std::to_string(k));
      // Released; the root fails before a Replicate tells its replicas so.
      ASSERT_TRUE(ring.net().RunUntil([&] { return ring.log(other, "t").size() == 6; },
                                      absl::Seconds(1), absl::Milliseconds(1)));
      originals = 6;
    }

    Scribe* scribe = &ring.scribe(next);
    std::vector<Received> got;
    SubscribeOptions echo;
    echo.reliable = true;
    echo.since_seq = 1;
    echo.on_message = [&](const Delivery& d) {
      got.push_back(Received{d.seq, std::string(d.payload)});
      if (d.payload.substr(0, 4) == "echo") return;
      for (int e = 0; e < echoes; ++e) {
        ASSERT_TRUE(scribe->Publish("t", "echo of " + std::string(d.payload)).ok());
      }
    };
    ring.Call(next, [&](Scribe& s) { ASSERT_TRUE(s.Subscribe("t", echo).ok()); });
    ASSERT_TRUE(RunUntilAttached(ring, {next}, "t"));
    ASSERT_TRUE(got.empty());
    ring.Crash(root);
    ring.net().RunFor(absl::Seconds(20));
    ASSERT_EQ(ring.RootOf("t"), next);
    const uint64_t last = originals * (1 + echoes);
    ExpectExactly(got, 1, last);
    ExpectExactly(ring.log(other, "t"), 1, last);
    for (size_t k = 0; k < got.size() && k < ring.log(other, "t").size(); ++k) {
      EXPECT_EQ(got[k].payload, ring.log(other, "t")[k].payload);
    }
  }
}
}  // namespace
}  // namespace peter::pubsub::testing

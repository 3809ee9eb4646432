// Scribe driven by hand through a fake overlay: joins caught in Forward,
// acks only once attached, the path-to-root check that refuses loops; the
// root recognising resent publishes and confirming publishes once its
// replicas hold them, a former root passing a publish on, and the
// bottleneck remover's choices.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pubsub/scribe.h"
#include "pubsub/topic_id.h"
#include "pubsub/wire/codec.h"
#include "tests/pubsub/fake_overlay.h"

namespace peter::pubsub {
namespace {

using testing::Handle;

class ScribeLoopTest : public testing::ScribeOnFakeOverlay {
 protected:
  explicit ScribeLoopTest(ScribeOptions options = {}) : ScribeOnFakeOverlay(options) {}

  // A message from `from` straight to us.
  void Receive(const NodeHandle& from, const ScribeMessage& msg) {
    pastry::RouteMessage m{std::nullopt, from, from, 1, wire::Encode(msg)};
    scribe_.Deliver(m);
  }
  // A join from `joiner` passing through us; returns Forward's verdict.
  bool PassJoin(const NodeHandle& joiner, std::string& payload) {
    payload = wire::Encode(JoinMsg{topic_, joiner, false, 0});
    pastry::RouteMessage m{topic_, joiner, joiner, 1, payload};
    NodeHandle next = Handle(99);
    bool go_on = scribe_.Forward(m, next);
    payload = m.payload;
    return go_on;
  }

  // Subscribes locally and becomes the topic's root (own join delivered).
  void BecomeRoot() {
    SubscribeOptions options;
    options.on_message = [](const Delivery&) {};
    ASSERT_TRUE(scribe_.Subscribe("loops", options).ok());
    pastry::RouteMessage m{topic_, Handle(1), Handle(1), 0,
                           wire::Encode(JoinMsg{topic_, Handle(1), false, 0})};
    scribe_.Deliver(m);
    ASSERT_TRUE(scribe_.IsRoot("loops"));
  }
  // The states (Replicates marked as a hand-over) sent to `to` so far: what
  // a replica answers a root behind it with.
  std::vector<ReplicateMsg> StatesSentTo(const NodeHandle& to) {
    std::vector<ReplicateMsg> states;
    for (const auto& [r, hint] : SentOf<ReplicateMsg>()) {
      if (hint == to && r.handover) states.push_back(r);
    }
    return states;
  }
  // A peer half the ring away from the topic: farther from it than this
  // node (Handle(1)), so a rival root or replica that must hand over to it.
  NodeHandle FartherPeer(int n) const {
    NodeHandle h = Handle(n);
    h.id = NodeId(topic_.hi() ^ (uint64_t{1} << 63), topic_.lo());
    return h;
  }
  // Root with one replica peer and its lease: publish "mine" (request 1 of
  // Handle(7)) is numbered #1 and waits for the replica.
  void RootWithAWaitingPublish() {
    overlay_->replicas = {Handle(5)};
    BecomeRoot();
    GrantLeases();
    DeliverPublish(PublishMsg{topic_, "mine", Handle(7), 1});
    ASSERT_EQ(scribe_.stats().published, 1u);
  }
  // Every replica grants the leases asked for so far.
  void GrantLeases() {
    for (const auto& [ask, to] : SentOf<ReplicateMsg>()) {
      if (ask.lease != 0 && to.has_value()) {
        Receive(*to, ReplicaAckMsg{ask.topic, ask.lease});
      }
    }
  }
  // Every replica confirms holding the messages sent to it so far.
  void ConfirmReplicas() {
    for (const auto& [r, to] : SentOf<ReplicateMsg>()) {
      if (r.messages.empty() || !to.has_value()) continue;
      Receive(*to, ReplicaAckMsg{r.topic, 0, r.messages.front().seq, r.messages.back().seq});
    }
  }
  // The publish acknowledgements sent so far are `n`, in number order, for
  // requests 1..n of one publisher, numbered #1..#n.
  void ExpectAcksInOrder(size_t n) {
    auto acks = SentOf<PublishAckMsg>();
    ASSERT_EQ(acks.size(), n);
    for (uint64_t k = 0; k < n; ++k) {
      EXPECT_EQ(acks[k].first.seq, k + 1);
      EXPECT_EQ(acks[k].first.request, k + 1);
    }
  }
  // A publish routed to us as the key's root.
  void DeliverPublish(const PublishMsg& publish) {
    pastry::RouteMessage m{topic_, publish.publisher, publish.publisher, 2,
                           wire::Encode(publish)};
    scribe_.Deliver(m);
  }

  const TopicId topic_ = TopicIdOf("loops");
};

TEST_F(ScribeLoopTest, ForwardAdoptsRewritesTheJoinAndAcksOnceAttached) {
  const NodeHandle child = Handle(2), parent = Handle(3), root = Handle(4);
  std::string payload;
  EXPECT_TRUE(PassJoin(child, payload));  // goes on, as our own join
  JoinMsg own = std::get<JoinMsg>(wire::Decode(payload).value());
  EXPECT_EQ(own.joiner, Handle(1));
  EXPECT_TRUE(SentOf<JoinAckMsg>().empty());  // not on the tree yet

  Receive(parent, JoinAckMsg{topic_, {parent.id, root.id}, 7});
  auto acks = SentOf<JoinAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].second, child);
  EXPECT_EQ(acks[0].first.path, (std::vector<NodeId>{Handle(1).id, parent.id, root.id}));
  EXPECT_EQ(acks[0].first.next_seq, 7u);

  // A second join for the topic is consumed here and acknowledged at once.
  EXPECT_FALSE(PassJoin(Handle(5), payload));
  EXPECT_EQ(SentOf<JoinAckMsg>().size(), 2u);
}

TEST_F(ScribeLoopTest, AckWhosePathContainsUsIsRefused) {
  SubscribeOptions options;
  options.on_message = [](const Delivery&) {};
  ASSERT_TRUE(scribe_.Subscribe("loops", options).ok());
  ASSERT_EQ(SentOf<JoinMsg>().size(), 1u);
  const NodeHandle parent = Handle(3);
  Receive(parent, JoinAckMsg{topic_, {parent.id, Handle(1).id, Handle(4).id}, 1});
  EXPECT_FALSE(scribe_.IsAttached("loops"));
  auto leaves = SentOf<LeaveMsg>();
  ASSERT_EQ(leaves.size(), 1u);
  EXPECT_EQ(leaves[0].second, parent);
  EXPECT_EQ(scribe_.stats().loops_refused, 1u);
}

// A parent that was paused or cut off long enough for us to join another
// parent still counts us as a child when it comes back, and sends us every
// message until child_timeout (the chaos soak's daemons dropped 2-3 copies
// of each message so). Its data is taken but answered with a Leave; an
// ancestor's (a repair) and the new parent's are not.
TEST_F(ScribeLoopTest, DataFromAFormerParentIsAnsweredWithALeave) {
  std::vector<uint64_t> got;
  SubscribeOptions options;
  options.on_message = [&](const Delivery& d) { got.push_back(d.seq); };
  ASSERT_TRUE(scribe_.Subscribe("loops", options).ok());
  const NodeHandle old_parent = Handle(3), parent = Handle(5), root = Handle(4);
  Receive(old_parent, JoinAckMsg{topic_, {old_parent.id, root.id}, 1});
  ASSERT_TRUE(scribe_.IsAttached("loops"));
  Receive(old_parent, DataMsg{topic_, 1, "a"});  // our parent: no Leave

  // The old parent stopped answering; we joined through another.
  Receive(old_parent, HeartbeatReplyMsg{{TopicStatus{topic_, false, {}, 0}}});
  ASSERT_FALSE(scribe_.IsAttached("loops"));
  Receive(old_parent, DataMsg{topic_, 2, "b"});  // joining: it may be our next parent
  Receive(parent, JoinAckMsg{topic_, {parent.id, root.id}, 3});
  ASSERT_TRUE(scribe_.IsAttached("loops"));
  ASSERT_TRUE(SentOf<LeaveMsg>().empty());

  Receive(parent, DataMsg{topic_, 3, "c"});
  Receive(root, DataMsg{topic_, 4, "d"});  // an ancestor serving a repair
  EXPECT_TRUE(SentOf<LeaveMsg>().empty());
  Receive(old_parent, DataMsg{topic_, 5, "e"});
  auto leaves = SentOf<LeaveMsg>();
  ASSERT_EQ(leaves.size(), 1u);
  EXPECT_EQ(leaves[0].second, old_parent);
  EXPECT_EQ(scribe_.stats().stale_parents_left, 1u);
  EXPECT_EQ(got, (std::vector<uint64_t>{1, 2, 3, 4, 5}));  // its data still counts
}

TEST_F(ScribeLoopTest, JoinFromANodeOnOurPathPassesThrough) {
  SubscribeOptions options;
  options.on_message = [](const Delivery&) {};
  ASSERT_TRUE(scribe_.Subscribe("loops", options).ok());
  const NodeHandle parent = Handle(3), root = Handle(4);
  Receive(parent, JoinAckMsg{topic_, {parent.id, root.id}, 1});
  ASSERT_TRUE(scribe_.IsAttached("loops"));
  std::string payload;
  EXPECT_TRUE(PassJoin(root, payload));  // not adopted: it would be a loop
  EXPECT_EQ(std::get<JoinMsg>(wire::Decode(payload).value()).joiner, root);
  EXPECT_EQ(scribe_.ChildCount("loops"), 0u);
  EXPECT_EQ(scribe_.stats().loops_refused, 1u);

  // A heartbeat reply whose path now runs through us: leave and re-join.
  Receive(parent, HeartbeatReplyMsg{{TopicStatus{topic_, true, {parent.id, Handle(1).id}, 1}}});
  EXPECT_FALSE(scribe_.IsAttached("loops"));
  EXPECT_EQ(SentOf<JoinMsg>().size(), 2u);
}

// A publish resent after a lost acknowledgement is numbered once and
// acknowledged again with the same number; one resent while its replicas
// have not confirmed it yet is acknowledged once, when they have.
TEST_F(ScribeLoopTest, RootNumbersAResentPublishOnce) {
  overlay_->replicas = {Handle(9)};
  BecomeRoot();
  GrantLeases();
  const NodeHandle publisher = Handle(2);
  DeliverPublish(PublishMsg{topic_, "x", publisher, 7});
  DeliverPublish(PublishMsg{topic_, "x", publisher, 7});
  DeliverPublish(PublishMsg{topic_, "y", publisher, 8});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());  // the replica holds neither yet
  EXPECT_EQ(scribe_.stats().publish_acks_waiting_replicas, 2u);
  ConfirmReplicas();
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].second, publisher);
  EXPECT_EQ(acks[0].first.request, 7u);
  EXPECT_EQ(acks[0].first.seq, 1u);
  EXPECT_EQ(acks[1].first.seq, 2u);
  DeliverPublish(PublishMsg{topic_, "x", publisher, 7});  // its ack was lost
  acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[2].first.seq, 1u);  // at once: confirmed before
  EXPECT_EQ(scribe_.stats().published, 2u);
  EXPECT_EQ(scribe_.stats().publishes_deduplicated, 2u);
  // A plain publish without origin (an older node's) asks for nothing.
  DeliverPublish(PublishMsg{topic_, "z", {}, 0});
  EXPECT_EQ(SentOf<PublishAckMsg>().size(), 3u);
  EXPECT_EQ(scribe_.stats().published, 3u);
  // A best-effort publish with an origin: numbered once however often the
  // overlay delivers it, never acknowledged.
  DeliverPublish(PublishMsg{topic_, "w", publisher, 10, /*want_ack=*/false});
  DeliverPublish(PublishMsg{topic_, "w", publisher, 10, /*want_ack=*/false});
  ConfirmReplicas();
  EXPECT_EQ(SentOf<PublishAckMsg>().size(), 3u);
  EXPECT_EQ(scribe_.stats().published, 4u);
  EXPECT_EQ(scribe_.stats().publishes_deduplicated, 3u);
  EXPECT_EQ(scribe_.stats().publish_acks_waiting_replicas, 2u);
  // The replicas learn who published what, so a new root recognises it too.
  bool carried = false;
  for (const auto& [r, to] : SentOf<ReplicateMsg>()) {
    for (const StoredMessage& m : r.messages) {
      if (m.seq == 2) carried = m.publisher == publisher.id && m.request == 8;
    }
  }
  EXPECT_TRUE(carried);
}

// A run of publishes, each naming the one before (as a PublishRun is read),
// is numbered with two look-ups of origins per publish: its own (a resend?)
// and its predecessor's (publish order); StampChain does not look its own
// up again (it did: three). A publish that waited for its predecessor is
// still looked up when the chain reaches it: a resend of it made meanwhile
// without a predecessor (SendPublish names none once the one before is
// acknowledged) was numbered, and it is acknowledged, not numbered twice.
TEST_F(ScribeLoopTest, RunIsNumberedWithTwoOriginLookupsPerPublish) {
  overlay_->replicas = {Handle(9)};
  BecomeRoot();
  GrantLeases();
  const NodeHandle publisher = Handle(2);
  constexpr uint64_t kRun = 16;
  const uint64_t before = scribe_.stats().origin_lookups;
  for (uint64_t request = 1; request <= kRun; ++request) {
    PublishMsg publish{topic_, "p", publisher, request};
    publish.after = request - 1;
    DeliverPublish(publish);
  }
  EXPECT_EQ(scribe_.stats().published, kRun);
  EXPECT_EQ(scribe_.stats().origin_lookups - before, 2 * kRun - 1);  // #1 names none

  // 19 overtakes 18 and waits; a resend of 19 naming none is numbered; then
  // 18 comes, and the chain reaches the waiting 19: acknowledged as numbered.
  PublishMsg overtaking{topic_, "q", publisher, kRun + 3};
  overtaking.after = kRun + 2;
  DeliverPublish(overtaking);
  EXPECT_EQ(scribe_.stats().publishes_held_for_order, 1u);
  DeliverPublish(PublishMsg{topic_, "q", publisher, kRun + 3});
  PublishMsg late{topic_, "r", publisher, kRun + 2};
  late.after = kRun;
  DeliverPublish(late);
  EXPECT_EQ(scribe_.stats().published, kRun + 2);
  EXPECT_EQ(scribe_.stats().publishes_deduplicated, 1u);
  ConfirmReplicas();
  size_t acks_of_19 = 0;
  for (const auto& [ack, to] : SentOf<PublishAckMsg>()) {
    if (ack.request == kRun + 3) {
      ++acks_of_19;
      EXPECT_EQ(ack.seq, kRun + 1);
    }
  }
  EXPECT_GE(acks_of_19, 1u);
}

// A new root recognises a resend of a publish its predecessor numbered and
// released (below the commit index it replicated), from the replicated
// state.
TEST_F(ScribeLoopTest, NewRootRecognisesAPublishItsPredecessorNumbered) {
  const NodeHandle old_root = Handle(3), publisher = Handle(2);
  Receive(old_root, ReplicateMsg{topic_, 6, false, {StoredMessage{5, "x", publisher.id, 9}},
                                 0, /*commit=*/6});
  DeliverPublish(PublishMsg{topic_, "x", publisher, 9});
  ASSERT_TRUE(scribe_.IsRoot("loops"));
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.seq, 5u);
  EXPECT_EQ(scribe_.stats().published, 0u);
}

// One its predecessor numbered and held back for the replicas (from the
// commit index on) is tentative at a new root, even one with no frontier
// of its own: the resend is acknowledged only once this root's replica
// peers hold the number. It used to be acknowledged at once, under a
// number the other side of a cut had released another message under
// (the root-fault sweep, seed 152).
TEST_F(ScribeLoopTest, NewRootAcknowledgesATentativeNumberOnlyOnceItsReplicasHoldIt) {
  const NodeHandle old_root = Handle(3), publisher = Handle(2);
  overlay_->replicas = {Handle(5)};
  Receive(old_root, ReplicateMsg{topic_, 6, false, {StoredMessage{5, "x", publisher.id, 9}},
                                 0, /*commit=*/5});
  DeliverPublish(PublishMsg{topic_, "x", publisher, 9});
  ASSERT_TRUE(scribe_.IsRoot("loops"));
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  GrantLeases();
  Receive(Handle(5), ReplicaAckMsg{topic_, 0, 5, 5});
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.seq, 5u);
  EXPECT_EQ(scribe_.stats().published, 0u);
}

// A replica replaces a tentative message (at or beyond the commit index it
// was told) with the one another root released under its number, and
// confirms it; a released one it never replaces.
TEST_F(ScribeLoopTest, ReplicaReplacesATentativeMessageWithAReleasedOne) {
  const NodeHandle cut_root = Handle(5), other_root = Handle(6), publisher = Handle(2);
  Receive(cut_root, ReplicateMsg{topic_, 3, false,
                                 {StoredMessage{1, "a", publisher.id, 1},
                                  StoredMessage{2, "b", publisher.id, 2}},
                                 0, /*commit=*/2});
  Receive(other_root, ReplicateMsg{topic_, 3, false,
                                   {StoredMessage{1, "c", publisher.id, 3},
                                    StoredMessage{2, "d", publisher.id, 4}},
                                   0, /*commit=*/3});
  EXPECT_EQ(scribe_.stats().replica_tentative_replaced, 1u);  // #2
  EXPECT_EQ(scribe_.stats().replica_conflicts, 1u);           // #1: released before
  Receive(other_root, ReplicateMsg{topic_, 3, false, {StoredMessage{2, "d", publisher.id, 4}},
                                   0, /*commit=*/3});
  auto confirms = SentOf<ReplicaAckMsg>();
  ASSERT_FALSE(confirms.empty());
  EXPECT_EQ(confirms.back().second, other_root);
  EXPECT_EQ(confirms.back().first.first, 2u);
  EXPECT_EQ(confirms.back().first.last, 2u);
}

// A replica answers a root that numbers behind it with its state first,
// then the acknowledgement carrying the lease: a root holding publishes for
// a lease numbers them as the lease arrives, and must know the replica's
// numbers by then. The acknowledgement used to go first (the root-fault
// sweep, seed 293; the lagged-heal sweep, seeds 160 and 260).
TEST_F(ScribeLoopTest, ReplicaSendsARootBehindItItsStateBeforeTheLease) {
  const NodeHandle old_root = Handle(3), new_root = Handle(5), publisher = Handle(2);
  Receive(old_root, ReplicateMsg{topic_, 6, false, {StoredMessage{5, "x", publisher.id, 9}},
                                 0, /*commit=*/5});
  overlay_->RunZeroDelayTimers();
  sent_.clear();
  Receive(new_root, ReplicateMsg{topic_, 1, false, {}, /*lease=*/4, 0});
  overlay_->RunZeroDelayTimers();
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].hint, new_root);
  const auto* state = std::get_if<ReplicateMsg>(&sent_[0].msg);
  ASSERT_NE(state, nullptr);
  EXPECT_TRUE(state->handover);
  EXPECT_EQ(state->next_seq, 6u);
  ASSERT_EQ(state->messages.size(), 1u);
  EXPECT_EQ(state->messages[0].seq, 5u);
  EXPECT_EQ(sent_[1].hint, new_root);
  const auto* ack = std::get_if<ReplicaAckMsg>(&sent_[1].msg);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->lease, 4u);
  EXPECT_EQ(scribe_.stats().replica_states_sent, 1u);
  // The root, still behind, asks again at once: the state is not sent
  // again within replica_resend_interval; the lease is renewed.
  sent_.clear();
  Receive(new_root, ReplicateMsg{topic_, 1, false, {}, /*lease=*/5, 0});
  auto acks = SentOf<ReplicaAckMsg>();
  ASSERT_EQ(sent_.size(), 1u);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.lease, 5u);
  EXPECT_EQ(scribe_.stats().replica_sends_limited, 1u);
}

// A replica that never saw a number (the hand-over of a fresh root that
// held its publishes, next number 1, nothing stored) does not make a node
// that becomes the root skip fresh_root_grace: it tells nothing of an older
// numbering. It used to let the node number from 1 at once (the root-fault
// sweep, seed 720). A replica that holds a number does.
TEST_F(ScribeLoopTest, AnEmptyReplicaDoesNotCancelTheFreshRootGrace) {
  const NodeHandle fresh_root = Handle(3), publisher = Handle(2);
  overlay_->replicas = {Handle(9)};
  Receive(fresh_root, ReplicateMsg{topic_, 1, /*handover=*/true, {}, 0, 0});
  DeliverPublish(PublishMsg{topic_, "x", publisher, 7});
  ASSERT_TRUE(scribe_.IsRoot("loops"));
  GrantLeases();
  ConfirmReplicas();
  EXPECT_EQ(scribe_.stats().published, 0u);  // held for the grace
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  // Once the grace has run out, the held publish goes first.
  overlay_->now += ScribeOptions{}.fresh_root_grace;
  DeliverPublish(PublishMsg{topic_, "y", publisher, 8});
  GrantLeases();
  ConfirmReplicas();
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].first.request, 7u);
  EXPECT_EQ(acks[0].first.seq, 1u);
  EXPECT_EQ(acks[1].first.request, 8u);
  EXPECT_EQ(acks[1].first.seq, 2u);
}

TEST_F(ScribeLoopTest, AReplicaThatHoldsANumberEndsTheFreshRootGrace) {
  const NodeHandle old_root = Handle(3), publisher = Handle(2);
  overlay_->replicas = {Handle(9)};
  Receive(old_root, ReplicateMsg{topic_, 3, /*handover=*/true,
                                 {StoredMessage{2, "w", publisher.id, 6}}, 0, /*commit=*/3});
  DeliverPublish(PublishMsg{topic_, "x", publisher, 7});
  ASSERT_TRUE(scribe_.IsRoot("loops"));
  GrantLeases();
  ConfirmReplicas();
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.seq, 3u);  // at once, after the numbers it held
}

// A publish sent straight to us as a cached root, when the overlay no longer
// makes us the root: it goes on, routed toward the topic.
TEST_F(ScribeLoopTest, FormerRootPassesADirectPublishOn) {
  BecomeRoot();
  overlay_->closest = Handle(9);
  sent_.clear();
  Receive(Handle(2), PublishMsg{topic_, "x", Handle(2), 4});
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].key, topic_);
  EXPECT_EQ(std::get<PublishMsg>(sent_[0].msg).request, 4u);
  EXPECT_EQ(scribe_.stats().publishes_rerouted, 1u);
  EXPECT_EQ(scribe_.stats().published, 0u);
  // Still the closest: numbered and acknowledged here.
  overlay_->closest = Handle(1);
  Receive(Handle(2), PublishMsg{topic_, "x", Handle(2), 5});
  EXPECT_EQ(SentOf<PublishAckMsg>().size(), 1u);
}

// A root with no replica peers that numbers at once (no fresh-root grace).
class ScribeBundleTest : public ScribeLoopTest {
 protected:
  static ScribeOptions NoGrace() {
    ScribeOptions options;
    options.fresh_root_grace = absl::ZeroDuration();
    return options;
  }
  ScribeBundleTest() : ScribeLoopTest(NoGrace()) {}
  // A frame from `from` written at `version` (its version field, at byte
  // 16 of a one-segment message, patched): `from` is taken for a node of
  // that version.
  void HearAt(const NodeHandle& from, uint16_t version) {
    scribe_.Deliver(pastry::RouteMessage{std::nullopt, from, from, 1,
                                         AtVersion(wire::Encode(LeaveMsg{topic_}), version)});
  }
  static std::string AtVersion(std::string bytes, uint16_t version) {
    bytes[16] = static_cast<char>(version);
    EXPECT_EQ(wire::DecodeReceived(bytes).value().version, version);
    return bytes;
  }
};

// Bundles (docs/scribe.md, "Bundles"). What a root sends one node in one
// batch of work -- here the acknowledgements of publishes to three topics --
// goes in one payload to a node that wrote to us at kBundleVersion (here
// version 3, before `listed` lists), in the order sent; a node heard
// at version 1, one not heard from, and another run
// (incarnation) of a bundle reader each get one payload per message, at once.
TEST_F(ScribeBundleTest, MessagesToOneNodeInOneBatchOfWorkGoInOneBundleIfItReadsThem) {
  NodeHandle reader = Handle(7), old = Handle(8), unheard = Handle(9), restarted = Handle(6);
  reader.incarnation = 3;
  restarted.incarnation = 4;
  HearAt(reader, kBatchVersion);  // before `listed` lists: a bundle
  Receive(restarted, LeaveMsg{topic_});
  // Version 1's frame: the root struct's data section starts at byte 16 of a
  // one-segment message (segment table, root pointer), its version first.
  std::string v1 = wire::Encode(LeaveMsg{topic_});
  v1[16] = 1;
  ASSERT_EQ(wire::DecodeReceived(v1).value().version, 1u);
  scribe_.Deliver(pastry::RouteMessage{std::nullopt, old, old, 1, v1});
  restarted.incarnation = 5;  // not heard from since it restarted
  sent_.clear();
  overlay_->payloads.clear();
  const std::vector<NodeHandle> publishers = {reader, old, unheard, restarted};
  for (size_t p = 0; p < publishers.size(); ++p) {
    for (uint64_t k = 0; k < 3; ++k) {
      const TopicId topic = TopicIdOf("bundle-" + std::to_string(k));
      // Routed here by another node (the publishers are not heard from here).
      PublishMsg publish{topic, "x", publishers[p], 10 * p + k + 1};
      scribe_.Deliver(pastry::RouteMessage{topic, Handle(2), Handle(2), 2,
                                           wire::Encode(publish)});
    }
  }
  // The other nodes' acknowledgements went at once, one payload each.
  EXPECT_EQ(overlay_->payloads.size(), 9u);
  for (const auto& [to, count] : overlay_->payloads) {
    EXPECT_NE(to, reader);
    EXPECT_EQ(count, 1u);
  }
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 12u);
  ASSERT_EQ(overlay_->payloads.size(), 10u);
  EXPECT_EQ(overlay_->payloads.back().first, reader);
  EXPECT_EQ(overlay_->payloads.back().second, 3u);
  for (uint64_t k = 0; k < 3; ++k) {
    EXPECT_EQ(acks[9 + k].second, reader);
    EXPECT_EQ(acks[9 + k].first.request, k + 1);  // in the order sent
  }
  EXPECT_EQ(scribe_.stats().bundles_sent, 1u);
  EXPECT_EQ(scribe_.stats().bundled_messages, 3u);
}

// A join rewritten on its way (a node without the topic's state routes its
// own join in its place, in Forward) keeps its source but carries the
// version of the node that rewrote it: it tells nothing of the source's. A
// version-1 source used to be taken for a bundle reader from it and sent a
// bundle it cannot read (here its three publish acknowledgements).
TEST_F(ScribeBundleTest, ARewrittenJoinDoesNotTellItsSourcesVersion) {
  const NodeHandle old = Handle(8), rewriter = Handle(3);
  std::string v1 = wire::Encode(LeaveMsg{topic_});
  v1[16] = 1;
  scribe_.Deliver(pastry::RouteMessage{std::nullopt, old, old, 1, v1});
  scribe_.Deliver(pastry::RouteMessage{topic_, old, rewriter, 2,
                                       wire::Encode(JoinMsg{topic_, rewriter, false, 0})});
  ASSERT_EQ(scribe_.ChildCount("loops"), 1u);
  SentOf<JoinAckMsg>();
  sent_.clear();
  overlay_->payloads.clear();
  for (uint64_t k = 0; k < 3; ++k) {
    const TopicId topic = TopicIdOf("rewritten-" + std::to_string(k));
    scribe_.Deliver(pastry::RouteMessage{topic, Handle(2), Handle(2), 2,
                                         wire::Encode(PublishMsg{topic, "x", old, k + 1})});
  }
  ASSERT_EQ(SentOf<PublishAckMsg>().size(), 3u);
  ASSERT_EQ(overlay_->payloads.size(), 3u);
  for (const auto& [to, count] : overlay_->payloads) {
    EXPECT_EQ(to, old);
    EXPECT_EQ(count, 1u);
  }
  EXPECT_EQ(scribe_.stats().bundles_sent, 0u);
}

// A routed message goes after what was queued before it for a bundle
// reader: told by a heartbeat reply that its path runs through us, a child
// leaves its parent and joins again, and the Leave is sent before the Join
// is routed (the parent must not see the join first and then drop us).
TEST_F(ScribeBundleTest, ARoutedJoinDoesNotOvertakeTheLeaveBeforeIt) {
  SubscribeOptions options;
  options.on_message = [](const Delivery&) {};
  ASSERT_TRUE(scribe_.Subscribe("loops", options).ok());
  const NodeHandle parent = Handle(3);
  Receive(parent, JoinAckMsg{topic_, {parent.id, Handle(4).id}, 1});
  ASSERT_TRUE(scribe_.IsAttached("loops"));
  overlay_->RunZeroDelayTimers();
  sent_.clear();
  Receive(parent, HeartbeatReplyMsg{{TopicStatus{topic_, true, {parent.id, Handle(1).id}, 1}}});
  // No zero-delay timer has run: what was sent so far, in order.
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<LeaveMsg>(sent_[0].msg));
  EXPECT_EQ(sent_[0].hint, parent);
  EXPECT_TRUE(std::holds_alternative<JoinMsg>(sent_[1].msg));
  EXPECT_EQ(sent_[1].key, topic_);
}

// A lone message for a bundle reader is its own payload, which any version
// reads; a batch beyond kMaxBundleMessages is split.
TEST_F(ScribeBundleTest, BundlesAreBoundedAndALoneMessageIsNotOne) {
  const NodeHandle reader = Handle(7);
  Receive(reader, LeaveMsg{topic_});
  auto publish = [&](uint64_t request) {
    const TopicId topic = TopicIdOf("bound-" + std::to_string(request % 50));
    scribe_.Deliver(pastry::RouteMessage{topic, reader, reader, 2,
                                         wire::Encode(PublishMsg{topic, "x", reader, request})});
  };
  publish(1);
  SentOf<PublishAckMsg>();
  ASSERT_EQ(overlay_->payloads.size(), 1u);
  EXPECT_EQ(overlay_->payloads[0].second, 1u);
  EXPECT_EQ(scribe_.stats().bundles_sent, 0u);
  overlay_->payloads.clear();
  for (uint64_t r = 2; r < 2 + kMaxBundleMessages + 10; ++r) publish(r);
  EXPECT_EQ(SentOf<PublishAckMsg>().size(), kMaxBundleMessages + 11);
  ASSERT_EQ(overlay_->payloads.size(), 2u);
  EXPECT_EQ(overlay_->payloads[0].second, kMaxBundleMessages);
  EXPECT_EQ(overlay_->payloads[1].second, 10u);
}

// `listed` lists (version 4; docs/scribe.md, "Publish, data and
// PublishAck lists"): the data of N publishes to a topic whose only child is node
// `reader`, and their acknowledgements to `reader` (their publisher),
// numbered in one batch of work, go to it as one message -- one list of the
// 2N in the order sent, each built in place -- not a bundle of 2N messages
// each encoded on its own. A node heard at version 3 gets that bundle.
TEST_F(ScribeBundleTest, DataAndAcksToOneNodeInOneBatchOfWorkTravelAsOneList) {
  constexpr uint64_t kPublishes = 5;
  for (uint16_t version : {kScribeVersion, kBatchVersion}) {
    SCOPED_TRACE(version);
    const NodeHandle reader = Handle(version == kScribeVersion ? 7 : 8);
    const TopicId topic = TopicIdOf("listed-" + std::to_string(version));
    // Its join routed here (written at `version`, as all it sends): this
    // node becomes the topic's root, with `reader` its child.
    scribe_.Deliver(pastry::RouteMessage{
        topic, reader, reader, 2, AtVersion(wire::Encode(JoinMsg{topic, reader, false, 0}), version)});
    overlay_->RunZeroDelayTimers();
    sent_.clear();
    overlay_->raw.clear();
    const ScribeStats before = scribe_.stats();
    std::vector<ListedMsg> expected;
    for (uint64_t k = 1; k <= kPublishes; ++k) {
      scribe_.Deliver(pastry::RouteMessage{
          topic, reader, reader, 2,
          AtVersion(wire::Encode(PublishMsg{topic, "payload " + std::to_string(k), reader, k}),
                    version)});
      expected.push_back(DataMsg{topic, k, "payload " + std::to_string(k)});
      expected.push_back(PublishAckMsg{topic, k, k});
    }
    overlay_->RunZeroDelayTimers();
    ASSERT_EQ(overlay_->raw.size(), 1u);
    EXPECT_EQ(overlay_->raw[0].first, reader);
    EXPECT_EQ(overlay_->payloads.back().second, 2 * kPublishes);
    const ScribeStats& after = scribe_.stats();
    if (version == kScribeVersion) {
      EXPECT_EQ(overlay_->raw[0].second, wire::EncodeListed(expected));
      EXPECT_EQ(after.message_lists_sent - before.message_lists_sent, 1u);
      EXPECT_EQ(after.messages_listed - before.messages_listed, 2 * kPublishes);
      EXPECT_EQ(after.bundles_sent - before.bundles_sent, 0u);
    } else {
      absl::StatusOr<wire::Received> received = wire::DecodeReceived(overlay_->raw[0].second);
      ASSERT_TRUE(received.ok());
      EXPECT_EQ(received->reader_version, kBundleVersion);
      EXPECT_EQ(after.message_lists_sent - before.message_lists_sent, 0u);
      EXPECT_EQ(after.bundles_sent - before.bundles_sent, 1u);
    }
    EXPECT_EQ(after.messages_out - before.messages_out, 2 * kPublishes);
    EXPECT_EQ(after.data_forwarded - before.data_forwarded, kPublishes);
  }
}

// A `listed` list over wire::DecodeLimits::max_list, or with a
// malformed entry, is dropped whole and counted in `malformed`; none of its
// messages is handled. So is data numbered 0.
TEST_F(ScribeBundleTest, ABadListIsCountedAndDropped) {
  BecomeRoot();
  const ScribeStats before = scribe_.stats();
  const NodeHandle peer = Handle(7);
  const std::vector<ListedMsg> too_many(wire::DecodeLimits{}.max_list + 1,
                                          DataMsg{topic_, 1, "x"});
  scribe_.Deliver(
      pastry::RouteMessage{std::nullopt, peer, peer, 1, wire::EncodeListed(too_many)});
  EXPECT_EQ(scribe_.stats().malformed, 1u);
  std::string truncated = wire::EncodeListed({DataMsg{topic_, 1, "x"}, DataMsg{topic_, 2, "y"}});
  truncated.resize(truncated.size() - 8);
  scribe_.Deliver(pastry::RouteMessage{std::nullopt, peer, peer, 1, truncated});
  EXPECT_EQ(scribe_.stats().malformed, 2u);
  // Data numbered 0 (a root numbers from 1) is malformed, not a duplicate.
  scribe_.Deliver(
      pastry::RouteMessage{std::nullopt, peer, peer, 1, wire::Encode(DataMsg{topic_, 0, "z"})});
  EXPECT_EQ(scribe_.stats().malformed, 3u);
  EXPECT_EQ(scribe_.stats().messages_in, before.messages_in);
  EXPECT_EQ(scribe_.stats().duplicates, before.duplicates);
}

// Lists of Replicates and ReplicaAcks (version 3; docs/scribe.md, "Replicate
// and ReplicaAck lists"): a root that numbers now (no fresh-root grace, no
// lease to wait for), its replica peer Handle(5).
class ScribeListTest : public ScribeLoopTest {
 protected:
  static ScribeOptions NoWait() {
    ScribeOptions options;
    options.fresh_root_grace = absl::ZeroDuration();
    options.root_lease = absl::ZeroDuration();
    return options;
  }
  ScribeListTest() : ScribeLoopTest(NoWait()) { overlay_->replicas = {replica_}; }
  // Routed publishes to two topics in one batch of work, numbered here: the
  // numbers replicated by one FlushReplicates. The first publish to a topic
  // makes this node its root, which sends its replica the topic's state on
  // its own: that is done first, and forgotten.
  void PublishToTwoTopics() {
    for (uint64_t request : {1, 3}) {
      overlay_->RunZeroDelayTimers();
      overlay_->raw.clear();
      sent_.clear();
      before_ = scribe_.stats();
      for (uint64_t k = 0; k < 2; ++k) {
        const TopicId topic = TopicIdOf("list-" + std::to_string(k));
        scribe_.Deliver(pastry::RouteMessage{
            topic, Handle(2), Handle(2), 2,
            wire::Encode(PublishMsg{topic, "x", Handle(7), request + k})});
      }
    }
  }
  // The payloads sent to the replica peer, once the zero-delay timers ran.
  std::vector<std::string> ToReplica() {
    overlay_->RunZeroDelayTimers();
    std::vector<std::string> out;
    for (const auto& [to, bytes] : overlay_->raw) {
      if (to == replica_) out.push_back(bytes);
    }
    return out;
  }
  // A version-2 frame from `from` (the version field patched as in
  // ScribeBundleTest): what a node before lists writes.
  void HearAtVersionTwo(const NodeHandle& from) {
    scribe_.Deliver(
        pastry::RouteMessage{std::nullopt, from, from, 1, AtVersionTwo(wire::Encode(LeaveMsg{topic_}))});
  }
  // A one-segment message as version 2 writes it: its version field (at
  // byte 16, as in ScribeBundleTest) set to 2.
  static std::string AtVersionTwo(std::string bytes) {
    bytes[16] = 2;
    EXPECT_EQ(wire::DecodeReceived(bytes).value().version, 2u);
    return bytes;
  }

  const NodeHandle replica_ = Handle(5);
  ScribeStats before_;  // before PublishToTwoTopics' second round
};

// Two topics' numbers of one batch of work go to a replica peer that reads
// lists as one message, a list of the two Replicates in the order made
// (not a bundle of two Replicates, as version 2 sent them).
TEST_F(ScribeListTest, TwoTopicsNumbersGoToAReplicaInOneMessage) {
  Receive(replica_, LeaveMsg{topic_});  // heard at kScribeVersion
  PublishToTwoTopics();
  const std::vector<std::string> payloads = ToReplica();
  ASSERT_EQ(payloads.size(), 1u);
  std::vector<const ReplicateMsg*> sent;
  const auto replicates = SentOf<ReplicateMsg>();
  for (const auto& [r, to] : replicates) {
    if (to == replica_) sent.push_back(&r);
  }
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_NE(sent[0]->topic, sent[1]->topic);
  EXPECT_EQ(sent[0]->messages.size(), 1u);
  EXPECT_EQ(payloads[0], wire::EncodeReplicates(sent));
  EXPECT_EQ(scribe_.stats().replicate_lists_sent - before_.replicate_lists_sent, 1u);
  EXPECT_EQ(scribe_.stats().replicates_listed - before_.replicates_listed, 2u);
  EXPECT_EQ(scribe_.stats().bundles_sent - before_.bundles_sent, 0u);
}

// A replica peer heard at version 2 gets each topic's Replicate as its own
// message (here the two in one bundle), never a list it cannot read.
TEST_F(ScribeListTest, AVersionTwoReplicaGetsOneReplicatePerTopic) {
  HearAtVersionTwo(replica_);
  PublishToTwoTopics();
  const std::vector<std::string> payloads = ToReplica();
  ASSERT_EQ(payloads.size(), 1u);
  absl::StatusOr<wire::Received> received = wire::DecodeReceived(payloads[0]);
  ASSERT_TRUE(received.ok());
  EXPECT_EQ(received->reader_version, kBundleVersion);
  EXPECT_EQ(received->messages.size(), 2u);
  EXPECT_EQ(scribe_.stats().replicate_lists_sent, 0u);
  EXPECT_EQ(scribe_.stats().bundles_sent - before_.bundles_sent, 1u);
}

// As a replica: the Replicates of two topics read from one payload (a
// list) are each stored as if they had come alone, and answered with one
// list of the two ReplicaAcks, in order, to a root that reads lists; a
// root heard at version 2 gets a bundle of two ReplicaAcks. A lone ack is
// a ReplicaAck of its own.
TEST_F(ScribeListTest, AReplicaAnswersAListOfReplicatesWithOneListOfAcks) {
  const NodeHandle root = Handle(3), old_root = Handle(4);
  // Two topics' Replicates, numbers 1 and 2 of each.
  auto two_topics = [](const std::string& prefix) {
    std::vector<ReplicateMsg> replicates;
    for (uint64_t k = 0; k < 2; ++k) {
      ReplicateMsg r{TopicIdOf(prefix + std::to_string(k)), 3, false, {}, 0, 1, 1, NodeId()};
      r.messages.push_back(StoredMessage{1, "a", Handle(7).id, 10 + k, 1});
      r.messages.push_back(StoredMessage{2, "b", Handle(7).id, 20 + k, 1});
      replicates.push_back(r);
    }
    return replicates;
  };
  const std::vector<ReplicateMsg> replicates = two_topics("held-");
  const std::vector<const ReplicateMsg*> both = {&replicates[0], &replicates[1]};
  Receive(root, LeaveMsg{topic_});
  HearAtVersionTwo(old_root);
  overlay_->RunZeroDelayTimers();
  overlay_->raw.clear();
  scribe_.Deliver(pastry::RouteMessage{std::nullopt, root, root, 1, wire::EncodeReplicates(both)});
  overlay_->RunZeroDelayTimers();
  ASSERT_EQ(overlay_->raw.size(), 1u);
  EXPECT_EQ(overlay_->raw[0].first, root);
  const std::vector<ReplicaAckMsg> acks = {{replicates[0].topic, 0, 1, 2},
                                           {replicates[1].topic, 0, 1, 2}};
  EXPECT_EQ(overlay_->raw[0].second, wire::EncodeReplicaAcks(acks));
  EXPECT_EQ(scribe_.stats().replica_ack_lists_sent, 1u);
  EXPECT_EQ(scribe_.stats().replica_acks_listed, 2u);
  EXPECT_EQ(scribe_.stats().malformed, 0u);

  overlay_->raw.clear();
  const std::vector<ReplicateMsg> others = two_topics("old-");
  scribe_.Deliver(pastry::RouteMessage{
      std::nullopt, old_root, old_root, 1,
      AtVersionTwo(wire::EncodeBundle({wire::Encode(others[0]), wire::Encode(others[1])}))});
  overlay_->RunZeroDelayTimers();
  ASSERT_EQ(overlay_->raw.size(), 1u);
  EXPECT_EQ(overlay_->raw[0].first, old_root);
  EXPECT_EQ(overlay_->raw[0].second,
            wire::EncodeBundle({wire::Encode(ReplicaAckMsg{others[0].topic, 0, 1, 2}),
                                wire::Encode(ReplicaAckMsg{others[1].topic, 0, 1, 2})}));

  overlay_->raw.clear();
  ReplicateMsg lone = two_topics("lone-")[0];
  Receive(root, lone);
  overlay_->RunZeroDelayTimers();
  ASSERT_EQ(overlay_->raw.size(), 1u);
  EXPECT_EQ(overlay_->raw[0].second, wire::Encode(ReplicaAckMsg{lone.topic, 0, 1, 2}));
  EXPECT_EQ(scribe_.stats().replica_ack_lists_sent, 1u);
}

// A malformed list drops its whole payload, counted once; nothing of it is
// stored or answered.
TEST_F(ScribeListTest, AMalformedListIsCountedAndDropped) {
  const NodeHandle root = Handle(3);
  ReplicateMsg r{TopicIdOf("held-0"), 3, false, {}, 0, 1, 1, NodeId()};
  r.messages.push_back(StoredMessage{1, "a", Handle(7).id, 10, 1});
  const ReplicateMsg* two[] = {&r, &r};
  std::string bad = wire::EncodeReplicates(two);
  bad.resize(bad.size() - 8);
  overlay_->raw.clear();
  scribe_.Deliver(pastry::RouteMessage{std::nullopt, root, root, 1, bad});
  overlay_->RunZeroDelayTimers();
  EXPECT_EQ(scribe_.stats().malformed, 1u);
  EXPECT_TRUE(overlay_->raw.empty());
}

class ScribeBottleneckTest : public ScribeLoopTest {
 protected:
  static ScribeOptions Small() {
    ScribeOptions options;
    options.max_children = 3;
    return options;
  }
  ScribeBottleneckTest() : ScribeLoopTest(Small()) {}
  void Heartbeat(const NodeHandle& child, uint64_t rtt_micros) {
    Receive(child, HeartbeatMsg{{topic_}, rtt_micros});
  }
};

// At max_children a joiner is not refused: the child more than twice as far
// as the median is pushed down to the nearest sibling; a child that has not
// reported its round trip yet counts as farthest; push-downs spread over
// the siblings.
TEST_F(ScribeBottleneckTest, PushesTheFarthestChildToTheNearestSibling) {
  BecomeRoot();
  const NodeHandle a = Handle(2), b = Handle(3), c = Handle(4), d = Handle(5),
                   e = Handle(6);
  std::string payload;
  for (const NodeHandle& h : {a, b, c}) EXPECT_FALSE(PassJoin(h, payload));
  Heartbeat(a, 1000);
  Heartbeat(b, 2000);
  Heartbeat(c, 90000);
  sent_.clear();
  EXPECT_FALSE(PassJoin(d, payload));
  auto pushes = SentOf<PushDownMsg>();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].second, c);
  EXPECT_EQ(pushes[0].first.new_parent, a);
  EXPECT_EQ(SentOf<JoinAckMsg>().size(), 1u);  // d is in
  EXPECT_TRUE(SentOf<JoinNackMsg>().empty());
  EXPECT_EQ(scribe_.ChildCount("loops"), 4u);  // c served until it leaves
  Receive(c, LeaveMsg{topic_});
  EXPECT_EQ(scribe_.ChildCount("loops"), 3u);

  // d has not reported: it is the one pushed now, to b (a has had one).
  sent_.clear();
  EXPECT_FALSE(PassJoin(e, payload));
  pushes = SentOf<PushDownMsg>();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].second, d);
  EXPECT_EQ(pushes[0].first.new_parent, b);
  EXPECT_EQ(scribe_.stats().pushdowns, 2u);
  EXPECT_EQ(scribe_.stats().joins_refused, 0u);
}

// With every child near, the joiner itself is pushed down and never
// counted here.
TEST_F(ScribeBottleneckTest, PushesTheJoinerWhenTheChildrenAreNear) {
  BecomeRoot();
  std::string payload;
  for (uint64_t n : {2, 3, 4}) EXPECT_FALSE(PassJoin(Handle(n), payload));
  for (uint64_t n : {2, 3, 4}) Heartbeat(Handle(n), 1000 * n);
  sent_.clear();
  EXPECT_FALSE(PassJoin(Handle(7), payload));
  auto pushes = SentOf<PushDownMsg>();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].second, Handle(7));
  EXPECT_EQ(pushes[0].first.new_parent, Handle(2));
  EXPECT_TRUE(SentOf<JoinAckMsg>().empty());
  EXPECT_EQ(scribe_.ChildCount("loops"), 3u);
}

class ScribeMovingLimitTest : public ScribeLoopTest {
 protected:
  static ScribeOptions Small() {
    ScribeOptions options;
    options.max_children = 3;
    options.max_moving_children = 1;
    return options;
  }
  ScribeMovingLimitTest() : ScribeLoopTest(Small()) {}
};

// Children being pushed down stay in the table until they leave; a stream
// of joiners, each farther (unreported) than the last, would add one each.
// At max_moving_children the joiner itself is pushed, counted, and the
// table stops growing; once the moving child leaves, a farther child is
// moved again.
TEST_F(ScribeMovingLimitTest, PushedDownChildrenAreBounded) {
  BecomeRoot();
  std::string payload;
  for (uint64_t n : {2, 3, 4}) EXPECT_FALSE(PassJoin(Handle(n), payload));
  for (uint64_t n : {2, 3, 4}) Receive(Handle(n), HeartbeatMsg{{topic_}, 1000 * n});
  Receive(Handle(4), HeartbeatMsg{{topic_}, 90000});
  EXPECT_FALSE(PassJoin(Handle(5), payload));  // 4 is moved
  EXPECT_EQ(scribe_.ChildCount("loops"), 4u);
  overlay_->RunZeroDelayTimers();  // 4's push-down leaves in this batch of work
  sent_.clear();
  for (uint64_t n = 10; n < 30; ++n) EXPECT_FALSE(PassJoin(Handle(n), payload));
  EXPECT_EQ(scribe_.ChildCount("loops"), 4u);
  auto pushes = SentOf<PushDownMsg>();
  ASSERT_EQ(pushes.size(), 20u);
  for (size_t i = 0; i < pushes.size(); ++i) EXPECT_EQ(pushes[i].second, Handle(10 + i));
  EXPECT_EQ(scribe_.stats().pushdowns_limited, 20u);
  EXPECT_EQ(scribe_.stats().joins_refused, 0u);

  Receive(Handle(4), LeaveMsg{topic_});
  sent_.clear();
  EXPECT_FALSE(PassJoin(Handle(40), payload));
  pushes = SentOf<PushDownMsg>();
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].second, Handle(5));  // unreported: farthest
  EXPECT_EQ(scribe_.ChildCount("loops"), 4u);
  EXPECT_EQ(scribe_.stats().pushdowns_limited, 20u);
}

// The pushed child joins through its new parent while still attached, and
// switches without falling off the tree.
TEST_F(ScribeLoopTest, PushedChildMovesWithoutFallingOffTheTree) {
  int active_calls = 0;
  SubscribeOptions options;
  options.on_message = [](const Delivery&) {};
  options.on_active = [&](bool) { ++active_calls; };
  ASSERT_TRUE(scribe_.Subscribe("loops", options).ok());
  const NodeHandle parent = Handle(3), sibling = Handle(5), root = Handle(4);
  Receive(parent, JoinAckMsg{topic_, {parent.id, root.id}, 1});
  ASSERT_EQ(active_calls, 1);
  sent_.clear();
  Receive(parent, PushDownMsg{topic_, sibling});
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].hint, sibling);
  EXPECT_FALSE(sent_[0].key.has_value());
  EXPECT_EQ(std::get<JoinMsg>(sent_[0].msg).joiner, Handle(1));
  EXPECT_TRUE(scribe_.IsAttached("loops"));
  Receive(sibling, JoinAckMsg{topic_, {sibling.id, parent.id, root.id}, 1});
  auto leaves = SentOf<LeaveMsg>();
  ASSERT_EQ(leaves.size(), 1u);
  EXPECT_EQ(leaves[0].second, parent);
  EXPECT_TRUE(scribe_.IsAttached("loops"));
  EXPECT_EQ(active_calls, 1);
  EXPECT_EQ(scribe_.stats().moves, 1u);
  std::vector<TopicInfo> topics = scribe_.Topics();
  ASSERT_EQ(topics.size(), 1u);
  EXPECT_EQ(topics[0].parent_id_hex, sibling.id.ToHex());
  EXPECT_EQ(topics[0].name, "loops");
  EXPECT_EQ(topics[0].local_subscribers, 1u);
}

// Root leases. With replicas, a root numbers a publish only once every
// replica has granted it a lease (asked for with the replication).
TEST_F(ScribeLoopTest, RootNumbersOnlyUnderALeaseFromEveryReplica) {
  overlay_->replicas = {Handle(5), Handle(6)};
  BecomeRoot();
  auto asks = SentOf<ReplicateMsg>();
  ASSERT_EQ(asks.size(), 2u);
  ASSERT_NE(asks[0].first.lease, 0u);
  ASSERT_EQ(asks[0].second, Handle(5));
  ASSERT_EQ(asks[1].second, Handle(6));

  DeliverPublish(PublishMsg{topic_, "m", Handle(7), 11});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  Receive(Handle(5), ReplicaAckMsg{topic_, asks[0].first.lease});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());  // one replica is not enough
  Receive(Handle(6), ReplicaAckMsg{topic_, asks[1].first.lease});
  EXPECT_EQ(scribe_.stats().published, 1u);
  ConfirmReplicas();
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.request, 11u);
  EXPECT_EQ(acks[0].first.seq, 1u);
  EXPECT_EQ(scribe_.stats().lease_waits, 1u);

  // Under the lease the next publish is numbered at once.
  DeliverPublish(PublishMsg{topic_, "n", Handle(7), 12});
  EXPECT_EQ(scribe_.stats().published, 2u);
  ConfirmReplicas();
  ASSERT_EQ(SentOf<PublishAckMsg>().size(), 2u);
  EXPECT_EQ(SentOf<PublishAckMsg>()[1].first.seq, 2u);
}

// A replica grants a lease, then the overlay makes it the root (the old
// root looks dead): it must not number while the old root, perhaps only
// paused, may still number under that lease (time stands still here).
TEST_F(ScribeLoopTest, ReplicaThatGrantedALeaseWaitsBeforeNumbering) {
  const NodeHandle old_root = Handle(5);
  Receive(old_root, ReplicateMsg{topic_, 40, false, {}, /*lease=*/9});
  auto grants = SentOf<ReplicaAckMsg>();
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].second, old_root);
  EXPECT_EQ(grants[0].first.lease, 9u);

  DeliverPublish(PublishMsg{topic_, "m", Handle(7), 11});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
}

// A root that hands the role over cannot number any more: the lease it was
// granted no longer holds the new root back.
TEST_F(ScribeLoopTest, HandOverVoidsTheOldRootsLease) {
  const NodeHandle old_root = Handle(5);
  Receive(old_root, ReplicateMsg{topic_, 40, false, {}, /*lease=*/9});
  Receive(old_root, ReplicateMsg{topic_, 40, /*handover=*/true, {}});
  DeliverPublish(PublishMsg{topic_, "m", Handle(7), 11});
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.seq, 40u);  // the numbering goes on
}

// Two nodes numbered the topic as root (the closer one was paused or cut
// off). The closer one keeps the role and takes in the other's numbers
// from its hand-over: a
// resend of a publish the rival numbered is acknowledged with the rival's
// number, and new publishes are numbered after the rival's.
TEST_F(ScribeLoopTest, RootTakesInTheNumbersOfARivalRoot) {
  BecomeRoot();
  DeliverPublish(PublishMsg{topic_, "a", Handle(7), 1});
  ASSERT_EQ(SentOf<PublishAckMsg>().back().first.seq, 1u);

  // Half the ring away from the topic: farther from it than we are.
  const NodeHandle rival = FartherPeer(8);
  ASSERT_TRUE(NodeId::CloserTo(topic_, Handle(1).id, rival.id));
  // Its hand-over (it heard from us, the closer root) carries its numbers.
  Receive(rival, ReplicateMsg{topic_, 6, /*handover=*/true,
                               {StoredMessage{5, "r", Handle(8).id, 3}}});
  EXPECT_EQ(scribe_.stats().rival_roots_merged, 1u);

  DeliverPublish(PublishMsg{topic_, "r", Handle(8), 3});  // a resend
  EXPECT_EQ(SentOf<PublishAckMsg>().back().first.seq, 5u);
  EXPECT_EQ(scribe_.stats().publishes_deduplicated, 1u);
  DeliverPublish(PublishMsg{topic_, "b", Handle(7), 2});
  EXPECT_EQ(SentOf<PublishAckMsg>().back().first.seq, 6u);
}

// A state without a number's message (a replica's) moves the frontier past
// it; when the rival's state that has it, released (below its commit
// index), comes next, the root keeps it with its origin: a resend of its
// publish is acknowledged under that number, not numbered again (the
// root-fault sweep, seed 344: subscribers got it twice).
TEST_F(ScribeLoopTest, RootKeepsARivalsReleasedMessageBehindItsFrontier) {
  BecomeRoot();
  const NodeHandle rival = FartherPeer(8);
  ASSERT_TRUE(NodeId::CloserTo(topic_, Handle(1).id, rival.id));
  Receive(rival, ReplicateMsg{topic_, 6, /*handover=*/true, {}, 0, /*commit=*/4});
  Receive(rival, ReplicateMsg{topic_, 6, /*handover=*/true,
                               {StoredMessage{5, "r", Handle(8).id, 3}}, 0, /*commit=*/6});
  DeliverPublish(PublishMsg{topic_, "r", Handle(8), 3});  // a resend
  ASSERT_FALSE(SentOf<PublishAckMsg>().empty());
  EXPECT_EQ(SentOf<PublishAckMsg>().back().first.seq, 5u);
  EXPECT_EQ(scribe_.stats().published, 0u);
}

// A rival root's hand-over gives a number this root released (multicast
// and acknowledged) to another publish: the root keeps its own, and the
// rival's publish, resent, is numbered anew, not acknowledged with a
// number that names another message (the seed-1 soak, docs/chaos.md).
TEST_F(ScribeLoopTest, RivalsPublishUnderAKeptNumberIsNumberedAnew) {
  BecomeRoot();
  DeliverPublish(PublishMsg{topic_, "a", Handle(7), 1});
  ASSERT_EQ(SentOf<PublishAckMsg>().back().first.seq, 1u);
  const NodeHandle rival = FartherPeer(8);
  Receive(rival, ReplicateMsg{topic_, 2, /*handover=*/true,
                               {StoredMessage{1, "r", Handle(9).id, 3}}});
  DeliverPublish(PublishMsg{topic_, "r", Handle(9), 3});  // the resend
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[1].first.request, 3u);
  EXPECT_EQ(acks[1].first.seq, 2u);
  EXPECT_EQ(scribe_.stats().publishes_deduplicated, 0u);
}

// A root that lost every leaf-set neighbour (cut off, or the only node
// left) holds publishes for lone_root_grace after the loss: a successor may
// be numbering the topic on the other side of a cut. Then it numbers
// alone, what it held first.
TEST_F(ScribeLoopTest, RootThatLostEveryNeighbourHoldsForTheGrace) {
  BecomeRoot();
  scribe_.Update(Handle(5), /*joined=*/true);
  scribe_.Update(Handle(5), /*joined=*/false);  // its replica set is empty
  DeliverPublish(PublishMsg{topic_, "m", Handle(7), 11});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  EXPECT_EQ(scribe_.stats().lone_root_waits, 1u);
  overlay_->now += ScribeOptions{}.lone_root_grace - absl::Milliseconds(1);
  DeliverPublish(PublishMsg{topic_, "n", Handle(7), 12});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  overlay_->now += absl::Milliseconds(1);
  DeliverPublish(PublishMsg{topic_, "o", Handle(7), 13});
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 3u);
  for (uint64_t k = 0; k < 3; ++k) {
    EXPECT_EQ(acks[k].first.request, 11 + k);
    EXPECT_EQ(acks[k].first.seq, 1 + k);
  }
  EXPECT_EQ(scribe_.stats().lone_root_waits, 2u);
}

// A node that never had a neighbour (a one-node cluster) numbers at once.
TEST_F(ScribeLoopTest, RootThatNeverHadANeighbourNumbersAtOnce) {
  BecomeRoot();
  DeliverPublish(PublishMsg{topic_, "m", Handle(7), 11});
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.seq, 1u);
  EXPECT_EQ(scribe_.stats().lease_waits, 0u);
}

// A replica holding a message under a number does not confirm another
// root's different message under it: two roots gave the number.
TEST_F(ScribeLoopTest, ReplicaDoesNotConfirmAMessageItHoldsAnotherUnder) {
  Receive(Handle(5), ReplicateMsg{topic_, 2, false, {StoredMessage{1, "a", Handle(7).id, 1}}});
  Receive(Handle(6), ReplicateMsg{topic_, 2, false, {StoredMessage{1, "b", Handle(8).id, 1}}});
  Receive(Handle(6), ReplicateMsg{topic_, 2, false, {StoredMessage{1, "a", Handle(7).id, 1}}});
  auto acks = SentOf<ReplicaAckMsg>();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].second, Handle(5));
  EXPECT_EQ(acks[0].first.last, 1u);
  EXPECT_EQ(acks[1].second, Handle(6));  // the same message: confirmed
  EXPECT_EQ(acks[1].first.last, 1u);
  EXPECT_EQ(scribe_.stats().replica_conflicts, 1u);
}

// Entry terms (docs/scribe.md, "Entry terms"). A replica that has seen a
// higher term, of a root it still has in its leaf set, gives a root of a
// lower term no confirmation and no lease, and sends it its state, which
// names the term and its root.
TEST_F(ScribeLoopTest, ReplicaRefusesALowerTermWhileItsRootLives) {
  const NodeHandle current = Handle(5), former = Handle(6);
  overlay_->replicas = {current, former};
  Receive(current, ReplicateMsg{topic_, 2, false, {StoredMessage{1, "a", Handle(7).id, 1, 0x20005}},
                                /*lease=*/9, /*commit=*/2, /*term=*/0x20005, {}});
  Receive(former, ReplicateMsg{topic_, 3, false,
                               {StoredMessage{2, "b", Handle(8).id, 1, 0x10006}},
                               /*lease=*/9, /*commit=*/2, /*term=*/0x10006, {}});
  auto acks = SentOf<ReplicaAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].second, current);
  EXPECT_EQ(scribe_.stats().replica_stale_terms, 1u);
  const std::vector<ReplicateMsg> states = StatesSentTo(former);
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].term, 0x20005u);
  EXPECT_EQ(states[0].term_root, current.id);
  ASSERT_EQ(states[0].messages.size(), 2u);
  EXPECT_EQ(states[0].messages[0].term, 0x20005u);
  EXPECT_EQ(states[0].messages[1].term, 0x10006u);
}

// Once the root of the higher term has left its leaf set (declared dead),
// the replica follows a root of a lower term again: a root that failed must
// not stall the topic.
TEST_F(ScribeLoopTest, ReplicaFollowsALowerTermOnceItsRootIsLost) {
  const NodeHandle lost = Handle(5), next = Handle(6);
  overlay_->replicas = {lost, next};
  Receive(lost, ReplicateMsg{topic_, 2, false, {}, 0, 1, /*term=*/0x20005, {}});
  overlay_->replicas = {next};
  Receive(next, ReplicateMsg{topic_, 3, false, {StoredMessage{2, "b", Handle(8).id, 1, 0x10006}},
                             /*lease=*/9, /*commit=*/2, /*term=*/0x10006, {}});
  auto acks = SentOf<ReplicaAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].second, next);
  EXPECT_EQ(acks[0].first.lease, 9u);
  EXPECT_EQ(acks[0].first.last, 2u);
  EXPECT_EQ(scribe_.stats().replica_stale_terms, 0u);
}

// A tentative entry this replica never confirmed (a refused root's) is
// replaced by the message of a root of a higher term, which it confirms.
TEST_F(ScribeLoopTest, HigherTermReplacesAnUnconfirmedTentativeEntry) {
  const NodeHandle current = Handle(5), former = Handle(6);
  overlay_->replicas = {current, former};
  Receive(current, ReplicateMsg{topic_, 1, false, {}, 0, 1, /*term=*/0x20005, {}});
  Receive(former, ReplicateMsg{topic_, 2, false, {StoredMessage{1, "old", Handle(8).id, 1, 0x10006}},
                               0, /*commit=*/1, /*term=*/0x10006, {}});
  Receive(current, ReplicateMsg{topic_, 2, false,
                                {StoredMessage{1, "new", Handle(7).id, 1, 0x20005}}, 0,
                                /*commit=*/1, /*term=*/0x20005, {}});
  auto acks = SentOf<ReplicaAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].second, current);
  EXPECT_EQ(acks[0].first.last, 1u);
  EXPECT_EQ(scribe_.stats().replica_tentative_replaced, 1u);
  EXPECT_EQ(scribe_.stats().replica_conflicts, 0u);
}

// An entry this replica confirmed to one root may be released by it: no
// other root's message replaces it, whatever its term; the other root is
// sent the state, which counts the confirmed entry as released.
TEST_F(ScribeLoopTest, ConfirmedEntryIsKeptAndSentAsReleased) {
  const NodeHandle first = Handle(5), second = Handle(6);
  overlay_->replicas = {first, second};
  Receive(first, ReplicateMsg{topic_, 2, false, {StoredMessage{1, "a", Handle(7).id, 1, 0x10005}},
                              0, /*commit=*/1, /*term=*/0x10005, {}});
  Receive(second, ReplicateMsg{topic_, 2, false,
                               {StoredMessage{1, "b", Handle(8).id, 1, 0x20006}}, 0,
                               /*commit=*/1, /*term=*/0x20006, {}});
  auto acks = SentOf<ReplicaAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].second, first);
  EXPECT_EQ(scribe_.stats().replica_conflicts, 1u);
  const std::vector<ReplicateMsg> states = StatesSentTo(second);
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].commit, 2u);
  ASSERT_EQ(states[0].messages.size(), 1u);
  EXPECT_EQ(states[0].messages[0].payload, "a");
}

// A root that merges a state naming a higher term of a root closer to the
// topic is deposed: it numbers nothing more (publishes are held) until it
// hands over, rather than out-bid that root's term.
TEST_F(ScribeLoopTest, RootIsDeposedByACloserRootsHigherTerm) {
  overlay_->replicas = {Handle(5)};
  BecomeRoot();
  GrantLeases();
  DeliverPublish(PublishMsg{topic_, "a", Handle(7), 1});
  ConfirmReplicas();
  ASSERT_EQ(SentOf<PublishAckMsg>().size(), 1u);
  const NodeId closer(topic_.hi(), topic_.lo());  // the topic's own id
  ASSERT_TRUE(NodeId::CloserTo(topic_, closer, Handle(1).id));
  // A replica's state (farther from the topic than us) naming that term.
  const NodeHandle replica = FartherPeer(8);
  Receive(replica, ReplicateMsg{topic_, 2, /*handover=*/true, {}, 0, /*commit=*/2,
                                 /*term=*/uint64_t{0x7fff} << 16, closer});
  ASSERT_TRUE(scribe_.IsRoot("loops"));
  DeliverPublish(PublishMsg{topic_, "b", Handle(7), 2});
  EXPECT_EQ(scribe_.stats().published, 1u);  // held
  GrantLeases();
  EXPECT_EQ(scribe_.stats().published, 1u);
}

// A root merging a rival's state takes the rival's tentative entry over its
// own waiting one only if it is of a higher term than its own: here the
// rival's is older, so the root keeps its own (its replicas replace the
// rival's: HigherTermReplacesAnUnconfirmedTentativeEntry) and releases it.
TEST_F(ScribeLoopTest, RootKeepsItsWaitingEntryOverALowerTermOne) {
  ASSERT_NO_FATAL_FAILURE(RootWithAWaitingPublish());
  const NodeHandle rival = FartherPeer(8);
  Receive(rival, ReplicateMsg{topic_, 2, /*handover=*/true,
                               {StoredMessage{1, "theirs", rival.id, 3, 1}}, 0, /*commit=*/1,
                               /*term=*/1, {}});
  EXPECT_EQ(scribe_.stats().numbers_withdrawn, 0u);
  ConfirmReplicas();
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.request, 1u);
  EXPECT_EQ(acks[0].first.seq, 1u);
}

// A rival root hands the topic back with this root's own waiting number
// under the same message: it took the topic over from a replica holding it
// and never released it (its commit index is below it). That is an echo,
// not a proof that the rival's replicas hold it: the number keeps waiting
// for this root's replicas (the root-fault sweep, seeds 596 and 692: the
// cut root released its held-back numbers at such a hand-over, while the
// other side's root had released other messages under them).
TEST_F(ScribeLoopTest, RootDoesNotReleaseItsOwnNumberEchoedByARivalRoot) {
  ASSERT_NO_FATAL_FAILURE(RootWithAWaitingPublish());
  const NodeHandle rival = FartherPeer(8);
  Receive(rival, ReplicateMsg{topic_, 2, /*handover=*/true,
                               {StoredMessage{1, "mine", Handle(7).id, 1, 0x10001}}, 0,
                               /*commit=*/1, /*term=*/0x20008, {}});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  ConfirmReplicas();
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.request, 1u);
  EXPECT_EQ(acks[0].first.seq, 1u);
}

// Such an echoed number a joining subscriber's frontier then passes was
// released where the subscriber had it (by a root that took it over as
// released from a replica that confirmed it here): it is released, as a
// taken-over number would be, not withdrawn as a number given twice (the
// root-fault sweep, seed 65: 24 numbers withdrawn, a gap at every
// subscriber).
TEST_F(ScribeLoopTest, RootReleasesAnEchoedNumberAJoinersFrontierPasses) {
  ASSERT_NO_FATAL_FAILURE(RootWithAWaitingPublish());
  const NodeHandle rival = FartherPeer(8);
  Receive(rival, ReplicateMsg{topic_, 2, /*handover=*/true,
                               {StoredMessage{1, "mine", Handle(7).id, 1, 0x10001}}, 0,
                               /*commit=*/1, /*term=*/0x20008, {}});
  ASSERT_TRUE(SentOf<PublishAckMsg>().empty());
  pastry::RouteMessage join{topic_, rival, rival, 1,
                            wire::Encode(JoinMsg{topic_, rival, true, /*frontier=*/2})};
  scribe_.Deliver(join);
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.request, 1u);
  EXPECT_EQ(acks[0].first.seq, 1u);
  EXPECT_EQ(scribe_.stats().numbers_withdrawn, 0u);
}

// A root holding a rival's tentative number as taken over (from the
// rival's hand-over) releases it once a replica's state shows it released
// under the same message (confirmed to its root): the root-fault sweep,
// seed 551, a deposed root held its successor's #248-#249 so while it
// multicast the later numbers, and its subtree skipped them (a gap). Its
// own echoed numbers a replica's state does not release
// (RootDoesNotReleaseItsOwnNumberEchoedByARivalRoot, and the sweep's seed
// 596: a replica counts what it confirmed to the echoing root as released).
TEST_F(ScribeLoopTest, RootReleasesATakenOverNumberAReplicasStateShowsReleased) {
  // A replica next to the rival, half the ring away: farther than us.
  NodeHandle replica = Handle(5);
  replica.id = NodeId(topic_.hi() ^ (uint64_t{1} << 63), topic_.lo() ^ 1);
  ASSERT_TRUE(NodeId::CloserTo(topic_, Handle(1).id, replica.id));
  overlay_->replicas = {replica};
  BecomeRoot();
  GrantLeases();
  const NodeHandle rival = FartherPeer(8);
  const StoredMessage theirs{1, "theirs", Handle(9).id, 3, 0x20008};
  Receive(rival, ReplicateMsg{topic_, 2, /*handover=*/true, {theirs}, 0, /*commit=*/1,
                               /*term=*/0x20008, {}});
  ASSERT_EQ(scribe_.stats().delivered, 0u);  // waits, taken over
  // Its replica's state: the same message under #1, released.
  Receive(replica, ReplicateMsg{topic_, 2, /*handover=*/true, {theirs}, 0, /*commit=*/2,
                                 /*term=*/0x20008, rival.id});
  EXPECT_EQ(scribe_.stats().delivered, 1u);
}

// The same number numbered alike, released by the rival (below its commit
// index): the rival's replicas held it, so it is released at the merge.
TEST_F(ScribeLoopTest, RootReleasesItsNumberTheRivalReleasedAlike) {
  ASSERT_NO_FATAL_FAILURE(RootWithAWaitingPublish());
  const NodeHandle rival = FartherPeer(8);
  Receive(rival, ReplicateMsg{topic_, 2, /*handover=*/true,
                               {StoredMessage{1, "mine", Handle(7).id, 1, 0x10001}}, 0,
                               /*commit=*/2, /*term=*/0x20008, {}});
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.request, 1u);
  EXPECT_EQ(acks[0].first.seq, 1u);
}

// A root numbered a publish it has not confirmed yet (its copies to the
// replicas were late) under a number a rival root also gave: the rival's
// message wins, and the publisher's resend is numbered anew.
TEST_F(ScribeLoopTest, RivalRootsMessageWinsOverAnUnconfirmedOne) {
  ASSERT_NO_FATAL_FAILURE(RootWithAWaitingPublish());
  const NodeHandle rival = FartherPeer(8);
  Receive(rival, ReplicateMsg{topic_, 2, /*handover=*/true,
                               {StoredMessage{1, "theirs", rival.id, 3}}});
  ConfirmReplicas();  // the replica's ack of #1 is for the rival's message now
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  DeliverPublish(PublishMsg{topic_, "mine", Handle(7), 1});  // the resend
  ConfirmReplicas();
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.request, 1u);
  EXPECT_EQ(acks[0].first.seq, 2u);
}

// Publish confirmation. A root acknowledges a publish once every node of
// its current replica set confirmed holding it: a replica that left the set
// no longer counts.
TEST_F(ScribeLoopTest, AckWaitsForEveryCurrentReplicaPeer) {
  overlay_->replicas = {Handle(5), Handle(6)};
  BecomeRoot();
  GrantLeases();
  DeliverPublish(PublishMsg{topic_, "x", Handle(7), 1});
  Receive(Handle(5), ReplicaAckMsg{topic_, 0, 1, 1});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());  // 6 has not confirmed
  Receive(Handle(5), ReplicaAckMsg{topic_, 0, 1, 1});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());  // nor does 5 count twice
  overlay_->replicas = {Handle(5)};  // 6 failed
  DeliverPublish(PublishMsg{topic_, "y", Handle(7), 2});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  Receive(Handle(5), ReplicaAckMsg{topic_, 0, 2, 2});
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[0].first.seq, 1u);
  EXPECT_EQ(acks[1].first.seq, 2u);
  EXPECT_EQ(scribe_.stats().publish_acks_waiting_replicas, 2u);
}

// A burst of publishes numbered in one batch of work goes to each replica
// peer in one Replicate carrying the run of numbers, in order; one
// ReplicaAck per peer naming the range releases them all, acknowledged in
// number order.
TEST_F(ScribeLoopTest, BatchOfNumbersIsReplicatedInOneMessageAndConfirmedByOneAck) {
  overlay_->replicas = {Handle(5), Handle(6)};
  BecomeRoot();
  GrantLeases();
  const size_t before = SentOf<ReplicateMsg>().size();
  for (uint64_t r = 1; r <= 5; ++r) {
    DeliverPublish(PublishMsg{topic_, "m" + std::to_string(r), Handle(7), r});
  }
  auto replicates = SentOf<ReplicateMsg>();
  ASSERT_EQ(replicates.size(), before + 2);  // one per replica peer
  for (size_t i = before; i < replicates.size(); ++i) {
    const ReplicateMsg& r = replicates[i].first;
    ASSERT_EQ(r.messages.size(), 5u);
    for (uint64_t k = 0; k < 5; ++k) {
      EXPECT_EQ(r.messages[k].seq, k + 1);
      EXPECT_EQ(r.messages[k].payload, "m" + std::to_string(k + 1));
      EXPECT_EQ(r.messages[k].request, k + 1);
    }
    EXPECT_EQ(r.next_seq, 6u);
  }
  EXPECT_EQ(replicates[before].second, Handle(5));
  EXPECT_EQ(replicates[before + 1].second, Handle(6));
  EXPECT_EQ(scribe_.stats().replicate_batches, 1u);
  Receive(Handle(5), ReplicaAckMsg{topic_, 0, 1, 5});
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());  // 6 has not confirmed
  Receive(Handle(6), ReplicaAckMsg{topic_, 0, 1, 5});
  ExpectAcksInOrder(5);
}

// A run of numbers is replicated and released walking the replay buffer:
// one search for a run's first number, then a step to the next entry (it
// was a search per number each way). A replica that confirms part of the
// range releases that part only, in order; once the other replica fails,
// the rest is released against the replica set left, in order.
TEST_F(ScribeLoopTest, RunIsReplicatedAndReleasedWithOneReplaySearchEach) {
  overlay_->replicas = {Handle(5), Handle(6)};
  BecomeRoot();
  GrantLeases();
  const uint64_t before = scribe_.stats().replay_searches;
  constexpr uint64_t kRun = 32;
  for (uint64_t r = 1; r <= kRun; ++r) {
    DeliverPublish(PublishMsg{topic_, "m" + std::to_string(r), Handle(7), r});
  }
  auto replicates = SentOf<ReplicateMsg>();
  ASSERT_EQ(replicates.back().first.messages.size(), kRun);
  EXPECT_EQ(replicates.back().first.messages.back().payload, "m32");
  EXPECT_EQ(scribe_.stats().replay_searches - before, 1u);  // a search each: 32
  // 6 holds only 1..12 (its ack of the rest lost, or not sent yet).
  Receive(Handle(5), ReplicaAckMsg{topic_, 0, 1, kRun});
  Receive(Handle(6), ReplicaAckMsg{topic_, 0, 1, 12});
  ExpectAcksInOrder(12);
  EXPECT_EQ(scribe_.stats().replay_searches - before, 2u);  // a search each: 44
  // 6 fails: 5 held the rest all along, and its next ack releases it.
  overlay_->replicas = {Handle(5)};
  Receive(Handle(5), ReplicaAckMsg{topic_, 0, 13, 14});
  ExpectAcksInOrder(kRun);
  EXPECT_EQ(scribe_.stats().replay_searches - before, 3u);  // a search each: 64
  EXPECT_EQ(scribe_.stats().delivered, kRun);
}

// Confirmations and leases from nodes outside the topic's replica set are
// ignored and counted: a peer naming ever new ids in ReplicaAcks cannot
// grow the root's lease table or a waiting message's holders, and they do
// not stand for the replica's own confirmation.
TEST_F(ScribeLoopTest, ReplicaAcksFromOutsideTheReplicaSetAreIgnored) {
  overlay_->replicas = {Handle(5)};
  BecomeRoot();
  GrantLeases();
  DeliverPublish(PublishMsg{topic_, "x", Handle(7), 1});
  for (int i = 0; i < 100; ++i) {
    Receive(Handle(100 + i), ReplicaAckMsg{topic_, 77, 1, 1});
  }
  EXPECT_EQ(scribe_.stats().replica_acks_ignored, 100u);
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  Receive(Handle(5), ReplicaAckMsg{topic_, 0, 1, 1});
  EXPECT_EQ(SentOf<PublishAckMsg>().size(), 1u);
  EXPECT_EQ(scribe_.stats().replica_acks_ignored, 100u);
}

// The replica side: a Replicate with messages is answered with the range
// it now holds (and the lease, if one was asked for); one without messages
// or lease is not answered.
TEST_F(ScribeLoopTest, ReplicaConfirmsTheMessagesItHolds) {
  const NodeHandle root = Handle(5), publisher = Handle(2);
  Receive(root, ReplicateMsg{topic_, 8, false,
                             {StoredMessage{6, "a", publisher.id, 3},
                              StoredMessage{7, "b", publisher.id, 4}}});
  Receive(root, ReplicateMsg{topic_, 8, false, {}});
  Receive(root, ReplicateMsg{topic_, 9, false, {StoredMessage{8, "c", publisher.id, 5}}, 77});
  auto confirms = SentOf<ReplicaAckMsg>();
  ASSERT_EQ(confirms.size(), 2u);
  EXPECT_EQ(confirms[0].second, root);
  EXPECT_EQ(confirms[0].first.lease, 0u);
  EXPECT_EQ(confirms[0].first.first, 6u);
  EXPECT_EQ(confirms[0].first.last, 7u);
  EXPECT_EQ(confirms[1].first.lease, 77u);
  EXPECT_EQ(confirms[1].first.first, 8u);
  EXPECT_EQ(confirms[1].first.last, 8u);
}

// A root that hands the role over sends none of the acknowledgements still
// waiting: the publishers resend to the new root, which knows the messages
// and their origins from the hand-over.
TEST_F(ScribeLoopTest, HandOverAbandonsWaitingAcks) {
  overlay_->replicas = {Handle(5)};
  BecomeRoot();
  GrantLeases();
  DeliverPublish(PublishMsg{topic_, "x", Handle(7), 1});
  NodeHandle closer = Handle(8);
  closer.id = topic_;
  scribe_.Update(closer, /*joined=*/true);
  ASSERT_FALSE(scribe_.IsRoot("loops"));
  ConfirmReplicas();
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  EXPECT_EQ(scribe_.stats().publish_acks_abandoned, 1u);
}

// The replay_capacity bound on numbers waiting for their replicas, the
// last resort behind the replica window: no publish is held for the window
// (max_pending_publishes 0: each one held is numbered past it at once).
class ScribeConfirmBoundTest : public ScribeLoopTest {
 protected:
  ScribeConfirmBoundTest()
      : ScribeLoopTest(ScribeOptions{.replay_capacity = 2, .max_pending_publishes = 0}) {}
};

// At most replay_capacity acknowledgements wait per topic: beyond it the
// oldest is sent unconfirmed, and counted.
TEST_F(ScribeConfirmBoundTest, WaitingAcksAreBoundedByTheReplayBuffer) {
  overlay_->replicas = {Handle(5)};
  BecomeRoot();
  GrantLeases();
  for (uint64_t r = 1; r <= 3; ++r) DeliverPublish(PublishMsg{topic_, "x", Handle(7), r});
  auto acks = SentOf<PublishAckMsg>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first.seq, 1u);
  EXPECT_EQ(scribe_.stats().publish_acks_unconfirmed, 1u);
  ConfirmReplicas();
  EXPECT_EQ(SentOf<PublishAckMsg>().size(), 3u);
}

// The number released unconfirmed at the bound is multicast with its
// message: it is released before the newest pushes it out of the replay
// buffer. Before, it was released after, without its message, and lost
// (the 3-node bench with 8 publishers lost 976 messages per case).
TEST_F(ScribeConfirmBoundTest, ANumberReleasedAtTheBoundKeepsItsMessage) {
  overlay_->replicas = {Handle(5)};
  std::vector<std::pair<uint64_t, std::string>> delivered;
  SubscribeOptions options;
  options.on_message = [&](const Delivery& d) { delivered.emplace_back(d.seq, d.payload); };
  ASSERT_TRUE(scribe_.Subscribe("loops", options).ok());
  scribe_.Deliver(pastry::RouteMessage{topic_, Handle(1), Handle(1), 0,
                                       wire::Encode(JoinMsg{topic_, Handle(1), false, 0})});
  ASSERT_TRUE(scribe_.IsRoot("loops"));
  GrantLeases();
  const std::vector<std::string> payloads = {"first", "second", "third", "fourth"};
  for (uint64_t r = 1; r <= payloads.size(); ++r) {
    DeliverPublish(PublishMsg{topic_, payloads[r - 1], Handle(7), r});
  }
  EXPECT_EQ(scribe_.stats().publish_acks_unconfirmed, 2u);
  ASSERT_EQ(delivered.size(), 2u);
  EXPECT_EQ(delivered[0], std::make_pair(uint64_t{1}, std::string("first")));
  EXPECT_EQ(delivered[1], std::make_pair(uint64_t{2}, std::string("second")));
  ConfirmReplicas();
  ASSERT_EQ(delivered.size(), 4u);
  EXPECT_EQ(delivered[2], std::make_pair(uint64_t{3}, std::string("third")));
  EXPECT_EQ(delivered[3], std::make_pair(uint64_t{4}, std::string("fourth")));
}

// Issue 6: the replica window is half the replay buffer (2 numbers here).
class ScribeWindowTest : public ScribeLoopTest {
 protected:
  explicit ScribeWindowTest(size_t max_held = 10000)
      : ScribeLoopTest(ScribeOptions{.replay_capacity = 4, .max_pending_publishes = max_held}) {}

  // Publishes 1..n of Handle(7), payloads "m1".., delivered at the root.
  void Burst(uint64_t n) {
    for (uint64_t r = 1; r <= n; ++r) {
      DeliverPublish(PublishMsg{topic_, "m" + std::to_string(r), Handle(7), r, true, r - 1});
    }
  }
  // The replica confirms what it was sent until every publish of the burst
  // is numbered (at most `rounds` times); returns the acknowledgements.
  std::vector<std::pair<PublishAckMsg, std::optional<NodeHandle>>> ConfirmAll(uint64_t n) {
    for (int round = 0; round < 100 && SentOf<PublishAckMsg>().size() < n; ++round) {
      ConfirmReplicas();
    }
    return SentOf<PublishAckMsg>();
  }
  // Confirms until the burst of `n` is acknowledged; each publish k (1..n)
  // must have got number k, in that order.
  void ExpectBurstNumberedInOrder(uint64_t n) {
    auto acks = ConfirmAll(n);
    ASSERT_EQ(acks.size(), n);
    for (uint64_t k = 0; k < n; ++k) {
      EXPECT_EQ(acks[k].first.request, k + 1);
      EXPECT_EQ(acks[k].first.seq, k + 1);
    }
  }
};

// A root whose replica confirms nothing yet holds the publishes beyond its
// window rather than numbering them past the replay buffer; each
// confirmation numbers as many as it freed. Every publish is numbered in
// arrival order and acknowledged once its replica holds it: none unconfirmed.
// Before, the burst's first 6 numbers were released unconfirmed.
TEST_F(ScribeWindowTest, ARootHoldsPublishesWhileItsReplicaWindowIsFull) {
  overlay_->replicas = {Handle(5)};
  BecomeRoot();
  GrantLeases();
  Burst(10);
  EXPECT_EQ(scribe_.stats().published, 2u);
  EXPECT_EQ(scribe_.stats().publishes_held_for_window, 8u);
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  ConfirmReplicas();  // frees the window: two more numbered
  EXPECT_EQ(scribe_.stats().published, 4u);
  EXPECT_EQ(SentOf<PublishAckMsg>().size(), 2u);
  ExpectBurstNumberedInOrder(10);
  EXPECT_EQ(scribe_.stats().published, 10u);
  EXPECT_EQ(scribe_.stats().publish_acks_unconfirmed, 0u);
  EXPECT_EQ(scribe_.stats().publishes_window_forced, 0u);
  EXPECT_EQ(scribe_.stats().dropped, 0u);
  // The replica got every message, in order.
  std::vector<std::string> replicated;
  for (const auto& [r, to] : SentOf<ReplicateMsg>()) {
    for (const StoredMessage& m : r.messages) replicated.emplace_back(m.payload);
  }
  ASSERT_EQ(replicated.size(), 10u);
  for (uint64_t k = 0; k < 10; ++k) EXPECT_EQ(replicated[k], "m" + std::to_string(k + 1));
}

// A resend of a held publish (its publisher's retry) is not held twice:
// numbered once, and acknowledged once the replica holds it.
TEST_F(ScribeWindowTest, AResendOfAHeldPublishIsNumberedOnce) {
  overlay_->replicas = {Handle(5)};
  BecomeRoot();
  GrantLeases();
  Burst(3);
  DeliverPublish(PublishMsg{topic_, "m3", Handle(7), 3});
  EXPECT_EQ(scribe_.stats().publishes_held_for_window, 1u);
  EXPECT_EQ(scribe_.stats().publishes_deduplicated, 1u);
  auto acks = ConfirmAll(3);
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[2].first.request, 3u);
  EXPECT_EQ(acks[2].first.seq, 3u);
  EXPECT_EQ(scribe_.stats().published, 3u);
  EXPECT_EQ(scribe_.stats().publishes_deduplicated, 1u);
}

class ScribeWindowHoldBoundTest : public ScribeWindowTest {
 protected:
  ScribeWindowHoldBoundTest() : ScribeWindowTest(/*max_held=*/3) {}
};

// Beyond max_pending_publishes held on the topic, the oldest held is
// numbered past the window (counted): the replay_capacity bound is then the
// last resort, and releases the oldest waiting number unconfirmed
// (counted). No publish is lost or numbered twice.
TEST_F(ScribeWindowHoldBoundTest, BeyondTheHoldBoundTheOldestIsNumberedPastTheWindow) {
  overlay_->replicas = {Handle(5)};
  BecomeRoot();
  GrantLeases();
  Burst(10);
  // 2 in the window, 3 held, 5 numbered past it: 7 numbers, 3 of them
  // released unconfirmed at replay_capacity (4).
  EXPECT_EQ(scribe_.stats().publishes_held_for_window, 8u);
  EXPECT_EQ(scribe_.stats().publishes_window_forced, 5u);
  EXPECT_EQ(scribe_.stats().published, 7u);
  EXPECT_EQ(scribe_.stats().publish_acks_unconfirmed, 3u);
  ExpectBurstNumberedInOrder(10);
  EXPECT_EQ(scribe_.stats().published, 10u);
  EXPECT_EQ(scribe_.stats().publish_acks_unconfirmed, 3u);
}

// A root that lost neighbours lately releases a number only once a full
// replica set (`replicas` peers) holds it: a leaf set that came back in
// part after a cut may lack the successor's replicas, and confirm numbers
// the successor gave to other publishes. lone_root_grace after the loss,
// the peers it has suffice again.
TEST_F(ScribeLoopTest, RootThatLostNeighboursReleasesOnlyAgainstAFullReplicaSet) {
  overlay_->replicas = {Handle(5), Handle(6), Handle(7), Handle(8)};
  scribe_.Update(Handle(8), /*joined=*/true);
  BecomeRoot();
  scribe_.Update(Handle(6), /*joined=*/false);
  overlay_->replicas = {Handle(5)};
  GrantLeases();
  DeliverPublish(PublishMsg{topic_, "x", Handle(9), 1});
  ASSERT_EQ(scribe_.stats().published, 1u);
  ConfirmReplicas();
  EXPECT_TRUE(SentOf<PublishAckMsg>().empty());
  overlay_->now += ScribeOptions{}.lone_root_grace;
  ConfirmReplicas();
  EXPECT_EQ(SentOf<PublishAckMsg>().size(), 1u);
}

class ScribeLeaseGrantLimitTest : public ScribeLoopTest {
 protected:
  ScribeLeaseGrantLimitTest() : ScribeLoopTest(ScribeOptions{.max_lease_grants = 2}) {}
  // The lease granted to `root`'s ask, or 0 if none was.
  uint64_t Ask(const NodeHandle& root, uint64_t lease) {
    const size_t before = SentOf<ReplicaAckMsg>().size();
    Receive(root, ReplicateMsg{topic_, 1, false, {}, lease});
    auto acks = SentOf<ReplicaAckMsg>();
    return acks.size() > before ? acks.back().first.lease : 0;
  }
};

// A replica holds at most max_lease_grants running leases per topic (peers
// naming ever new ids cannot grow the table): another root's ask is refused
// and counted, a renewal is not, and an expired grant makes room.
TEST_F(ScribeLeaseGrantLimitTest, GrantsBeyondTheBoundAreRefusedUntilOneExpires) {
  EXPECT_EQ(Ask(Handle(5), 1), 1u);
  overlay_->now += absl::Seconds(1);
  EXPECT_EQ(Ask(Handle(6), 2), 2u);
  EXPECT_EQ(Ask(Handle(7), 3), 0u);
  EXPECT_EQ(scribe_.stats().leases_refused, 1u);
  EXPECT_EQ(Ask(Handle(6), 4), 4u);  // a renewal, at the bound
  // Handle(5)'s grant (the first) runs out first.
  overlay_->now += ScribeOptions{}.root_lease - absl::Seconds(1) - absl::Milliseconds(1);
  EXPECT_EQ(Ask(Handle(7), 5), 0u);
  overlay_->now += absl::Milliseconds(1);
  EXPECT_EQ(Ask(Handle(7), 6), 6u);
  EXPECT_EQ(scribe_.stats().leases_refused, 2u);
}

// A replica ahead of a root that numbers behind it (restarted without its
// state) sends the root its state, as a hand-over. Every Replicate of the
// root shows it behind until that state arrives: the state goes to that
// root once per replica_resend_interval, not once per Replicate (it went
// 71-82 times per chaos soak), the rest counted; another root behind gets
// its own, and a send that was lost is repeated after the interval.
TEST_F(ScribeLoopTest, StateGoesToARootBehindOncePerResendInterval) {
  const NodeHandle old_root = Handle(5), restarted = Handle(6), other = Handle(7);
  const NodeHandle publisher = Handle(2);
  Receive(old_root, ReplicateMsg{topic_, 8, false,
                                 {StoredMessage{6, "a", publisher.id, 3},
                                  StoredMessage{7, "b", publisher.id, 4}}});
  auto states_to = [&](const NodeHandle& root) {
    int n = 0;
    for (const auto& [r, to] : SentOf<ReplicateMsg>()) {
      if (r.handover && to == root) {
        EXPECT_EQ(r.next_seq, 8u);
        EXPECT_EQ(r.messages.size(), 2u);
        ++n;
      }
    }
    return n;
  };
  for (uint64_t next = 1; next <= 5; ++next) {
    Receive(restarted, ReplicateMsg{topic_, next, false, {}});
    overlay_->now += absl::Milliseconds(100);
  }
  EXPECT_EQ(states_to(restarted), 1);
  EXPECT_EQ(scribe_.stats().replica_states_sent, 1u);
  EXPECT_EQ(scribe_.stats().replica_sends_limited, 4u);
  // Another root behind is not held back by the first one's send.
  Receive(other, ReplicateMsg{topic_, 3, false, {}});
  EXPECT_EQ(states_to(other), 1);
  // The interval passed and the restarted root is still behind (the state
  // was lost): sent again.
  overlay_->now += ScribeOptions{}.replica_resend_interval;
  Receive(restarted, ReplicateMsg{topic_, 6, false, {}});
  EXPECT_EQ(states_to(restarted), 2);
  // Caught up: nothing more to send.
  Receive(restarted, ReplicateMsg{topic_, 8, false, {}});
  EXPECT_EQ(states_to(restarted), 2);
  EXPECT_EQ(scribe_.stats().replica_states_sent, 3u);
  EXPECT_EQ(scribe_.stats().replica_sends_limited, 4u);
}

class ScribeTopicLimitTest : public ScribeLoopTest {
 protected:
  ScribeTopicLimitTest() : ScribeLoopTest(ScribeOptions{.max_topics = 4}) {}
};

// Peers' joins for more topics than max_topics: the rest are relayed
// without state (the tree forms through other nodes), counted; a local
// subscription beyond it fails with ResourceExhausted; the topics held keep
// working.
TEST_F(ScribeTopicLimitTest, JoinsBeyondMaxTopicsAreRelayedAndCounted) {
  BecomeRoot();  // topic "loops": one of the four
  for (int i = 0; i < 10; ++i) {
    const TopicId other = TopicIdOf("t" + std::to_string(i));
    pastry::RouteMessage m{other, Handle(20 + i), Handle(20 + i), 1,
                           wire::Encode(JoinMsg{other, Handle(20 + i), false, 0})};
    NodeHandle next = Handle(99);
    EXPECT_TRUE(scribe_.Forward(m, next)) << i;  // goes on either way
  }
  EXPECT_EQ(scribe_.topic_count(), 4u);
  EXPECT_EQ(scribe_.stats().topics_refused, 7u);
  SubscribeOptions options;
  options.on_message = [](const Delivery&) {};
  absl::StatusOr<SubscriptionId> refused = scribe_.Subscribe("one-too-many", options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(scribe_.stats().topics_refused, 8u);
  // The root still numbers and multicasts its topic.
  DeliverPublish(PublishMsg{topic_, "hello", Handle(7), 0});
  EXPECT_EQ(scribe_.stats().published, 1u);
}

// max_replay_bytes: the payload bytes of every replay buffer and replica's
// copies on a node together (1,000 here, messages of 300 bytes). Before,
// only replay_capacity bounded them: 1,024 messages of 1 MiB on one
// channel held a GiB.
class ScribeReplayBytesTest : public ScribeLoopTest {
 protected:
  ScribeReplayBytesTest() : ScribeLoopTest(ScribeOptions{.max_replay_bytes = 1000}) {}

  const std::string big_ = std::string(300, 'x');
};

// A root without replicas keeps its newest messages within the bound, and
// delivers every one.
TEST_F(ScribeReplayBytesTest, ARootKeepsItsNewestMessagesWithinTheBytes) {
  size_t delivered = 0;
  SubscribeOptions options;
  options.on_message = [&](const Delivery&) { ++delivered; };
  ASSERT_TRUE(scribe_.Subscribe("loops", options).ok());
  scribe_.Deliver(pastry::RouteMessage{topic_, Handle(1), Handle(1), 0,
                                       wire::Encode(JoinMsg{topic_, Handle(1), false, 0})});
  ASSERT_TRUE(scribe_.IsRoot("loops"));
  for (uint64_t r = 1; r <= 10; ++r) DeliverPublish(PublishMsg{topic_, big_, Handle(7), r});
  EXPECT_EQ(delivered, 10u);
  EXPECT_EQ(scribe_.stats().published, 10u);
  EXPECT_EQ(scribe_.stats().replay_bytes, 900u);
  EXPECT_EQ(scribe_.RecountReplayBytes(), 900u);
  EXPECT_EQ(scribe_.stats().replay_evicted_for_bytes, 7u);
}

// Numbers waiting for the replicas keep their messages past the bound (they
// are multicast from the replay buffer once confirmed); once released, the
// next publish trims them.
TEST_F(ScribeReplayBytesTest, NumbersWaitingForTheReplicasKeepTheirMessages) {
  overlay_->replicas = {Handle(5)};
  BecomeRoot();
  GrantLeases();
  for (uint64_t r = 1; r <= 5; ++r) DeliverPublish(PublishMsg{topic_, big_, Handle(7), r});
  EXPECT_EQ(scribe_.stats().replay_bytes, 1500u);
  EXPECT_EQ(scribe_.stats().replay_evicted_for_bytes, 0u);
  ConfirmReplicas();
  EXPECT_EQ(SentOf<PublishAckMsg>().size(), 5u);
  EXPECT_EQ(scribe_.stats().data_forwarded + scribe_.stats().delivered, 5u);
  DeliverPublish(PublishMsg{topic_, big_, Handle(7), 6});
  EXPECT_EQ(scribe_.stats().replay_bytes, 900u);
  EXPECT_EQ(scribe_.RecountReplayBytes(), 900u);
  EXPECT_EQ(scribe_.stats().replay_evicted_for_bytes, 3u);
}

// A replica drops the oldest copies its root released (below the commit
// index) to stay within the bound, never a tentative one.
TEST_F(ScribeReplayBytesTest, AReplicaDropsOnlyReleasedCopies) {
  const NodeHandle root = Handle(3), publisher = Handle(2);
  std::vector<StoredMessage> messages;
  for (uint64_t seq = 1; seq <= 6; ++seq) messages.push_back({seq, big_, publisher.id, seq});
  Receive(root, ReplicateMsg{topic_, 7, false, messages, 0, /*commit=*/3});
  // 1,800 bytes: #1 and #2 released and dropped; #3 to #6 are tentative.
  EXPECT_EQ(scribe_.stats().replay_bytes, 1200u);
  EXPECT_EQ(scribe_.stats().replay_evicted_for_bytes, 2u);
  // All released now: #3 goes too.
  Receive(root, ReplicateMsg{topic_, 7, false, {}, 0, /*commit=*/7});
  EXPECT_EQ(scribe_.stats().replay_bytes, 900u);
  EXPECT_EQ(scribe_.RecountReplayBytes(), 900u);
  EXPECT_EQ(scribe_.stats().replay_evicted_for_bytes, 3u);
}

// A topic within its share of the bound (here 500 bytes: two topics) keeps
// its messages while another holds the rest: before, the topic storing
// gave up its own whatever it held, and a small topic beside a large one
// kept one message (its repairs skipped, its publishes' origins gone).
TEST_F(ScribeReplayBytesTest, ATopicWithinItsShareKeepsItsMessages) {
  BecomeRoot();
  SubscribeOptions options;
  options.on_message = [](const Delivery&) {};
  ASSERT_TRUE(scribe_.Subscribe("small", options).ok());
  const TopicId small = TopicIdOf("small");
  scribe_.Deliver(pastry::RouteMessage{small, Handle(1), Handle(1), 0,
                                       wire::Encode(JoinMsg{small, Handle(1), false, 0})});
  ASSERT_TRUE(scribe_.IsRoot("small"));
  for (uint64_t r = 1; r <= 4; ++r) DeliverPublish(PublishMsg{topic_, big_, Handle(7), r});
  EXPECT_EQ(scribe_.stats().replay_bytes, 900u);
  for (uint64_t r = 1; r <= 5; ++r) {
    const PublishMsg publish{small, std::string(100, 's'), Handle(7), 10 + r};
    scribe_.Deliver(pastry::RouteMessage{small, Handle(7), Handle(7), 2, wire::Encode(publish)});
  }
  EXPECT_EQ(scribe_.stats().replay_bytes, 1400u);  // the small topic's five kept
  // The large topic, past its share, gives up its own down to it.
  DeliverPublish(PublishMsg{topic_, big_, Handle(7), 5});
  EXPECT_EQ(scribe_.stats().replay_bytes, 800u);
  EXPECT_EQ(scribe_.RecountReplayBytes(), 800u);
}

// A rival root's released messages taken in are queued for this root's
// replicas: the bound does not drop them before their Replicate is made
// (it is made from the replay entries; a dropped one was a hole, and the
// replicas kept whatever they held under its number).
TEST_F(ScribeReplayBytesTest, ARivalsMessagesQueuedForTheReplicasAreKept) {
  overlay_->replicas = {Handle(5)};
  BecomeRoot();
  GrantLeases();
  const NodeHandle rival = FartherPeer(8);
  std::vector<StoredMessage> messages;
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    messages.push_back({seq, big_, Handle(8).id, seq, /*term=*/uint64_t{1} << 16});
  }
  Receive(rival, ReplicateMsg{topic_, 5, /*handover=*/true, messages, 0, /*commit=*/5,
                               /*term=*/uint64_t{1} << 16});
  ASSERT_EQ(scribe_.stats().rival_roots_merged, 1u);
  std::vector<uint64_t> replicated;
  for (const auto& [r, to] : SentOf<ReplicateMsg>()) {
    if (to == Handle(5)) {
      for (const StoredMessage& m : r.messages) replicated.push_back(m.seq);
    }
  }
  EXPECT_EQ(replicated, (std::vector<uint64_t>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace peter::pubsub

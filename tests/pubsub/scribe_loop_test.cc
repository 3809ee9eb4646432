// Scribe driven by hand through a fake overlay: joins caught in Forward,
// acks only once attached, and the path-to-root check that refuses loops.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pubsub/scribe.h"
#include "pubsub/topic_id.h"
#include "pubsub/wire/codec.h"

namespace peter::pubsub {
namespace {

NodeHandle Handle(uint64_t n) {
  return NodeHandle{NodeId(n, n), pastry::Endpoint::FromIpv4(0x0a000000 + n, 4000)};
}

struct Sent {
  std::optional<NodeId> key;
  ScribeMessage msg;
  std::optional<NodeHandle> hint;
};

// Records what Scribe routes; time stands still; timers never fire.
class FakeOverlay final : public pastry::Overlay {
 public:
  explicit FakeOverlay(std::vector<Sent>* sent) : sent_(sent) {}
  void Route(std::optional<NodeId> key, std::string payload,
             std::optional<NodeHandle> hint) override {
    sent_->push_back(Sent{key, wire::Decode(payload).value(), hint});
  }
  std::vector<NodeHandle> ReplicaSet(const NodeId&, int) const override {
    return {LocalHandle()};
  }
  NodeHandle LocalHandle() const override { return Handle(1); }
  std::vector<NodeHandle> LeafSet() const override { return {}; }
  bool IsActive() const override { return true; }
  absl::Time Now() const override { return absl::UnixEpoch(); }
  TimerId ScheduleTimer(absl::Duration, std::function<void()>) override {
    return ++timers_;
  }
  void CancelTimer(TimerId) override {}

 private:
  std::vector<Sent>* sent_;
  TimerId timers_ = 0;
};

class ScribeLoopTest : public ::testing::Test {
 protected:
  ScribeLoopTest()
      : scribe_([this](pastry::Application*) {
          return std::make_unique<FakeOverlay>(&sent_);
        }) {}

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
  template <typename T>
  std::vector<std::pair<T, std::optional<NodeHandle>>> SentOf() {
    std::vector<std::pair<T, std::optional<NodeHandle>>> out;
    for (const Sent& s : sent_) {
      if (auto* m = std::get_if<T>(&s.msg)) out.emplace_back(*m, s.hint);
    }
    return out;
  }

  const TopicId topic_ = TopicIdOf("loops");
  std::vector<Sent> sent_;
  Scribe scribe_;
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

}  // namespace
}  // namespace peter::pubsub

// The embedded node's public API (include/peter/node.h) on loopback: real
// sockets, real threads, in one process. (One test drives the node through
// its internals, node_impl.h, so that what it checks must happen.)
#include "peter/node.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pubsub/node/node_impl.h"

namespace peter {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);

// What a handler received, with a way to wait for it.
class Inbox {
 public:
  MessageHandler Handler() {
    return [this](const Message& m) {
      std::lock_guard lock(mu_);
      seqs_.push_back(m.seq);
      payloads_.emplace_back(m.payload);
      topics_.emplace_back(m.topic);
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t n, absl::Duration timeout = kWait) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                        [&] { return payloads_.size() >= n; });
  }
  std::vector<std::string> payloads() {
    std::lock_guard lock(mu_);
    return payloads_;
  }
  std::vector<uint64_t> seqs() {
    std::lock_guard lock(mu_);
    return seqs_;
  }
  std::vector<std::string> topics() {
    std::lock_guard lock(mu_);
    return topics_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<uint64_t> seqs_;
  std::vector<std::string> payloads_;
  std::vector<std::string> topics_;
};

std::unique_ptr<Node> StartNode(std::vector<std::string> bootstrap = {},
                                size_t max_pending = 10000) {
  NodeOptions options;
  options.bootstrap = std::move(bootstrap);
  options.max_pending_messages = max_pending;
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(std::move(options));
  EXPECT_TRUE(node.ok()) << node.status();
  if (!node.ok()) return nullptr;
  EXPECT_TRUE((*node)->WaitUntilActive(kWait).ok());
  return std::move(*node);
}

TEST(Node, OneNodeDeliversWhatIsPublishedAfterActivation) {
  std::unique_ptr<Node> node = StartNode();
  ASSERT_NE(node, nullptr);
  Inbox inbox;
  absl::StatusOr<Subscription> sub = node->Subscribe("news", inbox.Handler());
  ASSERT_TRUE(sub.ok()) << sub.status();
  ASSERT_TRUE(sub->WaitUntilActive(kWait).ok());
  EXPECT_TRUE(sub->active());
  EXPECT_EQ(sub->topic(), "news");
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(node->PublishAndWait("news", absl::StrCat("m", i)).ok());
  }
  ASSERT_TRUE(inbox.WaitFor(20));
  std::vector<std::string> got = inbox.payloads();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(got[i], absl::StrCat("m", i));
  EXPECT_EQ(inbox.topics()[0], "news");
  const std::vector<uint64_t> seqs = inbox.seqs();
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], seqs[i - 1] + 1);
  PubSubStats stats = node->pubsub_stats();
  EXPECT_EQ(stats.subscriptions, 1u);
  EXPECT_EQ(stats.roots, 1u);
  EXPECT_EQ(stats.delivered, 20u);
  // The Scribe's counters reach PubSubStats::counters: one node roots the
  // topic and, with no replica peer, numbers each of its own 20 publishes
  // at once (no acknowledgement sent to itself).
  EXPECT_EQ(stats.counters.roots_taken, 1u);
  EXPECT_EQ(stats.counters.publishes_numbered_at_once, 20u);
  EXPECT_EQ(stats.counters.publish_acks_sent, 0u);
  EXPECT_EQ(stats.counters.publish_acks_received, 0u);
}

TEST(Node, DestroyingTheSubscriptionStopsDelivery) {
  std::unique_ptr<Node> node = StartNode();
  ASSERT_NE(node, nullptr);
  Inbox kept, dropped;
  absl::StatusOr<Subscription> keep = node->Subscribe("t", kept.Handler());
  ASSERT_TRUE(keep.ok());
  {
    absl::StatusOr<Subscription> gone = node->Subscribe("t", dropped.Handler());
    ASSERT_TRUE(gone.ok());
    ASSERT_TRUE(gone->WaitUntilActive(kWait).ok());
    ASSERT_TRUE(node->PublishAndWait("t", "before").ok());
    ASSERT_TRUE(dropped.WaitFor(1));
  }
  ASSERT_TRUE(node->PublishAndWait("t", "after").ok());
  ASSERT_TRUE(kept.WaitFor(2));
  EXPECT_EQ(dropped.payloads(), std::vector<std::string>{"before"});
  EXPECT_EQ(node->pubsub_stats().subscriptions, 1u);
}

TEST(Node, MessagesCrossNodes) {
  std::unique_ptr<Node> a = StartNode();
  ASSERT_NE(a, nullptr);
  std::unique_ptr<Node> b = StartNode({a->listen_address()});
  std::unique_ptr<Node> c = StartNode({a->listen_address()});
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  Inbox at_a, at_b;
  absl::StatusOr<Subscription> sa = a->Subscribe("orders", at_a.Handler(), {.reliable = true});
  absl::StatusOr<Subscription> sb = b->Subscribe("orders", at_b.Handler());
  ASSERT_TRUE(sa.ok() && sb.ok());
  ASSERT_TRUE(sa->WaitUntilActive(kWait).ok());
  ASSERT_TRUE(sb->WaitUntilActive(kWait).ok());
  std::atomic<int> confirmed{0};
  for (int i = 0; i < 50; ++i) {
    c->Publish("orders", absl::StrCat(i), [&](absl::StatusOr<uint64_t> seq) {
      EXPECT_TRUE(seq.ok()) << seq.status();
      confirmed++;
    });
  }
  ASSERT_TRUE(at_a.WaitFor(50));
  ASSERT_TRUE(at_b.WaitFor(50));
  for (Inbox* inbox : {&at_a, &at_b}) {
    std::vector<std::string> got = inbox->payloads();
    ASSERT_EQ(got.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(got[i], absl::StrCat(i));
  }
}

// Scribe's version-4 lists and version-5 runs reach the public stats
// (docs/scribe.md, "Publish, data and PublishAck lists", "Runs"). Driven so
// that they must form, whatever the timing: the topic's root takes kEach
// publishes in one call (its network thread held while they queue), so it
// numbers them together and replicates them to the other node together;
// that node confirms them together, and the root releases their data to it
// as one list holding one run. (Before, both
// nodes published through the public Publish, one call each, and lists
// formed only when messages happened to land in one batch.)
TEST(Node, ListsSentAreCountedInThePublicStats) {
  std::unique_ptr<Node> a = StartNode();
  ASSERT_NE(a, nullptr);
  std::unique_ptr<Node> b = StartNode({a->listen_address()});
  ASSERT_NE(b, nullptr);
  Inbox at_a, at_b;
  absl::StatusOr<Subscription> sa = a->Subscribe("lists", at_a.Handler());
  absl::StatusOr<Subscription> sb = b->Subscribe("lists", at_b.Handler());
  ASSERT_TRUE(sa.ok() && sb.ok());
  ASSERT_TRUE(sa->WaitUntilActive(kWait).ok());
  ASSERT_TRUE(sb->WaitUntilActive(kWait).ok());
  Node* root = a->pubsub_stats().roots == 1 ? a.get() : b.get();
  ASSERT_EQ(root->pubsub_stats().roots, 1u);

  node_internal::NodeImpl& impl = node_internal::ImplOf(*root);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  impl.runtime().Post([&](pastry::Node&) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
  });
  constexpr int kEach = 20;
  for (int i = 0; i < kEach; ++i) {
    // Queued behind the hold: handed to Scribe together, in one call.
    impl.PublishDoneOnNetworkThread("lists", absl::StrCat("m", i),
                                    [](absl::StatusOr<uint64_t>) {});
  }
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(at_a.WaitFor(kEach));
  ASSERT_TRUE(at_b.WaitFor(kEach));

  uint64_t lists = 0, listed = 0, runs = 0;
  for (Node* node : {a.get(), b.get()}) {
    const PubSubStats stats = node->pubsub_stats();
    lists += stats.message_lists_sent;
    listed += stats.messages_listed;
    EXPECT_GE(stats.messages_listed, 2 * stats.message_lists_sent);
    EXPECT_GE(stats.replicates_listed, 2 * stats.replicate_lists_sent);
    EXPECT_GE(stats.replica_acks_listed, 2 * stats.replica_ack_lists_sent);
    EXPECT_GE(stats.messages_in_runs, 2 * stats.message_runs_sent);
    EXPECT_LE(stats.messages_in_runs, stats.messages_listed);
    runs += stats.message_runs_sent;
  }
  const PubSubStats at_root = root->pubsub_stats();
  EXPECT_GE(at_root.message_lists_sent, 1u);
  EXPECT_GE(at_root.message_runs_sent, 1u);
  EXPECT_GE(lists, 1u);
  EXPECT_GE(listed, 2 * lists);
  EXPECT_GE(runs, 1u);
}

TEST(Node, ASlowHandlerLosesOnlyItsOwnOverflow) {
  std::unique_ptr<Node> node = StartNode({}, /*max_pending=*/2);
  ASSERT_NE(node, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int slow_calls = 0;
  absl::StatusOr<Subscription> slow = node->Subscribe("s", [&](const Message&) {
    std::unique_lock lock(mu);
    ++slow_calls;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });
  ASSERT_TRUE(slow.ok());
  ASSERT_TRUE(slow->WaitUntilActive(kWait).ok());
  ASSERT_TRUE(node->PublishAndWait("s", "0").ok());
  {
    std::unique_lock lock(mu);  // the handler is now blocked in message 0
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return slow_calls == 1; }));
  }
  for (int i = 1; i < 10; ++i) ASSERT_TRUE(node->PublishAndWait("s", absl::StrCat(i)).ok());
  // All ten reached the node: two wait in the queue, seven were dropped.
  const absl::Time deadline = absl::Now() + kWait;
  while (node->pubsub_stats().delivered < 10 && absl::Now() < deadline) {
  }
  EXPECT_EQ(node->pubsub_stats().delivered, 10u);
  EXPECT_EQ(slow->dropped(), 7u);
  EXPECT_EQ(node->pubsub_stats().slow_consumer_drops, 7u);
  {
    std::lock_guard lock(mu);
    release = true;
    cv.notify_all();
  }
}

TEST(Node, RejectsBadSubscriptionsWithClearErrors) {
  std::unique_ptr<Node> node = StartNode();
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->Subscribe("t", nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(node->Subscribe("", [](const Message&) {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(node->Subscribe(std::string(5000, 'x'), [](const Message&) {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(node->PublishAndWait("", "x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Node, ASubscriptionMayOutliveItsNodeAndCancelItselfInItsHandler) {
  std::unique_ptr<Node> node = StartNode();
  ASSERT_NE(node, nullptr);
  Subscription self_cancelling;
  std::mutex mu;
  std::condition_variable cv;
  int calls = 0;
  absl::StatusOr<Subscription> sub = node->Subscribe("x", [&](const Message&) {
    std::lock_guard lock(mu);
    ++calls;
    self_cancelling.Cancel();
    cv.notify_all();
  });
  ASSERT_TRUE(sub.ok());
  self_cancelling = std::move(*sub);
  ASSERT_TRUE(self_cancelling.WaitUntilActive(kWait).ok() || !self_cancelling.valid());
  ASSERT_TRUE(node->PublishAndWait("x", "1").ok());
  ASSERT_TRUE(node->PublishAndWait("x", "2").ok());
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return calls >= 1; }));
  }
  absl::StatusOr<Subscription> outliving = node->Subscribe("y", [](const Message&) {});
  ASSERT_TRUE(outliving.ok());
  node.reset();
  EXPECT_FALSE(outliving->active());
  EXPECT_EQ(outliving->WaitUntilActive(absl::Seconds(1)).code(), absl::StatusCode::kCancelled);
  outliving->Cancel();  // no node: nothing to do, no crash
  std::lock_guard lock(mu);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace peter

namespace peter {
namespace {

TEST(Node, PublishCompletesWithTheRootsSequenceNumber) {
  std::unique_ptr<Node> a = StartNode();
  ASSERT_NE(a, nullptr);
  std::unique_ptr<Node> b = StartNode({a->listen_address()});
  ASSERT_NE(b, nullptr);
  Inbox inbox;
  absl::StatusOr<Subscription> sub = a->Subscribe("seq", inbox.Handler());
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(sub->WaitUntilActive(kWait).ok());
  std::vector<uint64_t> confirmed;
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<uint64_t> seq = b->PublishAndWait("seq", absl::StrCat(i));
    ASSERT_TRUE(seq.ok()) << seq.status();
    confirmed.push_back(*seq);
  }
  ASSERT_TRUE(inbox.WaitFor(10));
  EXPECT_EQ(inbox.seqs(), confirmed);  // the numbers the subscriber saw
  for (size_t i = 1; i < confirmed.size(); ++i) EXPECT_EQ(confirmed[i], confirmed[i - 1] + 1);
}

TEST(Node, AnycastGoesToExactlyOneTaker) {
  std::unique_ptr<Node> a = StartNode();
  ASSERT_NE(a, nullptr);
  std::unique_ptr<Node> b = StartNode({a->listen_address()});
  std::unique_ptr<Node> c = StartNode({a->listen_address()});
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  Inbox plain, taker_a, taker_b;
  // A subscription without an anycast handler never takes one.
  absl::StatusOr<Subscription> p = c->Subscribe("jobs", plain.Handler());
  absl::StatusOr<Subscription> sa =
      a->Subscribe("jobs", [](const Message&) {}, {.on_anycast = taker_a.Handler()});
  absl::StatusOr<Subscription> sb =
      b->Subscribe("jobs", [](const Message&) {}, {.on_anycast = taker_b.Handler()});
  ASSERT_TRUE(p.ok() && sa.ok() && sb.ok());
  for (Subscription* s : {&*p, &*sa, &*sb}) ASSERT_TRUE(s->WaitUntilActive(kWait).ok());

  constexpr int kJobs = 20;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0, ok = 0;
  for (int i = 0; i < kJobs; ++i) {
    c->Anycast("jobs", absl::StrCat("job-", i), [&](absl::StatusOr<pastry::NodeHandle> by) {
      std::lock_guard lock(mu);
      ++done;
      if (by.ok() && (by->id == a->self().id || by->id == b->self().id)) ++ok;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return done == kJobs; }));
  }
  EXPECT_EQ(ok, kJobs);
  // Completions run on c's delivery thread, the handlers on a's and b's:
  // wait for the handlers too.
  const absl::Time deadline = absl::Now() + kWait;
  while (taker_a.payloads().size() + taker_b.payloads().size() < kJobs &&
         absl::Now() < deadline) {
    taker_a.WaitFor(taker_a.payloads().size() + 1, absl::Milliseconds(10));
  }
  // Every job was taken exactly once, by a or b, and c's plain handler saw none.
  std::vector<std::string> taken = taker_a.payloads();
  for (const std::string& s : taker_b.payloads()) taken.push_back(s);
  std::sort(taken.begin(), taken.end());
  EXPECT_EQ(taken.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(std::unique(taken.begin(), taken.end()), taken.end());
  EXPECT_TRUE(plain.payloads().empty());
}

TEST(Node, AnycastWithNoTakerFailsWithNotFound) {
  std::unique_ptr<Node> a = StartNode();
  ASSERT_NE(a, nullptr);
  Inbox plain;
  absl::StatusOr<Subscription> p = a->Subscribe("nobody", plain.Handler());
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->WaitUntilActive(kWait).ok());
  std::mutex mu;
  std::condition_variable cv;
  std::optional<absl::Status> result;
  a->Anycast("nobody", "x", [&](absl::StatusOr<pastry::NodeHandle> by) {
    std::lock_guard lock(mu);
    result = by.status();
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return result.has_value(); }));
  EXPECT_EQ(result->code(), absl::StatusCode::kNotFound) << *result;
}

TEST(Node, TopicsDescribeTheTree) {
  std::unique_ptr<Node> a = StartNode();
  ASSERT_NE(a, nullptr);
  absl::StatusOr<Subscription> s = a->Subscribe("described", [](const Message&) {});
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->WaitUntilActive(kWait).ok());
  ASSERT_TRUE(a->PublishAndWait("described", "x").ok());
  std::vector<TopicStatus> topics = a->topics();
  ASSERT_EQ(topics.size(), 1u);
  EXPECT_EQ(topics[0].name, "described");
  EXPECT_TRUE(topics[0].is_root);
  EXPECT_TRUE(topics[0].attached);
  EXPECT_EQ(topics[0].local_subscriptions, 1u);
  EXPECT_EQ(topics[0].id_hex.size(), 32u);
  EXPECT_GE(topics[0].last_seq, 1u);
}

}  // namespace
}  // namespace peter

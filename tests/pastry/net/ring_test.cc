// Rings of real nodes on loopback: start, join, exact leaf sets, lookups.
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "asio/io_context.hpp"
#include "asio/post.hpp"
#include "gtest/gtest.h"
#include "net_test_util.h"
#include "peter/pastry/application.h"

namespace peter::pastry::net::testing {
namespace {

std::vector<NodeId> Ids(const std::vector<std::unique_ptr<NodeRuntime>>& nodes) {
  std::vector<NodeId> ids;
  for (const auto& n : nodes) ids.push_back(n->self().id);
  return ids;
}

// Every node looks up `keys` random keys; each must end at the numerically
// closest node.
void ExpectLookupsReachRoots(const std::vector<std::unique_ptr<NodeRuntime>>& nodes, int keys,
                             std::mt19937_64& rng) {
  const std::vector<NodeId> ids = Ids(nodes);
  int wrong = 0;
  for (const auto& node : nodes) {
    for (int i = 0; i < keys; ++i) {
      const NodeId key = RandomKey(rng);
      absl::StatusOr<Node::LookupResult> r = node->Lookup(key, absl::Seconds(5));
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->root.id != ClosestId(ids, key)) ++wrong;
      EXPECT_EQ(r->path.front(), node->self().id);
      EXPECT_EQ(r->path.back(), r->root.id);
    }
  }
  EXPECT_EQ(wrong, 0);
}

TEST(RingTest, SingleNodeStartsARingAndIsActive) {
  auto node = StartNode(LoopbackOptions());
  ASSERT_NE(node, nullptr);
  EXPECT_TRUE(node->WaitUntilActive(absl::Seconds(5)).ok());
  EXPECT_NE(node->listen_endpoint().port, 0);
  EXPECT_EQ(node->self().endpoint, node->listen_endpoint());
  const NodeSnapshot snap = node->Snapshot();
  EXPECT_TRUE(snap.active);
  EXPECT_TRUE(snap.leaf_set.empty());
  // Alone, every key is ours.
  absl::StatusOr<Node::LookupResult> r = node->Lookup(NodeId(1, 2), absl::Seconds(2));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->root.id, node->self().id);
  EXPECT_EQ(r->hops, 0);
}

TEST(RingTest, SixNodesJoinWithExactLeafSetsAndLookupsReachTheClosestNode) {
  std::mt19937_64 rng(42);
  auto nodes = StartRing(6, rng);
  ASSERT_EQ(nodes.size(), 6u);
  const int L = Options().leaf_set_size;
  std::string mismatch;
  EXPECT_TRUE(Eventually([&] { return (mismatch = LeafSetMismatch(nodes, L)).empty(); },
                         absl::Seconds(10)))
      << mismatch;
  ExpectLookupsReachRoots(nodes, 200, rng);
  for (const auto& node : nodes) {
    const NodeSnapshot snap = node->Snapshot();
    EXPECT_EQ(snap.leaf_set.size(), 5u);
    EXPECT_EQ(snap.transport.frames_dropped_decode, 0u);
    EXPECT_EQ(snap.transport.queue_overflows, 0u);
    EXPECT_GT(snap.uptime, absl::ZeroDuration());
  }
}

// One TCP connection per pair once things settle: duplicates from
// simultaneous connects are retired.
TEST(RingTest, PeersShareOneConnectionPerPair) {
  std::mt19937_64 rng(7);
  auto nodes = StartRing(5, rng);
  ASSERT_EQ(nodes.size(), 5u);
  EXPECT_TRUE(Eventually(
      [&] {
        for (const auto& node : nodes) {
          if (node->Snapshot().transport.connections_open > nodes.size() - 1) return false;
        }
        return true;
      },
      absl::Seconds(10)));
}

TEST(RingTest, RoutingTableEntriesHaveMeasuredRoundTrips) {
  std::mt19937_64 rng(3);
  auto nodes = StartRing(4, rng);
  ASSERT_EQ(nodes.size(), 4u);
  EXPECT_TRUE(Eventually(
      [&] {
        for (const auto& node : nodes) {
          const NodeSnapshot snap = node->Snapshot();
          if (snap.routing_table.empty()) return false;
          for (const auto& e : snap.routing_table) {
            if (e.rtt_us < 0) return false;
          }
        }
        return true;
      },
      absl::Seconds(10)));
}

TEST(RingTest, Ipv6Loopback) {
  std::mt19937_64 rng(6);
  auto nodes = StartRing(3, rng, "[::1]:0");
  ASSERT_EQ(nodes.size(), 3u);
  for (const auto& node : nodes) {
    EXPECT_FALSE(node->self().endpoint.is_v4());
    EXPECT_EQ(node->self().endpoint.HostString(), "::1");
    EXPECT_NE(node->self().endpoint.port, 0);
  }
  std::string mismatch;
  EXPECT_TRUE(Eventually([&] { return (mismatch = LeafSetMismatch(nodes, 16)).empty(); },
                         absl::Seconds(10)))
      << mismatch;
  ExpectLookupsReachRoots(nodes, 20, rng);
}

TEST(RingTest, JoinsThroughLocalhostByName) {
  auto first = StartNode(LoopbackOptions());
  ASSERT_NE(first, nullptr);
  RuntimeOptions o = LoopbackOptions();
  o.bootstrap.push_back("localhost:" + std::to_string(first->listen_endpoint().port));
  auto second = StartNode(std::move(o));
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->WaitUntilActive(absl::Seconds(10)).ok());
}

TEST(RingTest, ApplicationCallsPostedToTheNodeThread) {
  auto node = StartNode(LoopbackOptions());
  ASSERT_NE(node, nullptr);
  std::promise<NodeId> id;
  node->Post([&](Node& n) { id.set_value(n.self().id); });
  EXPECT_EQ(id.get_future().get(), node->self().id);
}

// One active node, an application to register from a posted call, and the
// events a test notes (from the node's thread) in their order.
struct OrderedNode {
  struct NoApp : Application {
    void Deliver(const RouteMessage&) override {}
  };

  // False if the node did not start or become active.
  bool Start() {
    node = StartNode(LoopbackOptions());
    return node != nullptr && node->WaitUntilActive(absl::Seconds(10)).ok();
  }
  void Note(std::string what) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(std::move(what));
  }
  // The events noted, once there are `n` (or after 10 s).
  std::vector<std::string> Events(size_t n) {
    Eventually(
        [&] {
          std::lock_guard<std::mutex> lock(mu);
          return order.size() >= n;
        },
        absl::Seconds(10));
    std::lock_guard<std::mutex> lock(mu);
    return order;
  }

  std::unique_ptr<NodeRuntime> node;
  NoApp app;
  std::unique_ptr<Overlay> overlay;
  std::mutex mu;
  std::vector<std::string> order;  // guarded by mu
};

// The work a posted call makes due at once (a zero-delay timer: Scribe's
// messages to its own node) runs right after the call, in its handler:
// before a handler the call posted to the loop itself, together with what
// that work makes due at once (as a posted Tick() ran it: RunDue runs what
// becomes due while it runs).
TEST(RingTest, PostedCallRunsTheWorkItMadeDueInItsOwnHandler) {
  OrderedNode t;
  ASSERT_TRUE(t.Start());
  t.node->Post([&](Node& n) {
    t.overlay = n.RegisterApplication(kFirstUserAppId, &t.app);
    asio::post(t.node->io_context(), [&] { t.Note("other handler"); });
    t.overlay->ScheduleTimer(absl::ZeroDuration(), [&] {
      t.Note("due");
      t.overlay->ScheduleTimer(absl::ZeroDuration(), [&] { t.Note("due again"); });
      asio::post(t.node->io_context(), [&] { t.Note("handler of the due work"); });
    });
  });
  EXPECT_EQ(t.Events(4), (std::vector<std::string>{"due", "due again", "other handler",
                                                   "handler of the due work"}));
}

// AtEndOfCall, inside a posted call (its due work included), runs the
// function once the call is over, before the handlers it posted; outside
// one (a handler of the loop's own, RunHere) it refuses.
TEST(RingTest, AtEndOfCallRunsAfterThePostedCallBeforeOtherHandlers) {
  OrderedNode t;
  ASSERT_TRUE(t.Start());
  NodeRuntime& runtime = *t.node;
  auto note = [&](std::string what) { t.Note(std::move(what)); };
  runtime.Post([&](Node& n) {
    t.overlay = n.RegisterApplication(kFirstUserAppId, &t.app);
    asio::post(runtime.io_context(), [&] {
      note("other handler");
      const bool taken = runtime.AtEndOfCall([&] { note("never"); });
      bool taken_in_run_here = true;
      runtime.RunHere([&](Node&) {
        taken_in_run_here = runtime.AtEndOfCall([&] { note("never"); });
      });
      note(taken || taken_in_run_here ? "taken outside a posted call" : "refused outside");
    });
    note(runtime.AtEndOfCall([&] {
      note("end of call");
      note(runtime.AtEndOfCall([&] { note("never"); }) ? "taken at the end" : "refused at the end");
    }) ? "taken" : "refused");
    t.overlay->ScheduleTimer(absl::ZeroDuration(), [&] {
      note(runtime.AtEndOfCall([&] { note("end of call, from the due work"); }) ? "taken in due work"
                                                                                : "refused in due work");
    });
  });
  EXPECT_EQ(t.Events(7), (std::vector<std::string>{"taken", "taken in due work", "end of call",
                                                   "refused at the end",
                                                   "end of call, from the due work",
                                                   "other handler", "refused outside"}));
}

// RunAsCall, from a handler of the loop's own, runs the call, the work it
// made due and what it asked AtEndOfCall for before it returns, as the
// handler of a posted call would; inside a call into the node (RunHere, its
// own call) or from an end-of-call function it refuses and runs nothing.
TEST(RingTest, RunAsCallRunsTheCallItsDueWorkAndEndOfCallBeforeReturning) {
  OrderedNode t;
  ASSERT_TRUE(t.Start());
  NodeRuntime& runtime = *t.node;
  auto note = [&](std::string what) { t.Note(std::move(what)); };
  runtime.Post([&](Node& n) { t.overlay = n.RegisterApplication(kFirstUserAppId, &t.app); });
  asio::post(runtime.io_context(), [&] {
    const bool ran = runtime.RunAsCall([&](Node&) {
      note("call");
      note(runtime.RunAsCall([&](Node&) { note("never"); }) ? "nested taken" : "nested refused");
      t.overlay->ScheduleTimer(absl::ZeroDuration(), [&] { note("due"); });
      runtime.AtEndOfCall([&] {
        note("end of call");
        note(runtime.RunAsCall([&](Node&) { note("never"); }) ? "taken at the end"
                                                                : "refused at the end");
      });
      asio::post(runtime.io_context(), [&] { note("other handler"); });
    });
    note(ran ? "returned" : "refused");
    bool in_run_here = true;
    runtime.RunHere([&](Node&) {
      in_run_here = runtime.RunAsCall([&](Node&) { note("never"); });
    });
    note(in_run_here ? "taken in RunHere" : "refused in RunHere");
  });
  EXPECT_EQ(t.Events(8), (std::vector<std::string>{"call", "nested refused", "due",
                                                   "end of call", "refused at the end",
                                                   "returned", "refused in RunHere",
                                                   "other handler"}));
}

}  // namespace
}  // namespace peter::pastry::net::testing

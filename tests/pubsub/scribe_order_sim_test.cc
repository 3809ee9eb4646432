// One publisher's publishes keep their order (docs/scribe.md, "Publish
// order") when the topic's root stalls past the overlay's hop-ack timeout,
// and when one publish is lost on the way. A client on one node pipelines
// acknowledged publishes "0", "1", ... (up to 256 in flight, as the RESP
// gateway allows a client). Seeded and deterministic.
//
// The stall (pastry::sim::Network::Stall and Slow): the root's thread
// stops for longer than hop_ack_timeout, then works through its backlog
// slowly, reading its connections in a random order (each connection's
// messages in order). The publisher suspects the root and routes later
// publishes, and the hops it resends, around it: through a third node, or,
// on a small ring, to itself as the closest node it still trusts. Before
// the publish-order fix, later publishes overtook earlier ones still queued
// on the publisher's connection, or a rival root held them and handed them
// over late (numbered again once the root's replay buffer had forgotten
// them): subscribers got them out of order, some twice.
#include <optional>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pubsub/topic_id.h"
#include "tests/pubsub/scribe_harness.h"

namespace peter::pubsub::testing {
namespace {

const char kTopic[] = "ordered";
constexpr int kCount = 3000;
constexpr int kWindow = 256;  // the gateway's max_client_publishes_in_flight

// A client that keeps kWindow acknowledged publishes in flight on one node,
// publishing "0", "1", ... and recording the number each was given.
struct PipeliningClient {
  ScribeRing* ring = nullptr;
  int node = 0;
  int next = 0;
  int acked = 0;
  int failed = 0;
  std::vector<uint64_t> seqs = std::vector<uint64_t>(kCount, 0);

  void Start() {
    ring->Call(node, [&](Scribe& s) {
      for (int i = 0; i < kWindow; ++i) PublishNext(s);
    });
  }
  void PublishNext(Scribe& s) {
    const int i = next++;
    absl::Status status =
        s.Publish(kTopic, absl::StrCat(i), [this, i](absl::StatusOr<uint64_t> seq) {
          if (seq.ok()) {
            seqs[i] = *seq;
            ++acked;
          } else {
            ++failed;
          }
          if (next < kCount) PublishNext(ring->scribe(node));
        });
    if (!status.ok()) ++failed;
  }
  bool Done() const { return acked + failed == kCount; }
};

// A ring with a publisher and up to five reliable subscribers on kTopic.
struct OrderRun {
  OrderRun(int nodes, uint64_t seed, ScribeOptions options = {})
      : ring(Config(seed), nodes, options) {}
  static ScribeRing::SimNetwork::Config Config(uint64_t seed) {
    ScribeRing::SimNetwork::Config config = ScribeRing::Config(seed);
    config.plane.per_unit = absl::Microseconds(10);  // a data centre: <= 14 ms
    return config;
  }
  void Start() {
    ASSERT_TRUE(ring.all_active());
    root = ring.net().ClosestLiveNode(TopicIdOf(kTopic));
    ASSERT_GE(root, 0);
    for (int i = 0; i < ring.size() && subscribers.size() < 5; ++i) subscribers.push_back(i);
    for (int s : subscribers) ring.Subscribe(s, kTopic, /*reliable=*/true);
    ASSERT_TRUE(RunUntilAttached(ring, subscribers, kTopic));
    client.ring = &ring;
    client.node = (root + 1) % ring.size();
    client.Start();
  }
  // Runs until every publish is answered, then lets the last messages
  // reach the subscribers.
  void Finish() {
    ASSERT_TRUE(ring.net().RunUntil([&] { return client.Done(); }, absl::Seconds(60),
                                    absl::Milliseconds(10)));
    ring.net().RunFor(absl::Seconds(2));
  }
  // The root numbered the acknowledged publishes in the order they were
  // made, and every subscriber delivered exactly the payloads "0", "1", ...
  // but `missing`, in that order.
  void ExpectInOrder(std::optional<int> missing = std::nullopt) {
    uint64_t last = 0;
    int out_of_order = 0;
    for (int i = 0; i < kCount; ++i) {
      if (client.seqs[i] == 0) continue;
      out_of_order += client.seqs[i] <= last ? 1 : 0;
      last = client.seqs[i];
    }
    EXPECT_EQ(out_of_order, 0) << "publishes numbered out of request order";
    std::vector<std::string> expected;
    for (int i = 0; i < kCount; ++i) {
      if (i != missing) expected.push_back(absl::StrCat(i));
    }
    for (int s : subscribers) {
      const std::vector<Received>& log = ring.log(s, kTopic);
      size_t first_wrong = 0;
      while (first_wrong < log.size() && first_wrong < expected.size() &&
             log[first_wrong].payload == expected[first_wrong]) {
        ++first_wrong;
      }
      EXPECT_EQ(log.size(), expected.size()) << "subscriber " << s;
      if (first_wrong < log.size() && first_wrong < expected.size()) {
        ADD_FAILURE() << "subscriber " << s << " got \"" << log[first_wrong].payload
                      << "\" as message " << first_wrong << ", expected \""
                      << expected[first_wrong] << "\"";
      }
    }
  }
  void Print(const char* what) {
    const ScribeStats stats = ring.TotalStats();
    std::printf("%s: held for order %llu, forced %llu, passed on %llu, resends %llu, "
                "deduplicated %llu\n",
                what, static_cast<unsigned long long>(stats.publishes_held_for_order),
                static_cast<unsigned long long>(stats.publishes_order_forced),
                static_cast<unsigned long long>(stats.publishes_passed_on),
                static_cast<unsigned long long>(stats.publish_resends),
                static_cast<unsigned long long>(stats.publishes_deduplicated));
  }

  ScribeRing ring;
  int root = -1;
  std::vector<int> subscribers;
  PipeliningClient client;
};

// True for a Publish of `payload` (any copy: first send, resend, hop).
bool IsPublishOf(const pastry::Envelope& e, const std::string& payload) {
  for (const ScribeMessage& m : ScribeOf(e)) {
    const auto* p = std::get_if<PublishMsg>(&m);
    if (p != nullptr && p->payload == payload) return true;
  }
  return false;
}

struct Case {
  int nodes;
  bool root_cache;  // off: every publish is routed (a cold or evicted cache)
  uint64_t seed;
};

std::string Name(const ::testing::TestParamInfo<Case>& info) {
  return absl::StrCat(info.param.nodes, "Nodes_", info.param.root_cache ? "Cached" : "Routed",
                      "_Seed", info.param.seed);
}

class StalledRootTest : public ::testing::TestWithParam<Case> {};

TEST_P(StalledRootTest, KeepsOnePublishersOrder) {
  ScribeOptions options;
  if (!GetParam().root_cache) options.root_cache_size = 0;
  OrderRun setup(GetParam().nodes, GetParam().seed, options);
  ASSERT_NO_FATAL_FAILURE(setup.Start());
  // Well into the stream, the root's thread stalls for longer than
  // hop_ack_timeout (300 ms; shorter than publish_retry, 1 s), then takes
  // 2 ms a message for 2 s.
  ASSERT_TRUE(setup.ring.net().RunUntil([&] { return setup.client.acked >= kCount / 4; },
                                        absl::Seconds(10), absl::ZeroDuration()));
  const absl::Time stalled = setup.ring.net().Now() + absl::Milliseconds(400);
  setup.ring.net().network().Stall(setup.root, stalled);
  setup.ring.net().network().Slow(setup.root, absl::Milliseconds(2), stalled + absl::Seconds(2));
  ASSERT_NO_FATAL_FAILURE(setup.Finish());
  EXPECT_EQ(setup.client.failed, 0);
  setup.ExpectInOrder();
  setup.Print(Name(::testing::TestParamInfo<Case>(GetParam(), 0)).c_str());
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (int nodes : {3, 8}) {
    for (bool cache : {false, true}) {
      for (uint64_t seed = 1; seed <= 4; ++seed) cases.push_back(Case{nodes, cache, seed});
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Seeds, StalledRootTest, ::testing::ValuesIn(Cases()), Name);

class LostPublishTest : public ::testing::TestWithParam<uint64_t> {
 protected:
  // One publish per frame: with bundles the publisher's window travels
  // together, and losing "1000" would lose its successors with it.
  static ScribeOptions Unbundled() {
    ScribeOptions options;
    options.bundle_messages = false;
    return options;
  }
};

// The first copy of publish "1000" is lost on the wire; the publisher
// resends it after publish_retry (1 s). Its successors, which arrived, wait
// at the root for it (publish_order_wait, 2 s) and are numbered after it.
TEST_P(LostPublishTest, SuccessorsWaitForTheResend) {
  OrderRun setup(8, GetParam(), Unbundled());
  bool lost = false;
  setup.ring.net().network().set_send_filter([&](int, int, const pastry::Envelope& e) {
    if (lost || !IsPublishOf(e, "1000")) return false;
    lost = true;
    return true;
  });
  ASSERT_NO_FATAL_FAILURE(setup.Start());
  ASSERT_NO_FATAL_FAILURE(setup.Finish());
  EXPECT_TRUE(lost);
  EXPECT_EQ(setup.client.failed, 0);
  setup.ExpectInOrder();
  const ScribeStats stats = setup.ring.TotalStats();
  EXPECT_GT(stats.publishes_held_for_order, 0u);
  EXPECT_EQ(stats.publishes_order_forced, 0u);
  setup.Print(absl::StrCat("lost once, seed ", GetParam()).c_str());
}

// Every copy of publish "1000" is lost: its publisher gives it up after
// publish_timeout (10 s). The root waits publish_order_wait for it, then
// numbers its successors without it (counted): no message is held for
// ever, and the rest keep their order.
TEST_P(LostPublishTest, SuccessorsWaitAtMostPublishOrderWait) {
  OrderRun setup(8, GetParam(), Unbundled());
  setup.ring.net().network().set_send_filter(
      [&](int, int, const pastry::Envelope& e) { return IsPublishOf(e, "1000"); });
  ASSERT_NO_FATAL_FAILURE(setup.Start());
  ASSERT_NO_FATAL_FAILURE(setup.Finish());
  EXPECT_EQ(setup.client.failed, 1);
  EXPECT_EQ(setup.client.seqs[1000], 0u);
  setup.ExpectInOrder(/*missing=*/1000);
  const ScribeStats stats = setup.ring.TotalStats();
  EXPECT_GT(stats.publishes_held_for_order, 0u);
  EXPECT_EQ(stats.publishes_order_forced, 1u);  // "1001"; the rest follow it
  setup.Print(absl::StrCat("lost for good, seed ", GetParam()).c_str());
}

INSTANTIATE_TEST_SUITE_P(Seeds, LostPublishTest, ::testing::Values(1, 2, 3));

// Runs (version 5; docs/scribe.md, "Runs"): a node that publishes N times
// to one topic in one batch of work (the RESP gateway's PUBLISHes from one
// read, an embedder's pipelined publishes), its root cached and on another
// node, sends them as one run -- one entry of one `listed` message -- and
// the root, which numbers them consecutively, answers them as one run of
// acknowledgements; each publish completes with its own number, in the
// order published. The subscribers get every message once, in order. With
// a subscriber on the publisher's node too (as with the RESP gateway), the
// root sends that node the N data and then the N acknowledgements: two
// runs, not each publish's data and acknowledgement in turn.
class PublishRunTest : public ::testing::TestWithParam<std::tuple<uint64_t, bool>> {};

TEST_P(PublishRunTest, APublishersBurstTravelsAsOneRunAndCompletesInOrder) {
  constexpr int kRun = 16;
  const auto [seed, publisher_subscribes] = GetParam();
  ScribeRing ring(seed, 6);
  ASSERT_TRUE(ring.all_active());
  const int root = ring.net().ClosestLiveNode(TopicIdOf(kTopic));
  ASSERT_GE(root, 0);
  const int publisher = (root + 1) % ring.size();
  const int subscriber = (root + 2) % ring.size();
  std::vector<int> subscribers = {subscriber};
  if (publisher_subscribes) subscribers.push_back(publisher);
  for (int i : subscribers) ring.Subscribe(i, kTopic, /*reliable=*/true);
  ASSERT_TRUE(RunUntilAttached(ring, subscribers, kTopic));
  // A first publish caches the root (and outlasts a fresh root's grace).
  std::optional<absl::StatusOr<uint64_t>> first;
  ring.Call(publisher, [&](Scribe& s) {
    ASSERT_TRUE(s.Publish(kTopic, "first", [&](absl::StatusOr<uint64_t> seq) { first = seq; }).ok());
  });
  ASSERT_TRUE(ring.net().RunUntil([&] { return first.has_value(); }, absl::Seconds(30),
                                  absl::Milliseconds(10)));
  ASSERT_TRUE(first->ok()) << first->status();
  ring.net().RunFor(absl::Seconds(1));

  // Every payload from the publisher to the root carrying publishes, and
  // from the root to the publisher carrying acknowledgements.
  struct Seen {
    size_t messages = 0;
    uint16_t reader_version = 0;
  };
  std::vector<Seen> publishes, acks;
  const NodeId root_id = ring.net().node(root).self().id;
  const NodeId publisher_id = ring.net().node(publisher).self().id;
  ring.net().network().set_delivery_observer([&](const pastry::sim::Delivery& d) {
    const auto* route = std::get_if<pastry::RouteMsg>(&d.envelope.body);
    if (route == nullptr || route->app != kScribeAppId) return;
    absl::StatusOr<wire::Received> r = wire::DecodeReceived(route->payload);
    if (!r.ok()) return;
    const std::vector<ScribeMessage> messages = ScribeOf(d.envelope);
    if (d.to == root && route->source.id == publisher_id && AnyOf<PublishMsg>(messages)) {
      publishes.push_back(Seen{messages.size(), r->reader_version});
    }
    if (d.to == publisher && route->source.id == root_id && AnyOf<PublishAckMsg>(messages)) {
      acks.push_back(Seen{messages.size(), r->reader_version});
    }
  });
  const ScribeStats publisher_before = ring.scribe(publisher).stats();
  const ScribeStats root_before = ring.scribe(root).stats();
  std::vector<uint64_t> completed;  // the numbers, in the order the callbacks ran
  std::vector<int> order;
  ring.Call(publisher, [&](Scribe& s) {
    for (int i = 0; i < kRun; ++i) {
      ASSERT_TRUE(s.Publish(kTopic, absl::StrCat("run ", i), [&, i](absl::StatusOr<uint64_t> seq) {
                     ASSERT_TRUE(seq.ok()) << seq.status();
                     completed.push_back(*seq);
                     order.push_back(i);
                   }).ok());
    }
  });
  ASSERT_TRUE(ring.net().RunUntil([&] { return completed.size() == kRun; }, absl::Seconds(30),
                                  absl::Milliseconds(10)));
  ring.net().RunFor(absl::Seconds(1));
  ring.net().network().set_delivery_observer(nullptr);

  // One payload of the publisher's 16, one run in it; one of the root's 16
  // acknowledgements, one run.
  ASSERT_EQ(publishes.size(), 1u);
  EXPECT_EQ(publishes[0].messages, static_cast<size_t>(kRun));
  EXPECT_EQ(publishes[0].reader_version, kRunVersion);
  const ScribeStats& p = ring.scribe(publisher).stats();
  EXPECT_EQ(p.message_runs_sent - publisher_before.message_runs_sent, 1u);
  EXPECT_EQ(p.messages_in_runs - publisher_before.messages_in_runs, static_cast<uint64_t>(kRun));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].messages, static_cast<size_t>(publisher_subscribes ? 2 * kRun : kRun));
  EXPECT_EQ(acks[0].reader_version, kRunVersion);
  // A run of data to each subscriber's node, a run of acknowledgements.
  const ScribeStats& r = ring.scribe(root).stats();
  EXPECT_EQ(r.message_runs_sent - root_before.message_runs_sent, subscribers.size() + 1);
  EXPECT_EQ(r.messages_in_runs - root_before.messages_in_runs,
            static_cast<uint64_t>(kRun) * (subscribers.size() + 1));
  EXPECT_EQ(p.publish_resends, publisher_before.publish_resends);
  // Consecutive numbers after the first publish's, completed in order.
  for (int i = 0; i < kRun; ++i) {
    EXPECT_EQ(order[i], i);
    EXPECT_EQ(completed[i], **first + 1 + i);
  }
  for (int i : subscribers) {
    const std::vector<Received>& log = ring.log(i, kTopic);
    ASSERT_EQ(log.size(), static_cast<size_t>(kRun + 1)) << "node " << i;
    for (int k = 0; k < kRun; ++k) {
      EXPECT_EQ(log[k + 1].seq, **first + 1 + k);
      EXPECT_EQ(log[k + 1].payload, absl::StrCat("run ", k));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, PublishRunTest,
                         ::testing::Combine(::testing::Values<uint64_t>(1, 2, 3),
                                            ::testing::Bool()));

}  // namespace
}  // namespace peter::pubsub::testing

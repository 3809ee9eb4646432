#include "pubsub/wire/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/io.h>

#include <array>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pubsub/wire/scribe.capnp.h"

namespace peter::pubsub::wire {
namespace {

NodeHandle Handle(uint64_t n) {
  NodeHandle h;
  h.id = NodeId(n, ~n);
  h.endpoint = pastry::Endpoint::FromIpv4(0x7f000001 + n, 4000);
  h.incarnation = 1'764'000'000'000'000 + n;  // compared after the round trip
  return h;
}

// A `listed` list of one entry, set by `edit` (to what the encoder may never
// write), decoded.
template <typename Edit>
absl::StatusOr<Received> DecodeEntry(Edit&& edit) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<schema::ScribeMsg>();
  root.setVersion(kScribeVersion);
  auto entry = root.initBody().initListed(1)[0];
  edit(entry);
  kj::VectorOutputStream out;
  capnp::writeMessage(out, message);
  return DecodeReceived(std::string(reinterpret_cast<const char*>(out.getArray().begin()),
                                    out.getArray().size()));
}

template <typename T>
T RoundTrip(const T& msg) {
  absl::StatusOr<ScribeMessage> decoded = Decode(Encode(msg));
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(std::holds_alternative<T>(*decoded));
  return std::get<T>(*decoded);
}

TEST(ScribeCodecTest, JoinRoundTrips) {
  JoinMsg m{NodeId(1, 2), Handle(7), true, 99};
  JoinMsg r = RoundTrip(m);
  EXPECT_EQ(r.frontier, 99u);
  EXPECT_EQ(r.topic, m.topic);
  EXPECT_EQ(r.joiner, m.joiner);
  EXPECT_TRUE(r.reliable);
}

TEST(ScribeCodecTest, AckHeartbeatAndReplyRoundTrip) {
  JoinAckMsg ack{NodeId(3, 4), {NodeId(5, 6), NodeId(7, 8)}, 42};
  JoinAckMsg a = RoundTrip(ack);
  EXPECT_EQ(a.path, ack.path);
  EXPECT_EQ(a.next_seq, 42u);
  EXPECT_EQ(RoundTrip(JoinNackMsg{NodeId(1, 1)}).topic, NodeId(1, 1));
  EXPECT_EQ(RoundTrip(LeaveMsg{NodeId(2, 2)}).topic, NodeId(2, 2));
  HeartbeatMsg hb{{NodeId(1, 0), NodeId(2, 0)}};
  EXPECT_EQ(RoundTrip(hb).topics, hb.topics);
  HeartbeatReplyMsg reply{{TopicStatus{NodeId(9, 9), true, {NodeId(1, 1)}, 5},
                           TopicStatus{NodeId(8, 8), false, {}, 0}}};
  HeartbeatReplyMsg r = RoundTrip(reply);
  ASSERT_EQ(r.topics.size(), 2u);
  EXPECT_TRUE(r.topics[0].accepted);
  EXPECT_EQ(r.topics[0].path, reply.topics[0].path);
  EXPECT_EQ(r.topics[0].next_seq, 5u);
  EXPECT_FALSE(r.topics[1].accepted);
}

TEST(ScribeCodecTest, DataPathMessagesRoundTrip) {
  std::string payload("hello\0world", 11);
  EXPECT_EQ(RoundTrip(PublishMsg{NodeId(1, 2), payload, {}, 0}).payload, payload);
  DataMsg d = RoundTrip(DataMsg{NodeId(1, 2), 77, payload});
  EXPECT_EQ(d.seq, 77u);
  EXPECT_EQ(d.payload, payload);
  RepairRequestMsg rr = RoundTrip(RepairRequestMsg{NodeId(1, 2), 3, 9, Handle(4)});
  EXPECT_EQ(rr.from, 3u);
  EXPECT_EQ(rr.to, 9u);
  EXPECT_EQ(rr.requester, Handle(4));
  EXPECT_EQ(RoundTrip(SkipMsg{NodeId(1, 2), 12}).up_to, 12u);
  ReplicateMsg rep{NodeId(1, 2), 10, true,
                   {{8, "a", {}, 0, 0}, {9, "bb", NodeId(5, 5), 31, 0x20007}}, 77, 9,
                   0x30007, NodeId(6, 6)};
  ReplicateMsg r = RoundTrip(rep);
  EXPECT_EQ(r.lease, 77u);
  EXPECT_EQ(r.commit, 9u);
  EXPECT_EQ(r.term, 0x30007u);
  EXPECT_EQ(r.term_root, NodeId(6, 6));
  EXPECT_EQ(r.messages[0].term, 0u);
  EXPECT_EQ(r.messages[1].term, 0x20007u);
  // A root's Replicate names no term root.
  EXPECT_EQ(RoundTrip(ReplicateMsg{NodeId(1, 2), 10, false, {}, 0, 9, 0x30007, {}}).term_root,
            NodeId());
  ReplicaAckMsg ack = RoundTrip(ReplicaAckMsg{NodeId(1, 2), 77, 5, 9});
  EXPECT_EQ(ack.topic, NodeId(1, 2));
  EXPECT_EQ(ack.lease, 77u);
  EXPECT_EQ(ack.first, 5u);
  EXPECT_EQ(ack.last, 9u);
  EXPECT_EQ(r.next_seq, 10u);
  EXPECT_TRUE(r.handover);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1].seq, 9u);
  EXPECT_EQ(r.messages[1].payload, "bb");
  EXPECT_EQ(r.messages[0].request, 0u);
  EXPECT_EQ(r.messages[1].publisher, NodeId(5, 5));
  EXPECT_EQ(r.messages[1].request, 31u);
}

TEST(ScribeCodecTest, AcknowledgedPublishAnycastAndPushDownRoundTrip) {
  PublishMsg p = RoundTrip(PublishMsg{NodeId(1, 2), "x", Handle(3), 17});
  EXPECT_EQ(p.publisher, Handle(3));
  EXPECT_EQ(p.request, 17u);
  EXPECT_TRUE(p.want_ack);
  EXPECT_EQ(p.after, 0u);  // none, as an older node sends
  EXPECT_FALSE(p.passed_on);
  // Its predecessor, and passed on to the root by a non-closest node.
  PublishMsg q = RoundTrip(PublishMsg{NodeId(1, 2), "x", Handle(3), 19, true, 17, true});
  EXPECT_EQ(q.after, 17u);
  EXPECT_TRUE(q.passed_on);
  // Best effort: an origin for de-duplication, no acknowledgement.
  PublishMsg b = RoundTrip(PublishMsg{NodeId(1, 2), "x", Handle(3), 18, false});
  EXPECT_EQ(b.publisher, Handle(3));
  EXPECT_EQ(b.request, 18u);
  EXPECT_FALSE(b.want_ack);
  PublishAckMsg ack = RoundTrip(PublishAckMsg{NodeId(1, 2), 17, 99});
  EXPECT_EQ(ack.topic, NodeId(1, 2));
  EXPECT_EQ(ack.request, 17u);
  EXPECT_EQ(ack.seq, 99u);
  HeartbeatMsg hb = RoundTrip(HeartbeatMsg{{NodeId(1, 0)}, 1234});
  EXPECT_EQ(hb.rtt_micros, 1234u);

  AnycastMsg any{NodeId(4, 4), 5, Handle(6), "job", {NodeId(1, 1), NodeId(2, 2)}, 3,
                 {Handle(10), Handle(11)}, Handle(12), true};
  AnycastMsg a = RoundTrip(any);
  EXPECT_EQ(a.pending, any.pending);
  EXPECT_EQ(a.up, Handle(12));
  EXPECT_TRUE(a.top_reached);
  AnycastMsg bare = RoundTrip(AnycastMsg{NodeId(4, 4), 5, Handle(6), "", {}, 0, {}, {}, false});
  EXPECT_FALSE(bare.up.has_value());
  EXPECT_TRUE(bare.pending.empty());
  EXPECT_EQ(a.request, 5u);
  EXPECT_EQ(a.requester, Handle(6));
  EXPECT_EQ(a.payload, "job");
  EXPECT_EQ(a.visited, any.visited);
  EXPECT_EQ(a.hops, 3u);
  AnycastReplyMsg yes =
      RoundTrip(AnycastReplyMsg{NodeId(4, 4), 5, AnycastOutcome::kAccepted, Handle(8)});
  EXPECT_EQ(yes.outcome, AnycastOutcome::kAccepted);
  EXPECT_EQ(yes.accepted_by, Handle(8));
  AnycastReplyMsg no =
      RoundTrip(AnycastReplyMsg{NodeId(4, 4), 5, AnycastOutcome::kNoneAccepted, {}});
  EXPECT_EQ(no.outcome, AnycastOutcome::kNoneAccepted);
  PushDownMsg push = RoundTrip(PushDownMsg{NodeId(4, 4), Handle(9)});
  EXPECT_EQ(push.new_parent, Handle(9));
}

TEST(ScribeCodecTest, AnycastVisitedListIsLimited) {
  DecodeLimits limits;
  limits.max_list = 1;
  EXPECT_FALSE(Decode(Encode(AnycastMsg{NodeId(), 1, Handle(1), "", {NodeId(), NodeId()}, 0, {}, {}, false}),
                      limits)
                   .ok());
}

TEST(ScribeCodecTest, GarbageIsAnErrorNotACrash) {
  EXPECT_FALSE(Decode("").ok());
  EXPECT_FALSE(Decode("short").ok());
  EXPECT_FALSE(Decode(std::string(64, '\xff')).ok());
  std::string good = Encode(DataMsg{NodeId(1, 2), 1, std::string(100, 'x')});
  for (size_t cut = 8; cut < good.size(); cut += 8) {
    EXPECT_FALSE(Decode(good.substr(0, cut)).ok()) << cut;
  }
  EXPECT_FALSE(Decode(good + std::string(8, '\0')).ok());  // trailing words
  // Every single-byte corruption decodes or fails cleanly.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x5a;
    (void)Decode(bad);
  }
}

TEST(ScribeCodecTest, LimitsAreEnforced) {
  DecodeLimits limits;
  limits.max_payload_bytes = 10;
  EXPECT_EQ(Decode(Encode(DataMsg{NodeId(), 1, std::string(11, 'x')}), limits)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  limits = DecodeLimits{};
  limits.max_path = 1;
  EXPECT_FALSE(
      Decode(Encode(JoinAckMsg{NodeId(), {NodeId(), NodeId()}, 1}), limits).ok());
}

std::string Bundle(const std::vector<std::string>& parts) { return EncodeBundle(parts); }

// A bundle (version 2) carries each message as Encode wrote it, in order;
// DecodeReceived reads it and a lone message alike, with the sender's
// version. Decode, which is what a version-1 node runs, refuses it.
TEST(ScribeCodecTest, BundleRoundTripsAndOnlyDecodeReceivedReadsIt) {
  const std::vector<std::string> parts = {
      Encode(PublishAckMsg{NodeId(1, 2), 7, 3}),
      Encode(DataMsg{NodeId(3, 4), 9, std::string(100, 'x')}),
      Encode(ReplicaAckMsg{NodeId(5, 6), 0, 1, 4})};
  const std::string bundle = EncodeBundle(parts);
  absl::StatusOr<Received> r = DecodeReceived(bundle);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, kScribeVersion);
  ASSERT_EQ(r->messages.size(), 3u);
  EXPECT_EQ(std::get<PublishAckMsg>(r->messages[0]).request, 7u);
  EXPECT_EQ(std::get<DataMsg>(r->messages[1]).payload, std::string(100, 'x'));
  EXPECT_EQ(std::get<ReplicaAckMsg>(r->messages[2]).last, 4u);
  EXPECT_EQ(Decode(bundle).status().code(), absl::StatusCode::kUnimplemented);

  absl::StatusOr<Received> lone = DecodeReceived(parts[0]);
  ASSERT_TRUE(lone.ok());
  EXPECT_EQ(lone->version, kScribeVersion);
  ASSERT_EQ(lone->messages.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<PublishAckMsg>(lone->messages[0]));
}

// A bundle inside a bundle, one malformed part, or more parts than
// max_list fail the whole payload; garbage fails cleanly.
TEST(ScribeCodecTest, BundleLimitsAreEnforced) {
  const std::string one = Encode(LeaveMsg{NodeId(1, 2)});
  EXPECT_FALSE(DecodeReceived(Bundle({one, Bundle({one, one})})).ok());
  EXPECT_FALSE(DecodeReceived(Bundle({one, std::string(16, '\xff')})).ok());
  DecodeLimits limits;
  limits.max_list = 2;
  EXPECT_TRUE(DecodeReceived(Bundle({one, one}), limits).ok());
  EXPECT_FALSE(DecodeReceived(Bundle({one, one, one}), limits).ok());
  const std::string good = Bundle({one, one});
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x5a;
    (void)DecodeReceived(bad);
  }
}

// Encode builds most messages in a scratch segment it reuses (zeroed again
// after each): messages below, around and above its 64 KiB, one after
// another and bundled, each decode to what was encoded.
TEST(ScribeCodecTest, MessagesOfEverySizeRoundTripOneAfterAnother) {
  std::vector<std::string> parts;
  for (size_t size : {0, 100, 65'000, 65'200, 65'400, 200'000, 7, 65'300}) {
    const DataMsg data{NodeId(size, 1), size + 1, std::string(size, static_cast<char>('a' + size % 26))};
    const std::string bytes = Encode(data);
    absl::StatusOr<ScribeMessage> back = Decode(bytes);
    ASSERT_TRUE(back.ok()) << size << ": " << back.status();
    const DataMsg& got = std::get<DataMsg>(*back);
    EXPECT_EQ(got.topic, data.topic);
    EXPECT_EQ(got.seq, data.seq);
    EXPECT_EQ(got.payload, data.payload);
    parts.push_back(bytes);
  }
  ReplicateMsg replicate{NodeId(9, 9), 5, false, {}, 3, 4};
  for (uint64_t seq = 1; seq <= 2'000; ++seq) {
    replicate.messages.push_back(StoredMessage{seq, std::string(seq % 40, 'r'), NodeId(seq, 2), seq});
  }
  absl::StatusOr<ScribeMessage> back = Decode(Encode(replicate));
  ASSERT_TRUE(back.ok()) << back.status();
  const ReplicateMsg& got = std::get<ReplicateMsg>(*back);
  ASSERT_EQ(got.messages.size(), replicate.messages.size());
  EXPECT_EQ(got.messages.back().payload, replicate.messages.back().payload);
  EXPECT_EQ(got.messages.back().publisher, replicate.messages.back().publisher);
  EXPECT_EQ(got.commit, 4u);
  for (size_t n : {size_t{2}, parts.size()}) {
    absl::StatusOr<Received> r =
        DecodeReceived(EncodeBundle(absl::MakeConstSpan(parts).subspan(0, n)));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->messages.size(), n);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(std::get<DataMsg>(r->messages[i]).payload,
                std::get<DataMsg>(*Decode(parts[i])).payload);
    }
  }
}

// Encode(DataMsg) and Encode(ReplicateMsg), which spare the copy into a
// ScribeMessage, give the very bytes Encode(ScribeMessage) gives.
TEST(ScribeCodecTest, DataAndReplicateEncodeAsTheirScribeMessage) {
  for (size_t size : {0, 64, 70'000}) {
    const DataMsg data{NodeId(size, 3), size + 7, std::string(size, 'd')};
    EXPECT_EQ(Encode(data), Encode(ScribeMessage(data))) << size;
  }
  ReplicateMsg replicate{NodeId(4, 5), 99, true, {}, 12, 90};
  EXPECT_EQ(Encode(replicate), Encode(ScribeMessage(replicate)));
  for (uint64_t seq = 80; seq < 99; ++seq) {
    replicate.messages.push_back(StoredMessage{seq, std::string(64, 'p'), NodeId(seq, 6), seq * 3});
  }
  const std::string bytes = Encode(replicate);
  EXPECT_EQ(bytes, Encode(ScribeMessage(replicate)));
  absl::StatusOr<ScribeMessage> back = Decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  const ReplicateMsg& got = std::get<ReplicateMsg>(*back);
  EXPECT_TRUE(got.handover);
  EXPECT_EQ(got.next_seq, 99u);
  EXPECT_EQ(got.lease, 12u);
  EXPECT_EQ(got.commit, 90u);
  ASSERT_EQ(got.messages.size(), 19u);
  EXPECT_EQ(got.messages.front().seq, 80u);
  EXPECT_EQ(got.messages.front().request, 240u);
}

// A list of Replicates or of ReplicaAcks (version 3), of several topics,
// reads as its messages one by one, every field kept, alone or in a bundle
// with other messages; Decode, which is all a version-1 or -2 node runs on
// a message of a kind it does not know, refuses it. reader_version says
// which versions read a payload.
TEST(ScribeCodecTest, ReplicateAndReplicaAckListsRoundTrip) {
  std::vector<ReplicateMsg> replicates;
  for (uint64_t k = 1; k <= 3; ++k) {
    ReplicateMsg r{NodeId(k, 10), 40 + k, false, {}, k == 2 ? 77u : 0u, 30 + k, 5, NodeId(k, 11)};
    for (uint64_t seq = 30; seq < 30 + k; ++seq) {
      r.messages.push_back(StoredMessage{seq, std::string(k * 10, 'a'), NodeId(seq, 1), seq, 4});
    }
    replicates.push_back(r);
  }
  const std::vector<const ReplicateMsg*> pointers = {&replicates[0], &replicates[1],
                                                     &replicates[2]};
  const std::string list = EncodeReplicates(pointers);
  absl::StatusOr<Received> r = DecodeReceived(list);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, kScribeVersion);
  EXPECT_EQ(r->reader_version, kBatchVersion);
  ASSERT_EQ(r->messages.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const ReplicateMsg& got = std::get<ReplicateMsg>(r->messages[i]);
    const ReplicateMsg& sent = replicates[i];
    EXPECT_EQ(got.topic, sent.topic);
    EXPECT_EQ(got.next_seq, sent.next_seq);
    EXPECT_EQ(got.lease, sent.lease);
    EXPECT_EQ(got.commit, sent.commit);
    EXPECT_EQ(got.term, sent.term);
    EXPECT_EQ(got.term_root, sent.term_root);
    ASSERT_EQ(got.messages.size(), sent.messages.size());
    EXPECT_EQ(got.messages.back().payload, sent.messages.back().payload);
    EXPECT_EQ(got.messages.back().request, sent.messages.back().request);
    EXPECT_EQ(got.messages.back().term, 4u);
    // The same bytes as the Replicate alone, once decoded.
    EXPECT_EQ(Encode(r->messages[i]), Encode(sent));
  }
  EXPECT_EQ(Decode(list).status().code(), absl::StatusCode::kUnimplemented);

  const std::vector<ReplicaAckMsg> acks = {{NodeId(1, 10), 0, 30, 30}, {NodeId(2, 10), 77, 30, 31}};
  const std::string ack_list = EncodeReplicaAcks(acks);
  EXPECT_EQ(Decode(ack_list).status().code(), absl::StatusCode::kUnimplemented);
  const std::string data = Encode(DataMsg{NodeId(3, 4), 9, "x"});
  absl::StatusOr<Received> bundled = DecodeReceived(EncodeBundle({data, ack_list, list}));
  ASSERT_TRUE(bundled.ok()) << bundled.status();
  EXPECT_EQ(bundled->reader_version, kBatchVersion);
  ASSERT_EQ(bundled->messages.size(), 6u);
  EXPECT_TRUE(std::holds_alternative<DataMsg>(bundled->messages[0]));
  for (size_t i = 0; i < 2; ++i) {
    const ReplicaAckMsg& got = std::get<ReplicaAckMsg>(bundled->messages[1 + i]);
    EXPECT_EQ(got.topic, acks[i].topic);
    EXPECT_EQ(got.lease, acks[i].lease);
    EXPECT_EQ(got.first, acks[i].first);
    EXPECT_EQ(got.last, acks[i].last);
  }
  EXPECT_EQ(std::get<ReplicateMsg>(bundled->messages[5]).topic, replicates[2].topic);

  absl::StatusOr<Received> plain = DecodeReceived(EncodeBundle({data, data}));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->reader_version, kBundleVersion);
  EXPECT_EQ(DecodeReceived(data)->reader_version, 1);
}

// A list is bounded as a bundle is: at most max_list messages in a payload
// with a list's entries each counted, alone or bundled; an empty list, a
// malformed entry or a list inside a list's place fail the whole payload
// (Scribe counts it once in `malformed`); garbage never crashes.
TEST(ScribeCodecTest, ReplicateAndReplicaAckListLimitsAreEnforced) {
  const std::vector<ReplicaAckMsg> three(3, ReplicaAckMsg{NodeId(1, 2), 0, 1, 1});
  const std::string one = Encode(LeaveMsg{NodeId(1, 2)});
  DecodeLimits limits;
  limits.max_list = 3;
  EXPECT_TRUE(DecodeReceived(EncodeReplicaAcks(three), limits).ok());
  EXPECT_FALSE(DecodeReceived(EncodeReplicaAcks({three[0], three[0], three[0], three[0]}), limits)
                   .ok());
  EXPECT_FALSE(DecodeReceived(Bundle({one, EncodeReplicaAcks(three)}), limits).ok());
  EXPECT_TRUE(DecodeReceived(Bundle({one, EncodeReplicaAcks({three[0], three[0]})}), limits).ok());
  EXPECT_FALSE(DecodeReceived(EncodeReplicaAcks({})).ok());
  EXPECT_FALSE(DecodeReceived(EncodeReplicates({})).ok());

  ReplicateMsg big{NodeId(1, 1), 9, false, {}, 0, 0, 0, NodeId()};
  for (uint64_t seq = 1; seq <= 4; ++seq) {
    big.messages.push_back(StoredMessage{seq, "p", NodeId(), 0, 0});
  }
  const ReplicateMsg* two[] = {&big, &big};
  EXPECT_TRUE(DecodeReceived(EncodeReplicates(two)).ok());
  limits = DecodeLimits{};
  limits.max_list = 3;  // a Replicate's own messages are bounded by it too
  EXPECT_FALSE(DecodeReceived(EncodeReplicates(two), limits).ok());
  limits = DecodeLimits{};
  limits.max_payload_bytes = 0;
  EXPECT_FALSE(DecodeReceived(EncodeReplicates(two), limits).ok());
  limits = DecodeLimits{};
  limits.max_bytes = 64;
  EXPECT_FALSE(DecodeReceived(EncodeReplicates(two), limits).ok());

  for (const std::string& good : {EncodeReplicates(two), EncodeReplicaAcks(three)}) {
    for (size_t i = 0; i < good.size(); ++i) {
      std::string bad = good;
      bad[i] ^= 0x5a;
      (void)DecodeReceived(bad);
      (void)DecodeReceived(Bundle({one, bad}));
    }
    for (size_t n = 0; n < good.size(); n += 8) (void)DecodeReceived(good.substr(0, n));
  }
}

// A `listed` list (version 4): publishes, data and publish
// acknowledgements of several topics, mixed, read as its messages one by
// one in the order sent, every field kept, alone or in a bundle with other
// messages; Decode (all an older node runs on a type it does not know)
// refuses it; a lone message's bytes are those of the message alone.
TEST(ScribeCodecTest, ListedMessagesRoundTrip) {
  const PublishMsg publish{NodeId(1, 2), "published", Handle(4), 41, true, 40, true};
  const std::vector<ListedMsg> sent = {
      publish,
      DataMsg{NodeId(1, 2), 7, "first"},
      PublishAckMsg{NodeId(1, 2), 41, 7},
      DataMsg{NodeId(3, 4), 9, std::string(300, 'q')},
      DataMsg{NodeId(3, 4), 10, ""},
      PublishAckMsg{NodeId(3, 4), 42, 10},
  };
  const std::string list = EncodeListed(sent);
  absl::StatusOr<Received> r = DecodeReceived(list);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->version, kScribeVersion);
  EXPECT_EQ(r->reader_version, kListedVersion);
  ASSERT_EQ(r->messages.size(), sent.size());
  const PublishMsg& got = std::get<PublishMsg>(r->messages[0]);
  EXPECT_EQ(got.topic, publish.topic);
  EXPECT_EQ(got.payload, publish.payload);
  EXPECT_EQ(got.publisher, publish.publisher);
  EXPECT_EQ(got.request, publish.request);
  EXPECT_TRUE(got.want_ack);
  EXPECT_EQ(got.after, publish.after);
  EXPECT_TRUE(got.passed_on);
  EXPECT_EQ(Encode(got), Encode(publish));
  EXPECT_EQ(Encode(publish), Encode(ScribeMessage(publish)));
  for (size_t i = 1; i < sent.size(); ++i) {
    if (const auto* data = std::get_if<DataMsg>(&sent[i])) {
      const DataMsg& got = std::get<DataMsg>(r->messages[i]);
      EXPECT_EQ(got.topic, data->topic);
      EXPECT_EQ(got.seq, data->seq);
      EXPECT_EQ(got.payload, data->payload);
      EXPECT_EQ(Encode(got), Encode(*data));
    } else {
      const PublishAckMsg& ack = std::get<PublishAckMsg>(sent[i]);
      const PublishAckMsg& got = std::get<PublishAckMsg>(r->messages[i]);
      EXPECT_EQ(got.topic, ack.topic);
      EXPECT_EQ(got.request, ack.request);
      EXPECT_EQ(got.seq, ack.seq);
      EXPECT_EQ(Encode(got), Encode(ScribeMessage(ack)));
    }
  }
  EXPECT_EQ(Decode(list).status().code(), absl::StatusCode::kUnimplemented);

  const std::string leave = Encode(LeaveMsg{NodeId(5, 6)});
  const std::vector<ReplicaAckMsg> acks(2, ReplicaAckMsg{NodeId(1, 10), 0, 30, 30});
  absl::StatusOr<Received> bundled =
      DecodeReceived(EncodeBundle({leave, list, EncodeReplicaAcks(acks)}));
  ASSERT_TRUE(bundled.ok()) << bundled.status();
  EXPECT_EQ(bundled->reader_version, kListedVersion);
  ASSERT_EQ(bundled->messages.size(), 1 + sent.size() + 2);
  EXPECT_TRUE(std::holds_alternative<LeaveMsg>(bundled->messages[0]));
  EXPECT_EQ(std::get<DataMsg>(bundled->messages[4]).payload, std::string(300, 'q'));
  EXPECT_TRUE(std::holds_alternative<ReplicaAckMsg>(bundled->messages.back()));

  const PublishAckMsg lone{NodeId(8, 9), 3, 4};
  EXPECT_EQ(Encode(lone), Encode(ScribeMessage(lone)));
}

// A `listed` list is bounded as the other lists are: at most max_list
// messages in a payload, alone or bundled, each payload within
// max_payload_bytes; an empty list, an entry of a kind this build does not
// know (a newer sender's) and any malformed entry fail the whole payload
// with kInvalidArgument (Scribe counts it in `malformed`); garbage never
// crashes.
TEST(ScribeCodecTest, ListedLimitsAreEnforced) {
  const std::vector<ListedMsg> three = {DataMsg{NodeId(1, 2), 1, "a"},
                                        PublishAckMsg{NodeId(1, 2), 5, 1},
                                        PublishMsg{NodeId(1, 2), "bb", Handle(3), 6}};
  const std::string one = Encode(LeaveMsg{NodeId(1, 2)});
  DecodeLimits limits;
  limits.max_list = 3;
  EXPECT_TRUE(DecodeReceived(EncodeListed(three), limits).ok());
  std::vector<ListedMsg> four = three;
  four.push_back(three[1]);
  EXPECT_EQ(DecodeReceived(EncodeListed(four), limits).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(DecodeReceived(Bundle({one, EncodeListed(three)}), limits).ok());
  EXPECT_TRUE(DecodeReceived(Bundle({one, EncodeListed({three[0], three[1]})}), limits).ok());
  EXPECT_EQ(DecodeReceived(EncodeListed({})).status().code(),
            absl::StatusCode::kInvalidArgument);
  limits = DecodeLimits{};
  limits.max_payload_bytes = 1;
  EXPECT_FALSE(DecodeReceived(EncodeListed(three), limits).ok());
  limits.max_payload_bytes = 2;
  EXPECT_TRUE(DecodeReceived(EncodeListed(three), limits).ok());

  // Two publish acknowledgements; the second entry's union tag set to 6, a
  // member this build does not know. The list's tag word (two structs of
  // one data word and one pointer) is followed by the entries, each its
  // data word (the union's tag first) and its pointer.
  std::string unknown = EncodeListed({three[1], three[1]});
  const std::string tag("\x08\0\0\0\x01\0\x01\0", 8);
  const size_t at = unknown.find(tag);
  ASSERT_NE(at, std::string::npos);
  ASSERT_EQ(unknown[at + 24], 2);  // publishAck
  unknown[at + 24] = 6;
  absl::StatusOr<Received> bad = DecodeReceived(unknown);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("unknown entry"), std::string::npos) << bad.status();
  unknown[at + 24] = 2;
  EXPECT_TRUE(DecodeReceived(unknown).ok());

  const std::string good = EncodeListed(three);
  for (size_t i = 0; i < good.size(); ++i) {
    std::string flipped = good;
    flipped[i] ^= 0x5a;
    (void)DecodeReceived(flipped);
    (void)DecodeReceived(Bundle({one, flipped}));
  }
  for (size_t n = 0; n < good.size(); n += 8) {
    EXPECT_FALSE(DecodeReceived(good.substr(0, n)).ok());
  }
}

// Runs (version 5; docs/scribe.md, "Runs"): consecutive messages of one
// topic in a `listed` list, encoded with runs, are one entry each run and
// read back as the very messages sent, in order -- a publisher's publishes
// with consecutive requests each naming the one before, data with
// consecutive numbers, acknowledgements with consecutive requests and
// numbers -- and only what continues a run joins it: another topic, a gap,
// a publish passed on, best effort or naming another predecessor, starts a
// new entry. Without runs the same list is one entry per message.
TEST(ScribeCodecTest, RunsInListsRoundTrip) {
  const NodeId a(1, 2), b(3, 4);
  std::vector<ListedMsg> sent;
  for (uint64_t k = 0; k < 5; ++k) {  // a run of 5 publishes
    sent.push_back(PublishMsg{a, "p" + std::to_string(k), Handle(4), 40 + k, true,
                              k == 0 ? 39 : 39 + k});
  }
  sent.push_back(PublishMsg{a, "gap", Handle(4), 46, true, 45});        // not 45: alone
  sent.push_back(PublishMsg{b, "other", Handle(4), 47, true, 46});      // another topic
  sent.push_back(PublishMsg{b, "passed", Handle(4), 48, true, 47, true});  // passed on
  sent.push_back(PublishMsg{b, "effort", Handle(4), 49, false, 48});    // best effort
  sent.push_back(PublishMsg{b, "after", Handle(4), 50, true, 7});       // another predecessor
  for (uint64_t k = 0; k < 4; ++k) sent.push_back(DataMsg{a, 7 + k, std::string(k * 100, 'd')});
  sent.push_back(DataMsg{b, 11, "other topic"});
  for (uint64_t k = 0; k < 3; ++k) sent.push_back(PublishAckMsg{a, 40 + k, 7 + k});
  sent.push_back(PublishAckMsg{a, 44, 10});  // request not consecutive
  sent.push_back(PublishAckMsg{a, 45, 12});  // number not consecutive
  ListedRuns counted;
  const std::string runs = EncodeListed(sent, /*runs=*/true, &counted);
  EXPECT_EQ(counted.runs, 3u);
  EXPECT_EQ(counted.messages, 5u + 4u + 3u);
  const std::string plain = EncodeListed(sent);
  EXPECT_LT(runs.size(), plain.size());
  for (const std::string* bytes : {&runs, &plain}) {
    absl::StatusOr<Received> r = DecodeReceived(*bytes);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->reader_version, bytes == &runs ? kRunVersion : kListedVersion);
    ASSERT_EQ(r->messages.size(), sent.size());
    for (size_t i = 0; i < sent.size(); ++i) {
      const std::string want = std::visit([](const auto& m) { return Encode(m); }, sent[i]);
      EXPECT_EQ(Encode(r->messages[i]), want) << i;
    }
  }
  absl::StatusOr<Received> bundled = DecodeReceived(Bundle({Encode(LeaveMsg{a}), runs}));
  ASSERT_TRUE(bundled.ok()) << bundled.status();
  EXPECT_EQ(bundled->reader_version, kRunVersion);
  EXPECT_EQ(bundled->messages.size(), 1 + sent.size());
  // A run of one kind alone, and a lone message (never a run).
  const std::vector<ListedMsg> acks = {PublishAckMsg{a, 1, 1}, PublishAckMsg{a, 2, 2}};
  EXPECT_EQ(DecodeReceived(EncodeListed(acks, true))->messages.size(), 2u);
  ListedRuns none;
  (void)EncodeListed({acks[0]}, true, &none);
  EXPECT_EQ(none.runs, 0u);
}

// A run counts each of its messages against max_list (alone or bundled),
// each payload against max_payload_bytes; a run that is empty, has no
// request, or numbers past the last number fails the whole payload with
// kInvalidArgument (Scribe counts it in `malformed`); garbage never crashes.
TEST(ScribeCodecTest, RunLimitsAreEnforced) {
  const NodeId a(1, 2);
  std::vector<ListedMsg> run;
  for (uint64_t k = 0; k < 4; ++k) run.push_back(PublishMsg{a, "pp", Handle(4), 10 + k, true, 9 + k});
  const std::string bytes = EncodeListed(run, true);
  DecodeLimits limits;
  limits.max_list = 4;
  EXPECT_TRUE(DecodeReceived(bytes, limits).ok());
  limits.max_list = 3;
  EXPECT_EQ(DecodeReceived(bytes, limits).status().code(), absl::StatusCode::kInvalidArgument);
  limits.max_list = 5;
  EXPECT_FALSE(DecodeReceived(Bundle({Encode(LeaveMsg{a}), Encode(LeaveMsg{a}), bytes}), limits).ok());
  EXPECT_TRUE(DecodeReceived(Bundle({Encode(LeaveMsg{a}), bytes}), limits).ok());
  // A plain entry after a run is bounded too.
  std::vector<ListedMsg> run_then_one = run;
  run_then_one.push_back(DataMsg{a, 1, "x"});
  limits.max_list = 4;
  EXPECT_FALSE(DecodeReceived(EncodeListed(run_then_one, true), limits).ok());
  limits = DecodeLimits{};
  limits.max_payload_bytes = 1;
  EXPECT_FALSE(DecodeReceived(bytes, limits).ok());

  auto status_of = [](const std::vector<ListedMsg>& msgs) {
    return DecodeReceived(EncodeListed(msgs, true)).status();
  };
  // Past the last number: requests, or the data's or acknowledgements' numbers.
  const uint64_t last = std::numeric_limits<uint64_t>::max();
  EXPECT_TRUE(status_of({PublishAckMsg{a, last - 1, 1}, PublishAckMsg{a, last, 2}}).ok());
  EXPECT_TRUE(status_of({DataMsg{a, last - 1, ""}, DataMsg{a, last, ""}}).ok());

  // Cap'n Proto lets a run's fields be set to what the encoder never
  // writes: an empty run, no request, numbers past the last.
  auto ip = [](auto handle) {
    const std::array<uint8_t, 16> zero{};
    handle.setIp(kj::arrayPtr(zero.data(), zero.size()));
  };
  EXPECT_TRUE(DecodeEntry([&](auto e) {
                auto r = e.initPublishRun();
                r.setFirstRequest(1);
                ip(r.initPublisher());
                r.initPayloads(2);
              }).ok());
  absl::StatusOr<Received> bad = DecodeEntry([&](auto e) {
    auto r = e.initPublishRun();
    r.setFirstRequest(1);
    ip(r.initPublisher());
    r.initPayloads(0);
  });
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("empty run"), std::string::npos) << bad.status();
  EXPECT_FALSE(DecodeEntry([&](auto e) {
                 auto r = e.initPublishRun();
                 ip(r.initPublisher());
                 r.initPayloads(2);
               }).ok());  // no request
  EXPECT_FALSE(DecodeEntry([&](auto e) {
                 auto r = e.initPublishRun();
                 r.setFirstRequest(1);
                 r.initPayloads(2);
               }).ok());  // no publisher
  EXPECT_FALSE(DecodeEntry([&](auto e) {
                 auto r = e.initPublishRun();
                 r.setFirstRequest(last);
                 ip(r.initPublisher());
                 r.initPayloads(2);
               }).ok());
  EXPECT_FALSE(DecodeEntry([&](auto e) {
                 auto r = e.initPublishAckRun();
                 r.setFirstRequest(1);
                 r.setFirstSeq(1);
               }).ok());  // count 0
  EXPECT_FALSE(DecodeEntry([&](auto e) {
                 auto r = e.initPublishAckRun();
                 r.setFirstRequest(1);
                 r.setFirstSeq(last);
                 r.setCount(2);
               }).ok());
  EXPECT_FALSE(DecodeEntry([&](auto e) {
                 auto r = e.initPublishAckRun();
                 r.setFirstRequest(1);
                 r.setFirstSeq(1);
                 r.setCount(5000);  // over max_list
               }).ok());
  EXPECT_FALSE(DecodeEntry([&](auto e) { e.initDataRun().initPayloads(0); }).ok());
  EXPECT_FALSE(DecodeEntry([&](auto e) {
                 auto r = e.initDataRun();
                 r.setFirstSeq(last);
                 r.initPayloads(2);
               }).ok());

  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] ^= 0x5a;
    (void)DecodeReceived(flipped);
  }
  for (size_t n = 0; n < bytes.size(); n += 8) {
    EXPECT_FALSE(DecodeReceived(bytes.substr(0, n)).ok());
  }
}

// A root numbers from 1 and acknowledges only a publish with a request, so
// a publish acknowledgement without a request or with the number 0 names
// nothing Scribe can answer its caller with: alone, listed or as the first
// of a run, it fails the payload with kInvalidArgument (Scribe counts it in
// `malformed`). The run's decoder took a first number of 0 and handed the
// caller sequence number 0.
TEST(ScribeCodecTest, PublishAckWithoutRequestOrNumberIsRejected) {
  const NodeId a(1, 2);
  auto expect_invalid = [](const absl::Status& status, absl::string_view what) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find(what), std::string::npos) << status;
  };
  EXPECT_TRUE(Decode(Encode(PublishAckMsg{a, 5, 1})).ok());
  expect_invalid(Decode(Encode(PublishAckMsg{a, 5, 0})).status(), "without number");
  expect_invalid(Decode(Encode(PublishAckMsg{a, 0, 1})).status(), "without request");
  expect_invalid(DecodeReceived(EncodeListed({PublishAckMsg{a, 5, 0}}, true)).status(),
                 "without number");
  auto run = [&](uint64_t first_request, uint64_t first_seq) {
    return DecodeEntry([&](auto e) {
      auto r = e.initPublishAckRun();
      r.setFirstRequest(first_request);
      r.setFirstSeq(first_seq);
      r.setCount(2);
    });
  };
  absl::StatusOr<Received> good = run(5, 1);
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_EQ(good->messages.size(), 2u);
  EXPECT_EQ(std::get<PublishAckMsg>(good->messages[0]).seq, 1u);
  expect_invalid(run(5, 0).status(), "without number");
  expect_invalid(run(0, 1).status(), "without request");
}

// The same for the other messages that name a message by its number: data
// (alone, listed, or as a run's first), a replicated message, a replica's
// acknowledgement of first..last. Data numbered 0 was taken in and counted
// as a duplicate, a DataRun from 0 delivered the rest of the run, a
// replicated message 0 was kept by the replica (and moved into a new
// root's replay buffer), and a ReplicaAck with first 0 confirmed every
// waiting number up to its last. Where 0 means "none" or "not known" it
// still decodes.
TEST(ScribeCodecTest, MessagesNumberedZeroAreRejected) {
  const NodeId a(1, 2);
  auto expect_invalid = [](const absl::Status& status, absl::string_view what) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_NE(status.message().find(what), std::string::npos) << status;
  };
  EXPECT_TRUE(Decode(Encode(DataMsg{a, 1, "x"})).ok());
  expect_invalid(Decode(Encode(DataMsg{a, 0, "x"})).status(), "data without number");
  expect_invalid(DecodeReceived(EncodeListed({DataMsg{a, 0, "x"}}, true)).status(),
                 "data without number");
  auto data_run = [&](uint64_t first_seq) {
    return DecodeEntry([&](auto e) {
      auto r = e.initDataRun();
      r.setFirstSeq(first_seq);
      r.initPayloads(2);
    });
  };
  EXPECT_TRUE(data_run(1).ok());
  expect_invalid(data_run(0).status(), "data run without number");

  ReplicateMsg rep{a, 3, false, {{1, "a", {}, 0, 0}, {2, "b", {}, 0, 0}}, 0, 0, 0, {}};
  EXPECT_TRUE(Decode(Encode(rep)).ok());
  const ReplicateMsg* one[] = {&rep};
  EXPECT_TRUE(DecodeReceived(EncodeReplicates(one)).ok());
  rep.messages[0].seq = 0;
  expect_invalid(Decode(Encode(rep)).status(), "replicated message without number");
  expect_invalid(DecodeReceived(EncodeReplicates(one)).status(),
                 "replicated message without number");
  // A Replicate with no next number, commit index or term (an older
  // sender's, or one that knows none) is still read.
  EXPECT_TRUE(Decode(Encode(ReplicateMsg{a, 0, false, {}, 0, 0, 0, {}})).ok());

  EXPECT_TRUE(Decode(Encode(ReplicaAckMsg{a, 77, 0, 0})).ok());  // a lease alone
  EXPECT_TRUE(Decode(Encode(ReplicaAckMsg{a, 0, 4, 4})).ok());
  expect_invalid(Decode(Encode(ReplicaAckMsg{a, 0, 0, 4})).status(), "no range");
  expect_invalid(Decode(Encode(ReplicaAckMsg{a, 0, 5, 4})).status(), "no range");
  expect_invalid(DecodeReceived(EncodeReplicaAcks({ReplicaAckMsg{a, 0, 0, 4}})).status(),
                 "no range");

  // Where 0 is "none": a repair from 0, a Skip to 0, a JoinAck from a
  // parent with no frontier.
  EXPECT_TRUE(Decode(Encode(RepairRequestMsg{a, 0, 9, Handle(4)})).ok());
  EXPECT_TRUE(Decode(Encode(SkipMsg{a, 0})).ok());
  EXPECT_TRUE(Decode(Encode(JoinAckMsg{a, {}, 0})).ok());
}

}  // namespace
}  // namespace peter::pubsub::wire

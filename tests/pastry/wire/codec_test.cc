// Round trips through Encode/Decode, and frames from a later protocol
// version (pastry_future_test.capnp). Hostile input is in
// codec_hostile_test.cc.
#include "pastry/wire/codec.h"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstring>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "pastry/core/messages.h"
#include "tests/pastry/wire/pastry_future_test.capnp.h"

namespace peter::pastry::wire {
namespace {

NodeId Id(uint64_t n) {
  return NodeId(0x0123456789abcdefULL * (n + 1), ~n * 0x9E3779B97F4A7C15ULL);
}

Endpoint V4(uint8_t last, uint16_t port) {
  Endpoint e;
  e.ip = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, last};
  e.port = port;
  return e;
}

Endpoint V6(uint8_t last, uint16_t port) {
  Endpoint e;
  e.ip = {0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, last};
  e.port = port;
  return e;
}

// Two in three handles carry an incarnation (a start time in microseconds),
// the rest none (0: unknown), as from an older node.
NodeHandle Handle(uint64_t n) {
  return NodeHandle{Id(n),
                    n % 2 ? V6(static_cast<uint8_t>(n), 40000 + n)
                          : V4(static_cast<uint8_t>(n), 9000 + n),
                    n % 3 == 0 ? 0 : 1'764'000'000'000'000 + n};
}

std::vector<NodeHandle> Handles(int count, uint64_t first) {
  std::vector<NodeHandle> v;
  for (int i = 0; i < count; ++i) v.push_back(Handle(first + i));
  return v;
}

std::vector<NodeId> Path(int count) {
  std::vector<NodeId> v;
  for (int i = 0; i < count; ++i) v.push_back(Id(100 + i));
  return v;
}

// Field-by-field equality; the message structs have no operator==.
auto Tie(const RouteMsg& m) {
  return std::tie(m.id, m.kind, m.request_id, m.app, m.key, m.source, m.hops,
                  m.trace, m.path, m.payload, m.join_rows);
}
auto Tie(const RouteAck& m) { return std::tie(m.ids); }
auto Tie(const JoinReply& m) { return std::tie(m.rows, m.leaf_set); }
auto Tie(const Probe& m) {
  return std::tie(m.nonce, m.joining, m.want_leaf_set, m.known_leaf_version,
                  m.leaf_version);
}
auto Tie(const ProbeReply& m) {
  return std::tie(m.nonce, m.active, m.leaf_version, m.has_leaf_set,
                  m.leaf_set);
}
auto Tie(const RowRequest& m) { return std::tie(m.row); }
auto Tie(const RowReply& m) { return std::tie(m.row, m.entries); }
auto Tie(const Leave&) { return std::tuple<>(); }
auto Tie(const LookupReply& m) {
  return std::tie(m.request_id, m.key, m.hops, m.path);
}

bool SameBody(const MessageBody& a, const MessageBody& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&b](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        return Tie(x) == Tie(std::get<T>(b));
      },
      a);
}

struct Case {
  std::string name;
  Envelope envelope;
};

Envelope Wrap(MessageBody body, uint64_t sender = 7) {
  return Envelope{kProtocolVersion, Handle(sender), std::move(body)};
}

RouteMsg FullRoute(RouteKind kind) {
  RouteMsg m;
  m.id = 0xfedcba9876543210ULL;
  m.kind = kind;
  m.request_id = 77;
  m.app = 0xdeadbeef;
  m.key = Id(42);
  m.source = Handle(3);
  m.hops = 65535;
  m.trace = true;
  m.path = Path(5);
  m.payload = std::string("hello\0world", 11);
  m.join_rows = Handles(20, 10);
  return m;
}

std::vector<Case> Cases() {
  std::vector<Case> cases;
  for (auto [name, kind] : {std::pair{"RouteApp", RouteKind::kApp},
                            std::pair{"RouteJoin", RouteKind::kJoin},
                            std::pair{"RouteLookup", RouteKind::kLookup}}) {
    cases.push_back({name, Wrap(FullRoute(kind))});
  }
  RouteMsg no_key = FullRoute(RouteKind::kApp);
  no_key.key.reset();
  no_key.path.clear();
  no_key.join_rows.clear();
  no_key.payload.clear();
  cases.push_back({"RouteNoKeyEmptyLists", Wrap(no_key, 8)});
  RouteMsg zero_key = FullRoute(RouteKind::kApp);
  zero_key.key = NodeId();  // present but zero: not the same as absent
  cases.push_back({"RouteZeroKey", Wrap(zero_key)});
  RouteMsg big = FullRoute(RouteKind::kApp);
  big.payload.resize(3 << 20);
  for (size_t i = 0; i < big.payload.size(); ++i) big.payload[i] = char(i * 31);
  big.path = Path(128);
  big.join_rows = Handles(4096, 1);
  cases.push_back({"RouteLargestWithinLimits", Wrap(big)});
  cases.push_back({"RouteAck", Wrap(RouteAck{{~uint64_t{0}}})});
  std::vector<uint64_t> ids(RouteAck::kMaxAckIds);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = 1000 + 3 * i;
  cases.push_back({"RouteAckBatch", Wrap(RouteAck{ids})});
  cases.push_back({"RouteAckEmpty", Wrap(RouteAck{})});
  cases.push_back(
      {"JoinReply", Wrap(JoinReply{Handles(512, 1000), Handles(24, 2000)})});
  cases.push_back({"JoinReplyEmpty", Wrap(JoinReply{})});
  cases.push_back({"Probe", Wrap(Probe{123, true, true, 456, 789})});
  cases.push_back({"ProbeReply", Wrap(ProbeReply{9, true, 10, true,
                                                 Handles(32, 50)})});
  cases.push_back({"ProbeReplyNoLeafSet",
                   Wrap(ProbeReply{9, true, 10, false, {}})});
  cases.push_back({"RowRequest", Wrap(RowRequest{31})});
  cases.push_back({"RowReply", Wrap(RowReply{255, Handles(16, 70)})});
  cases.push_back({"RowReplyEmpty", Wrap(RowReply{3, {}})});
  cases.push_back({"Leave", Wrap(Leave{})});
  cases.push_back({"LookupReply",
                   Wrap(LookupReply{5, Id(9), 17, Path(17)})});
  Envelope later_version = Wrap(RouteAck{{1}});
  later_version.version = 9;
  cases.push_back({"LaterVersion", later_version});
  cases.push_back({"AllDefaults", Envelope{}});
  return cases;
}

class RoundTripTest : public testing::TestWithParam<Case> {};

TEST_P(RoundTripTest, DecodesToTheSameEnvelope) {
  const Envelope& in = GetParam().envelope;
  const std::string frame = Encode(in);
  absl::StatusOr<Envelope> out = Decode(frame);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->version, in.version);
  EXPECT_EQ(out->sender, in.sender);
  EXPECT_TRUE(SameBody(out->body, in.body)) << MessageTypeName(in.body);
  EXPECT_EQ(Encode(*out), frame);  // encoding is deterministic
}

TEST_P(RoundTripTest, EncodesOneSegmentFrame) {
  const std::string frame = Encode(GetParam().envelope);
  ASSERT_GE(frame.size(), 8u);
  EXPECT_EQ(frame.size() % 8, 0u);
  EXPECT_EQ(frame.substr(0, 4), std::string(4, '\0'));  // segment count - 1
}

TEST_P(RoundTripTest, DecodesFromUnalignedBuffer) {
  const std::string frame = Encode(GetParam().envelope);
  std::string shifted = "x" + frame;
  absl::StatusOr<Envelope> out = Decode(std::string_view(shifted).substr(1));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBody(out->body, GetParam().envelope.body));
}

INSTANTIATE_TEST_SUITE_P(
    AllMessages, RoundTripTest, testing::ValuesIn(Cases()),
    [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(CodecTest, CoversEveryMessageType) {
  std::vector<bool> seen(kMessageTypeCount);
  for (const Case& c : Cases()) seen[c.envelope.body.index()] = true;
  for (int i = 0; i < kMessageTypeCount; ++i) EXPECT_TRUE(seen[i]) << i;
}

TEST(CodecTest, DecodesMultiSegmentFrames) {
  // Other encoders may split a message into segments; ours never does.
  const std::string single = Encode(Wrap(FullRoute(RouteKind::kJoin)));
  kj::ArrayPtr<const capnp::word> words(
      reinterpret_cast<const capnp::word*>(single.data()), single.size() / 8);
  capnp::FlatArrayMessageReader reader(words);
  capnp::MallocMessageBuilder builder(16, capnp::AllocationStrategy::FIXED_SIZE);
  builder.setRoot(reader.getRoot<capnp::AnyPointer>());
  ASSERT_GT(builder.getSegmentsForOutput().size(), 1u);
  kj::Array<capnp::word> multi = capnp::messageToFlatArray(builder);
  absl::StatusOr<Envelope> out = Decode(std::string_view(
      reinterpret_cast<const char*>(multi.begin()), multi.size() * 8));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBody(out->body, FullRoute(RouteKind::kJoin)));
}

// --- Frames from a later protocol version -------------------------------

std::string EncodeFuture(capnp::MallocMessageBuilder& builder) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  return std::string(reinterpret_cast<const char*>(words.begin()),
                     words.size() * 8);
}

void SetFutureSender(future::Envelope::Builder e) {
  e.setVersion(2);
  auto s = e.initSender();
  s.initId().setHi(1);
  auto ep = s.initEndpoint();
  ep.initIp(16)[15] = 1;
  ep.setPort(7);
}

TEST(FutureVersionTest, UnknownMessageTypeIsUnimplemented) {
  capnp::MallocMessageBuilder builder;
  auto e = builder.initRoot<future::Envelope>();
  SetFutureSender(e);
  e.getBody().initGossip().setNote("news");
  absl::StatusOr<Envelope> out = Decode(EncodeFuture(builder));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(out.status().message().find("unknown message type"),
            std::string::npos);
}

TEST(FutureVersionTest, UnknownRouteKindIsUnimplemented) {
  capnp::MallocMessageBuilder builder;
  auto e = builder.initRoot<future::Envelope>();
  SetFutureSender(e);
  auto r = e.getBody().initRoute();
  r.setKind(future::RouteKind::MULTICAST);
  r.initSource().initEndpoint().initIp(16);
  absl::StatusOr<Envelope> out = Decode(EncodeFuture(builder));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kUnimplemented);
}

TEST(FutureVersionTest, AppendedFieldsAreIgnored) {
  capnp::MallocMessageBuilder builder;
  auto e = builder.initRoot<future::Envelope>();
  SetFutureSender(e);
  auto p = e.getBody().initProbe();
  p.setNonce(99);
  p.setWantLeafSet(true);
  p.setNote("a field this build does not know");
  absl::StatusOr<Envelope> out = Decode(EncodeFuture(builder));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->version, 2);
  EXPECT_EQ(out->sender.endpoint.port, 7);
  const Probe& probe = std::get<Probe>(out->body);
  EXPECT_EQ(probe.nonce, 99u);
  EXPECT_TRUE(probe.want_leaf_set);
}

TEST(FutureVersionTest, HandleWithoutIncarnationReadsAsUnknown) {
  // The fixture's NodeHandle is protocol version 1's, without `incarnation`:
  // a handle from a node that predates it reads as incarnation 0.
  capnp::MallocMessageBuilder builder;
  auto e = builder.initRoot<future::Envelope>();
  SetFutureSender(e);
  e.getBody().initProbe().setNonce(3);
  absl::StatusOr<Envelope> out = Decode(EncodeFuture(builder));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->sender.endpoint.port, 7);
  EXPECT_EQ(out->sender.incarnation, 0u);
}

// The fixture's RouteAck is version 1's, with `id` only: it reads our
// acknowledgements as a version-1 node does.
TEST(FutureVersionTest, LoneRouteAckIsTheVersionOneFrame) {
  const std::string frame = Encode(Wrap(RouteAck{{42}}));
  kj::ArrayPtr<const capnp::word> words(
      reinterpret_cast<const capnp::word*>(frame.data()), frame.size() / 8);
  capnp::FlatArrayMessageReader reader(words);
  auto e = reader.getRoot<future::Envelope>();
  ASSERT_EQ(e.getBody().which(), future::Envelope::Body::ROUTE_ACK);
  EXPECT_EQ(e.getBody().getRouteAck().getId(), 42u);
}

TEST(FutureVersionTest, VersionOneRouteAckDecodesToOneId) {
  capnp::MallocMessageBuilder builder;
  auto e = builder.initRoot<future::Envelope>();
  SetFutureSender(e);
  e.setVersion(1);
  e.getBody().initRouteAck().setId(77);
  absl::StatusOr<Envelope> out = Decode(EncodeFuture(builder));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->version, 1);
  EXPECT_EQ(std::get<RouteAck>(out->body).ids, std::vector<uint64_t>{77});
}

TEST(FutureVersionTest, OldFramesDecodeUnderTheNewSchema) {
  // The other direction: a newer node reads our frames.
  const std::string frame = Encode(Wrap(Probe{5, true, false, 6}));
  kj::ArrayPtr<const capnp::word> words(
      reinterpret_cast<const capnp::word*>(frame.data()), frame.size() / 8);
  capnp::FlatArrayMessageReader reader(words);
  auto e = reader.getRoot<future::Envelope>();
  ASSERT_EQ(e.getBody().which(), future::Envelope::Body::PROBE);
  EXPECT_EQ(e.getBody().getProbe().getNonce(), 5u);
  EXPECT_FALSE(e.getBody().getProbe().hasNote());
}

}  // namespace
}  // namespace peter::pastry::wire

// Decode against malformed and hostile frames: it must return an error (or,
// for random bytes that happen to parse, a valid envelope) and never crash,
// hang or throw.
#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pastry/core/messages.h"
#include "pastry/wire/codec.h"
#include "pastry/wire/pastry.capnp.h"

namespace peter::pastry::wire {
namespace {

namespace s = ::peter::pastry::wire::schema;

NodeHandle Handle(uint64_t n) {
  NodeHandle h{NodeId(n, ~n), Endpoint{}};
  h.endpoint.ip[15] = static_cast<uint8_t>(n);
  h.endpoint.port = static_cast<uint16_t>(1000 + n);
  return h;
}

Envelope SampleRoute() {
  RouteMsg m;
  m.id = 1;
  m.key = NodeId(2, 3);
  m.source = Handle(4);
  m.trace = true;
  m.path = {NodeId(5, 6), NodeId(7, 8)};
  m.payload = "payload";
  m.join_rows = {Handle(9), Handle(10), Handle(11)};
  return Envelope{kProtocolVersion, Handle(1), m};
}

std::string Flat(capnp::MessageBuilder& builder) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(builder);
  return std::string(reinterpret_cast<const char*>(words.begin()),
                     words.size() * 8);
}

std::string Words(std::initializer_list<uint64_t> words) {
  std::string out;
  for (uint64_t w : words) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(w >> (8 * i)));
  }
  return out;
}

// A valid sender for hand-built envelopes.
void SetSender(s::Envelope::Builder e) {
  e.setVersion(kProtocolVersion);
  e.initSender().initEndpoint().initIp(16);
}

// Expects InvalidArgument whose message contains `reason`.
void ExpectInvalid(std::string_view frame, const DecodeLimits& limits = {},
                   std::string_view reason = "") {
  absl::StatusOr<Envelope> out = Decode(frame, limits);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument)
      << out.status();
  EXPECT_NE(std::string(out.status().message()).find(reason),
            std::string::npos)
      << out.status();
}

TEST(CodecHostileTest, EmptyInput) { ExpectInvalid(""); }

TEST(CodecHostileTest, TruncatedAtEveryLength) {
  const std::string frame = Encode(SampleRoute());
  for (size_t n = 0; n < frame.size(); ++n) {
    ExpectInvalid(std::string_view(frame).substr(0, n));
  }
}

TEST(CodecHostileTest, TrailingBytes) {
  ExpectInvalid(Encode(SampleRoute()) + std::string(8, '\0'));
}

TEST(CodecHostileTest, FrameOverTheLimit) {
  Envelope big = SampleRoute();
  std::get<RouteMsg>(big.body).payload.assign(kDefaultMaxFrameBytes, 'x');
  ExpectInvalid(Encode(big));
  DecodeLimits small;
  small.max_frame_bytes = 64;
  ExpectInvalid(Encode(SampleRoute()), small);
}

TEST(CodecHostileTest, HugeDeclaredSegmentSizes) {
  // One segment of 2^31 words, then nothing.
  ExpectInvalid(Words({0x7fffffff'00000000ULL}));
  // 2^32 segments.
  ExpectInvalid(Words({0x00000000'ffffffffULL, 0}));
  // 65 segments: over the segment bound.
  ExpectInvalid(std::string("\x40\0\0\0", 4) + std::string(300, '\0'));
  // Declares 1000 words, carries one.
  ExpectInvalid(Words({0x000003e8'00000000ULL, 0}));
}

TEST(CodecHostileTest, EmptySegmentHasNoRoot) {
  ExpectInvalid(Words({0}));
}

TEST(CodecHostileTest, WrongLengthIp) {
  for (int length : {0, 4, 15, 17}) {
    capnp::MallocMessageBuilder builder;
    auto e = builder.initRoot<s::Envelope>();
    SetSender(e);
    e.getSender().getEndpoint().initIp(length);
    e.getBody().initLeave();
    ExpectInvalid(Flat(builder));
  }
}

TEST(CodecHostileTest, MissingSender) {
  capnp::MallocMessageBuilder builder;
  builder.initRoot<s::Envelope>().setVersion(kProtocolVersion);
  ExpectInvalid(Flat(builder));
}

TEST(CodecHostileTest, WrongLengthIpInsideAList) {
  capnp::MallocMessageBuilder builder;
  auto e = builder.initRoot<s::Envelope>();
  SetSender(e);
  auto rows = e.getBody().initJoinReply().initRows(3);
  rows[0].initEndpoint().initIp(16);
  rows[1].initEndpoint().initIp(16);
  rows[2].initEndpoint().initIp(6);
  ExpectInvalid(Flat(builder));
}

TEST(CodecHostileTest, OverLongLists) {
  DecodeLimits limits;
  Envelope rows{kProtocolVersion, Handle(1),
                RowReply{1, std::vector<NodeHandle>(4097, Handle(2))}};
  ExpectInvalid(Encode(rows), limits);
  std::get<RowReply>(rows.body).entries.resize(4096);
  EXPECT_TRUE(Decode(Encode(rows), limits).ok());

  Envelope lookup{kProtocolVersion, Handle(1),
                  LookupReply{1, NodeId(), 1, std::vector<NodeId>(129)}};
  ExpectInvalid(Encode(lookup), limits);

  // An acknowledgement's `ids` list (its first id travels in `id`).
  std::vector<uint64_t> ids(4098, 5);
  Envelope ack{kProtocolVersion, Handle(1), RouteAck{ids}};
  ExpectInvalid(Encode(ack), limits, "acknowledged ids");
  std::get<RouteAck>(ack.body).ids.resize(4097);
  EXPECT_TRUE(Decode(Encode(ack), limits).ok());

  limits.max_payload_bytes = 6;
  ExpectInvalid(Encode(SampleRoute()), limits);  // "payload" is 7 bytes
}

TEST(CodecHostileTest, VersionBelowMinimum) {
  Envelope e = SampleRoute();
  e.version = kMinProtocolVersion - 1;
  EXPECT_EQ(Decode(Encode(e)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CodecHostileTest, WrongPointerKinds) {
  // The body is a list where a struct belongs.
  capnp::MallocMessageBuilder builder;
  auto e = builder.initRoot<s::Envelope>();
  SetSender(e);
  e.getBody().initRoute();
  // Point the body at the path list: make a message whose route pointer is
  // replaced by a list pointer via AnyStruct.
  auto any = capnp::toAny(e).getPointerSection();
  any[1].initAsAnyList(capnp::ElementSize::BYTE, 5);
  ExpectInvalid(Flat(builder));
}

TEST(CodecHostileTest, NestingLimitApplies) {
  DecodeLimits limits;
  limits.nesting_limit = 2;  // envelope -> body -> list is already 3
  ExpectInvalid(Encode(SampleRoute()), limits, "deeply-nested");
}

TEST(CodecHostileTest, TraversalLimitApplies) {
  DecodeLimits limits;
  limits.traversal_factor = 0;  // budget: 64 words
  Envelope many{kProtocolVersion, Handle(1),
                JoinReply{std::vector<NodeHandle>(20, Handle(2)), {}}};
  ExpectInvalid(Encode(many), limits, "traversal limit");
  EXPECT_TRUE(Decode(Encode(many)).ok());
}

// Points the endpoint of every entry of `rows` after the first at the first
// entry's endpoint: a frame that reads as far more words than it holds.
std::string AliasedEndpoints(int count) {
  capnp::MallocMessageBuilder builder(64 * 1024);  // one segment
  auto e = builder.initRoot<s::Envelope>();
  SetSender(e);
  auto rows = e.getBody().initJoinReply().initRows(count);
  rows[0].initEndpoint().initIp(16);
  auto* target = reinterpret_cast<const uint64_t*>(
      capnp::toAny(rows[0].getEndpoint()).getDataSection().begin());
  // The pointer section follows the data section (the incarnation); the
  // endpoint is its second pointer, after the id.
  auto* first = reinterpret_cast<uint64_t*>(
      capnp::toAny(rows[0]).getDataSection().end()) + 1;
  const uint64_t upper = *first & 0xffffffff00000000ULL;
  for (int i = 1; i < count; ++i) {
    auto* slot = reinterpret_cast<uint64_t*>(
        capnp::toAny(rows[i]).getDataSection().end()) + 1;
    const int64_t offset = target - (slot + 1);
    *slot = upper | (static_cast<uint64_t>(offset << 2) & 0xffffffffULL);
  }
  return Flat(builder);
}

TEST(CodecHostileTest, AliasedPointersHitTheTraversalLimit) {
  // Sanity: with few aliases the frame is readable.
  EXPECT_TRUE(Decode(AliasedEndpoints(2)).ok());
  ExpectInvalid(AliasedEndpoints(4000), {}, "traversal limit");
}

TEST(CodecHostileTest, PointerCycles) {
  // Root struct (1 data word, 2 pointers) whose two pointers point back at
  // the struct itself and at themselves.
  const std::string frame = Words({
      0x00000004'00000000ULL,  // header: 1 segment of 4 words
      0x00020001'00000000ULL,  // 0: root -> word 1, 1 data word, 2 pointers
      0x00000000'00000001ULL,  // 1: data: version 1, body = route
      0x00020001'fffffff8ULL,  // 2: sender -> word 1 (offset -2)
      0x00020001'fffffffcULL,  // 3: body -> itself (offset -1)
  });
  absl::StatusOr<Envelope> out = Decode(frame);
  EXPECT_FALSE(out.ok());
}

TEST(CodecHostileTest, RandomBytesNeverCrash) {
  std::mt19937_64 rng(20240601);
  int ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 256, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    if (i % 2 == 0 && bytes.size() >= 8) {
      // Give half of them a plausible one-segment header so capnp's
      // pointer validation, not the header check, does the rejecting.
      const uint32_t words = static_cast<uint32_t>(bytes.size() / 8 - 1);
      bytes.resize(8 + words * 8);
      std::memset(bytes.data(), 0, 4);
      std::memcpy(bytes.data() + 4, &words, 4);
    }
    absl::StatusOr<Envelope> out = Decode(bytes);
    if (out.ok()) ++ok;
  }
  SUCCEED() << ok << " random frames decoded";
}

TEST(CodecHostileTest, MutatedFramesNeverCrash) {
  std::mt19937_64 rng(7);
  const std::vector<std::string> seeds = {
      Encode(SampleRoute()),
      Encode(Envelope{kProtocolVersion, Handle(1),
                      ProbeReply{1, true, 2, true, {Handle(3), Handle(4)}}}),
      Encode(Envelope{kProtocolVersion, Handle(1),
                      LookupReply{1, NodeId(1, 2), 3, {NodeId(4, 5)}}}),
  };
  for (int i = 0; i < 20000; ++i) {
    std::string frame = seeds[i % seeds.size()];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      // Leave the header alone most of the time so the body gets parsed.
      const size_t lo = (rng() % 8 == 0) ? 0 : 8;
      frame[lo + rng() % (frame.size() - lo)] = static_cast<char>(rng());
    }
    absl::StatusOr<Envelope> out = Decode(frame);
    if (!out.ok()) {
      EXPECT_NE(out.status().code(), absl::StatusCode::kOk);
    }
  }
}

}  // namespace
}  // namespace peter::pastry::wire

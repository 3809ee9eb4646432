#include "pastry/wire/frame.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pastry/core/messages.h"
#include "pastry/wire/codec.h"

namespace peter::pastry::wire {
namespace {

std::string Le32(uint32_t v) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(v >> (8 * i));
  return out;
}

// A frame with the given segment sizes (in words) and arbitrary contents.
std::string RawFrame(const std::vector<uint32_t>& segment_words, char fill) {
  std::string out = Le32(static_cast<uint32_t>(segment_words.size() - 1));
  for (uint32_t w : segment_words) out += Le32(w);
  if (out.size() % 8 != 0) out += Le32(0);
  for (uint32_t w : segment_words) out += std::string(w * 8, fill);
  return out;
}

std::vector<std::string> SampleFrames() {
  Envelope probe;
  probe.body = Probe{1, true, true, 2};
  Envelope route;
  RouteMsg m;
  m.payload = std::string(300, 'p');
  route.body = m;
  return {Encode(probe), RawFrame({1, 2}, 'a'), Encode(route),
          RawFrame({0}, 'b'), RawFrame({3, 0, 1}, 'c'), Encode(Envelope{})};
}

// Gives `chunks` to an assembler one after the other and collects every
// frame; fails on an error. `feed`: with Feed() (the chunk stays valid only
// until Next() says it needs more), else Append() (which feeds a copy: the
// same path).
std::vector<std::string> Reassemble(const std::vector<std::string>& chunks, bool feed) {
  FrameAssembler assembler;
  std::vector<std::string> frames;
  for (const std::string& chunk : chunks) {
    std::string scratch = chunk;  // overwritten once used, as a read buffer is
    if (feed) {
      assembler.Feed(scratch);
    } else {
      assembler.Append(scratch);
    }
    while (true) {
      absl::StatusOr<std::optional<std::string_view>> next = assembler.Next();
      EXPECT_TRUE(next.ok()) << next.status();
      if (!next.ok() || !next->has_value()) break;
      frames.emplace_back(**next);
    }
    scratch.assign(scratch.size(), '#');
  }
  EXPECT_EQ(assembler.buffered_bytes(), 0u);
  return frames;
}

// Both ways of giving bytes must cut the same frames: many frames in one
// chunk, frames split across chunks.
std::vector<std::string> Reassemble(const std::vector<std::string>& chunks) {
  std::vector<std::string> appended = Reassemble(chunks, /*feed=*/false);
  EXPECT_EQ(Reassemble(chunks, /*feed=*/true), appended);
  return appended;
}

std::string Concat(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += p;
  return out;
}

TEST(ExpectedFrameSizeTest, NeedsTheWholeSegmentTable) {
  const std::string frame = RawFrame({1, 2}, 'x');  // table: 4 + 8 + pad 4
  for (size_t n = 0; n < 16; ++n) {
    absl::StatusOr<std::optional<size_t>> size =
        ExpectedFrameSize(std::string_view(frame).substr(0, n));
    ASSERT_TRUE(size.ok());
    EXPECT_FALSE(size->has_value()) << n;
  }
  absl::StatusOr<std::optional<size_t>> size = ExpectedFrameSize(frame);
  ASSERT_TRUE(size.ok());
  EXPECT_EQ(size->value(), 16u + 24u);
  EXPECT_EQ(frame.size(), 40u);
}

TEST(ExpectedFrameSizeTest, MatchesEncodedFrames) {
  for (const std::string& frame : SampleFrames()) {
    absl::StatusOr<std::optional<size_t>> size = ExpectedFrameSize(frame);
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(size->value(), frame.size());
  }
}

TEST(ExpectedFrameSizeTest, RejectsOversizedAndTooManySegments) {
  FrameLimits limits;
  limits.max_frame_bytes = 1024;
  EXPECT_TRUE(ExpectedFrameSize(RawFrame({127}, 0), limits).ok());  // 1024
  EXPECT_FALSE(ExpectedFrameSize(RawFrame({128}, 0), limits).ok());
  EXPECT_FALSE(ExpectedFrameSize(Le32(0) + Le32(0xffffffff)).ok());
  EXPECT_FALSE(
      ExpectedFrameSize(RawFrame(std::vector<uint32_t>(65, 0), 0)).ok());
  EXPECT_TRUE(
      ExpectedFrameSize(RawFrame(std::vector<uint32_t>(64, 0), 0)).ok());
  // 2^32 segments: rejected from the first four bytes alone.
  EXPECT_FALSE(ExpectedFrameSize(Le32(0xffffffff)).ok());
}

TEST(FrameAssemblerTest, SeveralFramesInOneAppend) {
  const std::vector<std::string> frames = SampleFrames();
  EXPECT_EQ(Reassemble({Concat(frames)}), frames);
}

// Frames that lie whole in fed bytes come back in place, not copied: one
// read of many frames costs no allocation per frame.
TEST(FrameAssemblerTest, FedFramesComeBackInPlace) {
  const std::vector<std::string> frames = SampleFrames();
  const std::string stream = Concat(frames);
  FrameAssembler assembler;
  assembler.Feed(stream);
  size_t at = 0;
  for (const std::string& frame : frames) {
    absl::StatusOr<std::optional<std::string_view>> next = assembler.Next();
    ASSERT_TRUE(next.ok() && next->has_value());
    EXPECT_EQ(**next, frame);
    EXPECT_EQ((*next)->data(), stream.data() + at);
    at += frame.size();
  }
  EXPECT_FALSE(assembler.Next()->has_value());
  EXPECT_EQ(assembler.held_bytes(), std::string().capacity());  // nothing buffered
}

// A frame cut by the end of a read is completed from the next one; the
// frames after it there come back in place again, and a cut-off start is
// all that is copied.
TEST(FrameAssemblerTest, FrameCutByAReadIsCompletedThenTheRestInPlace) {
  const std::vector<std::string> frames = SampleFrames();
  const std::string stream = Concat(frames);
  const size_t cut = frames[0].size() + 5;
  const std::string first = stream.substr(0, cut);
  const std::string second = stream.substr(cut);
  FrameAssembler assembler;
  assembler.Feed(first);
  EXPECT_EQ(assembler.Next()->value(), frames[0]);
  EXPECT_FALSE(assembler.Next()->has_value());
  EXPECT_EQ(assembler.buffered_bytes(), 5u);
  assembler.Feed(second);
  EXPECT_EQ(assembler.Next()->value(), frames[1]);
  size_t at = frames[1].size() - 5;
  for (size_t i = 2; i < frames.size(); ++i) {
    absl::StatusOr<std::optional<std::string_view>> next = assembler.Next();
    ASSERT_TRUE(next.ok() && next->has_value());
    EXPECT_EQ(**next, frames[i]);
    EXPECT_EQ((*next)->data(), second.data() + at) << i;
    at += frames[i].size();
  }
  EXPECT_FALSE(assembler.Next()->has_value());
  EXPECT_EQ(assembler.buffered_bytes(), 0u);
}

TEST(FrameAssemblerTest, SplitAtEveryByteBoundary) {
  const std::vector<std::string> frames = SampleFrames();
  const std::string stream = Concat(frames);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    EXPECT_EQ(Reassemble({stream.substr(0, cut), stream.substr(cut)}), frames)
        << "cut at " << cut;
  }
}

// Each frame followed by a 16-byte trailer, fed a byte at a time: every
// frame comes back with exactly its trailer.
TEST(FrameAssemblerTest, TrailersComeWithTheirFrames) {
  const std::vector<std::string> frames = SampleFrames();
  std::string stream;
  std::vector<std::string> expected;
  for (size_t i = 0; i < frames.size(); ++i) {
    const std::string with_trailer = frames[i] + std::string(16, static_cast<char>('a' + i));
    stream += with_trailer;
    expected.push_back(with_trailer);
  }
  FrameAssembler assembler;
  assembler.set_trailer_bytes(16);
  std::vector<std::string> got;
  for (char c : stream) {
    assembler.Append(std::string_view(&c, 1));
    while (true) {
      absl::StatusOr<std::optional<std::string_view>> next = assembler.Next();
      ASSERT_TRUE(next.ok()) << next.status();
      if (!next->has_value()) break;
      got.emplace_back(**next);
    }
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(assembler.buffered_bytes(), 0u);
}

TEST(FrameAssemblerTest, OneByteAtATime) {
  const std::vector<std::string> frames = SampleFrames();
  std::vector<std::string> bytes;
  for (char c : Concat(frames)) bytes.emplace_back(1, c);
  EXPECT_EQ(Reassemble(bytes), frames);
}

TEST(FrameAssemblerTest, RandomChunksOfAManyFrameStream) {
  std::mt19937_64 rng(99);
  std::vector<std::string> frames;
  for (int i = 0; i < 500; ++i) {
    frames.push_back(RawFrame({static_cast<uint32_t>(rng() % 700)},
                              static_cast<char>(i)));
  }
  const std::string stream = Concat(frames);
  std::vector<std::string> chunks;
  for (size_t at = 0; at < stream.size();) {
    const size_t n = 1 + rng() % 9000;
    chunks.push_back(stream.substr(at, n));
    at += n;
  }
  EXPECT_EQ(Reassemble(chunks), frames);
}

TEST(FrameAssemblerTest, OversizedDeclaredFrameIsAStickyError) {
  FrameLimits limits;
  limits.max_frame_bytes = 4096;
  FrameAssembler assembler(limits);
  assembler.Append(RawFrame({8}, 'a'));
  assembler.Append(Le32(0) + Le32(1000));  // declares 8008 bytes
  absl::StatusOr<std::optional<std::string_view>> first = assembler.Next();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ(first->value(), RawFrame({8}, 'a'));
  EXPECT_EQ(assembler.Next().status().code(),
            absl::StatusCode::kInvalidArgument);
  assembler.Append(RawFrame({1}, 'b'));  // too late: the stream is dead
  EXPECT_FALSE(assembler.Next().ok());
  EXPECT_EQ(assembler.buffered_bytes(), 0u);
}

TEST(FrameAssemblerTest, TooManySegmentsIsAnError) {
  FrameAssembler assembler;
  assembler.Append(Le32(64));  // 65 segments
  EXPECT_FALSE(assembler.Next().ok());
}

TEST(FrameAssemblerTest, DefaultLimitAcceptsTheLargestFrame) {
  FrameAssembler assembler;
  const std::string frame =
      RawFrame({static_cast<uint32_t>(kDefaultMaxFrameBytes / 8 - 1)}, 'z');
  ASSERT_EQ(frame.size(), kDefaultMaxFrameBytes);
  assembler.Append(frame);
  absl::StatusOr<std::optional<std::string_view>> next = assembler.Next();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->value().size(), kDefaultMaxFrameBytes);
}

// After a large frame the assembler gives its memory back, whether nothing
// or the start of the next frame is left: otherwise every connection that
// once carried a max_frame_bytes frame would keep that much while it
// lives, beyond what the transport's receive bound counts.
TEST(FrameAssemblerTest, LargeFrameMemoryIsReleasedOnceReturned) {
  FrameAssembler assembler;
  const std::string big = RawFrame({(1 << 20) / 8}, 'z');
  const std::string small = RawFrame({2}, 's');
  assembler.Append(big);
  ASSERT_GE(assembler.held_bytes(), big.size());
  ASSERT_TRUE(assembler.Next()->has_value());
  ASSERT_FALSE(assembler.Next()->has_value());  // done with the frame
  EXPECT_LE(assembler.held_bytes(), FrameAssembler::kKeepCapacity);

  assembler.Append(big + small.substr(0, 10));  // a big frame, then a piece
  ASSERT_EQ(assembler.Next()->value(), big);
  ASSERT_FALSE(assembler.Next()->has_value());
  EXPECT_EQ(assembler.buffered_bytes(), 10u);
  EXPECT_LE(assembler.held_bytes(), FrameAssembler::kKeepCapacity);
  assembler.Append(small.substr(10));
  EXPECT_EQ(assembler.Next()->value(), small);
}

// Append() feeds a copy it keeps; once Next() has used it up (buffered the
// start of a frame) the copy goes: a large frame appended in pieces is held
// once, not also in the last piece's copy.
TEST(FrameAssemblerTest, AppendedPiecesOfAFrameAreHeldOnce) {
  FrameAssembler assembler;
  const std::string big = RawFrame({(1 << 20) / 8}, 'z');
  assembler.Append(big.substr(0, 100));
  ASSERT_FALSE(assembler.Next()->has_value());
  assembler.Append(big.substr(100, big.size() - 200));
  ASSERT_FALSE(assembler.Next()->has_value());
  EXPECT_EQ(assembler.buffered_bytes(), big.size() - 100);
  EXPECT_LT(assembler.held_bytes(), assembler.buffered_bytes() * 3 / 2);
  assembler.Append(big.substr(big.size() - 100));
  EXPECT_EQ(assembler.Next()->value(), big);
}

TEST(FrameAssemblerTest, FramesFeedDecode) {
  Envelope probe;
  probe.body = Probe{5, false, true, 6};
  FrameAssembler assembler;
  assembler.Append(Encode(probe) + Encode(probe));
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<std::optional<std::string_view>> next = assembler.Next();
    ASSERT_TRUE(next.ok() && next->has_value());
    absl::StatusOr<Envelope> decoded = Decode(**next);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(std::get<Probe>(decoded->body).nonce, 5u);
  }
  EXPECT_FALSE(assembler.Next()->has_value());
}

}  // namespace
}  // namespace peter::pastry::wire

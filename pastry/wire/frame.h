// Message boundaries on a byte stream. A frame is one Cap'n Proto message in
// standard stream framing:
//
//   uint32 segment_count - 1 | uint32 size_in_words[segment_count] |
//   4 bytes of zero padding if the table is not a multiple of 8 bytes |
//   the segments, back to back
//
// all integers little-endian. The header alone fixes the frame's length, so
// a TCP reader can cut frames out of the stream before decoding them.
#ifndef PETER_PASTRY_WIRE_FRAME_H_
#define PETER_PASTRY_WIRE_FRAME_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace peter::pastry::wire {

// Largest frame a peer may send, header included. The biggest message the
// core sends is a join reply carrying a full routing table and leaf set
// (well under 64 KiB); the bound is set far above that for application
// payloads, and still keeps one connection from holding unbounded memory.
inline constexpr size_t kDefaultMaxFrameBytes = size_t{4} << 20;
// Our encoder writes one segment (a few for very large payloads); a peer
// declaring more is malformed or hostile, and large segment tables cost
// allocations before any data arrives.
inline constexpr size_t kDefaultMaxSegments = 64;

struct FrameLimits {
  size_t max_frame_bytes = kDefaultMaxFrameBytes;
  size_t max_segments = kDefaultMaxSegments;
};

// Reads the segment table at the start of `prefix` (the bytes buffered so
// far) and returns the total size in bytes of the frame that starts there,
// or std::nullopt when the prefix is too short to hold the whole table.
// Fails with InvalidArgument when the table declares more than
// `limits.max_segments` segments or a frame larger than
// `limits.max_frame_bytes`. The frame's bytes past the table are not looked
// at.
absl::StatusOr<std::optional<size_t>> ExpectedFrameSize(
    std::string_view prefix, const FrameLimits& limits = {});

// Cuts a TCP byte stream into frames. Feed it whatever the socket returned
// with Feed() (or, with bytes that do not stay valid, Append()); then call
// Next() until it yields std::nullopt.
//
// Frames are returned as views, valid until the next call of Next(),
// Feed() or Append(). A frame that lies whole in fed bytes is returned in
// place, without a copy; only the start of a frame that a read cut off is
// copied into the assembler's own buffer (and completed there from the
// next bytes fed).
//
// Once Next() has returned an error the stream is unrecoverable (frame
// boundaries are lost): every later call returns the same error, and the
// caller should close the connection and count it.
//
// Not thread-safe; one per connection, used on the connection's thread.
class FrameAssembler {
 public:
  explicit FrameAssembler(const FrameLimits& limits = {});

  FrameAssembler(const FrameAssembler&) = delete;
  FrameAssembler& operator=(const FrameAssembler&) = delete;

  // Takes `bytes` (any length, including zero) without copying them: they
  // must stay valid and unchanged until Next() has returned std::nullopt
  // or an error, which copies what is left of them (a frame's start).
  void Feed(std::string_view bytes);
  // Feed() of a copy of `bytes` the assembler keeps (until Next() has
  // returned std::nullopt or an error): for callers whose bytes do not stay
  // valid, and that may append again before Next() asked for more.
  void Append(std::string_view bytes);

  // Returns the next complete frame, std::nullopt when more bytes are
  // needed, or InvalidArgument when the stream declares a frame beyond the
  // limits.
  absl::StatusOr<std::optional<std::string_view>> Next();

  // From now on every frame is followed on the stream by `n` more bytes
  // (e.g. an authentication tag), returned with it: Next() yields the frame
  // and its trailer together.
  void set_trailer_bytes(size_t n) { trailer_bytes_ = n; }

  // Bytes received but not yet returned as frames.
  size_t buffered_bytes() const {
    return buffer_.size() - start_ - returned_ + input_.size();
  }
  // Memory the buffer (and Append()'s copy) holds. Once a frame is
  // returned and Next() called again it is at most about
  // twice the bytes still buffered, or kKeepCapacity: a connection that
  // once carried a large frame does not keep its memory while idle or
  // holding only the start of a small one (the transport bounds
  // buffered_bytes() over all connections, so this is what the bound
  // means in memory).
  size_t held_bytes() const {
    return buffer_.capacity() + (appended_.empty() ? 0 : appended_.capacity());
  }
  static constexpr size_t kKeepCapacity = 64 << 10;

 private:
  // Forgets the frame the last Next() returned from buffer_.
  void DropReturned();
  // Copies the fed bytes not yet returned into buffer_.
  void BufferInput();
  absl::Status Fail(absl::Status status);
  // Next()'s answer once the input is used up.
  std::nullopt_t NeedMore();
  void Compact();
  void ReleaseUnused();

  FrameLimits limits_;
  std::string buffer_;
  size_t start_ = 0;     // offset of the first unreturned byte in buffer_
  size_t returned_ = 0;  // bytes at start_ that the last Next() returned
  std::string_view input_;  // fed bytes not yet returned nor buffered
  std::string appended_;    // Append()'s copy: what input_ views, if appended
  size_t trailer_bytes_ = 0;
  absl::Status error_;
};

}  // namespace peter::pastry::wire

#endif  // PETER_PASTRY_WIRE_FRAME_H_

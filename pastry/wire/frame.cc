#include "pastry/wire/frame.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"

namespace peter::pastry::wire {
namespace {

uint32_t LoadLittleEndian32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 |
         uint32_t{b[3]} << 24;
}

// The bytes of the segment table at the start of `prefix`, as far as they
// are known: the count word first (4), then the table it declares (padded
// to 8 bytes).
size_t TableBytes(std::string_view prefix) {
  if (prefix.size() < 4) return 4;
  const uint64_t segments = uint64_t{LoadLittleEndian32(prefix.data())} + 1;
  return static_cast<size_t>((4 + 4 * segments + 7) / 8 * 8);
}

// Compaction moves the unread tail to the front once at least this many
// bytes have been consumed and they outnumber what is left.
constexpr size_t kCompactThreshold = 4096;

}  // namespace

absl::StatusOr<std::optional<size_t>> ExpectedFrameSize(
    std::string_view prefix, const FrameLimits& limits) {
  if (prefix.size() < 4) return std::nullopt;
  const uint64_t segments = uint64_t{LoadLittleEndian32(prefix.data())} + 1;
  if (segments > limits.max_segments) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame declares ", segments, " segments; at most ",
                     limits.max_segments, " allowed"));
  }
  const uint64_t table_bytes = TableBytes(prefix);
  if (prefix.size() < table_bytes) return std::nullopt;
  uint64_t total = table_bytes;
  for (uint64_t i = 0; i < segments; ++i) {
    const uint64_t words = LoadLittleEndian32(prefix.data() + 4 + 4 * i);
    total += words * 8;  // at most 64 * 2^35: no overflow
  }
  if (total > limits.max_frame_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame declares ", total, " bytes; at most ",
                     limits.max_frame_bytes, " allowed"));
  }
  return static_cast<size_t>(total);
}

FrameAssembler::FrameAssembler(const FrameLimits& limits) : limits_(limits) {}

void FrameAssembler::Feed(std::string_view bytes) {
  if (!error_.ok()) return;  // the stream is dead; do not buffer more
  DropReturned();
  BufferInput();
  input_ = bytes;
}

void FrameAssembler::Append(std::string_view bytes) {
  if (!error_.ok()) return;
  Feed({});  // buffers what is left of earlier bytes, appended_ included
  appended_.assign(bytes.data(), bytes.size());
  Feed(appended_);
}

void FrameAssembler::DropReturned() {
  if (returned_ == 0) return;
  start_ += returned_;
  returned_ = 0;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  ReleaseUnused();
}

void FrameAssembler::BufferInput() {
  if (input_.empty()) return;
  Compact();
  buffer_.append(input_.data(), input_.size());
  input_ = {};
}

absl::Status FrameAssembler::Fail(absl::Status status) {
  error_ = std::move(status);
  buffer_.clear();
  start_ = 0;
  returned_ = 0;
  input_ = {};
  std::string().swap(appended_);
  return error_;
}

absl::StatusOr<std::optional<std::string_view>> FrameAssembler::Next() {
  if (!error_.ok()) return error_;
  DropReturned();
  // The start of a frame is buffered: complete it from the input.
  while (start_ < buffer_.size()) {
    const std::string_view pending = std::string_view(buffer_).substr(start_);
    absl::StatusOr<std::optional<size_t>> size = ExpectedFrameSize(pending, limits_);
    if (!size.ok()) return Fail(size.status());
    // Without the whole segment table: the rest of the table, then look
    // again.
    size_t wanted = TableBytes(pending);
    if (size->has_value()) {
      wanted = **size + trailer_bytes_;
      if (pending.size() >= wanted) {
        returned_ = wanted;
        return std::optional<std::string_view>(pending.substr(0, wanted));
      }
    }
    const size_t take = std::min(input_.size(), wanted - pending.size());
    if (take == 0) return NeedMore();
    Compact();
    buffer_.append(input_.data(), take);
    input_.remove_prefix(take);
  }
  // Nothing buffered: the next frame in place in the input.
  absl::StatusOr<std::optional<size_t>> size = ExpectedFrameSize(input_, limits_);
  if (!size.ok()) return Fail(size.status());
  if (size->has_value() && input_.size() >= **size + trailer_bytes_) {
    const std::string_view frame = input_.substr(0, **size + trailer_bytes_);
    input_.remove_prefix(frame.size());
    return std::optional<std::string_view>(frame);
  }
  BufferInput();
  return NeedMore();
}

std::nullopt_t FrameAssembler::NeedMore() {
  // Every byte fed is returned or buffered: Append()'s copy is not needed.
  std::string().swap(appended_);
  return std::nullopt;
}

// clear() and erase() keep a std::string's capacity: after a 4 MiB frame a
// connection would hold 4 MiB for as long as it lives, and max_connections
// of them could hold that each. Copying the rest into a fitting buffer costs
// at most half the capacity freed, so it adds up to at most the bytes
// received.
void FrameAssembler::ReleaseUnused() {
  const size_t rest = buffer_.size() - start_;
  if (buffer_.capacity() <= kKeepCapacity || rest * 2 > buffer_.capacity()) return;
  std::string(buffer_, start_).swap(buffer_);
  start_ = 0;
}

void FrameAssembler::Compact() {
  if (start_ < kCompactThreshold || start_ < buffer_.size() - start_) return;
  buffer_.erase(0, start_);
  start_ = 0;
}

}  // namespace peter::pastry::wire

#include "pastry/wire/frame.h"

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
  // The table: the count word and one size per segment, padded to 8 bytes.
  const uint64_t table_bytes = (4 + 4 * segments + 7) / 8 * 8;
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

void FrameAssembler::Append(std::string_view bytes) {
  if (!error_.ok()) return;  // the stream is dead; do not buffer more
  Compact();
  buffer_.append(bytes.data(), bytes.size());
}

absl::StatusOr<std::optional<std::string>> FrameAssembler::Next() {
  if (!error_.ok()) return error_;
  const std::string_view pending =
      std::string_view(buffer_).substr(start_);
  absl::StatusOr<std::optional<size_t>> size =
      ExpectedFrameSize(pending, limits_);
  if (!size.ok()) {
    error_ = size.status();
    buffer_.clear();
    start_ = 0;
    return error_;
  }
  if (!size->has_value() || pending.size() < **size + trailer_bytes_) return std::nullopt;
  const size_t total = **size + trailer_bytes_;
  std::string frame(pending.substr(0, total));
  start_ += total;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  ReleaseUnused();
  return std::optional<std::string>(std::move(frame));
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

// 128-bit identifiers on the Pastry ring and the arithmetic routing needs.
//
// Ids and keys share one space: the integers modulo 2^128, laid out on a
// ring. An id is read as a string of digits of b bits each, most significant
// digit first (digit 0 is the top b bits). NodeId is a cheap value type.
#ifndef PETER_PASTRY_NODE_ID_H_
#define PETER_PASTRY_NODE_ID_H_

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace peter::pastry {

class NodeId {
 public:
  static constexpr int kBits = 128;

  constexpr NodeId() = default;
  constexpr NodeId(uint64_t hi, uint64_t lo) : hi_(hi), lo_(lo) {}

  // Parses exactly 32 hexadecimal digits (either case).
  static absl::StatusOr<NodeId> FromHex(std::string_view hex);
  // The largest id, 2^128 - 1.
  static constexpr NodeId Max() { return NodeId(~uint64_t{0}, ~uint64_t{0}); }

  uint64_t hi() const { return hi_; }
  uint64_t lo() const { return lo_; }

  // 32 lower-case hex digits.
  std::string ToHex() const;
  // The first 8 hex digits, for logs.
  std::string ShortHex() const;

  // The digit at `index` (0 = most significant) for digits of `b` bits.
  // REQUIRES: b in {1, 2, 4, 8}; 0 <= index < 128 / b.
  int Digit(int index, int b) const;
  // Number of leading digits (of b bits) this id shares with `other`.
  int SharedPrefixLength(const NodeId& other, int b) const;
  // Returns a copy with digit `index` set to `value`.
  NodeId WithDigit(int index, int b, int value) const;

  // Arithmetic modulo 2^128.
  NodeId operator+(const NodeId& o) const;
  NodeId operator-(const NodeId& o) const;

  // Clockwise distance from `from` to `to`: (to - from) mod 2^128.
  static NodeId ClockwiseDistance(const NodeId& from, const NodeId& to) {
    return to - from;
  }
  // Ring distance: the shorter way round, min(cw(a,b), cw(b,a)).
  static NodeId Distance(const NodeId& a, const NodeId& b);

  // True if `a` is strictly closer to `key` than `b`; equal distances are
  // broken towards the numerically smaller id so every node agrees.
  static bool CloserTo(const NodeId& key, const NodeId& a, const NodeId& b);

  friend constexpr auto operator<=>(const NodeId&, const NodeId&) = default;
  friend constexpr bool operator==(const NodeId&, const NodeId&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const NodeId& id) {
    return H::combine(std::move(h), id.hi_, id.lo_);
  }

 private:
  uint64_t hi_ = 0;
  uint64_t lo_ = 0;
};

}  // namespace peter::pastry

template <>
struct std::hash<peter::pastry::NodeId> {
  size_t operator()(const peter::pastry::NodeId& id) const noexcept {
    return static_cast<size_t>(id.hi() * 0x9E3779B97F4A7C15ULL ^ id.lo());
  }
};

#endif  // PETER_PASTRY_NODE_ID_H_

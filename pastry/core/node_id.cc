#include "peter/pastry/node_id.h"

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace peter::pastry {
namespace {

using u128 = unsigned __int128;

u128 ToU128(const NodeId& id) { return (u128{id.hi()} << 64) | id.lo(); }

NodeId FromU128(u128 v) {
  return NodeId(static_cast<uint64_t>(v >> 64), static_cast<uint64_t>(v));
}

// Value of one hex digit, or -1 if `c` is not one.
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Bit offset of the low end of digit `index` counted from the least
// significant bit: digit 0 holds the top b bits.
int DigitShift(int index, int b) { return NodeId::kBits - (index + 1) * b; }

u128 DigitMask(int b) { return (u128{1} << b) - 1; }

// `text` quoted for an error message: escaped, and cut short if long.
std::string Quote(std::string_view text) {
  constexpr size_t kMax = 48;
  std::string shown(text.substr(0, kMax));
  return absl::StrCat("\"", absl::CHexEscape(shown), "\"",
                      text.size() > kMax ? "..." : "");
}

}  // namespace

absl::StatusOr<NodeId> NodeId::FromHex(std::string_view hex) {
  constexpr size_t kDigits = kBits / 4;
  if (hex.size() != kDigits) {
    return absl::InvalidArgumentError(
        absl::StrCat("node id must be exactly ", kDigits, " hex digits, got ",
                     hex.size(), " characters: ", Quote(hex)));
  }
  u128 v = 0;
  for (size_t i = 0; i < hex.size(); ++i) {
    int d = HexValue(hex[i]);
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node id has a non-hex character at position ", i, ": ", Quote(hex)));
    }
    v = (v << 4) | static_cast<u128>(d);
  }
  return FromU128(v);
}

std::string NodeId::ToHex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kBits / 4, '0');
  u128 v = ToU128(*this);
  for (int i = kBits / 4 - 1; i >= 0; --i) {
    out[i] = kHex[static_cast<int>(v & 0xf)];
    v >>= 4;
  }
  return out;
}

std::string NodeId::ShortHex() const { return ToHex().substr(0, 8); }

int NodeId::Digit(int index, int b) const {
  return static_cast<int>((ToU128(*this) >> DigitShift(index, b)) &
                          DigitMask(b));
}

int NodeId::SharedPrefixLength(const NodeId& other, int b) const {
  if (*this == other) return kBits / b;
  int leading_zeros = hi_ != other.hi_ ? __builtin_clzll(hi_ ^ other.hi_)
                                       : 64 + __builtin_clzll(lo_ ^ other.lo_);
  return leading_zeros / b;
}

NodeId NodeId::WithDigit(int index, int b, int value) const {
  int shift = DigitShift(index, b);
  u128 mask = DigitMask(b) << shift;
  u128 v =
      (ToU128(*this) & ~mask) | ((static_cast<u128>(value) << shift) & mask);
  return FromU128(v);
}

NodeId NodeId::operator+(const NodeId& o) const {
  return FromU128(ToU128(*this) + ToU128(o));
}

NodeId NodeId::operator-(const NodeId& o) const {
  return FromU128(ToU128(*this) - ToU128(o));
}

NodeId NodeId::Distance(const NodeId& a, const NodeId& b) {
  NodeId ab = ClockwiseDistance(a, b);
  NodeId ba = ClockwiseDistance(b, a);
  return ab < ba ? ab : ba;
}

bool NodeId::CloserTo(const NodeId& key, const NodeId& a, const NodeId& b) {
  NodeId da = Distance(key, a);
  NodeId db = Distance(key, b);
  if (da != db) return da < db;
  return a < b;
}

}  // namespace peter::pastry

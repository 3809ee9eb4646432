#include "peter/pastry/node_id.h"

#include <cstdint>
#include <random>
#include <string>
#include <unordered_set>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace peter::pastry {
namespace {

constexpr uint64_t kAllOnes = ~uint64_t{0};
constexpr uint64_t kTopBit = uint64_t{1} << 63;

NodeId Hex(const std::string& hex) {
  absl::StatusOr<NodeId> id = NodeId::FromHex(hex);
  EXPECT_TRUE(id.ok()) << id.status();
  return id.value_or(NodeId());
}

NodeId Small(uint64_t v) { return NodeId(0, v); }

// The largest possible ring distance, 2^127.
const NodeId kHalfRing(kTopBit, 0);

// ---------------------------------------------------------------- arithmetic

TEST(NodeIdTest, DefaultIsZero) {
  EXPECT_EQ(NodeId(), NodeId(0, 0));
  EXPECT_EQ(NodeId().ToHex(), std::string(32, '0'));
}

TEST(NodeIdTest, MaxIsAllOnes) {
  EXPECT_EQ(NodeId::Max(), NodeId(kAllOnes, kAllOnes));
  EXPECT_EQ(NodeId::Max().ToHex(), std::string(32, 'f'));
}

TEST(NodeIdTest, AdditionCarriesFromLowToHigh) {
  EXPECT_EQ(NodeId(0, kAllOnes) + Small(1), NodeId(1, 0));
  EXPECT_EQ(NodeId(5, kAllOnes) + NodeId(1, 2), NodeId(7, 1));
}

TEST(NodeIdTest, SubtractionBorrowsFromHigh) {
  EXPECT_EQ(NodeId(1, 0) - Small(1), NodeId(0, kAllOnes));
  EXPECT_EQ(NodeId(7, 1) - NodeId(1, 2), NodeId(5, kAllOnes));
}

TEST(NodeIdTest, AdditionWrapsAroundAtMax) {
  EXPECT_EQ(NodeId::Max() + Small(1), NodeId());
  EXPECT_EQ(NodeId::Max() + Small(5), Small(4));
  EXPECT_EQ(NodeId::Max() + NodeId::Max(), NodeId(kAllOnes, kAllOnes - 1));
}

TEST(NodeIdTest, SubtractionWrapsAroundAtZero) {
  EXPECT_EQ(NodeId() - Small(1), NodeId::Max());
  EXPECT_EQ(Small(3) - Small(5), NodeId(kAllOnes, kAllOnes - 1));
  EXPECT_EQ(NodeId() - NodeId::Max(), Small(1));
}

TEST(NodeIdTest, AddThenSubtractIsIdentity) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 1000; ++i) {
    NodeId a(rng(), rng());
    NodeId b(rng(), rng());
    EXPECT_EQ((a + b) - b, a);
    EXPECT_EQ((a - b) + b, a);
    EXPECT_EQ(a + b, b + a);
  }
}

TEST(NodeIdTest, OrderIsNumeric) {
  EXPECT_LT(NodeId(0, kAllOnes), NodeId(1, 0));
  EXPECT_LT(Small(1), Small(2));
  EXPECT_LT(NodeId(1, 0), NodeId(1, 1));
  EXPECT_GT(NodeId::Max(), NodeId(kAllOnes, kAllOnes - 1));
}

TEST(NodeIdTest, ClockwiseDistanceWraps) {
  EXPECT_EQ(NodeId::ClockwiseDistance(Small(10), Small(15)), Small(5));
  EXPECT_EQ(NodeId::ClockwiseDistance(NodeId::Max(), Small(1)), Small(2));
  EXPECT_EQ(NodeId::ClockwiseDistance(Small(1), NodeId::Max()),
            NodeId(kAllOnes, kAllOnes - 1));
  EXPECT_EQ(NodeId::ClockwiseDistance(Small(7), Small(7)), NodeId());
}

// ------------------------------------------------------------------ distance

TEST(NodeIdTest, DistanceTakesTheShorterWayAcrossZero) {
  EXPECT_EQ(NodeId::Distance(NodeId::Max(), Small(1)), Small(2));
  EXPECT_EQ(NodeId::Distance(Small(1), NodeId::Max()), Small(2));
  EXPECT_EQ(NodeId::Distance(NodeId(), NodeId::Max()), Small(1));
  EXPECT_EQ(NodeId::Distance(Small(10), Small(4)), Small(6));
  EXPECT_EQ(NodeId::Distance(Small(9), Small(9)), NodeId());
}

TEST(NodeIdTest, DistanceAtHalfRingIsTwoToThe127) {
  EXPECT_EQ(NodeId::Distance(NodeId(), kHalfRing), kHalfRing);
  EXPECT_EQ(NodeId::Distance(kHalfRing, NodeId()), kHalfRing);
  EXPECT_EQ(NodeId::Distance(Small(1), kHalfRing + Small(1)), kHalfRing);
  // Just past half way the other direction is shorter.
  EXPECT_EQ(NodeId::Distance(NodeId(), kHalfRing + Small(1)),
            kHalfRing - Small(1));
}

TEST(NodeIdTest, DistanceIsSymmetricAndAtMostHalfRing) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    NodeId a(rng(), rng());
    NodeId b(rng(), rng());
    NodeId d = NodeId::Distance(a, b);
    EXPECT_EQ(d, NodeId::Distance(b, a));
    EXPECT_LE(d, kHalfRing);
    EXPECT_TRUE(d == NodeId::ClockwiseDistance(a, b) ||
                d == NodeId::ClockwiseDistance(b, a));
  }
}

// ------------------------------------------------------------------ CloserTo

TEST(NodeIdTest, CloserToPrefersSmallerDistance) {
  NodeId key = Small(100);
  EXPECT_TRUE(NodeId::CloserTo(key, Small(99), Small(110)));
  EXPECT_FALSE(NodeId::CloserTo(key, Small(110), Small(99)));
}

TEST(NodeIdTest, CloserToSeesAcrossZero) {
  // Max() is one step from 0; 10 is ten steps away.
  EXPECT_TRUE(NodeId::CloserTo(NodeId(), NodeId::Max(), Small(10)));
  EXPECT_FALSE(NodeId::CloserTo(NodeId(), Small(10), NodeId::Max()));
  EXPECT_TRUE(
      NodeId::CloserTo(NodeId::Max(), Small(0), NodeId::Max() - Small(2)));
}

TEST(NodeIdTest, CloserToBreaksTiesTowardNumericallySmaller) {
  NodeId key = Small(100);
  EXPECT_TRUE(NodeId::CloserTo(key, Small(95), Small(105)));
  EXPECT_FALSE(NodeId::CloserTo(key, Small(105), Small(95)));
}

TEST(NodeIdTest, CloserToTieAcrossZeroPicksSmallerId) {
  // Key 0: Max() and 1 are both one step away; 1 < Max() numerically.
  EXPECT_TRUE(NodeId::CloserTo(NodeId(), Small(1), NodeId::Max()));
  EXPECT_FALSE(NodeId::CloserTo(NodeId(), NodeId::Max(), Small(1)));
}

TEST(NodeIdTest, CloserToTieOppositeTheKey) {
  // Two ids 2^127 - 1 away from the key, one on each side: a tie between
  // the ids nearest the far point of the ring.
  NodeId key = NodeId();
  NodeId a = kHalfRing - Small(1);
  NodeId b = kHalfRing + Small(1);
  EXPECT_EQ(NodeId::Distance(key, a), NodeId::Distance(key, b));
  EXPECT_TRUE(NodeId::CloserTo(key, a, b));
  EXPECT_FALSE(NodeId::CloserTo(key, b, a));
}

TEST(NodeIdTest, CloserToIsStrict) {
  NodeId key = Small(100);
  EXPECT_FALSE(NodeId::CloserTo(key, Small(99), Small(99)));
  EXPECT_FALSE(NodeId::CloserTo(key, key, key));
}

TEST(NodeIdTest, CloserToIsATotalOrderForAKey) {
  std::mt19937_64 rng(11);
  NodeId key(rng(), rng());
  for (int i = 0; i < 1000; ++i) {
    NodeId a(rng(), rng());
    NodeId b(rng(), rng());
    if (a == b) continue;
    EXPECT_NE(NodeId::CloserTo(key, a, b), NodeId::CloserTo(key, b, a));
  }
}

// -------------------------------------------------------------------- digits

TEST(NodeIdTest, DigitsOfBitsWidth1) {
  NodeId id(kTopBit, 1);  // first and last bit set
  EXPECT_EQ(id.Digit(0, 1), 1);
  EXPECT_EQ(id.Digit(1, 1), 0);
  EXPECT_EQ(id.Digit(126, 1), 0);
  EXPECT_EQ(id.Digit(127, 1), 1);
}

TEST(NodeIdTest, DigitsOfBitsWidth2) {
  NodeId id = Hex("80000000000000000000000000000003");
  EXPECT_EQ(id.Digit(0, 2), 2);
  EXPECT_EQ(id.Digit(1, 2), 0);
  EXPECT_EQ(id.Digit(63, 2), 3);
}

TEST(NodeIdTest, DigitsOfBitsWidth4) {
  NodeId id = Hex("0123456789abcdeffedcba9876543210");
  EXPECT_EQ(id.Digit(0, 4), 0x0);
  EXPECT_EQ(id.Digit(1, 4), 0x1);
  EXPECT_EQ(id.Digit(15, 4), 0xf);  // last digit of the high word
  EXPECT_EQ(id.Digit(16, 4), 0xf);  // first digit of the low word
  EXPECT_EQ(id.Digit(30, 4), 0x1);
  EXPECT_EQ(id.Digit(31, 4), 0x0);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(id.Digit(i, 4), std::stoi(id.ToHex().substr(i, 1), nullptr, 16))
        << "digit " << i;
  }
}

TEST(NodeIdTest, DigitsOfBitsWidth8) {
  NodeId id = Hex("ab0000000000000000000000000000cd");
  EXPECT_EQ(id.Digit(0, 8), 0xab);
  EXPECT_EQ(id.Digit(1, 8), 0x00);
  EXPECT_EQ(id.Digit(7, 8), 0x00);
  EXPECT_EQ(id.Digit(8, 8), 0x00);
  EXPECT_EQ(id.Digit(15, 8), 0xcd);
}

TEST(NodeIdTest, DigitsOfMaxAreAllOnes) {
  for (int b : {1, 2, 4, 8}) {
    EXPECT_EQ(NodeId::Max().Digit(0, b), (1 << b) - 1) << "b=" << b;
    EXPECT_EQ(NodeId::Max().Digit(128 / b - 1, b), (1 << b) - 1) << "b=" << b;
    EXPECT_EQ(NodeId().Digit(0, b), 0) << "b=" << b;
    EXPECT_EQ(NodeId().Digit(128 / b - 1, b), 0) << "b=" << b;
  }
}

TEST(NodeIdTest, WithDigitSetsOneDigitOnly) {
  for (int b : {1, 2, 4, 8}) {
    const int max_digit = (1 << b) - 1;
    const int last = 128 / b - 1;
    for (int index : {0, 1, last / 2, last}) {
      NodeId set = NodeId().WithDigit(index, b, max_digit);
      NodeId cleared = NodeId::Max().WithDigit(index, b, 0);
      for (int i = 0; i <= last; ++i) {
        EXPECT_EQ(set.Digit(i, b), i == index ? max_digit : 0)
            << "b=" << b << " index=" << index << " i=" << i;
        EXPECT_EQ(cleared.Digit(i, b), i == index ? 0 : max_digit)
            << "b=" << b << " index=" << index << " i=" << i;
      }
    }
  }
}

TEST(NodeIdTest, WithDigitFirstAndLastForB4) {
  EXPECT_EQ(NodeId().WithDigit(0, 4, 0xa),
            Hex("a0000000000000000000000000000000"));
  EXPECT_EQ(NodeId().WithDigit(31, 4, 0x7),
            Hex("00000000000000000000000000000007"));
  EXPECT_EQ(NodeId().WithDigit(16, 4, 0x5),
            Hex("00000000000000005000000000000000"));
  EXPECT_EQ(Hex("a0000000000000000000000000000000").WithDigit(0, 4, 0x3),
            Hex("30000000000000000000000000000000"));
}

TEST(NodeIdTest, WithDigitRoundTripsThroughDigit) {
  std::mt19937_64 rng(3);
  for (int b : {1, 2, 4, 8}) {
    for (int i = 0; i < 200; ++i) {
      NodeId id(rng(), rng());
      int index = static_cast<int>(rng() % (128 / b));
      int value = static_cast<int>(rng() % (1u << b));
      EXPECT_EQ(id.WithDigit(index, b, value).Digit(index, b), value);
      EXPECT_EQ(id.WithDigit(index, b, id.Digit(index, b)), id);
    }
  }
}

// ------------------------------------------------------------- shared prefix

TEST(NodeIdTest, SharedPrefixOfEqualIdsIsEveryDigit) {
  NodeId id = Hex("0123456789abcdeffedcba9876543210");
  for (int b : {1, 2, 4, 8}) {
    EXPECT_EQ(id.SharedPrefixLength(id, b), 128 / b) << "b=" << b;
    EXPECT_EQ(NodeId().SharedPrefixLength(NodeId(), b), 128 / b);
    EXPECT_EQ(NodeId::Max().SharedPrefixLength(NodeId::Max(), b), 128 / b);
  }
}

TEST(NodeIdTest, SharedPrefixIsZeroWhenFirstBitDiffers) {
  for (int b : {1, 2, 4, 8}) {
    EXPECT_EQ(NodeId().SharedPrefixLength(NodeId(kTopBit, 0), b), 0);
    EXPECT_EQ(NodeId().SharedPrefixLength(NodeId::Max(), b), 0);
    EXPECT_EQ(NodeId::Max().SharedPrefixLength(NodeId(), b), 0);
  }
}

TEST(NodeIdTest, SharedPrefixWhenOnlyLastBitDiffers) {
  NodeId a = NodeId();
  NodeId b = Small(1);
  EXPECT_EQ(a.SharedPrefixLength(b, 1), 127);
  EXPECT_EQ(a.SharedPrefixLength(b, 2), 63);
  EXPECT_EQ(a.SharedPrefixLength(b, 4), 31);
  EXPECT_EQ(a.SharedPrefixLength(b, 8), 15);
}

TEST(NodeIdTest, SharedPrefixCountsWholeDigits) {
  // Differ in bit 5 (0-based from the top): digit 1 for b=4, digit 0 for b=8.
  NodeId a = NodeId();
  NodeId b(uint64_t{1} << (63 - 5), 0);
  EXPECT_EQ(a.SharedPrefixLength(b, 1), 5);
  EXPECT_EQ(a.SharedPrefixLength(b, 2), 2);
  EXPECT_EQ(a.SharedPrefixLength(b, 4), 1);
  EXPECT_EQ(a.SharedPrefixLength(b, 8), 0);
}

TEST(NodeIdTest, SharedPrefixAcrossTheWordBoundary) {
  // Same high word, differ in the top bit of the low word (bit 64).
  NodeId a(0x1234, 0);
  NodeId b(0x1234, kTopBit);
  EXPECT_EQ(a.SharedPrefixLength(b, 1), 64);
  EXPECT_EQ(a.SharedPrefixLength(b, 4), 16);
  EXPECT_EQ(a.SharedPrefixLength(b, 8), 8);
  // Differ in the last bit of the high word (bit 63).
  NodeId c(0x1235, 0);
  EXPECT_EQ(a.SharedPrefixLength(c, 1), 63);
  EXPECT_EQ(a.SharedPrefixLength(c, 4), 15);
}

TEST(NodeIdTest, SharedPrefixAgreesWithDigits) {
  std::mt19937_64 rng(5);
  for (int b : {1, 2, 4, 8}) {
    for (int i = 0; i < 300; ++i) {
      NodeId x(rng(), rng());
      // Copy a random number of leading digits so prefixes are long.
      int keep = static_cast<int>(rng() % (128 / b + 1));
      NodeId y(rng(), rng());
      for (int d = 0; d < keep; ++d) y = y.WithDigit(d, b, x.Digit(d, b));
      int len = x.SharedPrefixLength(y, b);
      EXPECT_EQ(len, y.SharedPrefixLength(x, b));
      EXPECT_GE(len, keep);
      for (int d = 0; d < len; ++d) EXPECT_EQ(x.Digit(d, b), y.Digit(d, b));
      if (len < 128 / b) {
        EXPECT_NE(x.Digit(len, b), y.Digit(len, b));
      }
    }
  }
}

// ----------------------------------------------------------------------- hex

TEST(NodeIdTest, HexRoundTrip) {
  const std::string hex = "0123456789abcdeffedcba9876543210";
  NodeId id = Hex(hex);
  EXPECT_EQ(id, NodeId(0x0123456789abcdefULL, 0xfedcba9876543210ULL));
  EXPECT_EQ(id.ToHex(), hex);
  EXPECT_EQ(id.ShortHex(), "01234567");
}

TEST(NodeIdTest, FromHexAcceptsUpperAndMixedCase) {
  EXPECT_EQ(Hex("0123456789ABCDEFFEDCBA9876543210"),
            NodeId(0x0123456789abcdefULL, 0xfedcba9876543210ULL));
  EXPECT_EQ(Hex("FfFfFfFfFfFfFfFfFfFfFfFfFfFfFfFf"), NodeId::Max());
}

TEST(NodeIdTest, ToHexKeepsLeadingZeros) {
  EXPECT_EQ(Small(1).ToHex(), "00000000000000000000000000000001");
  EXPECT_EQ(Small(1).ShortHex(), "00000000");
  EXPECT_EQ(NodeId(kTopBit, 0).ShortHex(), "80000000");
}

TEST(NodeIdTest, HexRoundTripRandom) {
  std::mt19937_64 rng(9);
  for (int i = 0; i < 500; ++i) {
    NodeId id(rng(), rng());
    std::string hex = id.ToHex();
    ASSERT_EQ(hex.size(), 32u);
    EXPECT_EQ(Hex(hex), id);
  }
}

TEST(NodeIdTest, FromHexRejectsWrongLength) {
  for (const char* bad : {"", "0", "0123456789abcdef0123456789abcde",
                          "0123456789abcdef0123456789abcdef0"}) {
    absl::StatusOr<NodeId> id = NodeId::FromHex(bad);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(id.status().message().find("32"), std::string::npos)
        << id.status();
  }
}

TEST(NodeIdTest, FromHexRejectsNonHexCharacters) {
  for (const char* bad :
       {"g0000000000000000000000000000000", "0000000000000000000000000000000z",
        "0x000000000000000000000000000000", " 0000000000000000000000000000000",
        "0000000000000000-000000000000000"}) {
    absl::StatusOr<NodeId> id = NodeId::FromHex(bad);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(NodeIdTest, FromHexErrorQuotesLongInputShort) {
  std::string huge(100000, 'z');
  absl::StatusOr<NodeId> id = NodeId::FromHex(huge);
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(id.status().message().size(), 200u);
}

TEST(NodeIdTest, FromHexRejectsEmbeddedNul) {
  std::string with_nul(32, '0');
  with_nul[10] = '\0';
  EXPECT_EQ(NodeId::FromHex(with_nul).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------- hash

TEST(NodeIdTest, UsableInHashContainers) {
  absl::flat_hash_set<NodeId> absl_set = {Small(1), Small(2), Small(1)};
  EXPECT_EQ(absl_set.size(), 2u);
  std::unordered_set<NodeId> std_set = {NodeId::Max(), NodeId(), Small(1)};
  EXPECT_EQ(std_set.size(), 3u);
  EXPECT_TRUE(std_set.contains(NodeId::Max()));
}

}  // namespace
}  // namespace peter::pastry

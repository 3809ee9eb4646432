#include "pubsub/resp/pattern_directory.h"

#include "gtest/gtest.h"

namespace peter::resp {
namespace {

TEST(PatternDirectoryTest, AnnouncementRoundTrip) {
  Announcement a{42, 7, absl::Seconds(3), {"news.*", std::string("a\0:b\n", 5), ""}};
  auto decoded = DecodeAnnouncement(EncodeAnnouncement(a));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->node, 42u);
  EXPECT_EQ(decoded->sequence, 7u);
  EXPECT_EQ(decoded->ttl, absl::Seconds(3));
  EXPECT_EQ(decoded->patterns, a.patterns);
}

TEST(PatternDirectoryTest, RejectsMalformedAnnouncements) {
  std::string good = EncodeAnnouncement({1, 1, absl::Seconds(1), {"x*"}});
  for (size_t cut = 0; cut < good.size(); ++cut) {
    auto d = DecodeAnnouncement(good.substr(0, cut));
    // A cut inside the pattern field must fail; a cut exactly after the
    // header is a valid empty set.
    if (d.ok()) {
      EXPECT_TRUE(d->patterns.empty());
    }
  }
  EXPECT_FALSE(DecodeAnnouncement("hello").ok());
  EXPECT_FALSE(DecodeAnnouncement("PA11:12:1x").ok());
  EXPECT_FALSE(DecodeAnnouncement("PA11:11:199999999999:").ok());
}

// Entries (nodes plus their patterns) are bounded: an announcement that
// would pass the limit is refused whole and flagged; replacing a node's own
// set counts only the difference; expiry makes room again.
TEST(PatternDirectoryTest, LimitRefusesAnnouncementsThatWouldPassIt) {
  PatternDirectory d;
  d.set_limit(6);
  const absl::Time now = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(d.Apply({1, 1, absl::Seconds(10), {"a*", "b*"}}, now));  // 3 entries
  EXPECT_FALSE(d.over_limit());
  EXPECT_FALSE(d.Apply({2, 1, absl::Seconds(10), {"c*", "d*", "e*"}}, now));  // would be 7
  EXPECT_TRUE(d.over_limit());
  EXPECT_EQ(d.Patterns(), (std::vector<std::string>{"a*", "b*"}));
  EXPECT_TRUE(d.Apply({2, 1, absl::Seconds(20), {"c*", "d*"}}, now));  // 6
  EXPECT_FALSE(d.over_limit());
  // Node 1 replaces its two patterns with three: 1 + 3 + 3 = 7, refused;
  // with one pattern, 2 + 3 = 5, taken.
  EXPECT_FALSE(d.Apply({1, 2, absl::Seconds(10), {"x*", "y*", "z*"}}, now));
  EXPECT_TRUE(d.over_limit());
  EXPECT_TRUE(d.Apply({1, 3, absl::Seconds(10), {"x*"}}, now));
  EXPECT_EQ(d.Patterns(), (std::vector<std::string>{"c*", "d*", "x*"}));
  // A stale announcement is refused, but not for the limit.
  EXPECT_FALSE(d.Apply({1, 1, absl::Seconds(10), {}}, now));
  EXPECT_FALSE(d.over_limit());
  d.Expire(now + absl::Seconds(15));  // node 1 gone: 3 entries left
  EXPECT_TRUE(d.Apply({3, 1, absl::Seconds(10), {"f*", "g*"}}, now));
  EXPECT_EQ(d.size(), 4u);
}

// A stated ttl over max_ttl is believed only max_ttl, and flagged.
TEST(PatternDirectoryTest, TtlIsCappedAtMaxTtl) {
  PatternDirectory d;
  d.set_max_ttl(absl::Seconds(60));
  const absl::Time now = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(d.Apply({1, 1, absl::Hours(24), {"a*"}}, now));
  EXPECT_TRUE(d.ttl_clipped());
  EXPECT_TRUE(d.Apply({2, 1, absl::Seconds(16), {"b*"}}, now));
  EXPECT_FALSE(d.ttl_clipped());
  EXPECT_TRUE(d.Apply({3, 1, absl::Seconds(60), {"c*"}}, now));
  EXPECT_FALSE(d.ttl_clipped());
  d.Expire(now + absl::Seconds(59));
  EXPECT_EQ(d.Patterns(), (std::vector<std::string>{"a*", "c*"}));
  d.Expire(now + absl::Seconds(60));  // node 1 gone with the others at 60 s, not 24 h
  EXPECT_TRUE(d.Patterns().empty());
  EXPECT_EQ(d.size(), 0u);
}

TEST(PatternDirectoryTest, PatternMessageRoundTrip) {
  std::string encoded = EncodePatternMessage("ch:1", std::string("p\0q", 3));
  auto d = DecodePatternMessage(encoded);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->first, "ch:1");
  EXPECT_EQ(d->second, std::string("p\0q", 3));
  EXPECT_FALSE(DecodePatternMessage("9:abc").ok());
  EXPECT_FALSE(DecodePatternMessage("abc").ok());
}

TEST(PatternDirectoryTest, FullSetsSequencesAndExpiry) {
  PatternDirectory dir;
  absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(dir.Apply({1, 2, absl::Seconds(10), {"a*", "b*"}}, t0));
  EXPECT_TRUE(dir.Apply({2, 1, absl::Seconds(5), {"a*"}}, t0));
  EXPECT_EQ(dir.Patterns(), (std::vector<std::string>{"a*", "b*"}));
  EXPECT_EQ(dir.Matching("abc"), (std::vector<std::string>{"a*"}));
  EXPECT_FALSE(dir.Apply({1, 1, absl::Seconds(10), {}}, t0));  // stale
  EXPECT_TRUE(dir.Apply({1, 3, absl::Seconds(10), {"a*"}}, t0));  // b* withdrawn
  EXPECT_EQ(dir.Patterns(), (std::vector<std::string>{"a*"}));
  dir.Expire(t0 + absl::Seconds(6));  // node 2 expired, node 1 still holds a*
  EXPECT_EQ(dir.Patterns(), (std::vector<std::string>{"a*"}));
  dir.Expire(t0 + absl::Seconds(10));
  EXPECT_TRUE(dir.Patterns().empty());
}

}  // namespace
}  // namespace peter::resp

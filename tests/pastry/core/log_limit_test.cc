#include "pastry/core/log_limit.h"

#include "gtest/gtest.h"

namespace peter {
namespace {

// One warning per interval; the next one allowed reports how many were
// held back since the last.
TEST(LogLimitTest, OnePerIntervalAndCountsTheRest) {
  LogLimit limit(absl::Seconds(1));
  const absl::Time t0 = absl::FromUnixSeconds(100);
  ASSERT_TRUE(limit.Allow(t0));
  EXPECT_EQ(limit.suppressed(), 0u);
  EXPECT_FALSE(limit.Allow(t0));
  EXPECT_FALSE(limit.Allow(t0 + absl::Milliseconds(999)));
  EXPECT_FALSE(limit.Allow(t0 + absl::Milliseconds(500)));
  ASSERT_TRUE(limit.Allow(t0 + absl::Seconds(1)));
  EXPECT_EQ(limit.suppressed(), 3u);
  ASSERT_TRUE(limit.Allow(t0 + absl::Seconds(5)));
  EXPECT_EQ(limit.suppressed(), 0u);
}

}  // namespace
}  // namespace peter

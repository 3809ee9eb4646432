#include "pubsub/root_cache.h"

#include <cstdint>

#include "gtest/gtest.h"
#include "tests/pubsub/fake_overlay.h"

namespace peter::pubsub {
namespace {

using testing::Handle;

TopicId Topic(uint64_t n) { return TopicId(n, 0); }

TEST(RootCacheTest, AtCapacityForgetsTheLeastRecentlyUsed) {
  RootCache cache(3);
  for (uint64_t n = 1; n <= 3; ++n) cache.Put(Topic(n), Handle(n));
  ASSERT_NE(cache.Use(Topic(1)), nullptr);  // 2 is now the least recently used
  cache.Put(Topic(3), Handle(3));           // the same root again: used, not added
  cache.Put(Topic(4), Handle(4));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.Peek(Topic(2)), nullptr);
  ASSERT_NE(cache.Peek(Topic(1)), nullptr);
  EXPECT_EQ(*cache.Peek(Topic(1)), Handle(1));
  EXPECT_EQ(*cache.Peek(Topic(4)), Handle(4));
  cache.Put(Topic(5), Handle(5));  // Peek did not mark 1 used: it goes
  EXPECT_EQ(cache.Peek(Topic(1)), nullptr);
  EXPECT_NE(cache.Peek(Topic(3)), nullptr);
}

TEST(RootCacheTest, AnotherRootReplacesTheCachedOne) {
  RootCache cache(2);
  cache.Put(Topic(1), Handle(1));
  cache.Put(Topic(2), Handle(2));
  cache.Put(Topic(1), Handle(9));  // moved: now the most recently used
  cache.Put(Topic(3), Handle(3));
  EXPECT_EQ(cache.Peek(Topic(2)), nullptr);
  EXPECT_EQ(*cache.Peek(Topic(1)), Handle(9));
}

TEST(RootCacheTest, EraseIfForgetsOnlyThatRootAndFreesItsSlot) {
  RootCache cache(2);
  cache.Put(Topic(1), Handle(1));
  cache.Put(Topic(2), Handle(2));
  cache.EraseIf(Topic(1), Handle(7));  // another root is cached: kept
  EXPECT_NE(cache.Peek(Topic(1)), nullptr);
  cache.EraseIf(Topic(1), Handle(1));
  EXPECT_EQ(cache.Peek(Topic(1)), nullptr);
  EXPECT_EQ(cache.size(), 1u);
  cache.Put(Topic(3), Handle(3));  // the freed slot: nothing else forgotten
  EXPECT_NE(cache.Peek(Topic(2)), nullptr);
  EXPECT_NE(cache.Peek(Topic(3)), nullptr);
  cache.Put(Topic(4), Handle(4));  // full again: 2 is the oldest
  EXPECT_EQ(cache.Peek(Topic(2)), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(RootCacheTest, ZeroCapacityCachesNothing) {
  RootCache cache(0);
  cache.Put(Topic(1), Handle(1));
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.Use(Topic(1)), nullptr);
}

// Many more topics than slots, in a cycle: each Put forgets exactly the
// oldest, so the last `capacity` topics are the ones held.
TEST(RootCacheTest, ACycleOfNewTopicsKeepsTheNewest) {
  constexpr uint64_t kCapacity = 64;
  RootCache cache(kCapacity);
  for (uint64_t n = 1; n <= 10 * kCapacity; ++n) {
    cache.Put(Topic(n), Handle(n));
    if (n % 3 == 0) cache.EraseIf(Topic(n - 1), Handle(n - 1));
  }
  EXPECT_LE(cache.size(), kCapacity);
  for (uint64_t n = 10 * kCapacity - 20; n <= 10 * kCapacity; ++n) {
    if (n % 3 == 2 && n + 1 <= 10 * kCapacity) continue;  // erased
    ASSERT_NE(cache.Peek(Topic(n)), nullptr) << n;
    EXPECT_EQ(*cache.Peek(Topic(n)), Handle(n));
  }
}

}  // namespace
}  // namespace peter::pubsub

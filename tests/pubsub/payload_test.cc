#include "pubsub/payload.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace peter::pubsub {
namespace {

TEST(PayloadTest, CopiesShareOneBlock) {
  const std::string bytes(100, 'x');
  Payload a(bytes);
  EXPECT_NE(a.data(), bytes.data());
  EXPECT_EQ(a, bytes);
  EXPECT_EQ(a.use_count(), 1);
  Payload b = a;
  EXPECT_EQ(b.data(), a.data());
  EXPECT_EQ(a.use_count(), 2);
  Payload c = std::move(b);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): moved from is empty
  EXPECT_EQ(c.data(), a.data());
  EXPECT_EQ(a.use_count(), 2);
  c.clear();
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(a.use_count(), 1);
  EXPECT_EQ(a.size(), 100u);
}

TEST(PayloadTest, EmptyHoldsNoBlockAndBytesAreKeptExactly) {
  Payload empty("");
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.use_count(), 0);
  EXPECT_EQ(empty, "");
  const std::string with_nul("a\0b", 3);
  Payload p(with_nul);
  EXPECT_EQ(p.size(), 3u);
  EXPECT_EQ(std::string(p), with_nul);
  EXPECT_FALSE(p == "a");
}

// Handles to one block copied and dropped on several threads: the count
// stays right (under TSan/ASan a race or a double free shows here).
TEST(PayloadTest, SharedAcrossThreads) {
  Payload p(std::string(64, 'y'));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([p] {
      for (int i = 0; i < 10000; ++i) {
        Payload copy = p;
        EXPECT_EQ(copy.size(), 64u);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(p.use_count(), 1);
}

}  // namespace
}  // namespace peter::pubsub

#include "pubsub/topic_id.h"

#include <string>

#include "gtest/gtest.h"

namespace peter::pubsub {
namespace {

TEST(TopicIdTest, IsTheFirst128BitsOfSha256) {
  // SHA-256("") = e3b0c442 98fc1c14 9afbf4c8 996fb924 27ae41e4 ...
  EXPECT_EQ(TopicIdOf(""), TopicId(0xe3b0c44298fc1c14ULL, 0x9afbf4c8996fb924ULL));
  // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 ...
  EXPECT_EQ(TopicIdOf("abc"), TopicId(0xba7816bf8f01cfeaULL, 0x414140de5dae2223ULL));
}

TEST(TopicIdTest, DistinctNamesGiveDistinctIds) {
  EXPECT_NE(TopicIdOf("news"), TopicIdOf("news2"));
  EXPECT_EQ(TopicIdOf("news"), TopicIdOf("news"));
}

// TopicIdOf remembers recent names: known values still come back after
// the cache filled and was emptied (over 4,096 names), and for names too
// long to be cached.
TEST(TopicIdTest, CachedIdsStayCorrectPastTheCacheBound) {
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 5000; ++i) TopicIdOf("name-" + std::to_string(i));
    EXPECT_EQ(TopicIdOf("abc"), TopicId(0xba7816bf8f01cfeaULL, 0x414140de5dae2223ULL));
    EXPECT_EQ(TopicIdOf(""), TopicId(0xe3b0c44298fc1c14ULL, 0x9afbf4c8996fb924ULL));
  }
  // SHA-256 of 1,000 'a's = 41edece4 2d63e8d9 bf515a9b a6932e1c 20cbc9f5 ...
  const std::string long_name(1000, 'a');
  EXPECT_EQ(TopicIdOf(long_name), TopicId(0x41edece42d63e8d9ULL, 0xbf515a9ba6932e1cULL));
  EXPECT_EQ(TopicIdOf(long_name), TopicIdOf(std::string(1000, 'a')));
}

}  // namespace
}  // namespace peter::pubsub

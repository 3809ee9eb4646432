#include "pubsub/topic_id.h"

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

}  // namespace
}  // namespace peter::pubsub

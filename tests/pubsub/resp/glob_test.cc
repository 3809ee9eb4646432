#include "pubsub/resp/glob.h"

#include <random>
#include <set>

#include "gtest/gtest.h"
#include "tests/pubsub/resp/test_client.h"

namespace peter::resp {
namespace {

TEST(GlobTest, RedisSemantics) {
  EXPECT_TRUE(GlobMatch("news.*", "news.sport"));
  EXPECT_TRUE(GlobMatch("news.*", "news."));
  EXPECT_FALSE(GlobMatch("news.*", "news"));
  EXPECT_TRUE(GlobMatch("h?llo", "hello"));
  EXPECT_FALSE(GlobMatch("h?llo", "hllo"));
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[^e]llo", "hello"));
  EXPECT_TRUE(GlobMatch("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(GlobMatch("h[b-a]llo", "hbllo"));  // reversed range
  EXPECT_TRUE(GlobMatch("a\\*b", "a*b"));
  EXPECT_FALSE(GlobMatch("a\\*b", "axb"));
  EXPECT_TRUE(GlobMatch("[\\]]", "]"));
  EXPECT_TRUE(GlobMatch("a[bc", "ab"));  // unterminated set
  EXPECT_FALSE(GlobMatch("*", ""));     // as Redis: an empty text never matches '*'
  EXPECT_TRUE(GlobMatch("", ""));
  EXPECT_TRUE(GlobMatch("a\\", "a\\"));  // trailing backslash is literal
  EXPECT_FALSE(GlobMatch("abc", "ABC"));
}

TEST(GlobTest, PathologicalPatternIsFast) {
  std::string text(5000, 'a');
  EXPECT_FALSE(GlobMatch("*a*a*a*a*a*a*a*a*a*a*a*b", text));
}

// Differential check against the real server: PUBSUB CHANNELS <pattern>
// uses Redis's matcher on the channels a client is subscribed to.
TEST(GlobTest, MatchesRealRedis) {
  testing::RedisServer redis;
  if (!redis.available()) GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server)";
  std::mt19937 rng(7);
  const std::string channel_chars = "ab-]^\\[z*?";
  const std::string pattern_chars = "ab*?[]^-\\z";
  std::set<std::string> channels;
  while (channels.size() < 300) {
    std::string c(rng() % 5, ' ');
    for (char& ch : c) ch = channel_chars[rng() % channel_chars.size()];
    channels.insert(c);
  }
  testing::TestClient sub(redis.port());
  std::vector<std::string> cmd = {"SUBSCRIBE"};
  cmd.insert(cmd.end(), channels.begin(), channels.end());
  sub.Command(cmd);
  for (size_t i = 0; i < channels.size(); ++i) ASSERT_NE(sub.Read(), "<timeout>");
  testing::TestClient q(redis.port());
  for (int iter = 0; iter < 1500; ++iter) {
    std::string p(1 + rng() % 6, ' ');
    for (char& ch : p) ch = pattern_chars[rng() % pattern_chars.size()];
    std::string reply = q.Call({"PUBSUB", "CHANNELS", p});
    std::set<std::string> redis_set;
    // Parse "*n\r\n($len\r\nbytes\r\n)*".
    size_t pos = reply.find("\r\n") + 2;
    while (pos < reply.size()) {
      size_t eol = reply.find("\r\n", pos);
      size_t len = std::stoul(reply.substr(pos + 1, eol - pos - 1));
      redis_set.insert(reply.substr(eol + 2, len));
      pos = eol + 2 + len + 2;
    }
    std::set<std::string> ours;
    for (const auto& c : channels) {
      if (GlobMatch(p, c)) ours.insert(c);
    }
    ASSERT_EQ(ours, redis_set) << "pattern '" << p << "'";
  }
}

}  // namespace
}  // namespace peter::resp

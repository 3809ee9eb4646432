#include "pubsub/origin_index.h"

#include <cstdint>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace peter::pubsub {
namespace {

NodeId Publisher(uint64_t i) { return NodeId(i * 0x9e3779b97f4a7c15ULL, i); }

using Model = std::map<std::pair<NodeId, uint64_t>, uint64_t>;

void ExpectSame(const OriginIndex& index, const Model& model,
                const std::vector<NodeId>& publishers, uint64_t max_request) {
  ASSERT_EQ(index.size(), model.size());
  for (const NodeId& p : publishers) {
    for (uint64_t r = 0; r <= max_request + 1; ++r) {
      auto it = model.find({p, r});
      const std::optional<uint64_t> got = index.Find(p, r);
      if (it == model.end()) {
        ASSERT_FALSE(got.has_value()) << "request " << r;
      } else {
        ASSERT_TRUE(got.has_value()) << "request " << r;
        ASSERT_EQ(*got, it->second) << "request " << r;
      }
    }
  }
}

// The root's common case: each publisher's requests numbered in order,
// the oldest pushed out of a buffer of 1,024; then the map's answers.
TEST(OriginIndexTest, InOrderRunsTrimmedFromTheFront) {
  OriginIndex index;
  Model model;
  const std::vector<NodeId> publishers{Publisher(1), Publisher(2), Publisher(3)};
  std::vector<std::pair<NodeId, uint64_t>> stored;  // by number
  uint64_t request[3] = {100, 5000, 7};
  for (uint64_t seq = 1; seq <= 5000; ++seq) {
    const size_t who = seq % 7 == 0 ? 2 : seq % 2;
    const uint64_t r = request[who]++;
    index.Set(publishers[who], r, seq);
    model[{publishers[who], r}] = seq;
    stored.emplace_back(publishers[who], r);
    if (stored.size() > 1024) {
      const auto [p, old] = stored[stored.size() - 1025];
      index.Erase(p, old);
      model.erase({p, old});
    }
  }
  ExpectSame(index, model, publishers, 10000);
  EXPECT_EQ(index.size(), 1024u);
}

// A burst of 8,192 in-order publishes from one publisher, then all but 10
// pushed out, then all: the run's vector does not keep the burst's size.
TEST(OriginIndexTest, ARunGivesBackABurstsCapacity) {
  OriginIndex index;
  const NodeId p = Publisher(1);
  constexpr uint64_t kBurst = 8192;
  for (uint64_t r = 0; r < kBurst; ++r) index.Set(p, r, r + 1);
  ASSERT_GE(index.pairs_reserved(), kBurst);
  for (uint64_t r = 0; r + 10 < kBurst; ++r) index.Erase(p, r);
  ASSERT_EQ(index.size(), 10u);
  EXPECT_LE(index.pairs_reserved(), 4 * 64u);
  for (uint64_t r = kBurst - 10; r < kBurst; ++r) {
    ASSERT_EQ(index.Find(p, r), r + 1);
    index.Erase(p, r);
  }
  EXPECT_TRUE(index.empty());
  EXPECT_LE(index.pairs_reserved(), 64u);
  index.Set(p, kBurst, 1);  // the run is still there, and works
  EXPECT_EQ(index.Find(p, kBurst), 1u);
}

// Against std::map at random: out-of-order requests, overwrites, erasures
// anywhere and of what is not held, publishers that come and go.
TEST(OriginIndexTest, MatchesAMapAtRandom) {
  std::mt19937_64 rng(6);
  OriginIndex index;
  Model model;
  std::vector<NodeId> publishers;
  for (uint64_t i = 0; i < 4; ++i) publishers.push_back(Publisher(i + 10));
  std::vector<uint64_t> next(publishers.size(), 1);
  for (int step = 0; step < 40000; ++step) {
    const size_t who = rng() % publishers.size();
    const NodeId& p = publishers[who];
    const int op = static_cast<int>(rng() % 10);
    uint64_t r;
    if (op < 5) {
      r = next[who]++;  // the common case: the next request
    } else {
      r = next[who] > 1 ? 1 + rng() % next[who] : 1;  // anywhere, maybe held
    }
    if (op < 7) {
      const uint64_t seq = rng() % 100000;
      index.Set(p, r, seq);
      model[{p, r}] = seq;
    } else if (op == 7 && !model.empty()) {
      // The oldest of a publisher, as the replay buffer trims.
      auto it = model.lower_bound({p, 0});
      if (it != model.end() && it->first.first == p) {
        index.Erase(p, it->first.second);
        model.erase(it);
      }
    } else {
      index.Erase(p, r);
      model.erase({p, r});
    }
    ASSERT_EQ(index.size(), model.size()) << "step " << step;
    if (step % 997 == 0) {
      uint64_t max_request = 0;
      for (uint64_t n : next) max_request = std::max(max_request, n);
      ExpectSame(index, model, publishers, max_request);
    }
  }
  uint64_t max_request = 0;
  for (uint64_t n : next) max_request = std::max(max_request, n);
  ExpectSame(index, model, publishers, max_request);
}

TEST(OriginIndexTest, OneOfManyPublishersWithNothingHeldIsForgotten) {
  OriginIndex index;
  for (uint64_t i = 1; i <= 9; ++i) index.Set(Publisher(i), 5, i);
  EXPECT_EQ(index.publishers(), 9u);
  index.Erase(Publisher(1), 6);  // not held
  EXPECT_EQ(index.publishers(), 9u);
  index.Erase(Publisher(1), 5);
  EXPECT_EQ(index.publishers(), 8u);
  EXPECT_FALSE(index.Contains(Publisher(1), 5));
  EXPECT_TRUE(index.Contains(Publisher(2), 5));
  // Up to 8 are kept when empty: a buffer of one message empties its
  // publisher's run at every publish.
  index.Erase(Publisher(2), 5);
  EXPECT_EQ(index.publishers(), 8u);
  EXPECT_FALSE(index.Contains(Publisher(2), 5));
  index.Set(Publisher(2), 6, 10);
  EXPECT_EQ(index.Find(Publisher(2), 6), 10u);
  index.Set(Publisher(3), 5, 11);  // overwritten, not added
  EXPECT_EQ(index.size(), 8u);
  EXPECT_EQ(index.Find(Publisher(3), 5), 11u);
}

}  // namespace
}  // namespace peter::pubsub

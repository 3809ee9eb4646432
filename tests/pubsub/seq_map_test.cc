#include "pubsub/seq_map.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "pastry/sim/rng.h"

namespace peter::pubsub {
namespace {

using Entries = std::vector<std::pair<uint64_t, std::string>>;

template <typename Map>
Entries Contents(const Map& map) {
  Entries out;
  for (const auto& [seq, value] : map) out.emplace_back(seq, value);
  return out;
}

// try_emplace on both, with the same answer.
void EmplaceInBoth(SeqMap<std::string>& ring, std::map<uint64_t, std::string>& map, uint64_t seq,
                   const std::string& value) {
  auto [it, fresh] = ring.try_emplace(seq, value);
  auto [mit, mfresh] = map.try_emplace(seq, value);
  ASSERT_EQ(fresh, mfresh);
  ASSERT_EQ(it->first, mit->first);
  ASSERT_EQ(it->second, mit->second);
}

// The common case: numbers appended after the newest and trimmed from the
// oldest, through several wraps of the ring and its growth.
TEST(SeqMapTest, AppendsAndTrimsLikeAMap) {
  SeqMap<std::string> ring;
  std::map<uint64_t, std::string> map;
  for (uint64_t seq = 1; seq <= 5000; ++seq) {
    const std::string value = "m" + std::to_string(seq);
    auto [it, fresh] = ring.try_emplace(seq, value);
    ASSERT_TRUE(fresh);
    ASSERT_EQ(it->first, seq);
    ASSERT_EQ(it->second, value);
    map.try_emplace(seq, value);
    while (ring.size() > 100) ring.erase(ring.begin());
    while (map.size() > 100) map.erase(map.begin());
    ASSERT_EQ(ring.begin()->first, map.begin()->first);
    ASSERT_EQ(ring.rbegin()->first, map.rbegin()->first);
  }
  EXPECT_EQ(Contents(ring), Contents(map));
  EXPECT_EQ(ring.find(4901)->second, "m4901");
  EXPECT_EQ(ring.find(4900), ring.end());  // trimmed
  EXPECT_FALSE(ring.contains(5001));
}

// A ring kept at a bound (Store: replay_capacity, plus the one stored
// before the oldest is trimmed) grows to exactly that many slots and stays
// full; more entries than the bound are still taken (the ring doubles).
TEST(SeqMapTest, GrowsToItsBoundAndNoFurther) {
  SeqMap<std::string> ring;
  ring.set_bound(101);
  for (uint64_t seq = 1; seq <= 3000; ++seq) {
    ring.try_emplace(seq, std::to_string(seq));
    while (ring.size() > 100) ring.erase(ring.begin());
  }
  EXPECT_EQ(ring.capacity(), 101u);
  EXPECT_EQ(ring.begin()->first, 2901u);
  for (uint64_t seq = 3001; seq <= 3010; ++seq) ring.try_emplace(seq, std::to_string(seq));
  EXPECT_EQ(ring.size(), 110u);
  EXPECT_EQ(ring.capacity(), 202u);
  EXPECT_EQ(ring.rbegin()->second, "3010");
  EXPECT_EQ(ring.find(2901)->second, "2901");
}

// Entries stored before the oldest are trimmed (out of order: a replica's
// copies, OnReplicate) grow a ring past its bound; trimmed back, it keeps
// the slots until shrink() packs it into its bound again. A ring that
// holds a few entries of many slots (trimmed by age) packs them into
// twice as many slots; an empty one gives all back. The entries, and a
// position found before, are unchanged.
TEST(SeqMapTest, ShrinkGivesBackWhatAnOutOfOrderBurstGrew) {
  SeqMap<std::string> ring;
  ring.set_bound(65);
  for (uint64_t seq = 1; seq <= 64; ++seq) ring.try_emplace(seq, std::to_string(seq));
  ASSERT_EQ(ring.capacity(), 64u);
  EXPECT_FALSE(ring.shrink());  // filling up: left as it is
  for (uint64_t seq = 128; seq > 64; --seq) ring.try_emplace(seq, std::to_string(seq));
  while (ring.size() > 64) ring.erase(ring.begin());
  EXPECT_EQ(ring.capacity(), 130u);  // doubled past the bound, kept
  const auto oldest = ring.begin();
  EXPECT_TRUE(ring.shrink());
  EXPECT_EQ(ring.capacity(), 65u);
  EXPECT_EQ(oldest->first, 65u);
  EXPECT_EQ(ring.begin()->first, 65u);
  EXPECT_EQ(ring.rbegin()->second, "128");
  EXPECT_EQ(ring.find(100)->second, "100");
  EXPECT_FALSE(ring.shrink());  // full at its bound
  // Appending and trimming go on within the bound.
  for (uint64_t seq = 129; seq <= 300; ++seq) {
    ring.try_emplace(seq, std::to_string(seq));
    while (ring.size() > 64) ring.erase(ring.begin());
  }
  EXPECT_EQ(ring.capacity(), 65u);
  EXPECT_EQ(ring.begin()->first, 237u);
  // Trimmed to a few (by age): two slots per entry.
  while (ring.size() > 3) ring.erase(ring.begin());
  EXPECT_TRUE(ring.shrink());
  EXPECT_EQ(ring.capacity(), 6u);
  std::vector<uint64_t> keys;
  for (const auto& [seq, value] : ring) keys.push_back(seq);
  EXPECT_EQ(keys, (std::vector<uint64_t>{298, 299, 300}));
  while (!ring.empty()) ring.erase(ring.begin());
  EXPECT_TRUE(ring.shrink());
  EXPECT_EQ(ring.capacity(), 0u);
  EXPECT_FALSE(ring.shrink());
}

// A held number is not replaced, and the value offered is left as it was
// (OnReplicate compares it with the one held).
TEST(SeqMapTest, TryEmplaceOfAHeldNumberKeepsBothValues) {
  SeqMap<std::string> ring;
  ring.try_emplace(5, std::string("held"));
  ring.try_emplace(7, std::string("later"));
  std::string offered = "offered";
  auto [it, fresh] = ring.try_emplace(5, std::move(offered));
  EXPECT_FALSE(fresh);
  EXPECT_EQ(it->second, "held");
  EXPECT_EQ(offered, "offered");  // NOLINT(bugprone-use-after-move): not moved from
  auto hinted = ring.try_emplace(ring.end(), 7, std::string("again"));
  EXPECT_EQ(hinted->second, "later");
  EXPECT_EQ(ring.size(), 2u);
}

// Appending after the newest entry and erasing the oldest leave iterators
// to the other entries valid (as std::map's), also across the ring's
// growth: the replay buffer's users hold one while storing.
TEST(SeqMapTest, IteratorsSurviveAppendingAndTrimming) {
  SeqMap<std::string> ring;
  for (uint64_t seq = 10; seq < 16; ++seq) ring.try_emplace(seq, std::to_string(seq));
  auto twelve = ring.find(12);
  for (uint64_t seq = 16; seq < 200; ++seq) {
    ring.try_emplace(seq, std::to_string(seq));
    if (ring.begin()->first < 12) ring.erase(ring.begin());
  }
  EXPECT_EQ(ring.begin()->first, 12u);
  EXPECT_EQ(twelve->first, 12u);
  EXPECT_EQ(twelve->second, "12");
  auto next = ring.erase(twelve);
  EXPECT_EQ(next, ring.begin());
  EXPECT_EQ(next->first, 13u);
}

// Every operation Scribe uses, at random (insertions and erasures in the
// middle included), against std::map.
TEST(SeqMapTest, RandomOperationsMatchAMap) {
  pastry::sim::Rng rng(7);
  SeqMap<std::string> ring;
  std::map<uint64_t, std::string> map;
  uint64_t newest = 0;
  for (int step = 0; step < 20000; ++step) {
    const uint64_t op = rng.Below(10);
    if (op < 5) {  // mostly after the newest, sometimes anywhere
      const uint64_t seq = op < 4 ? ++newest : rng.Below(newest + 2);
      ASSERT_NO_FATAL_FAILURE(EmplaceInBoth(ring, map, seq, std::to_string(step)));
    } else if (op < 7 && !map.empty()) {  // the oldest
      auto next = ring.erase(ring.begin());
      auto mnext = map.erase(map.begin());
      ASSERT_EQ(next == ring.end(), mnext == map.end());
      if (mnext != map.end()) {
        ASSERT_EQ(next->first, mnext->first);
      }
    } else if (op < 8) {  // anywhere, by iterator from a search
      const uint64_t seq = rng.Below(newest + 2);
      auto it = ring.lower_bound(seq);
      auto mit = map.lower_bound(seq);
      ASSERT_EQ(it == ring.end(), mit == map.end());
      if (mit != map.end()) {
        ASSERT_EQ(it->first, mit->first);
        auto next = ring.erase(it);
        auto mnext = map.erase(mit);
        ASSERT_EQ(next == ring.end(), mnext == map.end());
        if (mnext != map.end()) {
        ASSERT_EQ(next->first, mnext->first);
      }
      }
    } else if (op < 9) {
      const uint64_t seq = rng.Below(newest + 2);
      ASSERT_EQ(ring.erase(seq), map.erase(seq));
    } else {
      const uint64_t seq = rng.Below(newest + 2);
      auto it = ring.find(seq);
      auto mit = map.find(seq);
      ASSERT_EQ(it == ring.end(), mit == map.end());
      ASSERT_EQ(ring.contains(seq), map.contains(seq));
      if (mit != map.end()) {
        ASSERT_EQ(it->second, mit->second);
      }
    }
    ASSERT_EQ(ring.size(), map.size());
    ASSERT_EQ(ring.empty(), map.empty());
    if (step % 500 == 0) {
      ASSERT_EQ(Contents(ring), Contents(map));
      if (rng.Below(4) == 0) {
        ring.clear();
        map.clear();
      }
    }
  }
  EXPECT_EQ(Contents(ring), Contents(map));
}

// A topic's numbers have gaps (evicted for bytes, withdrawn, a rival's
// state merged in): keys far apart, inserted and erased in the middle of a
// ring kept full at its bound, so the ring wraps with entries shifted
// across its end. The same operations on std::map give the same contents,
// in the same order, and the same answers to every look-up.
TEST(SeqMapTest, SparseNumbersInAFullRingMatchAMap) {
  pastry::sim::Rng rng(11);
  SeqMap<std::string> ring;
  ring.set_bound(17);
  std::map<uint64_t, std::string> map;
  uint64_t newest = 0;
  for (int step = 0; step < 50000; ++step) {
    const uint64_t op = rng.Below(16);
    if (op < 10) {
      // After the newest with a gap of up to 5, or anywhere below it.
      const uint64_t seq = op < 8 ? (newest += 1 + rng.Below(5)) : 1 + rng.Below(newest + 3);
      ASSERT_NO_FATAL_FAILURE(EmplaceInBoth(ring, map, seq, std::to_string(step)));
    } else if (op < 12 && !map.empty()) {  // in the middle, by key
      const uint64_t seq = map.begin()->first + rng.Below(newest - map.begin()->first + 2);
      ASSERT_EQ(ring.erase(seq), map.erase(seq));
    } else if (op < 14) {  // every look-up the replay buffer's users make
      const uint64_t seq = rng.Below(newest + 3);
      auto lb = ring.lower_bound(seq);
      auto mlb = map.lower_bound(seq);
      ASSERT_EQ(lb == ring.end(), mlb == map.end());
      if (mlb != map.end()) {
        ASSERT_EQ(lb->first, mlb->first);
      }
      ASSERT_EQ(ring.contains(seq), map.contains(seq));
      auto it = ring.find(seq);
      ASSERT_EQ(it == ring.end(), !map.contains(seq));
      if (it != ring.end()) {
        ASSERT_EQ(it->second, map.at(seq));
      }
    }
    // Kept at 16 as Store keeps a replay buffer: the oldest go.
    while (map.size() > 16) {
      map.erase(map.begin());
      ring.erase(ring.begin());
    }
    ASSERT_EQ(ring.size(), map.size());
    if (!map.empty()) {
      ASSERT_EQ(ring.begin()->first, map.begin()->first);
      ASSERT_EQ(ring.rbegin()->first, map.rbegin()->first);
    }
    if (step % 97 == 0) {
      ASSERT_EQ(Contents(ring), Contents(map));
    }
  }
  EXPECT_EQ(Contents(ring), Contents(map));
  EXPECT_EQ(ring.capacity(), 17u);  // never grew past its bound
}

// What a ring does not keep, unlike std::map: end() moves with every
// insertion, so an iterator found equal to end() before a store names the
// entry stored after it (MergeRivalRoot held one across Accept, which may
// store: a rival's message then looked like one this root already had).
// And a middle insertion shifts the entries after it. Callers keep a key
// or a flag across such calls, not an iterator.
TEST(SeqMapTest, EndMovesWithAnInsertionAndAMiddleInsertionShifts) {
  SeqMap<std::string> ring;
  ring.try_emplace(1, std::string("1"));
  ring.try_emplace(5, std::string("5"));
  auto missing = ring.find(7);
  ASSERT_EQ(missing, ring.end());
  ring.try_emplace(7, std::string("7"));
  EXPECT_NE(missing, ring.end());
  EXPECT_EQ(missing->first, 7u);
  auto five = ring.find(5);
  ring.try_emplace(3, std::string("3"));  // before it
  EXPECT_EQ(five->first, 3u);
  EXPECT_EQ(ring.find(5)->second, "5");
}

// next_if steps to the entry after a run's previous one without a search,
// and a stale `prev` (the ring trimmed, grown, shifted or cleared since)
// finds end() or, by its key, the very entry: never another entry, never
// outside the ring (the sanitizer build asserts on that).
TEST(SeqMapTest, NextIfStepsThroughARunAndChecksAStalePosition) {
  SeqMap<std::string> ring;
  ring.set_bound(4);
  for (uint64_t seq = 1; seq <= 4; ++seq) ring.try_emplace(seq, std::to_string(seq));
  auto cursor = ring.find(1);
  for (uint64_t seq = 2; seq <= 4; ++seq) {
    cursor = ring.next_if(cursor, seq);
    ASSERT_NE(cursor, ring.end());
    EXPECT_EQ(cursor->second, std::to_string(seq));
  }
  EXPECT_EQ(ring.next_if(cursor, 5), ring.end());  // past the newest
  EXPECT_EQ(ring.next_if(ring.find(1), 3), ring.end());  // not the next key
  // Appended after (the ring grows past its bound) and the oldest trimmed:
  // the position still names its entry.
  auto two = ring.find(2);
  ring.erase(ring.begin());
  for (uint64_t seq = 5; seq <= 12; ++seq) ring.try_emplace(seq, std::to_string(seq));
  ASSERT_NE(ring.next_if(two, 3), ring.end());
  EXPECT_EQ(ring.next_if(two, 3)->second, "3");
  // The previous entry trimmed: its position is outside the ring.
  auto gone = ring.begin();
  while (ring.begin()->first <= 4) ring.erase(ring.begin());
  EXPECT_EQ(ring.next_if(gone, 3), ring.end());
  EXPECT_EQ(ring.next_if(gone, 4), ring.end());
  // A middle insertion shifts the entries: the stale position's successor
  // holds another key, so the check fails rather than naming it.
  auto six = ring.find(6);
  ring.erase(6);
  EXPECT_EQ(ring.next_if(six, 7), ring.end());  // 8 sits there now
  ring.try_emplace(6, std::string("6"));
  ASSERT_NE(ring.next_if(six, 7), ring.end());
  EXPECT_EQ(ring.next_if(six, 7)->second, "7");
  // A cleared ring, and end() as the position before its first entry.
  auto last = ring.find(12);
  ring.clear();
  EXPECT_EQ(ring.next_if(last, 13), ring.end());
  ring.try_emplace(13, std::string("13"));
  ring.try_emplace(14, std::string("14"));
  EXPECT_EQ(ring.next_if(last, 14), ring.end());  // 13 is there
  ASSERT_NE(ring.next_if(last, 13), ring.end());
  EXPECT_EQ(ring.next_if(last, 13)->second, "13");
}

#ifndef NDEBUG
// The sanitizer build (NDEBUG off) stops at an iterator used after its
// entry was trimmed (std::map: a use after free).
TEST(SeqMapDeathTest, AnIteratorToATrimmedEntryFailsAnAssert) {
  SeqMap<std::string> ring;
  for (uint64_t seq = 1; seq <= 4; ++seq) ring.try_emplace(seq, std::to_string(seq));
  auto first = ring.begin();
  ring.erase(ring.begin());
  EXPECT_DEATH((void)first->second.size(), "outside the entries held");
}
#endif

TEST(SeqMapTest, MovedFromIsEmptyAndUsable) {
  SeqMap<std::string> ring;
  for (uint64_t seq = 1; seq <= 20; ++seq) ring.try_emplace(seq, std::to_string(seq));
  SeqMap<std::string> moved = std::move(ring);
  EXPECT_EQ(moved.size(), 20u);
  EXPECT_TRUE(ring.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(ring.begin(), ring.end());
  ring.try_emplace(3, std::string("3"));
  EXPECT_EQ(Contents(ring), (Entries{{3, "3"}}));
  SeqMap<std::string> copy = moved;
  EXPECT_EQ(Contents(copy), Contents(moved));
}

}  // namespace
}  // namespace peter::pubsub

// OriginIndex: the root's map from a publish's origin (publisher, request)
// to the number it was given, for the publishes in a topic's replay buffer
// (but a root's own numbered at once: Scribe::Stamp).
// Private to pubsub/.
#ifndef PETER_PUBSUB_ORIGIN_INDEX_H_
#define PETER_PUBSUB_ORIGIN_INDEX_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "peter/pastry/node_id.h"

namespace peter::pubsub {

using pastry::NodeId;

// The map operations Scribe uses on origins (look up, set, erase), kept as
// one run per publisher of (request, number) pairs sorted by request.
//
// A publisher's request ids ascend, and the root numbers its publishes
// in that order almost always (PublishMsg::after), so a new origin goes at
// the end of its run and the oldest one leaves from the front, as the
// replay buffer pushes its oldest message out: both ends were touched a
// moment ago or are read in sequence. A per-topic hash table (2,047 slots
// of 32 bytes for a buffer of 1,024) touched a random cold slot to look a
// new publish up, another to insert it and a third to erase the origin
// pushed out: with 100 topics most of `Scribe::ForgetOrigin`'s 8% and
// `AckIfNumbered`'s 4% of one node (docs/benchmarks.md, 14:40); and 64
// bytes per message kept, against 16 here. Requests
// out of order (a resend overtaken by its successor, a rival root's state)
// are inserted or erased in the middle of their run: a binary search and a
// move of the pairs after it, bounded by the replay buffer.
class OriginIndex {
 public:
  // The number given to `publisher`'s `request`, if held.
  std::optional<uint64_t> Find(const NodeId& publisher, uint64_t request) const {
    const Run* run = RunOf(publisher);
    if (run == nullptr) return std::nullopt;
    const size_t i = run->LowerBound(request);
    if (i == run->size() || run->at(i).first != request) return std::nullopt;
    return run->at(i).second;
  }
  bool Contains(const NodeId& publisher, uint64_t request) const {
    return Find(publisher, request).has_value();
  }

  // As map[{publisher, request}] = seq.
  void Set(const NodeId& publisher, uint64_t request, uint64_t seq) {
    Run& run = runs_[publisher];
    if (run.empty() || run.back().first < request) {
      run.pairs.emplace_back(request, seq);
      ++size_;
      return;
    }
    const size_t i = run.LowerBound(request);
    if (i != run.size() && run.at(i).first == request) {
      run.at(i).second = seq;
      return;
    }
    run.pairs.insert(run.Begin() + static_cast<std::ptrdiff_t>(i), {request, seq});
    ++size_;
  }

  // As map.erase({publisher, request}).
  void Erase(const NodeId& publisher, uint64_t request) {
    // Without a look-up in a table that has long left the cache: a root's
    // own publishes numbered at once are not indexed (Scribe::Stamp).
    if (size_ == 0) return;
    auto it = runs_.find(publisher);
    if (it == runs_.end()) return;
    Run& run = it->second;
    const size_t i = run.LowerBound(request);
    if (i == run.size() || run.at(i).first != request) return;
    --size_;
    if (run.size() == 1 && runs_.size() > kKeptEmpty) {
      runs_.erase(it);  // one of many publishers gone from the buffer
    } else if (i == 0) {
      run.PopFront();
    } else {
      run.pairs.erase(run.Begin() + static_cast<std::ptrdiff_t>(i));
    }
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Pairs the runs have room for (their vectors' capacity), for tests.
  size_t pairs_reserved() const {
    size_t n = 0;
    for (const auto& [publisher, run] : runs_) n += run.pairs.capacity();
    return n;
  }
  size_t publishers() const { return runs_.size(); }
  void clear() {
    runs_.clear();
    size_ = 0;
  }

 private:
  // Runs kept when they empty (a replay buffer of one message empties its
  // publisher's run at every publish); beyond that many publishers one
  // with nothing held is forgotten.
  static constexpr size_t kKeptEmpty = 8;
  using Pair = std::pair<uint64_t, uint64_t>;
  struct Run {
    // Sorted by request, from `head` on: the pairs before it have left
    // from the front, which moves nothing; they are dropped once they are
    // half the vector (amortised: each pair is moved once at most). A
    // vector, not a std::deque: a deque's first block is 512 bytes, a
    // topic published once (most per-user channels) holds one pair.
    std::vector<Pair> pairs;
    size_t head = 0;

    size_t size() const { return pairs.size() - head; }
    bool empty() const { return size() == 0; }
    Pair& at(size_t i) { return pairs[head + i]; }
    const Pair& at(size_t i) const { return pairs[head + i]; }
    const Pair& front() const { return pairs[head]; }
    const Pair& back() const { return pairs.back(); }
    std::vector<Pair>::iterator Begin() { return pairs.begin() + static_cast<std::ptrdiff_t>(head); }
    // A run emptied keeps a small vector for the next publish; a burst's
    // large one is given back, as is most of one a quarter full after its
    // front was dropped: a busy channel gone quiet holds no more than
    // about four times what it still has.
    void PopFront() {
      if (++head == pairs.size()) {
        pairs.clear();
        head = 0;
        if (pairs.capacity() > kKeptCapacity) std::vector<Pair>().swap(pairs);
      } else if (2 * head >= pairs.size() && head >= kDroppedAtOnce) {
        pairs.erase(pairs.begin(), Begin());
        head = 0;
        if (pairs.capacity() > kKeptCapacity && pairs.capacity() > 4 * pairs.size()) {
          pairs.shrink_to_fit();
        }
      }
    }
    // The first pair whose request is not below `request`; the ends are
    // tried first (a new publish or a resend of a recent one; the oldest,
    // pushed out of the replay buffer), without a search through the
    // run's cold middle.
    size_t LowerBound(uint64_t request) const {
      if (empty() || back().first < request) return size();
      if (back().first == request) return size() - 1;
      if (front().first >= request) return 0;
      auto it = std::lower_bound(pairs.begin() + static_cast<std::ptrdiff_t>(head), pairs.end(),
                                 request, [](const Pair& p, uint64_t r) { return p.first < r; });
      return static_cast<size_t>(it - pairs.begin()) - head;
    }
  };
  // Pairs left from a run's front that are dropped together (at least).
  static constexpr size_t kDroppedAtOnce = 32;
  // A run's capacity kept whatever it holds (1 KiB).
  static constexpr size_t kKeptCapacity = 64;
  const Run* RunOf(const NodeId& publisher) const {
    auto it = runs_.find(publisher);
    return it == runs_.end() ? nullptr : &it->second;
  }

  absl::flat_hash_map<NodeId, Run> runs_;
  size_t size_ = 0;
};

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_ORIGIN_INDEX_H_

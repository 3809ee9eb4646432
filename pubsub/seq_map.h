// SeqMap: values keyed by sequence number, in order, in a ring: a topic's
// replay buffer (TopicState::replay). Private to pubsub/.
#ifndef PETER_PUBSUB_SEQ_MAP_H_
#define PETER_PUBSUB_SEQ_MAP_H_

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <type_traits>
#include <utility>
#include <vector>

namespace peter::pubsub {

// The subset of std::map<uint64_t, V> Scribe uses, on a ring of entries
// sorted by key. The numbers a topic keeps nearly always arrive after the
// newest one held and leave from the oldest: both ends cost no allocation
// once the ring has grown, and touch the two slots next to each other
// (std::map: a tree node allocated, rebalanced and freed per message, and
// trimming the oldest walks the tree's left edge, nodes last touched a
// whole buffer of the topic's messages before: a third of one node's
// last-level cache misses with 100 topics, docs/benchmarks.md, session
// 17). A look-up is a binary search over one array. The keys need not be
// consecutive (a topic's numbers have gaps: evicted, withdrawn, merged);
// an insertion or erasure in the middle moves the entries after it (rare:
// a hand-over, a rival root's state, a withdrawn number).
//
// Iterators name an entry by its position counted since the ring began,
// so, as with std::map, appending after the newest entry and erasing the
// oldest leave the other entries' iterators valid (references too, unless
// appending grows the ring). Unlike std::map, an insertion or erasure in
// the middle shifts the entries after it: every iterator from there on
// then names another entry; and end() moves with every insertion (an
// iterator equal to end() before names the entry appended after). Code
// that calls out (a subscriber's handler may publish, and so store and
// trim) keeps what it needs of an entry, or its key, never an iterator or
// reference across the call. With NDEBUG off (the sanitizer build) an
// iterator dereferenced outside the entries held fails an assert. Growing
// and shrink() move the entries to new slots: iterators stay valid,
// references do not.
//
// REQUIRES: V is default-constructible and movable (free slots hold V{}).
template <typename V>
class SeqMap {
 public:
  using key_type = uint64_t;
  using mapped_type = V;
  using value_type = std::pair<uint64_t, V>;

  template <bool kConst>
  class Iter {
   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = SeqMap::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = std::conditional_t<kConst, const value_type*, value_type*>;
    using reference = std::conditional_t<kConst, const value_type&, value_type&>;
    using Map = std::conditional_t<kConst, const SeqMap, SeqMap>;

    Iter() = default;
    Iter(Map* map, uint64_t pos) : map_(map), pos_(pos) {}
    // iterator -> const_iterator.
    template <bool kOther, typename = std::enable_if_t<kConst && !kOther>>
    Iter(const Iter<kOther>& other) : map_(other.map_), pos_(other.pos_) {}  // NOLINT

    reference operator*() const { return map_->At(pos_); }
    pointer operator->() const { return &map_->At(pos_); }
    Iter& operator++() {
      ++pos_;
      return *this;
    }
    Iter operator++(int) {
      Iter old = *this;
      ++pos_;
      return old;
    }
    Iter& operator--() {
      --pos_;
      return *this;
    }
    Iter operator--(int) {
      Iter old = *this;
      --pos_;
      return old;
    }
    friend bool operator==(const Iter& a, const Iter& b) { return a.pos_ == b.pos_; }
    friend bool operator!=(const Iter& a, const Iter& b) { return a.pos_ != b.pos_; }

   private:
    friend class SeqMap;
    template <bool>
    friend class Iter;
    Map* map_ = nullptr;
    uint64_t pos_ = 0;  // since the ring began (see first_)
  };
  using iterator = Iter<false>;
  using const_iterator = Iter<true>;
  using reverse_iterator = std::reverse_iterator<iterator>;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  SeqMap() = default;
  // A moved-from SeqMap is empty.
  SeqMap(SeqMap&& other) noexcept
      : slots_(std::move(other.slots_)), bound_(other.bound_), head_(other.head_),
        size_(other.size_),
        first_(other.first_) {
    other.slots_.clear();
    other.head_ = 0;
    other.size_ = 0;
  }
  SeqMap& operator=(SeqMap&& other) noexcept {
    if (this == &other) return *this;
    slots_ = std::move(other.slots_);
    bound_ = other.bound_;
    head_ = other.head_;
    size_ = other.size_;
    first_ = other.first_;
    other.slots_.clear();
    other.head_ = 0;
    other.size_ = 0;
    return *this;
  }
  SeqMap(const SeqMap&) = default;
  SeqMap& operator=(const SeqMap&) = default;

  iterator begin() { return {this, first_}; }
  iterator end() { return {this, first_ + size_}; }
  const_iterator begin() const { return {this, first_}; }
  const_iterator end() const { return {this, first_ + size_}; }
  reverse_iterator rbegin() { return reverse_iterator(end()); }
  reverse_iterator rend() { return reverse_iterator(begin()); }
  const_reverse_iterator rbegin() const { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const { return const_reverse_iterator(begin()); }

  // The most entries the owner keeps (it trims the oldest beyond it), plus
  // those it adds before trimming: the ring grows to that many slots at
  // first. Entries are never refused; past it the ring doubles.
  void set_bound(size_t bound) { bound_ = bound; }

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }
  bool empty() const { return size_ == 0; }
  // Gives back slots the ring holds beyond its use: a ring that grew past
  // its bound (entries stored before the oldest were trimmed: out of
  // order, or a burst of copies) or that holds under a quarter of its
  // slots (trimmed by age or bytes) is re-packed into its bound, or twice
  // its entries if that is fewer; an empty one gives all back (clear()).
  // A ring full at its bound, or filling up, is left as it is. Returns
  // whether it re-packed. As growing, it keeps iterators valid, not
  // references.
  bool shrink() {
    if (size_ == 0) {
      if (slots_.empty()) return false;
      clear();
      return true;
    }
    const bool past_bound = bound_ != 0 && slots_.size() > bound_;
    if (!past_bound && slots_.size() <= 4 * size_) return false;
    size_t want = 2 * size_;
    if (bound_ != 0) want = std::min(want, bound_);
    want = std::max(want, size_);
    if (want >= slots_.size()) return false;
    Repack(want);
    return true;
  }
  // Also gives the ring's memory back.
  void clear() {
    first_ += size_;
    slots_ = std::vector<value_type>();
    head_ = 0;
    size_ = 0;
  }

  // Asks the processor to load, without waiting, the slots appending an
  // entry and trimming the oldest one touch: the newest entry (looked at
  // first), the free slot after it, the oldest entry and the one after it
  // (next to each other once the ring runs full at its bound). A topic
  // among many last stored a message many messages ago: those slots have
  // left the cache, and each was a load the processor waited for
  // (bench/resp-profile, 1 subscriber on 100 channels: the newest slot's
  // key was 90% of FindRecent's 4.7% of one node, docs/benchmarks.md,
  // session 23).
  void PrefetchEnds() const {
    if (size_ == 0) return;
    const value_type* slots = slots_.data();
    Prefetch(&slots[Slot(first_ + size_ - 1)]);
    Prefetch(&slots[Slot(first_ + size_)]);  // head_ when the ring is full
    Prefetch(&slots[head_]);
    if (size_ > 1) Prefetch(&slots[Slot(first_ + 1)]);
  }

  // The first entry not below `key`.
  iterator lower_bound(uint64_t key) { return {this, LowerBound(key)}; }
  const_iterator lower_bound(uint64_t key) const { return {this, LowerBound(key)}; }
  iterator find(uint64_t key) { return {this, Find(key)}; }
  const_iterator find(uint64_t key) const { return {this, Find(key)}; }
  bool contains(uint64_t key) const { return Find(key) != first_ + size_; }
  // The entry after `prev` if it is held under `key`, else end(), without a
  // search: a run of keys walked in order while the map may change between
  // steps. `prev` may be stale (the map changed since it was found: an
  // entry trimmed, inserted or erased, the ring grown or cleared): it is
  // only a position, checked against the entries held and their key before
  // it is read, so a stale one finds end() or, by its key, the very entry.
  iterator next_if(const_iterator prev, uint64_t key) {
    const uint64_t pos = prev.pos_ + 1;
    if (pos - first_ < size_ && At(pos).first == key) return {this, pos};
    return end();
  }

  // As std::map::try_emplace: inserts {key, V(args...)} unless `key` is
  // held (then `args` are left as they were); returns the entry under
  // `key` and whether it is new. After the newest entry (the common case)
  // without a search.
  template <typename... Args>
  std::pair<iterator, bool> try_emplace(uint64_t key, Args&&... args) {
    uint64_t pos = first_ + size_;
    if (size_ != 0 && At(pos - 1).first >= key) {
      pos = LowerBound(key);
      if (At(pos).first == key) return {iterator(this, pos), false};
    }
    Grow();
    ++size_;
    // Shift the entries from `pos` on one place towards the end.
    for (uint64_t p = first_ + size_ - 1; p > pos; --p) At(p) = std::move(At(p - 1));
    value_type& slot = At(pos);
    slot.first = key;
    slot.second = V(std::forward<Args>(args)...);
    return {iterator(this, pos), true};
  }
  // std::map's hinted form; the hint is not needed.
  template <typename... Args>
  iterator try_emplace(const_iterator /*hint*/, uint64_t key, Args&&... args) {
    return try_emplace(key, std::forward<Args>(args)...).first;
  }
  template <typename... Args>
  std::pair<iterator, bool> emplace(uint64_t key, Args&&... args) {
    return try_emplace(key, std::forward<Args>(args)...);
  }

  // Returns the entry after the one erased.
  iterator erase(const_iterator it) {
    const uint64_t pos = it.pos_;
    if (pos == first_) {
      At(pos) = value_type();
      ++first_;
      head_ = head_ + 1 == slots_.size() ? 0 : head_ + 1;
      --size_;
      return begin();
    }
    // Shift the entries after `pos` one place towards the front.
    const uint64_t last = first_ + size_ - 1;
    for (uint64_t p = pos; p < last; ++p) At(p) = std::move(At(p + 1));
    At(last) = value_type();
    --size_;
    return {this, pos};
  }
  iterator erase(iterator it) { return erase(const_iterator(it)); }
  size_t erase(uint64_t key) {
    const uint64_t pos = Find(key);
    if (pos == first_ + size_) return 0;
    erase(const_iterator(this, pos));
    return 1;
  }

 private:
  value_type& At(uint64_t pos) {
    assert(pos - first_ < size_ && "SeqMap: an iterator outside the entries held");
    return slots_[Slot(pos)];
  }
  const value_type& At(uint64_t pos) const {
    assert(pos - first_ < size_ && "SeqMap: an iterator outside the entries held");
    return slots_[Slot(pos)];
  }
  // An entry may straddle two cache lines: both are asked for.
  static void Prefetch(const value_type* entry) {
    __builtin_prefetch(entry, 1);
    __builtin_prefetch(reinterpret_cast<const char*>(entry + 1) - 1, 1);
  }
  size_t Slot(uint64_t pos) const {
    const size_t slot = head_ + static_cast<size_t>(pos - first_);
    return slot >= slots_.size() ? slot - slots_.size() : slot;
  }

  uint64_t LowerBound(uint64_t key) const {
    uint64_t lo = first_;
    uint64_t hi = first_ + size_;
    if (size_ == 0 || At(hi - 1).first < key) return hi;
    while (lo < hi) {
      const uint64_t mid = lo + (hi - lo) / 2;
      if (At(mid).first < key) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  }
  uint64_t Find(uint64_t key) const {
    const uint64_t pos = LowerBound(key);
    return pos != first_ + size_ && At(pos).first == key ? pos : first_ + size_;
  }

  // Room for one more entry: the ring doubles, but up to the size its
  // owner keeps it at (set_bound) only: a ring then runs full, and the
  // slot an entry is stored in is the one the entry trimmed last freed,
  // next to the one it trims now (a ring with room to spare writes slots
  // untouched for as long as it has spare ones: cache misses).
  void Grow() {
    if (size_ < slots_.size()) return;
    // From one slot: most topics of a Redis application's per-user
    // channels are published once (eight slots were 512 bytes of a replay
    // buffer a topic never filled; a busy topic grows three times more).
    size_t grown_size = slots_.empty() ? 1 : 2 * slots_.size();
    if (size_ < bound_) grown_size = std::min(grown_size, bound_);
    Repack(grown_size);
  }
  // The entries moved, oldest first, into `slots` slots.
  // REQUIRES: slots >= size().
  void Repack(size_t slots) {
    std::vector<value_type> packed(slots);
    for (size_t i = 0; i < size_; ++i) packed[i] = std::move(At(first_ + i));
    slots_ = std::move(packed);
    head_ = 0;
  }

  std::vector<value_type> slots_;
  size_t bound_ = 0;
  size_t head_ = 0;     // the slot of the oldest entry
  size_t size_ = 0;
  uint64_t first_ = 0;  // the oldest entry's position since the ring began
};

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_SEQ_MAP_H_

// RootCache: the publisher's side's cache of each topic's root (the node
// that acknowledged its last publish), least recently used first out.
// Private to pubsub/.
#ifndef PETER_PUBSUB_ROOT_CACHE_H_
#define PETER_PUBSUB_ROOT_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "pubsub/messages.h"

namespace peter::pubsub {

// At most `capacity` roots (0: nothing is cached), each in a slot of one
// array, linked in the order of use; a hash map finds a topic's slot.
// Caching the root of a topic not held at capacity takes the least
// recently used slot: constant time. (Before, an ordered map with a time
// of last use per entry was scanned whole for the oldest: with
// root_cache_size 1,024 and a new topic per publish, a third of one
// node's time, docs/benchmarks.md, session 19.) Looked up only, never
// iterated in hash order, so what Scribe sends does not depend on the
// hash seed.
class RootCache {
 public:
  explicit RootCache(size_t capacity) : capacity_(capacity) {}

  // `topic`'s cached root, marked as the most recently used; nullptr if none.
  // The pointer lasts until the next Put or Erase.
  const NodeHandle* Use(const TopicId& topic) {
    auto it = index_.find(topic);
    if (it == index_.end()) return nullptr;
    MoveToFront(it->second);
    return &slots_[it->second].root;
  }
  // As Use, without marking it used.
  const NodeHandle* Peek(const TopicId& topic) const {
    auto it = index_.find(topic);
    return it == index_.end() ? nullptr : &slots_[it->second].root;
  }

  // Caches `root` as `topic`'s, the most recently used; at capacity, the
  // least recently used topic's root is forgotten to make room.
  void Put(const TopicId& topic, const NodeHandle& root) {
    if (capacity_ == 0) return;
    if (auto it = index_.find(topic); it != index_.end()) {
      slots_[it->second].root = root;
      MoveToFront(it->second);
      return;
    }
    uint32_t slot;
    if (slots_.size() < capacity_) {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.push_back(Slot{topic, root});
    } else if (free_ != kNone) {
      slot = free_;
      free_ = slots_[slot].next;
      slots_[slot].topic = topic;
      slots_[slot].root = root;
    } else {
      slot = oldest_;
      Unlink(slot);
      index_.erase(slots_[slot].topic);
      slots_[slot].topic = topic;
      slots_[slot].root = root;
    }
    index_.emplace(topic, slot);
    LinkFront(slot);
  }

  // Forgets `topic`'s root if it is `root` (a cached root that did not
  // answer).
  void EraseIf(const TopicId& topic, const NodeHandle& root) {
    auto it = index_.find(topic);
    if (it == index_.end() || !(slots_[it->second].root == root)) return;
    const uint32_t slot = it->second;
    index_.erase(it);
    Unlink(slot);
    slots_[slot].next = free_;
    free_ = slot;
  }

  size_t size() const { return index_.size(); }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  struct Slot {
    TopicId topic;
    NodeHandle root;
    uint32_t newer = kNone;  // toward newest_
    uint32_t next = kNone;   // toward oldest_; in the free list, the next free slot
  };

  void Unlink(uint32_t slot) {
    Slot& s = slots_[slot];
    if (s.newer != kNone) slots_[s.newer].next = s.next; else newest_ = s.next;
    if (s.next != kNone) slots_[s.next].newer = s.newer; else oldest_ = s.newer;
    s.newer = s.next = kNone;
  }
  void LinkFront(uint32_t slot) {
    Slot& s = slots_[slot];
    s.newer = kNone;
    s.next = newest_;
    if (newest_ != kNone) slots_[newest_].newer = slot; else oldest_ = slot;
    newest_ = slot;
  }
  void MoveToFront(uint32_t slot) {
    if (slot == newest_) return;
    Unlink(slot);
    LinkFront(slot);
  }

  size_t capacity_;
  std::vector<Slot> slots_;
  absl::flat_hash_map<TopicId, uint32_t> index_;
  uint32_t newest_ = kNone;
  uint32_t oldest_ = kNone;
  uint32_t free_ = kNone;  // slots emptied by EraseIf
};

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_ROOT_CACHE_H_

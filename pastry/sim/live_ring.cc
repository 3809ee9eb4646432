#include "pastry/sim/live_ring.h"

#include <algorithm>
#include <iterator>

namespace peter::pastry::sim {

bool LiveRing::Insert(const NodeId& id, int index) {
  return ids_.emplace(id, index).second;
}

bool LiveRing::Erase(const NodeId& id) { return ids_.erase(id) > 0; }

std::optional<int> LiveRing::Closest(const NodeId& key) const {
  if (ids_.empty()) return std::nullopt;
  // The closest member is the first at or clockwise of the key, or the last
  // counter-clockwise of it (both with wrap-around).
  auto succ = ids_.lower_bound(key);
  if (succ == ids_.end()) succ = ids_.begin();
  auto pred = succ == ids_.begin() ? std::prev(ids_.end()) : std::prev(succ);
  return NodeId::CloserTo(key, pred->first, succ->first) ? pred->second
                                                         : succ->second;
}

ExpectedLeaves LiveRing::LeafSet(const NodeId& self, int leaf_set_size) const {
  ExpectedLeaves out;
  int others = size() - (Contains(self) ? 1 : 0);
  int half = std::min(leaf_set_size / 2, others);
  if (half == 0) return out;
  out.left.reserve(half);
  out.right.reserve(half);
  // Clockwise: members after self.
  auto it = ids_.upper_bound(self);
  while (static_cast<int>(out.right.size()) < half) {
    if (it == ids_.end()) it = ids_.begin();
    out.right.push_back(it->first);
    ++it;
  }
  // Counter-clockwise: members before self.
  auto rit = std::make_reverse_iterator(ids_.lower_bound(self));
  while (static_cast<int>(out.left.size()) < half) {
    if (rit == ids_.rend()) rit = ids_.rbegin();
    out.left.push_back(rit->first);
    ++rit;
  }
  return out;
}

}  // namespace peter::pastry::sim

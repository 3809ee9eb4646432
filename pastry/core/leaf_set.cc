#include "pastry/core/leaf_set.h"

#include <algorithm>
#include <cassert>

namespace peter::pastry {
namespace {

// Distance from self to `id` going the way this half goes.
NodeId SideDistance(const NodeId& self, const NodeId& id, bool clockwise) {
  return clockwise ? NodeId::ClockwiseDistance(self, id)
                   : NodeId::ClockwiseDistance(id, self);
}

}  // namespace

LeafSet::LeafSet(const NodeId& self, int size)
    : self_(self), half_(static_cast<size_t>(size / 2)) {
  assert(size >= 2 && size % 2 == 0);
  left_.reserve(half_ + 1);
  right_.reserve(half_ + 1);
}

std::vector<NodeHandle> LeafSet::Members() const {
  std::vector<NodeHandle> out = left_;
  for (const NodeHandle& n : right_) {
    if (std::none_of(left_.begin(), left_.end(),
                     [&](const NodeHandle& l) { return l.id == n.id; })) {
      out.push_back(n);
    }
  }
  return out;
}

const NodeHandle* LeafSet::Find(const NodeId& id) const {
  for (const auto* half : {&left_, &right_}) {
    for (const NodeHandle& n : *half) {
      if (n.id == id) return &n;
    }
  }
  return nullptr;
}

bool LeafSet::Contains(const NodeId& id) const { return Find(id) != nullptr; }

bool LeafSet::HalfAccepts(const std::vector<NodeHandle>& half, const NodeId& id,
                          bool clockwise) const {
  if (id == self_) return false;
  for (const NodeHandle& n : half) {
    if (n.id == id) return false;
  }
  if (half.size() < half_) return true;
  return SideDistance(self_, id, clockwise) <
         SideDistance(self_, half.back().id, clockwise);
}

bool LeafSet::WouldAccept(const NodeId& id) const {
  return HalfAccepts(left_, id, false) || HalfAccepts(right_, id, true);
}

bool LeafSet::InsertHalf(std::vector<NodeHandle>& half, const NodeHandle& node,
                         bool clockwise, std::vector<NodeHandle>* evicted) {
  for (NodeHandle& n : half) {
    if (n.id == node.id) {
      // Never back to an earlier run, nor to an unknown one on the same
      // endpoint; a later run (restarted) replaces the handle.
      if (NewerIncarnation(n.incarnation, node.incarnation)) return false;
      if (n.endpoint == node.endpoint &&
          (n.incarnation == node.incarnation || node.incarnation == 0)) {
        return false;
      }
      n = node;
      return true;
    }
  }
  if (!HalfAccepts(half, node.id, clockwise)) return false;
  NodeId d = SideDistance(self_, node.id, clockwise);
  auto pos = std::find_if(half.begin(), half.end(), [&](const NodeHandle& n) {
    return d < SideDistance(self_, n.id, clockwise);
  });
  half.insert(pos, node);
  if (half.size() > half_) {
    NodeHandle out = half.back();
    half.pop_back();
    if (evicted != nullptr && !Contains(out.id)) evicted->push_back(out);
  }
  return true;
}

bool LeafSet::Insert(const NodeHandle& node, std::vector<NodeHandle>* evicted) {
  if (node.id == self_) return false;
  bool changed = InsertHalf(left_, node, false, evicted);
  changed |= InsertHalf(right_, node, true, evicted);
  if (changed) BumpVersion();
  return changed;
}

bool LeafSet::Remove(const NodeId& id) {
  auto pred = [&](const NodeHandle& n) { return n.id == id; };
  size_t before = left_.size() + right_.size();
  std::erase_if(left_, pred);
  std::erase_if(right_, pred);
  if (left_.size() + right_.size() == before) return false;
  BumpVersion();
  return true;
}

bool LeafSet::Full() const {
  if (left_.size() < half_ || right_.size() < half_) return false;
  // Halves that meet or overlap (going clockwise from self, the far end of
  // the left half comes no later than the far end of the right half) hold
  // the whole ring: e.g. a ring of at most L nodes.
  return NodeId::ClockwiseDistance(self_, left_.back().id) >
         NodeId::ClockwiseDistance(self_, right_.back().id);
}

bool LeafSet::InRange(const NodeId& key) const {
  if (!Full()) return true;
  const NodeId& leftmost = left_.back().id;
  const NodeId& rightmost = right_.back().id;
  return NodeId::ClockwiseDistance(leftmost, key) <=
         NodeId::ClockwiseDistance(leftmost, rightmost);
}

std::optional<NodeHandle> LeafSet::Closest(
    const NodeId& key, const std::function<bool(const NodeId&)>& skip) const {
  std::optional<NodeHandle> best;
  NodeId best_id = self_;
  for (const auto* half : {&left_, &right_}) {
    for (const NodeHandle& n : *half) {
      if (skip && skip(n.id)) continue;
      if (NodeId::CloserTo(key, n.id, best_id)) {
        best = n;
        best_id = n.id;
      }
    }
  }
  return best;
}

std::vector<NodeHandle> LeafSet::ReplicaSet(const NodeId& key, int k,
                                            const NodeHandle& self_handle) const {
  std::vector<NodeHandle> all = Members();
  all.push_back(self_handle);
  std::sort(all.begin(), all.end(), [&](const NodeHandle& a, const NodeHandle& b) {
    return NodeId::CloserTo(key, a.id, b.id);
  });
  if (k >= 0 && static_cast<size_t>(k) < all.size()) all.resize(k);
  return all;
}

}  // namespace peter::pastry

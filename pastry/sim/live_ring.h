// Ground truth for tests: the ids of the live ring members, kept sorted so
// that "who is the root of this key" and "what should this node's leaf set
// be" take O(log N) and O(log N + L) rather than a scan of every node.
#ifndef PETER_PASTRY_SIM_LIVE_RING_H_
#define PETER_PASTRY_SIM_LIVE_RING_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/btree_map.h"
#include "peter/pastry/node_id.h"

namespace peter::pastry::sim {

// The leaf set a node should have, nearest first on each side: `left` walks
// counter-clockwise (smaller ids), `right` clockwise (larger ids), each
// holding min(L/2, N-1) ids for N members. In a ring of fewer than L+1
// members the halves overlap and a node appears on both sides, as in
// pastry::LeafSet. A ring of one gives two empty halves.
struct ExpectedLeaves {
  std::vector<NodeId> left;
  std::vector<NodeId> right;
};

class LiveRing {
 public:
  // Returns false if `id` is already a member.
  bool Insert(const NodeId& id, int index);
  // Returns false if `id` is not a member.
  bool Erase(const NodeId& id);
  bool Contains(const NodeId& id) const { return ids_.contains(id); }
  int size() const { return static_cast<int>(ids_.size()); }

  // The index of the member numerically closest to `key` (ties broken by
  // NodeId::CloserTo), or nullopt if the ring is empty.
  std::optional<int> Closest(const NodeId& key) const;
  // The expected leaf set of `self` (a member or not; self is never listed)
  // for leaf-set size `leaf_set_size`. REQUIRES: leaf_set_size even, >= 2.
  ExpectedLeaves LeafSet(const NodeId& self, int leaf_set_size) const;

  // Members in increasing id order.
  const absl::btree_map<NodeId, int>& members() const { return ids_; }

 private:
  absl::btree_map<NodeId, int> ids_;
};

}  // namespace peter::pastry::sim

#endif  // PETER_PASTRY_SIM_LIVE_RING_H_

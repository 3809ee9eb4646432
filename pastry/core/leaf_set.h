// The leaf set: the L/2 nodes with the next smaller ids (left, counter-
// clockwise) and the L/2 with the next larger ids (right, clockwise).
//
// In a ring of fewer than L+1 nodes the halves overlap: a node can be in both,
// and a half that is not full means this node knows the whole ring.
// Not thread-safe; lives on the node's thread.
#ifndef PETER_PASTRY_CORE_LEAF_SET_H_
#define PETER_PASTRY_CORE_LEAF_SET_H_

#include <functional>
#include <optional>
#include <vector>

#include "peter/pastry/node_handle.h"
#include "peter/pastry/node_id.h"

namespace peter::pastry {

class LeafSet {
 public:
  // REQUIRES: size even and >= 2.
  LeafSet(const NodeId& self, int size);

  int capacity() const { return half_ * 2; }
  const NodeId& self() const { return self_; }

  // Nearest first.
  const std::vector<NodeHandle>& left() const { return left_; }
  const std::vector<NodeHandle>& right() const { return right_; }

  // Distinct members of both halves, in no particular order.
  std::vector<NodeHandle> Members() const;
  size_t size() const { return Members().size(); }
  bool empty() const { return left_.empty() && right_.empty(); }
  bool Contains(const NodeId& id) const;
  const NodeHandle* Find(const NodeId& id) const;

  // True if inserting `id` would change the set.
  bool WouldAccept(const NodeId& id) const;
  // Inserts `node` where it belongs; returns true if the set changed (a new
  // member, or a new endpoint for a member). Nodes pushed out are appended
  // to `evicted` when given.
  bool Insert(const NodeHandle& node, std::vector<NodeHandle>* evicted = nullptr);
  // Removes `id` from both halves; returns true if it was a member.
  bool Remove(const NodeId& id);

  // True when both halves are full and do not meet, i.e. this node does not
  // know the whole ring and keys outside [leftmost, rightmost] are routed
  // elsewhere. False in a ring of at most L nodes, whose halves overlap.
  bool Full() const;
  // True if `key` is within the range covered by the leaf set (always true
  // when the set is not Full()).
  bool InRange(const NodeId& key) const;

  // The member (or self, whose handle is not stored: nullopt) numerically
  // closest to `key`, skipping members for which `skip` returns true.
  std::optional<NodeHandle> Closest(
      const NodeId& key,
      const std::function<bool(const NodeId&)>& skip = nullptr) const;

  // Up to k nodes closest to `key` among self and the members, closest first.
  // Self is represented by `self_handle`.
  std::vector<NodeHandle> ReplicaSet(const NodeId& key, int k,
                                     const NodeHandle& self_handle) const;

  // Changes whenever a member is added or removed or changes endpoint;
  // peers compare it to skip resending an unchanged leaf set. The owner sets
  // a random starting value so that a restarted node's versions do not
  // repeat its previous life's.
  uint64_t version() const { return version_; }
  void set_version(uint64_t v) { version_ = v; }

 private:
  // Steps the version through a full-period LCG: no repeats for 2^64 steps.
  void BumpVersion() {
    version_ = version_ * 6364136223846793005ULL + 1442695040888963407ULL;
  }

  // Inserts into one half kept sorted by `dist` (nearest first).
  bool InsertHalf(std::vector<NodeHandle>& half, const NodeHandle& node,
                  bool clockwise, std::vector<NodeHandle>* evicted);
  bool HalfAccepts(const std::vector<NodeHandle>& half, const NodeId& id,
                   bool clockwise) const;

  NodeId self_;
  size_t half_;
  std::vector<NodeHandle> left_;
  std::vector<NodeHandle> right_;
  uint64_t version_ = 0;
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_CORE_LEAF_SET_H_

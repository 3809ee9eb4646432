// The Pastry routing table: 128/b rows of 2^b columns. The entry at row r,
// column c is a node whose id shares the first r digits with ours and whose
// digit r is c. Where several nodes qualify, the one with the smallest
// measured round-trip time is kept (proximity neighbour selection).
//
// Rows are allocated only when first used: in a ring of N nodes only about
// log_{2^b} N rows have entries. Not thread-safe; lives on the node's thread.
#ifndef PETER_PASTRY_CORE_ROUTING_TABLE_H_
#define PETER_PASTRY_CORE_ROUTING_TABLE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "peter/pastry/node_handle.h"
#include "peter/pastry/node_id.h"

namespace peter::pastry {

class RoutingTable {
 public:
  struct Entry {
    NodeHandle node;
    int32_t rtt_us = -1;  // measured round trip, -1 if not measured yet
    // The node's endpoint and incarnation are the ones it sent us itself
    // (in a message of its own), not a third node's copy of its handle.
    bool first_hand = false;
  };

  enum class Outcome {
    kInserted,    // the slot was empty
    kReplaced,    // the candidate is nearer than the previous entry
    kUpdated,     // the same node: endpoint or round trip refreshed
    kRejected,    // the slot holds a nearer (or equally unknown) node
    kNeedsProbe,  // the slot is taken and the candidate's round trip is
                  // unknown: measure it, then offer it again
    kSelf,        // the candidate is this node
  };

  // REQUIRES: b in {1, 2, 4, 8}.
  RoutingTable(const NodeId& self, int b);

  int rows() const { return NodeId::kBits / b_; }
  int cols() const { return 1 << b_; }
  int b() const { return b_; }

  // The slot `id` belongs in. REQUIRES: id != self.
  std::pair<int, int> SlotOf(const NodeId& id) const;

  const Entry* Get(int row, int col) const;
  // The entry in the slot that `id` would occupy, if it is `id` itself.
  const Entry* Find(const NodeId& id) const;

  // Offers `node` for its slot; `rtt_us` < 0 means unknown. `first_hand`:
  // `node` is the sender of a message we received (see Entry::first_hand).
  // A second-hand copy never changes the handle of an entry known first-hand.
  Outcome Consider(const NodeHandle& node, int32_t rtt_us = -1, bool first_hand = false);
  // Records a measured round trip for `id` if it is in the table.
  void SetRtt(const NodeId& id, int32_t rtt_us);
  // Removes `id`; returns its former slot if it was present.
  std::optional<std::pair<int, int>> Remove(const NodeId& id);

  // The entries of row `row`.
  std::vector<NodeHandle> Row(int row) const;
  // The number of rows that hold at least one entry plus leading empty rows,
  // i.e. one past the last non-empty row.
  int UsedRows() const;
  size_t EntryCount() const { return count_; }

  void ForEach(const std::function<void(int row, int col, const Entry&)>& fn) const;

 private:
  NodeId self_;
  int b_;
  // rows_[r] is empty until row r receives its first entry.
  std::vector<std::vector<std::optional<Entry>>> rows_;
  size_t count_ = 0;
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_CORE_ROUTING_TABLE_H_

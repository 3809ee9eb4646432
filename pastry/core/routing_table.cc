#include "pastry/core/routing_table.h"

#include <cassert>

namespace peter::pastry {

RoutingTable::RoutingTable(const NodeId& self, int b) : self_(self), b_(b) {
  assert(b == 1 || b == 2 || b == 4 || b == 8);
  rows_.resize(rows());
}

std::pair<int, int> RoutingTable::SlotOf(const NodeId& id) const {
  int row = self_.SharedPrefixLength(id, b_);
  assert(row < rows());
  return {row, id.Digit(row, b_)};
}

const RoutingTable::Entry* RoutingTable::Get(int row, int col) const {
  if (row < 0 || row >= rows() || rows_[row].empty()) return nullptr;
  const auto& slot = rows_[row][col];
  return slot.has_value() ? &*slot : nullptr;
}

const RoutingTable::Entry* RoutingTable::Find(const NodeId& id) const {
  if (id == self_) return nullptr;
  auto [row, col] = SlotOf(id);
  const Entry* e = Get(row, col);
  return (e != nullptr && e->node.id == id) ? e : nullptr;
}

RoutingTable::Outcome RoutingTable::Consider(const NodeHandle& node, int32_t rtt_us,
                                             bool first_hand) {
  if (node.id == self_) return Outcome::kSelf;
  auto [row, col] = SlotOf(node.id);
  auto& r = rows_[row];
  if (r.empty()) r.resize(cols());
  auto& slot = r[col];
  if (!slot.has_value()) {
    slot = Entry{node, rtt_us, first_hand};
    ++count_;
    return Outcome::kInserted;
  }
  if (slot->node.id == node.id) {
    if (first_hand) {
      // The node itself (the core drops messages of earlier runs first).
      slot->node = node;
      slot->first_hand = true;
    } else if (!slot->first_hand &&
               !NewerIncarnation(slot->node.incarnation, node.incarnation)) {
      // Second-hand news may name an earlier run of the entry (keep ours),
      // and never overrides what the node told us itself.
      slot->node.endpoint = node.endpoint;
      if (node.incarnation != 0) slot->node.incarnation = node.incarnation;
    }
    if (rtt_us >= 0) slot->rtt_us = rtt_us;
    return Outcome::kUpdated;
  }
  if (rtt_us < 0) return Outcome::kNeedsProbe;
  if (slot->rtt_us < 0 || rtt_us < slot->rtt_us) {
    slot = Entry{node, rtt_us, first_hand};
    return Outcome::kReplaced;
  }
  return Outcome::kRejected;
}

void RoutingTable::SetRtt(const NodeId& id, int32_t rtt_us) {
  if (id == self_) return;
  auto [row, col] = SlotOf(id);
  if (rows_[row].empty()) return;
  auto& slot = rows_[row][col];
  if (slot.has_value() && slot->node.id == id) slot->rtt_us = rtt_us;
}

std::optional<std::pair<int, int>> RoutingTable::Remove(const NodeId& id) {
  if (id == self_) return std::nullopt;
  auto [row, col] = SlotOf(id);
  if (rows_[row].empty()) return std::nullopt;
  auto& slot = rows_[row][col];
  if (!slot.has_value() || slot->node.id != id) return std::nullopt;
  slot.reset();
  --count_;
  return std::make_pair(row, col);
}

std::vector<NodeHandle> RoutingTable::Row(int row) const {
  std::vector<NodeHandle> out;
  if (row < 0 || row >= rows()) return out;
  for (const auto& slot : rows_[row]) {
    if (slot.has_value()) out.push_back(slot->node);
  }
  return out;
}

int RoutingTable::UsedRows() const {
  for (int r = rows() - 1; r >= 0; --r) {
    for (const auto& slot : rows_[r]) {
      if (slot.has_value()) return r + 1;
    }
  }
  return 0;
}

void RoutingTable::ForEach(
    const std::function<void(int, int, const Entry&)>& fn) const {
  for (int r = 0; r < rows(); ++r) {
    for (size_t c = 0; c < rows_[r].size(); ++c) {
      if (rows_[r][c].has_value()) fn(r, static_cast<int>(c), *rows_[r][c]);
    }
  }
}

}  // namespace peter::pastry

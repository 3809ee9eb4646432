#include "pastry/core/router.h"

namespace peter::pastry {
namespace {

bool Skipped(const std::function<bool(const NodeId&)>& skip, const NodeId& id) {
  return skip && skip(id);
}

// The rare case: any known node with a prefix at least `min_prefix` long that
// is closer to the key than self; longest prefix first, then closest.
std::optional<NodeHandle> RareCase(const LeafSet& leaf_set, const RoutingTable& table,
                                   const NodeId& key, int min_prefix,
                                   const std::function<bool(const NodeId&)>& skip) {
  const NodeId& self = leaf_set.self();
  const int b = table.b();
  std::optional<NodeHandle> best;
  int best_prefix = -1;
  auto offer = [&](const NodeHandle& n) {
    if (Skipped(skip, n.id)) return;
    if (!NodeId::CloserTo(key, n.id, self)) return;
    int prefix = n.id.SharedPrefixLength(key, b);
    if (prefix < min_prefix) return;
    if (!best || prefix > best_prefix ||
        (prefix == best_prefix && NodeId::CloserTo(key, n.id, best->id))) {
      best = n;
      best_prefix = prefix;
    }
  };
  for (const NodeHandle& n : leaf_set.left()) offer(n);
  for (const NodeHandle& n : leaf_set.right()) offer(n);
  table.ForEach([&](int, int, const RoutingTable::Entry& e) { offer(e.node); });
  return best;
}

}  // namespace

std::optional<NodeHandle> NextHop(const LeafSet& leaf_set, const RoutingTable& table,
                                  const NodeId& key,
                                  const std::function<bool(const NodeId&)>& skip) {
  const NodeId& self = leaf_set.self();
  if (key == self) return std::nullopt;
  if (leaf_set.InRange(key)) return leaf_set.Closest(key, skip);

  const int prefix = self.SharedPrefixLength(key, table.b());
  const RoutingTable::Entry* entry = table.Get(prefix, key.Digit(prefix, table.b()));
  if (entry != nullptr && !Skipped(skip, entry->node.id)) return entry->node;

  // Nothing with as long a prefix is closer: as far as we know, we are the
  // root (Pastry's rare case ends here too).
  return RareCase(leaf_set, table, key, prefix, skip);
}

}  // namespace peter::pastry

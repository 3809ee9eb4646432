// The Pastry routing decision (Rowstron & Druschel, section 2.2), as a pure
// function of the node's state so it can be tested on its own.
#ifndef PETER_PASTRY_CORE_ROUTER_H_
#define PETER_PASTRY_CORE_ROUTER_H_

#include <functional>
#include <optional>

#include "pastry/core/leaf_set.h"
#include "pastry/core/routing_table.h"
#include "peter/pastry/node_handle.h"

namespace peter::pastry {

// Returns the next hop for `key`, or nullopt if this node is the key's root
// as far as it knows. Nodes for which `skip` returns true (suspected dead,
// already tried) are never chosen. Every hop returned is strictly closer to
// the key than self, by longer shared prefix or, at equal prefix, by numeric
// distance, so routes cannot loop.
//   1. key within the leaf set's range: the numerically closest leaf, or self;
//   2. otherwise the routing-table entry sharing one more digit with the key;
//   3. otherwise (rare) any known node sharing at least as long a prefix with
//      the key and numerically closer to it than self.
std::optional<NodeHandle> NextHop(
    const LeafSet& leaf_set, const RoutingTable& table, const NodeId& key,
    const std::function<bool(const NodeId&)>& skip = nullptr);

}  // namespace peter::pastry

#endif  // PETER_PASTRY_CORE_ROUTER_H_

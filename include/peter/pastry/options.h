// Tunables of the Pastry overlay. Defaults suit a data-centre cluster:
// round trips of a millisecond or less, failures repaired within seconds.
#ifndef PETER_PASTRY_OPTIONS_H_
#define PETER_PASTRY_OPTIONS_H_

#include <cstddef>

#include "absl/time/time.h"

namespace peter::pastry {

struct Options {
  // Bits per digit. 128 / b rows of 2^b columns in the routing table.
  // Must be 1, 2, 4 or 8.
  int b = 4;
  // Leaf-set size L: L/2 nearest ids on each side. Must be even, >= 2.
  int leaf_set_size = 16;

  // Every interval each node probes its nearest left neighbour (MSPastry's
  // heartbeat), which also exchanges leaf sets that changed; other members
  // are probed on suspicion (see docs/design.md, "Liveness").
  absl::Duration leaf_probe_interval = absl::Seconds(1);
  // A probe unanswered for max(probe_timeout, 3 x measured round trip) is
  // retried; after `probe_retries` retries the peer is declared dead. A
  // failed node's right neighbour (which knows its round trip) therefore
  // detects it within about leaf_probe_interval + (probe_retries + 1) *
  // probe_timeout; the rest of its leaf set confirms it with probes of its
  // own about one round trip later. A peer never measured gets doubling
  // timeouts (300 ms, 600 ms, 1.2 s), so round trips of up to about a second
  // are not mistaken for death.
  absl::Duration probe_timeout = absl::Milliseconds(300);
  int probe_retries = 2;

  // A routed message not acknowledged by its next hop within this time is
  // rerouted through another node; after `max_reroutes` it is dropped.
  absl::Duration hop_ack_timeout = absl::Milliseconds(300);
  int max_reroutes = 4;

  // Every interval, ask a random entry of each row for its copy of that row
  // (periodic routing-table maintenance, Pastry section 2.4 / MSPastry).
  absl::Duration routing_maintenance_interval = absl::Seconds(20);

  // A joining node retries its join if it is not active after this long.
  absl::Duration join_timeout = absl::Seconds(3);
  // Messages an inactive (joining) node holds until it may act as root.
  size_t max_join_buffer = 1024;

  // Nodes declared dead are ignored when heard of second-hand for this long
  // (a message from the node itself always counts).
  absl::Duration dead_node_memory = absl::Seconds(30);
  // Most nodes remembered as dead at once. Beyond it a node declared dead
  // (or announcing its departure) is still removed from the tables but not
  // remembered, so second-hand news of it gets it probed again; counted
  // (NodeStats::dead_node_overflows). Peers can make us declare ids dead
  // (a Leave names its sender), so this must be bounded.
  size_t max_dead_nodes = 65536;
  // Most peers with liveness state (a probe in flight or a measured round
  // trip) outside the leaf set and routing table. Beyond it, candidates
  // heard of second-hand are not probed (NodeStats::candidate_probe_overflows);
  // probes of leaf-set and routing-table members are never refused. Peers
  // hand us candidates in leaf sets and table rows, so this must be bounded.
  size_t max_tracked_peers = 4096;

  // Candidates for an occupied routing-table slot probed per tick to compare
  // round-trip times (proximity neighbour selection). 0 disables PNS probes.
  int pns_probes_per_tick = 8;
  // Proximity neighbour selection: a routing-table slot keeps the candidate
  // with the smallest measured round trip. When false, a slot keeps the
  // first candidate it received until that node is removed (used by
  // `peter sim route --pns off` to measure what PNS buys).
  bool proximity_neighbour_selection = true;

  // Routing-table repair: lazy repair of a slot whose node died, and the
  // periodic maintenance above. False freezes the routing table except for
  // removing dead nodes and admitting nodes that contact us (the "without
  // repair" phase of the Pastry paper's failure experiment). Leaf-set
  // maintenance is unaffected.
  bool routing_table_repair = true;

  // Upper bound on routed messages awaiting a per-hop acknowledgement: a peer
  // must not make us hold unbounded state. At the bound a new hop is still
  // tracked; the tracked hop with the earliest deadline of all times out at
  // once instead (its next hop is suspected and the message rerouted, as at
  // its deadline), and the rerouted copy goes untracked (tracking it would
  // take the slot back). Counted (NodeStats::pending_ack_overflows, also in
  // reroutes); docs/limits.md.
  size_t max_pending_acks = 65536;
  // Upper bound on the hops awaiting an acknowledgement from one next hop,
  // so that one slow or silent peer cannot take the whole max_pending_acks
  // (sends to every other peer would go untracked). At the bound, the hop
  // with the earliest deadline times out at once (its next hop is suspected
  // and the message rerouted, as at its deadline) and the overflow is
  // counted (NodeStats::hops_in_flight_overflows). Must be at least 1.
  size_t max_hops_in_flight_per_peer = 16384;
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_OPTIONS_H_

// Counters kept by the overlay core. Plain integers on the node's thread;
// the runtime exports them (Prometheus /metrics) and the simulator sums them.
#ifndef PETER_PASTRY_CORE_STATS_H_
#define PETER_PASTRY_CORE_STATS_H_

#include <array>
#include <cstdint>

#include "pastry/core/messages.h"

namespace peter::pastry {

struct NodeStats {
  static constexpr int kMaxHops = 64;

  std::array<uint64_t, kMessageTypeCount> messages_sent{};
  std::array<uint64_t, kMessageTypeCount> messages_received{};

  // Bad or unwanted input, dropped.
  uint64_t dropped_bad_version = 0;    // protocol version not understood
  uint64_t dropped_unknown_app = 0;    // no application registered for it
  uint64_t dropped_malformed = 0;      // semantically invalid message
  uint64_t dropped_after_leave = 0;    // arrived after Leave()
  uint64_t dropped_stale_incarnation = 0;  // from a run of a node since restarted

  // Routing.
  uint64_t routes_originated = 0;
  uint64_t routes_forwarded = 0;
  uint64_t routes_delivered = 0;
  uint64_t routes_consumed = 0;        // an application's Forward stopped it
  uint64_t hop_ack_timeouts = 0;
  uint64_t reroutes = 0;
  uint64_t routes_dropped = 0;         // no live next hop after max_reroutes
  // Hops timed out before their deadline because Options::max_pending_acks
  // awaited acknowledgement (also in reroutes, not in hop_ack_timeouts; the
  // rerouted copy goes untracked).
  uint64_t pending_ack_overflows = 0;
  // Hops timed out before their deadline because their next hop had
  // Options::max_hops_in_flight_per_peer unacknowledged (also in reroutes,
  // not in hop_ack_timeouts).
  uint64_t hops_in_flight_overflows = 0;
  std::array<uint64_t, kMaxHops + 1> delivered_hops{};  // last bucket: more

  // Liveness and repair.
  uint64_t probes_sent = 0;
  uint64_t probe_timeouts = 0;
  uint64_t failures_detected = 0;      // peers declared dead
  uint64_t leaf_set_repairs = 0;       // leaf-set requests after a failure
  uint64_t table_repairs = 0;          // row requests after a failure
  uint64_t table_maintenance_rounds = 0;
  uint64_t pns_probes = 0;
  // Probes of a later run of a known node that a third node named, to hear
  // it from the node itself (Node::ProbeHearsay).
  uint64_t hearsay_probes = 0;
  // Probes of nodes declared dead that would be in the leaf set, in case
  // they are alive after all (a cut that healed; Node::ProbeDeclaredDead).
  uint64_t revival_probes = 0;
  uint64_t leaves_received = 0;
  // Bounds (Options::max_dead_nodes, max_tracked_peers) reached.
  uint64_t dead_node_overflows = 0;       // deaths not remembered
  uint64_t candidate_probe_overflows = 0; // candidates not probed

  // Joining.
  uint64_t joins_completed = 0;
  uint64_t join_retries = 0;
  uint64_t join_buffer_overflows = 0;
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_CORE_STATS_H_

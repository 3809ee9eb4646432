#include "tools/admin/metrics_text.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "pastry/core/messages.h"
#include "pastry/core/stats.h"

namespace peter::tools::admin {
namespace {

using pastry::kMessageTypeCount;
using pastry::NodeStats;

// Appends metric families to a string. Debian's Abseil has its own
// string_view, so names go through std::string before StrAppend.
class Writer {
 public:
  void Family(const std::string& name, const std::string& type,
              const std::string& help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ",
                    type, "\n");
  }
  void Sample(const std::string& name, const std::string& labels, double value) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : "{", labels,
                    labels.empty() ? "" : "}", " ", value, "\n");
  }
  void Sample(const std::string& name, const std::string& labels, uint64_t value) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : "{", labels,
                    labels.empty() ? "" : "}", " ", value, "\n");
  }
  // A family with one unlabelled sample.
  void Single(const std::string& name, const std::string& type,
              const std::string& help, uint64_t value) {
    Family(name, type, help);
    Sample(name, "", value);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string Label(std::string_view key, std::string_view value) {
  return absl::StrCat(std::string(key), "=\"", std::string(value), "\"");
}

// The name of message type `index`, as pastry::MessageTypeName gives it.
template <size_t... I>
std::array<std::string, kMessageTypeCount> TypeNames(std::index_sequence<I...>) {
  return {std::string(pastry::MessageTypeName(
      pastry::MessageBody(std::in_place_index<I>)))...};
}
const std::array<std::string, kMessageTypeCount>& MessageTypes() {
  static const auto* names = new std::array<std::string, kMessageTypeCount>(
      TypeNames(std::make_index_sequence<kMessageTypeCount>()));
  return *names;
}

void ByType(Writer& w, const std::string& name, const std::string& help,
            const std::array<uint64_t, kMessageTypeCount>& counts) {
  w.Family(name, "counter", help);
  for (int t = 0; t < kMessageTypeCount; ++t) {
    w.Sample(name, Label("type", MessageTypes()[t]), counts[t]);
  }
}

void ByReason(Writer& w, const std::string& name, const std::string& help,
              std::initializer_list<std::pair<std::string_view, uint64_t>> counts) {
  w.Family(name, "counter", help);
  for (const auto& [reason, count] : counts) {
    w.Sample(name, Label("reason", reason), count);
  }
}

// delivered_hops[h] counts routes delivered after h hops; the last entry
// counts kMaxHops or more (taken as kMaxHops in the sum).
void HopsHistogram(Writer& w, const NodeStats& stats) {
  const std::string name = "peter_route_hops";
  w.Family(name, "histogram",
           "Hops taken by routed messages delivered at this node (it was the "
           "key's root).");
  uint64_t count = 0;
  uint64_t sum = 0;
  size_t bucket = 0;
  for (int h = 0; h <= NodeStats::kMaxHops; ++h) {
    while (bucket < std::size(kHopBuckets) && kHopBuckets[bucket] < h) {
      w.Sample(name + "_bucket", Label("le", std::to_string(kHopBuckets[bucket])), count);
      ++bucket;
    }
    count += stats.delivered_hops[h];
    sum += stats.delivered_hops[h] * static_cast<uint64_t>(h);
  }
  for (; bucket < std::size(kHopBuckets); ++bucket) {
    w.Sample(name + "_bucket", Label("le", std::to_string(kHopBuckets[bucket])), count);
  }
  w.Sample(name + "_bucket", Label("le", "+Inf"), count);
  w.Sample(name + "_sum", "", sum);
  w.Sample(name + "_count", "", count);
}

void Messages(Writer& w, const pastry::net::NodeSnapshot& s) {
  ByType(w, "peter_messages_sent_total",
         "Messages the overlay core sent, by type.", s.stats.messages_sent);
  ByType(w, "peter_messages_received_total",
         "Messages the overlay core received and handled, by type.",
         s.stats.messages_received);
  ByType(w, "peter_frames_sent_total",
         "Frames written to TCP connections, by message type.",
         s.transport.frames_sent);
  ByType(w, "peter_bytes_sent_total",
         "Bytes written to TCP connections (framing included), by message type.",
         s.transport.bytes_sent);
  ByType(w, "peter_frames_received_total",
         "Frames read from TCP connections and decoded, by message type.",
         s.transport.frames_received);
  ByType(w, "peter_bytes_received_total",
         "Bytes read from TCP connections (framing included), by message type.",
         s.transport.bytes_received);
  ByReason(w, "peter_frames_dropped_total",
           "Frames from peers dropped by the transport, by reason.",
           {{"decode", s.transport.frames_dropped_decode},
            {"oversize", s.transport.frames_dropped_oversize},
            {"unknown_type", s.transport.frames_dropped_unknown_type},
            {"old_version", s.transport.frames_dropped_old_version}});
  ByReason(w, "peter_messages_dropped_total",
           "Decoded messages the overlay core dropped, by reason.",
           {{"bad_version", s.stats.dropped_bad_version},
            {"unknown_app", s.stats.dropped_unknown_app},
            {"malformed", s.stats.dropped_malformed},
            {"after_leave", s.stats.dropped_after_leave},
            {"stale_incarnation", s.stats.dropped_stale_incarnation}});
  w.Single("peter_send_queue_overflows_total", "counter",
           "Outgoing messages dropped because the peer's send queue was full.",
           s.transport.queue_overflows);
  w.Single("peter_send_queue_global_overflows_total", "counter",
           "Outgoing messages dropped because the send queues of all peers "
           "together held max_total_send_queue_bytes.",
           s.transport.global_queue_overflows);
  w.Single("peter_receive_overflows_total", "counter",
           "Connections closed because the frames still arriving on all "
           "connections together passed max_total_receive_bytes.",
           s.transport.receive_overflows);
  w.Single("peter_send_backoff_drops_total", "counter",
           "Outgoing messages dropped because the peer was unreachable and in "
           "reconnect backoff.",
           s.transport.dropped_backoff);
}

void Auth(Writer& w, const pastry::net::TransportStats& t) {
  const std::string name = "peter_auth_failures_total";
  w.Family(name, "counter",
           "Peers refused by authentication (TLS, cluster key, certified id), by reason.");
  for (size_t i = 0; i < t.auth_failures.size(); ++i) {
    w.Sample(name, Label("reason", pastry::net::kAuthFailureNames[i]), t.auth_failures[i]);
  }
}

void Routing(Writer& w, const NodeStats& st) {
  HopsHistogram(w, st);
  w.Single("peter_routes_originated_total", "counter",
           "Routed messages (lookups, joins, application messages) started here.",
           st.routes_originated);
  w.Single("peter_routes_forwarded_total", "counter",
           "Routed messages forwarded to a next hop.", st.routes_forwarded);
  w.Single("peter_routes_delivered_total", "counter",
           "Routed messages delivered here as the key's root.", st.routes_delivered);
  w.Single("peter_routes_consumed_total", "counter",
           "Routed messages an application stopped while forwarding.",
           st.routes_consumed);
  w.Single("peter_hop_ack_timeouts_total", "counter",
           "Hops not acknowledged by the next node in time.", st.hop_ack_timeouts);
  w.Single("peter_reroutes_total", "counter",
           "Messages resent through another node after a hop timed out.",
           st.reroutes);
  w.Single("peter_routes_dropped_total", "counter",
           "Routed messages given up: no live next hop after the reroute limit, "
           "or a looping route cut.",
           st.routes_dropped);
  w.Single("peter_pending_ack_overflows_total", "counter",
           "Hops timed out early (rerouted untracked) because max_pending_acks awaited "
           "acknowledgement.",
           st.pending_ack_overflows);
  w.Single("peter_hops_in_flight_overflows_total", "counter",
           "Hops timed out early because max_hops_in_flight_per_peer awaited "
           "acknowledgement from their next node.",
           st.hops_in_flight_overflows);
}

void Maintenance(Writer& w, const NodeStats& st) {
  w.Single("peter_probes_sent_total", "counter",
           "Liveness probes sent to leaf-set members and candidates.",
           st.probes_sent);
  w.Single("peter_probe_timeouts_total", "counter",
           "Probes that got no reply in time.", st.probe_timeouts);
  w.Single("peter_failures_detected_total", "counter",
           "Peers declared dead after unanswered probes.", st.failures_detected);
  w.Single("peter_leaf_set_repairs_total", "counter",
           "Leaf-set repair requests sent after a member failed.",
           st.leaf_set_repairs);
  w.Single("peter_table_repairs_total", "counter",
           "Routing-table row requests sent after an entry failed.",
           st.table_repairs);
  w.Single("peter_table_maintenance_rounds_total", "counter",
           "Periodic routing-table maintenance rounds.",
           st.table_maintenance_rounds);
  w.Single("peter_pns_probes_total", "counter",
           "Probes measuring round trips for proximity neighbour selection.",
           st.pns_probes);
  w.Single("peter_hearsay_probes_total", "counter",
           "Probes of a later run of a known peer that a third node named.",
           st.hearsay_probes);
  w.Single("peter_revival_probes_total", "counter",
           "Probes of peers declared dead that would be in the leaf set, in case they are "
           "alive after all.",
           st.revival_probes);
  w.Single("peter_leaves_received_total", "counter",
           "Graceful departures announced by peers.", st.leaves_received);
  w.Single("peter_joins_completed_total", "counter",
           "Joins of this node that completed (0 or 1 per process).",
           st.joins_completed);
  w.Single("peter_join_retries_total", "counter",
           "Join requests resent after a timeout.", st.join_retries);
  w.Single("peter_dead_node_overflows_total", "counter",
           "Nodes declared dead but not remembered: max_dead_nodes reached.",
           st.dead_node_overflows);
  w.Single("peter_candidate_probe_overflows_total", "counter",
           "Candidate nodes not probed: max_tracked_peers peers already tracked.",
           st.candidate_probe_overflows);
  w.Single("peter_join_buffer_overflows_total", "counter",
           "Messages dropped while joining because the hold buffer was full.",
           st.join_buffer_overflows);
}

void Connections(Writer& w, const pastry::net::TransportStats& t) {
  w.Single("peter_connections_opened_total", "counter",
           "Outgoing TCP connections established.", t.connections_opened);
  w.Single("peter_connections_accepted_total", "counter",
           "Incoming TCP connections accepted.", t.connections_accepted);
  w.Single("peter_connections_closed_total", "counter",
           "TCP connections closed, for any reason.", t.connections_closed);
  w.Single("peter_connect_failures_total", "counter",
           "Outgoing connection attempts that failed or timed out.",
           t.connect_failures);
  w.Single("peter_connections_rejected_total", "counter",
           "Incoming TCP connections closed at once: max_connections open, or the "
           "slots left are reserved for outgoing connections.",
           t.connections_rejected);
  w.Single("peter_connections_evicted_total", "counter",
           "Least recently used idle connections closed to open an outgoing one at "
           "max_connections.",
           t.connections_evicted);
  w.Single("peter_outgoing_connections_refused_total", "counter",
           "Outgoing connections not opened (the message dropped): max_connections open, "
           "none idle.",
           t.outgoing_refused);
  w.Single("peter_send_stalls_total", "counter",
           "Connections closed because the peer took none of the frames queued for it "
           "within send_stall_timeout (60 s).",
           t.send_stalls);
  w.Single("peter_pending_connections_evicted_total", "counter",
           "Incoming connections that had sent nothing yet, closed (the oldest) for a new "
           "one: max_pending_incoming of them open.",
           t.pending_evicted);
  w.Single("peter_pending_connection_timeouts_total", "counter",
           "Incoming connections closed because they sent no frame within pending_timeout.",
           t.pending_timeouts);
  w.Single("peter_connections_open", "gauge", "TCP connections open now.",
           t.connections_open);
  w.Single("peter_send_queue_bytes", "gauge",
           "Bytes queued for sending on all connections now.", t.send_queue_bytes);
  w.Single("peter_frame_writes_total", "counter",
           "Gathered writes of queued frames to TCP connections (frames sent over this: "
           "frames per write).",
           t.frame_writes);
  w.Single("peter_frame_reads_total", "counter",
           "Reads from TCP connections to peers that returned bytes (frames received over this: "
           "frames per read).",
           t.frame_reads);
}

void State(Writer& w, const pastry::net::NodeSnapshot& s) {
  w.Single("peter_active", "gauge",
           "1 once the node has joined and may act as a key's root.",
           s.active ? 1 : 0);
  w.Single("peter_leaf_set_entries", "gauge",
           "Entries in the leaf set (a node in both halves counts twice).",
           s.leaf_set.size());
  w.Single("peter_routing_table_entries", "gauge",
           "Occupied routing-table slots.", s.routing_table.size());
  w.Family("peter_uptime_seconds", "gauge", "Seconds since the node started.");
  w.Sample("peter_uptime_seconds", "", absl::ToDoubleSeconds(s.uptime));
}

// One kind of Scribe list (docs/scribe.md): the messages sent carrying
// several `what` for one node, as peter_pubsub_KIND_lists_sent_total, and the
// `what` in them, as peter_pubsub_KINDs_listed_total.
void Lists(Writer& w, const char* kind, const char* what, uint64_t lists, uint64_t listed) {
  w.Single(absl::StrCat("peter_pubsub_", kind, "_lists_sent_total"), "counter",
           absl::StrCat("Messages sent here carrying several ", what, " for one node."),
           lists);
  w.Single(absl::StrCat("peter_pubsub_", kind, "s_listed_total"), "counter",
           absl::StrCat("The ", what, " sent here inside those lists."), listed);
}

void PubSub(Writer& w, const PubSubStats& p) {
  w.Single("peter_pubsub_topics", "gauge", "Topics with multicast-tree state here.", p.topics);
  w.Single("peter_pubsub_roots", "gauge", "Topics this node is the root of.", p.roots);
  w.Single("peter_pubsub_children", "gauge", "Children over all topics' trees.", p.children);
  w.Single("peter_pubsub_subscriptions", "gauge", "Live local subscriptions.",
           p.subscriptions);
  w.Single("peter_pubsub_published_total", "counter",
           "Messages stamped with a sequence number here as a topic's root.", p.published);
  w.Single("peter_pubsub_forwarded_total", "counter",
           "Message copies sent to children.", p.forwarded);
  w.Single("peter_pubsub_delivered_total", "counter",
           "Messages handed to local subscriptions.", p.delivered);
  w.Single("peter_pubsub_duplicates_total", "counter",
           "Message copies dropped as already seen.", p.duplicates);
  w.Single("peter_pubsub_gaps_repaired_total", "counter",
           "Missing sequence numbers that arrived later (gap repair or reordering).",
           p.gaps_repaired);
  w.Single("peter_pubsub_gaps_skipped_total", "counter",
           "Sequence numbers given up (best-effort subscribers).", p.gaps_skipped);
  w.Single("peter_pubsub_slow_consumer_drops_total", "counter",
           "Messages dropped because a subscription's handler fell behind.",
           p.slow_consumer_drops);
  w.Single("peter_pubsub_malformed_total", "counter",
           "Pub/sub messages from peers that failed to decode.", p.malformed);
  w.Single("peter_pubsub_publish_timeouts_total", "counter",
           "Publishes from here that no root confirmed in time.", p.publish_timeouts);
  w.Single("peter_pubsub_publish_acks_waiting_replicas_total", "counter",
           "Publish confirmations held here as root until every replica held the message.",
           p.publish_acks_waiting_replicas);
  w.Single("peter_pubsub_publish_acks_unconfirmed_total", "counter",
           "Publish confirmations sent before every replica held the message "
           "(more than replay_capacity waiting on a topic).",
           p.publish_acks_unconfirmed);
  w.Single("peter_pubsub_lease_waits_total", "counter",
           "Publishes held here as root for lack of a root lease from its replica set "
           "(lone_root_waits included).",
           p.lease_waits);
  w.Single("peter_pubsub_lone_root_waits_total", "counter",
           "Publishes held here as root after it lost every leaf-set neighbour "
           "(within lone_root_grace).",
           p.lone_root_waits);
  w.Single("peter_pubsub_replica_conflicts_total", "counter",
           "Root copies not confirmed here as replica: another root gave their numbers.",
           p.replica_conflicts);
  w.Single("peter_pubsub_replica_tentative_replaced_total", "counter",
           "Tentative copies held here as replica replaced by a message a root released "
           "under the same number.",
           p.replica_tentative_replaced);
  w.Single("peter_pubsub_numbers_withdrawn_total", "counter",
           "Numbers given here as root, never multicast, taken back: another root gave them.",
           p.numbers_withdrawn);
  w.Single("peter_pubsub_publishes_held_for_order_total", "counter",
           "Publishes held here as root until their publisher's previous publish was numbered.",
           p.publishes_held_for_order);
  w.Single("peter_pubsub_publishes_order_forced_total", "counter",
           "Publishes numbered here as root before their publisher's previous publish "
           "(publish_order_wait passed, or max_reorder waiting): that order was given up.",
           p.publishes_order_forced);
  w.Single("peter_pubsub_publishes_held_for_window_total", "counter",
           "Publishes held here as root while the topic's replica window (numbers waiting "
           "for their replicas) was full.",
           p.publishes_held_for_window);
  w.Single("peter_pubsub_publishes_window_forced_total", "counter",
           "Held publishes numbered here as root past a full replica window: "
           "max_pending_publishes were held on the topic.",
           p.publishes_window_forced);
  w.Single("peter_pubsub_replay_bytes", "gauge",
           "Message bytes kept now for gap repair and failover: replay buffers and "
           "replicas' copies.",
           p.replay_bytes);
  w.Single("peter_pubsub_replay_evicted_for_bytes_total", "counter",
           "Messages dropped early from a replay buffer or a replica's copies: "
           "max_replay_bytes was passed.",
           p.replay_evicted_for_bytes);
  w.Single("peter_pubsub_leases_refused_total", "counter",
           "Root leases refused here as replica: max_lease_grants others still running.",
           p.leases_refused);
  w.Single("peter_pubsub_replica_states_sent_total", "counter",
           "Replica states sent here to a root numbering behind this replica.",
           p.replica_states_sent);
  w.Single("peter_pubsub_replica_sends_limited_total", "counter",
           "Replica states not sent to a root behind this replica: one went to it within "
           "replica_resend_interval.",
           p.replica_sends_limited);
  w.Single("peter_pubsub_replica_acks_ignored_total", "counter",
           "Replica confirmations and leases ignored here as root: from a node outside the "
           "topic's replica set.",
           p.replica_acks_ignored);
  w.Single("peter_pubsub_bundles_sent_total", "counter",
           "Payloads sent here carrying several Scribe messages for one node (bundles).",
           p.bundles_sent);
  w.Single("peter_pubsub_bundled_messages_total", "counter",
           "Scribe messages sent here inside bundles.", p.bundled_messages);
  Lists(w, "replicate", "Replicates", p.replicate_lists_sent, p.replicates_listed);
  Lists(w, "replica_ack", "ReplicaAcks", p.replica_ack_lists_sent, p.replica_acks_listed);
  Lists(w, "message", "publishes, data and PublishAcks", p.message_lists_sent,
        p.messages_listed);
  w.Single("peter_pubsub_message_runs_sent_total", "counter",
           "Runs of one topic's consecutive publishes, data or PublishAcks sent here as one "
           "list entry.",
           p.message_runs_sent);
  w.Single("peter_pubsub_messages_in_runs_total", "counter",
           "The publishes, data and PublishAcks sent here inside those runs.",
           p.messages_in_runs);
  w.Single("peter_pubsub_anycasts_accepted_total", "counter",
           "Anycasts taken by a local subscription.", p.anycasts_accepted);
  w.Single("peter_pubsub_anycasts_failed_total", "counter",
           "Anycasts from here that no subscriber took.", p.anycasts_failed);
  w.Single("peter_pubsub_pushdowns_total", "counter",
           "Children moved under a sibling because this node was full.", p.pushdowns);
  w.Single("peter_pubsub_pushdowns_limited_total", "counter",
           "Push-downs of the joiner instead of a farther child: max_moving_children "
           "children of the topic were being moved already.",
           p.pushdowns_limited);
  w.Single("peter_pubsub_topics_refused_total", "counter",
           "Topic tree state or replicas refused: max_topics reached.", p.topics_refused);
  w.Single("peter_pubsub_topics_forgotten_total", "counter",
           "Topics a root forgot after topic_idle_timeout without subscribers, children or "
           "publishes.",
           p.topics_forgotten);
  w.Single("peter_pubsub_joins_refused_total", "counter",
           "Joins refused (NACK): max_children reached and no sibling to push the child to.",
           p.joins_refused);
  w.Single("peter_pubsub_messages_dropped_total", "counter",
           "Well-formed pub/sub messages from peers dropped: no state for their topic, "
           "a bound full (publishes held by a fresh root beyond max_reorder), or stale.",
           p.messages_dropped);
  for (const PubSubCounterField& f : kPubSubCounterFields) {
    w.Single(absl::StrCat("peter_pubsub_", f.name, "_total"), "counter", f.help,
             p.counters.*f.value);
  }
}

// One family per field of the gateway's own table, so a counter added to
// GatewayStats is exported without another list here.
void Gateway(Writer& w, const resp::GatewayStats& g) {
  for (const resp::GatewayStatField& f : resp::kGatewayStatFields) {
    w.Single(absl::StrCat("peter_resp_", f.name, f.gauge ? "" : "_total"),
             f.gauge ? "gauge" : "counter", f.help, g.*f.value);
  }
}

}  // namespace

std::string MetricsText(const pastry::net::NodeSnapshot& snapshot,
                        const std::optional<PubSubStats>& pubsub,
                        const std::optional<resp::GatewayStats>& gateway) {
  Writer w;
  Messages(w, snapshot);
  Routing(w, snapshot.stats);
  Maintenance(w, snapshot.stats);
  Connections(w, snapshot.transport);
  Auth(w, snapshot.transport);
  State(w, snapshot);
  if (pubsub.has_value()) PubSub(w, *pubsub);
  if (gateway.has_value()) Gateway(w, *gateway);
  return w.Take();
}

std::string AdminMetricsText(uint64_t queue_full_waits, uint64_t bodies_refused) {
  Writer w;
  w.Single("peter_admin_queue_full_waits_total", "counter",
           "Times the admin endpoint's accept loop waited: every worker busy and "
           "the connection queue full.",
           queue_full_waits);
  w.Single("peter_admin_bodies_refused_total", "counter",
           "Admin requests refused (413) because their body was over the limit.",
           bodies_refused);
  return w.Take();
}

}  // namespace peter::tools::admin

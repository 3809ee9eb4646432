#include "tools/admin/status_json.h"

#include <array>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace peter::tools::admin {
namespace {

using nlohmann::json;

json HandleJson(const pastry::NodeHandle& node) {
  return json{{"id", node.id.ToHex()}, {"addr", node.endpoint.ToString()}};
}

uint64_t Sum(const std::array<uint64_t, pastry::kMessageTypeCount>& counts) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  return total;
}

json AuthFailuresJson(const pastry::net::TransportStats& t) {
  json out = json::object();
  for (size_t i = 0; i < t.auth_failures.size(); ++i) {
    out[std::string(pastry::net::kAuthFailureNames[i])] = t.auth_failures[i];
  }
  return out;
}

// The overlay core's bounds reached (docs/limits.md), as the transport's
// "dropped" beside them. pending_ack_overflow and hops_in_flight_overflow
// drop nothing: they count hops timed out early and rerouted at
// max_pending_acks and max_hops_in_flight_per_peer; their names are kept
// for the consumers of /status (docs/operations.md, "The admin endpoint").
json OverlayJson(const pastry::NodeStats& s) {
  return json{
      {"dropped",
       {{"join_buffer_overflow", s.join_buffer_overflows},
        {"pending_ack_overflow", s.pending_ack_overflows},
        {"hops_in_flight_overflow", s.hops_in_flight_overflows},
        {"candidate_probe_overflow", s.candidate_probe_overflows},
        {"dead_node_overflow", s.dead_node_overflows}}},
  };
}

}  // namespace

json TransportJson(const pastry::net::TransportStats& t) {
  return json{
      {"connections_open", t.connections_open},
      {"connections_opened", t.connections_opened},
      {"connections_accepted", t.connections_accepted},
      {"connections_closed", t.connections_closed},
      {"connect_failures", t.connect_failures},
      {"connections_rejected", t.connections_rejected},
      {"connections_evicted", t.connections_evicted},
      {"outgoing_refused", t.outgoing_refused},
      {"send_stalls", t.send_stalls},
      {"pending_evicted", t.pending_evicted},
      {"pending_timeouts", t.pending_timeouts},
      {"frames_sent", Sum(t.frames_sent)},
      {"bytes_sent", Sum(t.bytes_sent)},
      {"frames_received", Sum(t.frames_received)},
      {"bytes_received", Sum(t.bytes_received)},
      {"send_queue_bytes", t.send_queue_bytes},
      {"dropped",
       {{"decode", t.frames_dropped_decode},
        {"oversize", t.frames_dropped_oversize},
        {"unknown_type", t.frames_dropped_unknown_type},
        {"old_version", t.frames_dropped_old_version},
        {"queue_overflow", t.queue_overflows},
        {"global_queue_overflow", t.global_queue_overflows},
        {"receive_overflow", t.receive_overflows},
        {"backoff", t.dropped_backoff}}},
      {"auth_failures", AuthFailuresJson(t)},
  };
}

json PubSubJson(const PubSubStats& s) {
  json out = json{
      {"topics", s.topics},
      {"roots", s.roots},
      {"children", s.children},
      {"subscriptions", s.subscriptions},
      {"published", s.published},
      {"forwarded", s.forwarded},
      {"delivered", s.delivered},
      {"duplicates", s.duplicates},
      {"gaps_repaired", s.gaps_repaired},
      {"gaps_skipped", s.gaps_skipped},
      {"slow_consumer_drops", s.slow_consumer_drops},
      {"malformed", s.malformed},
      {"publish_timeouts", s.publish_timeouts},
      {"publish_acks_waiting_replicas", s.publish_acks_waiting_replicas},
      {"publish_acks_unconfirmed", s.publish_acks_unconfirmed},
      {"lease_waits", s.lease_waits},
      {"lone_root_waits", s.lone_root_waits},
      {"replica_conflicts", s.replica_conflicts},
      {"replica_tentative_replaced", s.replica_tentative_replaced},
      {"numbers_withdrawn", s.numbers_withdrawn},
      {"publishes_held_for_order", s.publishes_held_for_order},
      {"publishes_order_forced", s.publishes_order_forced},
      {"publishes_held_for_window", s.publishes_held_for_window},
      {"publishes_window_forced", s.publishes_window_forced},
      {"replay_bytes", s.replay_bytes},
      {"replay_evicted_for_bytes", s.replay_evicted_for_bytes},
      {"leases_refused", s.leases_refused},
      {"replica_states_sent", s.replica_states_sent},
      {"replica_sends_limited", s.replica_sends_limited},
      {"replica_acks_ignored", s.replica_acks_ignored},
      {"bundles_sent", s.bundles_sent},
      {"bundled_messages", s.bundled_messages},
      {"replicate_lists_sent", s.replicate_lists_sent},
      {"replicates_listed", s.replicates_listed},
      {"replica_ack_lists_sent", s.replica_ack_lists_sent},
      {"replica_acks_listed", s.replica_acks_listed},
      {"message_lists_sent", s.message_lists_sent},
      {"messages_listed", s.messages_listed},
      {"message_runs_sent", s.message_runs_sent},
      {"messages_in_runs", s.messages_in_runs},
      {"anycasts_accepted", s.anycasts_accepted},
      {"anycasts_failed", s.anycasts_failed},
      {"pushdowns", s.pushdowns},
      {"pushdowns_limited", s.pushdowns_limited},
      {"topics_refused", s.topics_refused},
      {"topics_forgotten", s.topics_forgotten},
      {"joins_refused", s.joins_refused},
      {"messages_dropped", s.messages_dropped},
  };
  for (const PubSubCounterField& f : kPubSubCounterFields) out[f.name] = s.counters.*f.value;
  return out;
}

json TopicJson(const TopicStatus& t) {
  return json{
      {"id", t.id_hex},
      {"name", t.name},
      {"root", t.is_root},
      {"attached", t.attached},
      {"parent", t.parent_id_hex.empty() ? json(nullptr) : json(t.parent_id_hex)},
      {"children", t.children},
      {"next_seq", t.next_seq},
      {"last_seq", t.last_seq},
      {"local_subscriptions", t.local_subscriptions},
  };
}

json StatusJson(const pastry::net::NodeSnapshot& snapshot,
                const std::optional<PubSubStats>& pubsub,
                const std::vector<TopicStatus>& topics) {
  json leaves = json::array();
  for (const pastry::NodeHandle& leaf : snapshot.leaf_set) {
    leaves.push_back(HandleJson(leaf));
  }
  json table = json::array();
  for (const auto& entry : snapshot.routing_table) {
    json row = HandleJson(entry.node);
    row["row"] = entry.row;
    row["col"] = entry.col;
    row["rtt_ms"] = entry.rtt_us < 0 ? json(nullptr) : json(entry.rtt_us / 1000.0);
    table.push_back(std::move(row));
  }
  json status{
      {"id", snapshot.self.id.ToHex()},
      {"listen", snapshot.self.endpoint.ToString()},
      {"active", snapshot.active},
      {"leaf_set", std::move(leaves)},
      {"routing_table", std::move(table)},
      {"uptime_s", absl::ToInt64Seconds(snapshot.uptime)},
      {"overlay", OverlayJson(snapshot.stats)},
      {"transport", TransportJson(snapshot.transport)},
  };
  if (pubsub.has_value()) {
    json p = PubSubJson(*pubsub);
    json list = json::array();
    for (const TopicStatus& t : topics) list.push_back(TopicJson(t));
    p["topic_list"] = std::move(list);
    status["pubsub"] = std::move(p);
  }
  return status;
}

json RouteJson(const pastry::NodeId& key, const pastry::Node::LookupResult& result) {
  json path = json::array();
  for (const pastry::NodeId& id : result.path) path.push_back(id.ToHex());
  return json{
      {"key", key.ToHex()},
      {"root", HandleJson(result.root)},
      {"hops", result.hops},
      {"path", std::move(path)},
  };
}

json ErrorJson(std::string_view message) {
  return json{{"error", std::string(message)}};
}

}  // namespace peter::tools::admin

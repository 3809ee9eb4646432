// JSON documents of the admin endpoint (GET /status, GET /route), rendered
// from plain values so they can be tested without a running node.
#ifndef PETER_TOOLS_ADMIN_STATUS_JSON_H_
#define PETER_TOOLS_ADMIN_STATUS_JSON_H_

#include <string_view>

#include <optional>
#include <vector>

#include "nlohmann/json.hpp"
#include "peter/node.h"
#include "pastry/core/node.h"
#include "pastry/net/node_runtime.h"
#include "peter/pastry/node_id.h"

namespace peter::tools::admin {

// {"id", "listen", "active", "leaf_set": [{"id", "addr"}...] (the left
// half nearest first, then the right half, as in NodeSnapshot; in a ring of
// at most L nodes a node can appear in both), "routing_table": [{"row",
// "col", "id", "addr", "rtt_ms"}...] (rtt_ms null when not measured),
// "uptime_s", "transport": TransportJson}.
// With `pubsub`, a "pubsub" object: the counters and "topic_list" (`topics`).
nlohmann::json StatusJson(const pastry::net::NodeSnapshot& snapshot,
                          const std::optional<PubSubStats>& pubsub = std::nullopt,
                          const std::vector<TopicStatus>& topics = {});

// The transport's counters, message types summed: {"connections_open",
// "connections_opened", "connections_accepted", "connections_closed",
// "connect_failures", "connections_rejected", "frames_sent", "bytes_sent",
// "frames_received", "bytes_received", "send_queue_bytes", "dropped":
// {"decode", "oversize", "unknown_type", "old_version", "queue_overflow",
// "global_queue_overflow", "receive_overflow", "backoff"}}.
nlohmann::json TransportJson(const pastry::net::TransportStats& transport);

// {"key", "root": {"id", "addr"}, "hops", "path": [ids...]}.
nlohmann::json RouteJson(const pastry::NodeId& key,
                         const pastry::Node::LookupResult& result);

// {"error": message}.
nlohmann::json ErrorJson(std::string_view message);

}  // namespace peter::tools::admin

#endif  // PETER_TOOLS_ADMIN_STATUS_JSON_H_

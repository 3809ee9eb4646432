// The Prometheus text exposition (format 0.0.4) of a node's counters, for
// GET /metrics. Every name starts with `peter_`; docs/operations.md says
// what each one means.
#ifndef PETER_TOOLS_ADMIN_METRICS_TEXT_H_
#define PETER_TOOLS_ADMIN_METRICS_TEXT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "pastry/net/node_runtime.h"
#include "peter/node.h"
#include "pubsub/resp/gateway.h"

namespace peter::tools::admin {

// The Content-Type of MetricsText's output.
inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Renders every metric family with its # HELP and # TYPE lines.
// With `pubsub`, the peter_pubsub_* families too; with `gateway` (the
// node's Redis gateway), the peter_resp_* ones.
std::string MetricsText(const pastry::net::NodeSnapshot& snapshot,
                        const std::optional<PubSubStats>& pubsub = std::nullopt,
                        const std::optional<resp::GatewayStats>& gateway = std::nullopt);

// The admin endpoint's own limits (AdminServer): times its accept loop
// waited for a free worker, and request bodies refused for their size.
std::string AdminMetricsText(uint64_t queue_full_waits, uint64_t bodies_refused);

// The upper bounds (le) of the routing-hops histogram's finite buckets.
// Hop counts are integers, so bucket le=k counts routes of at most k hops.
inline constexpr int kHopBuckets[] = {0, 1, 2, 3, 4, 5, 6, 8, 10, 16, 32};

}  // namespace peter::tools::admin

#endif  // PETER_TOOLS_ADMIN_METRICS_TEXT_H_

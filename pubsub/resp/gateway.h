// A Redis pub/sub server (RESP2 and RESP3 over TCP) in front of a Backend:
// every Peter node can serve Redis clients, and a message published through
// any node's gateway reaches the subscribers of every gateway in the cluster.
// docs/resp.md lists the commands and where the gateway departs from Redis.
//
// Threading: the gateway runs on the backend's own event loop when the
// backend offers one (Backend::loop(): `peter node --resp` runs it on the
// node's network thread), with no hand-off between threads; otherwise, or
// with GatewayOptions::own_thread, on an event-loop thread of its own
// (Asio), and Backend callbacks, from any thread, are handed to that loop.
// Start, Stop and port may be called from any one thread; stats (atomic
// counters) from any thread.
//
// Lifetime: the Backend must outlive the gateway. Stop (also run by the
// destructor) closes every client, destroys every backend subscription and
// joins the thread (on the backend's loop: waits for the loop to have
// done so); backend callbacks still in flight are then ignored. If the
// backend's loop was stopped (io_context::stop, or run() returned) and not
// destroyed, it runs no handler, so Stop does the loop's part on the
// calling thread: the loop's threads must then have left run(), and the
// loop must not run again once the gateway is destroyed (handlers of the
// gateway's cancelled operations are left in it).
#ifndef PETER_PUBSUB_RESP_GATEWAY_H_
#define PETER_PUBSUB_RESP_GATEWAY_H_

#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pubsub/resp/backend.h"
#include "pubsub/resp/request_parser.h"

namespace spdlog {
class logger;
}

namespace peter::resp {

struct GatewayOptions {
  // Run on a thread of its own even if the backend offers its loop: every
  // message and publish answer then crosses between the two threads (on
  // one node, 1 subscriber on 1 channel: about 16,700 instructions and 18
  // mutex locks per message instead of 13,000 and 2, docs/benchmarks.md),
  // but the gateway's work (parsing, replies, fan-out to clients) can run
  // on another core than the overlay's.
  bool own_thread = false;
  std::string listen_host = "127.0.0.1";  // numeric address or "localhost"
  uint16_t listen_port = 0;               // 0: any free port (see port())
  std::string requirepass;                // empty: no AUTH needed (Redis default)
  std::string redis_version = "7.0.15";   // reported by HELLO and INFO
  ParserLimits parser;
  size_t max_clients = 10000;             // more are refused with Redis's error
  // Channels, patterns and shard channels one client may hold together
  // (Redis has no such limit; every distinct one is a topic on the node).
  // A SUBSCRIBE that would pass it fails as a whole with an error.
  size_t max_subscriptions_per_client = 10000;
  // Patterns (with the nodes announcing them) this node believes held in
  // the cluster. An announcement that would take the directory past it is
  // ignored (counted): its patterns miss messages published here.
  size_t max_cluster_patterns = 100000;
  // Redis's `client-output-buffer-limit pubsub 32mb 8mb 60`: a client whose
  // unsent output exceeds the hard limit, or stays above the soft limit for
  // soft_limit_time, is disconnected (and counted).
  size_t output_hard_limit = 32 << 20;
  size_t output_soft_limit = 8 << 20;
  absl::Duration output_soft_limit_time = absl::Seconds(60);
  // A client's commands are not read while this much output is unsent, so
  // replies alone cannot grow the buffer without bound.
  size_t output_pause_bytes = 1 << 20;
  // Unsent output of all clients together (Redis 7's maxmemory-clients,
  // counting output buffers only): each client is bounded by the limits
  // above, their sum only by max_clients times them. When a client's output
  // takes the total past it, the clients holding most output are closed,
  // largest first, until the total is within it again (counted in
  // evicted_clients, logged), as Redis evicts the clients using most
  // memory. Checked after the writes waiting for the end of the loop's
  // round, so the total may pass it within one round (every subscriber's
  // copy waits for the round's end). 0: no bound (Redis's default).
  size_t max_total_output_bytes = 256 << 20;
  // Node publishes waiting for their topic's root (a PUBLISH makes one for
  // its channel and one per matching pattern, held until all are answered):
  // a client may have this many in flight (pipelined; replies still in
  // command order), all clients together max_publishes_in_flight (below the
  // node's own bound on publishes in flight,
  // ScribeOptions::max_pending_publishes). A PUBLISH that does not fit
  // waits, with the client's later commands (counted in
  // publish_limit_waits); one costing more than a limit goes alone.
  size_t max_client_publishes_in_flight = 256;
  size_t max_publishes_in_flight = 8192;
  // Payload bytes of messages the node delivered that wait for (or are
  // being handled by) the gateway's own thread (own_thread, or a backend
  // without a loop); beyond it new ones are dropped and counted
  // (messages_dropped), as the node drops for a slow subscription. On the
  // backend's loop nothing waits: each message goes to its clients' output
  // buffers (bounded by the output limits) at once.
  size_t max_queued_message_bytes = 64 << 20;
  // Request bytes all clients' parsers hold together (requests still
  // arriving, commands read ahead): each client's are bounded by
  // parser.max_request_bytes, their sum only by max_clients times that.
  // At it, clients are not read from (TCP pushes back on them; counted in
  // input_limit_pauses) until it drops again, except one client at a time
  // whose own request is incomplete (the one holding most, when it is
  // chosen among waiting clients): it may read on until that request is
  // whole, so requests that could only complete by reading never stall
  // each other. A client so chosen that sends nothing for a housekeeping
  // tick (1 s) loses its turn. Keep it at least parser.max_request_bytes.
  size_t max_total_input_bytes = 256 << 20;
  // A SUBSCRIBE the cluster has not confirmed by then fails with an error.
  absl::Duration subscribe_timeout = absl::Seconds(10);
  // Pattern directory (docs/resp.md): how often this node re-announces its
  // patterns, and how long an announcement is believed without a refresh.
  absl::Duration pattern_refresh = absl::Seconds(5);
  absl::Duration pattern_ttl = absl::Seconds(16);
  // The longest another node's announcement is believed, whatever ttl it
  // states (the wire allows 24 h): a longer one is taken with this ttl and
  // counted (pattern_ttls_clipped). Keep it above every node's pattern_ttl.
  absl::Duration max_pattern_ttl = absl::Seconds(60);
  // Warnings (bounds reached, rate-limited to one a second each); null:
  // spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

// Counters, each only ever growing (except the gauges marked so).
struct GatewayStats {
  uint64_t clients_accepted = 0;
  uint64_t clients_refused = 0;          // over max_clients
  uint64_t clients_connected = 0;        // gauge
  uint64_t commands = 0;
  uint64_t protocol_errors = 0;          // each closes its client
  uint64_t unknown_commands = 0;
  uint64_t wrong_arity = 0;
  uint64_t auth_failures = 0;            // wrong passwords
  uint64_t noauth_rejections = 0;        // commands before AUTH
  uint64_t context_rejections = 0;       // RESP2 subscribed-state refusals
  uint64_t slow_client_disconnects = 0;  // output buffer limits
  uint64_t subscribe_timeouts = 0;
  uint64_t backend_errors = 0;           // failed backend Subscribe/Publish
  uint64_t published = 0;                // PUBLISH/SPUBLISH commands taken
  uint64_t pattern_publishes = 0;        // extra publishes on pattern topics
  uint64_t messages_delivered = 0;       // pushes queued to clients
  uint64_t messages_encoded = 0;         // of those, encoded (the rest shared an encoding)
  uint64_t bad_announcements = 0;        // undecodable pattern-topic payloads
  uint64_t known_patterns = 0;           // gauge: cluster patterns believed
  uint64_t output_high_water = 0;        // most unsent output one client had, bytes
  uint64_t output_async_writes = 0;      // writes the socket did not take whole
  uint64_t reserved_rejections = 0;      // channels named "__peter.*" refused
  uint64_t publish_limit_waits = 0;      // a client's commands held at a publish limit
  uint64_t messages_dropped = 0;         // over max_queued_message_bytes
  // Bounds reached (docs/limits.md).
  uint64_t subscription_limit_rejections = 0;  // SUBSCRIBEs over max_subscriptions_per_client
  uint64_t requests_too_big = 0;               // over parser.max_request_bytes (closed)
  uint64_t pattern_directory_overflows = 0;    // announcements over max_cluster_patterns
  uint64_t pattern_ttls_clipped = 0;           // announcements believed only max_pattern_ttl
  uint64_t input_limit_pauses = 0;             // clients not read from at max_total_input_bytes
  uint64_t input_bytes = 0;                    // gauge: request bytes all clients' parsers hold
  uint64_t input_high_water = 0;               // most input_bytes seen
  uint64_t evicted_clients = 0;                // closed at max_total_output_bytes
  uint64_t output_bytes = 0;                   // gauge: unsent output of all clients
};

// Every GatewayStats field once, with what it counts: the admin endpoint's
// /metrics exports each as peter_resp_NAME_total (a counter) or
// peter_resp_NAME (a gauge) from this table (docs/operations.md).
struct GatewayStatField {
  const char* name;
  bool gauge;
  const char* help;
  uint64_t GatewayStats::*value;
};
inline constexpr GatewayStatField kGatewayStatFields[] = {
    {"clients_accepted", false, "Redis clients accepted.", &GatewayStats::clients_accepted},
    {"clients_refused", false, "Redis clients refused: max_clients connected.",
     &GatewayStats::clients_refused},
    {"clients_connected", true, "Redis clients connected now.", &GatewayStats::clients_connected},
    {"commands", false, "Redis commands run.", &GatewayStats::commands},
    {"protocol_errors", false, "Clients closed for a protocol error (parser limits included).",
     &GatewayStats::protocol_errors},
    {"unknown_commands", false, "Commands refused as unknown.", &GatewayStats::unknown_commands},
    {"wrong_arity", false, "Commands refused for their number of arguments.",
     &GatewayStats::wrong_arity},
    {"auth_failures", false, "AUTH or HELLO with a wrong password.", &GatewayStats::auth_failures},
    {"noauth_rejections", false, "Commands refused before AUTH.", &GatewayStats::noauth_rejections},
    {"context_rejections", false, "Commands refused in RESP2 subscribed state.",
     &GatewayStats::context_rejections},
    {"slow_client_disconnects", false,
     "Clients closed because their unsent output passed the output buffer limits.",
     &GatewayStats::slow_client_disconnects},
    {"subscribe_timeouts", false, "SUBSCRIBEs the cluster did not confirm in subscribe_timeout.",
     &GatewayStats::subscribe_timeouts},
    {"backend_errors", false, "Node subscribes or publishes that failed.",
     &GatewayStats::backend_errors},
    {"published", false, "PUBLISH and SPUBLISH commands taken.", &GatewayStats::published},
    {"pattern_publishes", false, "Extra node publishes on pattern topics.",
     &GatewayStats::pattern_publishes},
    {"messages_delivered", false, "Messages queued to clients.", &GatewayStats::messages_delivered},
    {"messages_encoded", false,
     "Message pushes encoded: one per message and client protocol, shared by its clients.",
     &GatewayStats::messages_encoded},
    {"bad_announcements", false, "Pattern announcements from other nodes that did not decode.",
     &GatewayStats::bad_announcements},
    {"known_patterns", true, "Patterns believed held in the cluster.",
     &GatewayStats::known_patterns},
    {"output_high_water", true, "Most unsent output one client had, bytes.",
     &GatewayStats::output_high_water},
    {"output_async_writes", false,
     "Client writes the socket did not take whole: the rest went by an asynchronous write.",
     &GatewayStats::output_async_writes},
    {"reserved_rejections", false, "Channels named __peter.* refused.",
     &GatewayStats::reserved_rejections},
    {"publish_limit_waits", false,
     "PUBLISHes (with the client's later commands) held at a publishes-in-flight limit.",
     &GatewayStats::publish_limit_waits},
    {"messages_dropped", false,
     "Messages from the node dropped: max_queued_message_bytes waiting for the gateway.",
     &GatewayStats::messages_dropped},
    {"subscription_limit_rejections", false,
     "SUBSCRIBEs refused: max_subscriptions_per_client reached.",
     &GatewayStats::subscription_limit_rejections},
    {"requests_too_big", false, "Clients closed for a request over max_request_bytes.",
     &GatewayStats::requests_too_big},
    {"pattern_directory_overflows", false,
     "Pattern announcements ignored: max_cluster_patterns reached.",
     &GatewayStats::pattern_directory_overflows},
    {"pattern_ttls_clipped", false, "Pattern announcements believed only max_pattern_ttl.",
     &GatewayStats::pattern_ttls_clipped},
    {"input_limit_pauses", false,
     "Clients not read from because all clients' buffered requests reached "
     "max_total_input_bytes.",
     &GatewayStats::input_limit_pauses},
    {"input_bytes", true, "Request bytes all clients' parsers hold now.",
     &GatewayStats::input_bytes},
    {"input_high_water", true, "Most request bytes all clients' parsers held at once.",
     &GatewayStats::input_high_water},
    {"evicted_clients", false,
     "Clients closed, largest output first, because all clients' unsent output passed "
     "max_total_output_bytes.",
     &GatewayStats::evicted_clients},
    {"output_bytes", true, "Unsent output of all clients now, bytes.",
     &GatewayStats::output_bytes},
};
// A field added to GatewayStats must be added to the table too.
static_assert(sizeof(GatewayStats) == std::size(kGatewayStatFields) * sizeof(uint64_t));

// Sets options->listen_host/listen_port from "host:port", "[v6addr]:port" or
// ":port" (127.0.0.1). The host must be a numeric address or "localhost".
absl::Status SetListenAddress(std::string_view host_port, GatewayOptions* options);

class Gateway {
 public:
  // Binds the listening socket and starts the event loop.
  static absl::StatusOr<std::unique_ptr<Gateway>> Start(Backend& backend,
                                                        GatewayOptions options);
  virtual ~Gateway() = default;

  virtual uint16_t port() const = 0;  // the bound port
  virtual GatewayStats stats() const = 0;
  // Idempotent; see the class comment.
  virtual void Stop() = 0;
};

}  // namespace peter::resp

#endif  // PETER_PUBSUB_RESP_GATEWAY_H_

// A Pastry node on real sockets: the overlay core (pastry/core Node) driven by
// an Asio event loop on its own thread, with TCP connections to its peers.
//
// The only code besides the daemon's that sees Asio is pastry/net/*.cc; this
// header does not include it.
//
// Threading: the node and every connection live on one io_context thread.
// All public methods are thread-safe: they post to that thread (and wait,
// where they return a result). Callbacks given to Post() run on it. Do not
// call blocking methods from the node's own thread.
#ifndef PETER_PASTRY_NET_NODE_RUNTIME_H_
#define PETER_PASTRY_NET_NODE_RUNTIME_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pastry/core/node.h"
#include "pastry/net/transport_stats.h"
#include "peter/pastry/node_handle.h"
#include "peter/pastry/options.h"
#include "peter/pastry/security.h"
#include "spdlog/logger.h"

namespace asio {
class io_context;
}

namespace peter::pastry::net {

struct RuntimeOptions {
  // Address to listen on; port 0 picks a free port (see listen_endpoint()).
  std::string listen = "127.0.0.1:0";
  // Nodes to join through, "host:port" each; empty starts a new ring.
  std::vector<std::string> bootstrap;
  // This node's id; random if absent. Must be absent with TLS: the id is
  // then the one the node's certificate certifies.
  std::optional<NodeId> id;
  // A file that keeps this node's incarnation (NodeHandle::incarnation)
  // across restarts: each start takes max(now in microseconds, the file's +
  // 1) and writes it back before joining, so a restarted node's incarnation
  // grows even if the wall clock stepped back. Empty: the start time alone
  // (a restart after the clock stepped back gets a smaller one, and peers
  // drop its messages as stale until they forget the previous run). One
  // file per node id; Start() fails on a file it cannot read, parse or write.
  std::string incarnation_file;
  Options pastry;
  // Credentials required from peers and presented to them (docs/security.md).
  SecurityOptions security;

  // Frames larger than this are refused (the connection is closed, counted).
  size_t max_frame_bytes = 4 << 20;
  // Bytes queued for one peer beyond which new messages to it are dropped
  // (counted in TransportStats::queue_overflows): a slow or stuck peer must
  // not make us buffer without bound. The core's acknowledgements and probes
  // recover from the loss.
  size_t max_send_queue_bytes = 8 << 20;
  // Bytes queued for all peers together beyond which new messages (to any
  // peer) are dropped (TransportStats::global_queue_overflows): many slow
  // peers must not add up to unbounded memory either.
  size_t max_total_send_queue_bytes = 256 << 20;
  // Bytes of frames still arriving (partial) across all connections; the
  // connection whose read passes it is closed (receive_overflows): without
  // it, max_connections peers could each hold most of a max_frame_bytes
  // frame.
  size_t max_total_receive_bytes = 256 << 20;
  absl::Duration connect_timeout = absl::Seconds(2);
  // Reconnect backoff after a failed connect: doubles from min to max. While
  // backing off, messages to that peer are dropped (counted).
  absl::Duration reconnect_backoff_min = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(5);
  // Connections idle (nothing sent or received) this long are closed.
  absl::Duration idle_timeout = absl::Minutes(5);
  // A connection whose peer takes none of the frames queued for it this
  // long is closed (TransportStats::send_stalls).
  absl::Duration send_stall_timeout = absl::Seconds(60);
  // Incoming connections that have sent no frame yet: at most this many
  // (the oldest closed for a new one), each for at most pending_timeout
  // (TransportStats::pending_evicted, pending_timeouts).
  size_t max_pending_incoming = 256;
  absl::Duration pending_timeout = absl::Seconds(10);
  // How long Start() keeps retrying unreachable bootstrap nodes before it
  // fails with Unavailable.
  absl::Duration bootstrap_retry_for = absl::Seconds(30);

  // The endpoint other nodes reach this one at (its NodeHandle), "host:port";
  // port 0 means the bound port. Empty: the bound address, except that a
  // node listening on every interface (0.0.0.0 or [::]) then advertises
  // loopback (127.0.0.1 or [::1]), which only nodes on this host can reach;
  // set it for a cluster across hosts.
  std::string advertise;
  // Incoming connections beyond this many open connections are closed at
  // once (counted in TransportStats::connections_rejected).
  size_t max_connections = 4096;
  // Of max_connections, slots only outgoing connections may take: incoming
  // ones are refused (connections_rejected) once max_connections minus
  // this many are incoming, so a flood of incoming connections cannot stop
  // the node from reaching its leaf set and tree. At most half of
  // max_connections takes effect.
  size_t reserved_outgoing_connections = 64;

  std::shared_ptr<spdlog::logger> logger;  // null: spdlog's default logger

  // Runs on the node's thread before the node starts its ring or joins:
  // the place to register applications, so that none misses a message.
  std::function<void(Node&)> on_start;
};

// A copy of the node's state for status pages and tests.
struct NodeSnapshot {
  NodeHandle self;
  bool active = false;
  // Left (nearest first), then right; each member once (in a small ring a
  // node is on both sides and is listed with the left half).
  std::vector<NodeHandle> leaf_set;
  struct TableEntry {
    int row = 0;
    int col = 0;
    NodeHandle node;
    int32_t rtt_us = -1;
  };
  std::vector<TableEntry> routing_table;
  NodeStats stats;
  TransportStats transport;
  absl::Duration uptime;
};

class NodeRuntime {
 public:
  // Binds the listener, starts the event-loop thread, and starts a ring (no
  // bootstrap) or begins joining. Returns once the node is listening; it
  // becomes active asynchronously (see WaitUntilActive). Fails with a clear
  // status: InvalidArgument for a bad listen, advertise or bootstrap address
  // or bad options (an id with TLS, unreadable or mismatched TLS files, a
  // short cluster key); FailedPrecondition when the address cannot be bound (in
  // use, not local). Host names are resolved once, here ("localhost" is
  // 127.0.0.1). Bootstraps equal to this node's own address are ignored; if
  // none is left the node starts a new ring.
  static absl::StatusOr<std::unique_ptr<NodeRuntime>> Start(RuntimeOptions options);

  // Stops the thread and closes every connection, without telling peers
  // (use Leave() first for a graceful exit). REQUIRES: not called on the
  // node's thread, and no other thread is inside a blocking call.
  virtual ~NodeRuntime() = default;

  // Sends Leave to the leaf set and routing table, and waits (up to
  // `timeout`) for those messages to be written to the sockets. Returns at
  // once if the loop was stopped (io_context::stop): nothing is sent.
  virtual void Leave(absl::Duration timeout) = 0;

  // Blocks until the node is active (OK), the join has failed (Unavailable:
  // no bootstrap reachable within bootstrap_retry_for), the node has left
  // (FailedPrecondition), or `timeout` passes (DeadlineExceeded).
  virtual absl::Status WaitUntilActive(absl::Duration timeout) = 0;

  virtual NodeHandle self() const = 0;
  virtual Endpoint listen_endpoint() const = 0;

  // Runs `fn` on the node's thread. Returns at once. The node's work that
  // `fn` makes due at once (zero-delay timers) runs right after it, in the
  // same handler of the loop.
  virtual void Post(std::function<void(Node&)> fn) = 0;

  // --- For layers that run on the node's thread themselves (the Redis
  // gateway of `peter node --resp`): no hand-off between threads. ---
  // The event loop the node's thread runs. Handlers run there must never
  // block (the overlay waits for them), and must be finished with (sockets
  // closed, timers cancelled) before the runtime is destroyed: it returns
  // only once the loop has no work left.
  virtual asio::io_context& io_context() = 0;
  // Whether the caller is on the node's thread.
  virtual bool OnNodeThread() const = 0;
  // Runs `fn` at once, as a call into the node (the loop's clock batch, the
  // node's timer re-armed after it), and returns true; false without
  // running it when the runtime is stopping or the caller is already inside
  // a call into the node (a callback of the node or of an application on
  // it), where the node must not be re-entered. REQUIRES: OnNodeThread().
  virtual bool RunHere(absl::FunctionRef<void(Node&)> fn) = 0;
  // Inside a call posted with Post() (its work made due included): queues
  // `fn` to run once that call has finished, in the same handler of the
  // loop, before any other handler, and returns true. Elsewhere (outside
  // the node's work, in RunHere, whose caller is still on the stack, or in
  // the node's handlers for messages and timers) returns false and drops
  // `fn`: the caller posts it itself. Lets a layer on the node's thread end
  // its batch of callbacks without a handler of its own per call.
  // REQUIRES: OnNodeThread().
  virtual bool AtEndOfCall(absl::AnyInvocable<void()> fn) = 0;
  // Runs `fn` at once as a call posted with Post() runs: the node's work it
  // makes due at once right after it, then what AtEndOfCall queued, all
  // before this returns true. False without running it where RunHere
  // refuses (stopping, or inside a call into the node). Lets a layer on the
  // node's thread end a handler of its own with the calls it gathered there
  // rather than post them (a handler of the loop, with its lock, fewer).
  // REQUIRES: OnNodeThread().
  virtual bool RunAsCall(absl::FunctionRef<void(Node&)> fn) = 0;

  // Routes a real lookup through the overlay and waits for the root's answer.
  virtual absl::StatusOr<Node::LookupResult> Lookup(const NodeId& key,
                                                    absl::Duration timeout) = 0;

  // If the loop was stopped (io_context::stop), only `self` is filled in.
  virtual NodeSnapshot Snapshot() = 0;
};

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_NODE_RUNTIME_H_

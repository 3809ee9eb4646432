// Peter's embedded node: a Pastry overlay node on real sockets with Scribe
// topic publish/subscribe, in one object.
//
//   absl::StatusOr<std::unique_ptr<peter::Node>> node =
//       peter::Node::Start({.listen = "127.0.0.1:0", .bootstrap = {"10.0.0.5:7000"}});
//   (*node)->WaitUntilActive(absl::Seconds(10));
//   absl::StatusOr<peter::Subscription> sub = (*node)->Subscribe(
//       "user.42", [](const peter::Message& m) { Push(m.payload); });
//   (*node)->Publish("user.42", "hello", [](absl::StatusOr<uint64_t> seq) {});
//
// Threads. A node runs two threads of its own:
//   - the network thread runs the overlay and Scribe (no user code runs on it);
//   - the delivery thread runs every user callback: message handlers,
//     activation callbacks and publish completions, one at a time. A slow
//     handler delays the node's other callbacks, never the overlay.
// Every method of Node and Subscription is thread-safe. Blocking methods
// (Subscribe, WaitUntilActive, Publish's synchronous form) may be called from
// any thread, callbacks included.
//
// Slow consumers. Messages wait for their handler in a queue per
// subscription bounded by NodeOptions::max_pending_messages. When it is
// full, a newly arriving message for that subscription is dropped and
// counted (Subscription::dropped(), PubSubStats::slow_consumer_drops); the
// handler then sees a gap in Message::seq. The overlay and other
// subscriptions are unaffected.
#ifndef PETER_NODE_H_
#define PETER_NODE_H_

#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "peter/pastry/node_handle.h"
#include "peter/pastry/node_id.h"
#include "peter/pastry/options.h"
#include "peter/pastry/security.h"
#include "peter/pubsub/options.h"

namespace spdlog {
class logger;
}

namespace peter {

class Node;
namespace node_internal {
class NodeImpl;
NodeImpl& ImplOf(Node& node);
}  // namespace node_internal

// Every field has a default initializer (`peter node`'s flags take their
// defaults from here), so a default NodeOptions starts a one-node ring on a
// free local port, and a designated initializer may name only some fields
// ({.listen = "0.0.0.0:7000"}) without -Wmissing-field-initializers.
struct NodeOptions {
  // Address to listen on, "host:port" (IPv6 as "[addr]:port"); port 0 picks
  // a free port (see Node::listen_address()).
  std::string listen = "127.0.0.1:0";
  // Nodes to join through; empty starts a new ring.
  std::vector<std::string> bootstrap = {};
  // The address other nodes reach this one at, if not the listen address.
  std::string advertise = {};
  // This node's id; random if absent. Must be absent with TLS (the id then
  // derives from the certificate's public key).
  std::optional<pastry::NodeId> id = std::nullopt;
  // A file keeping this node's incarnation across restarts, so it grows
  // even if the wall clock steps back (see pastry::net::RuntimeOptions::
  // incarnation_file). Empty: the start time in microseconds alone.
  std::string incarnation_file = {};
  // How long Start()'s join keeps retrying unreachable bootstrap nodes.
  absl::Duration bootstrap_retry_for = absl::Seconds(30);

  pastry::Options overlay = {};
  pubsub::ScribeOptions pubsub = {};
  // Peer authentication: TLS 1.3 with a cluster CA and/or a pre-shared
  // cluster key. Nodes of one cluster must use the same kind; see
  // docs/security.md.
  pastry::SecurityOptions security = {};

  // Limits of the network layer: largest frame from a peer, bytes queued for
  // one peer before messages to it are dropped, bytes queued for all peers
  // together before any message is dropped, bytes of frames still arriving
  // on all connections together, open connections (docs/limits.md).
  size_t max_frame_bytes = 4 << 20;
  size_t max_send_queue_bytes = 8 << 20;
  size_t max_total_send_queue_bytes = 256 << 20;
  size_t max_total_receive_bytes = 256 << 20;
  size_t max_connections = 4096;
  // Of those, slots only outgoing connections may take (at most half of
  // max_connections takes effect): an incoming flood cannot keep the node
  // from reaching its leaf set.
  size_t reserved_outgoing_connections = 64;
  // A connection idle this long (nothing sent or received) is closed; a
  // busy one whose peer takes none of the frames queued for it for
  // send_stall_timeout is closed too, its frames dropped (send_stalls).
  absl::Duration idle_timeout = absl::Minutes(5);
  absl::Duration send_stall_timeout = absl::Seconds(60);
  // Incoming connections that have not yet sent a frame (or, secured,
  // finished the handshake and sent one): at most this many at once, the
  // oldest closed for a new one, each closed after pending_timeout.
  size_t max_pending_incoming = 256;
  absl::Duration pending_timeout = absl::Seconds(10);

  // Messages waiting for one subscription's handler; see "Slow consumers".
  size_t max_pending_messages = 10000;

  std::shared_ptr<spdlog::logger> logger = nullptr;  // null: spdlog's default logger
};

// One message as a subscriber receives it.
struct Message {
  std::string_view topic;
  // The topic's sequence number, stamped by its root: consecutive for a
  // reliable subscription; a best-effort one may see gaps.
  uint64_t seq = 0;
  std::string_view payload;
};

using MessageHandler = std::function<void(const Message&)>;

// Every field has a default initializer, so a designated initializer may
// name only some ({.reliable = true}) without -Wmissing-field-initializers.
struct SubscribeOptions {
  // Reliable: gaps (after a tree repair) are filled from the replay buffers
  // kept along the tree, so the handler sees every message published after
  // the subscription became active, in order, once. Best effort (default,
  // like Redis): gaps are skipped.
  bool reliable = false;
  // Reliable only: start from this sequence number, if the tree still keeps
  // it (NodeOptions::pubsub.replay_capacity / replay_max_age).
  std::optional<uint64_t> since_seq = std::nullopt;
  // Called with true once this node is on the topic's tree (a message
  // published afterwards is delivered), with false when it falls off (its
  // parent failed) until it is back. May be empty.
  std::function<void(bool active)> on_active = nullptr;
  // Takes anycasts to the topic (queue-group style work distribution): an
  // anycast goes to exactly one subscription with this handler set, nearest
  // first. A subscription whose queue is full declines, so work flows to
  // members that keep up. Empty: this subscription takes no anycasts.
  MessageHandler on_anycast = nullptr;
};

// A live subscription; destroying it (or Cancel()) unsubscribes. Move-only.
// After Cancel() or the destructor returns, the handler is not called again
// (unless they run inside the handler itself, which then finishes).
class Subscription {
 public:
  Subscription() = default;
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  ~Subscription();

  void Cancel();
  bool valid() const { return state_ != nullptr; }
  const std::string& topic() const;
  // True while this node is on the topic's tree.
  bool active() const;
  // Blocks until active (OK), the timeout (DeadlineExceeded), or the node
  // stopping (Cancelled).
  absl::Status WaitUntilActive(absl::Duration timeout) const;
  // Messages dropped because the handler fell behind.
  uint64_t dropped() const;

  struct State;  // private to the implementation
  explicit Subscription(std::shared_ptr<State> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

// The Scribe's counters, for operators: how the trees heal, how
// publishes find their root, how replicas and forgetting behave. Each is
// in /metrics as peter_pubsub_NAME_total and in /status as pubsub.NAME
// (kPubSubCounterFields; docs/operations.md, "Scribe trees and publishes").
struct PubSubCounters {
  uint64_t joins_sent = 0;
  uint64_t children_adopted = 0;
  uint64_t loops_refused = 0;
  uint64_t parent_failures = 0;
  uint64_t children_expired = 0;
  uint64_t stale_parents_left = 0;
  uint64_t repairs_requested = 0;
  uint64_t repairs_served = 0;
  uint64_t handovers = 0;
  uint64_t roots_taken = 0;
  uint64_t moves = 0;
  uint64_t rival_roots_merged = 0;
  uint64_t publish_acks_sent = 0;
  uint64_t publish_acks_received = 0;
  uint64_t publish_resends = 0;
  uint64_t publishes_deduplicated = 0;
  uint64_t publishes_rerouted = 0;
  uint64_t publishes_passed_on = 0;
  uint64_t publish_acks_abandoned = 0;
  uint64_t publishes_numbered_at_once = 0;
  uint64_t root_cache_hits = 0;
  uint64_t root_cache_misses = 0;
  uint64_t replica_resends = 0;
  uint64_t replicate_batches = 0;
  uint64_t replica_stale_terms = 0;
  uint64_t numberings_dropped = 0;
  uint64_t anycasts_sent = 0;
  uint64_t anycasts_visited = 0;
};

struct PubSubCounterField {
  const char* name;
  const char* help;
  uint64_t PubSubCounters::*value;
};
inline constexpr PubSubCounterField kPubSubCounterFields[] = {
    {"joins_sent", "Joins this node routed for its own topics (first tries and retries).",
     &PubSubCounters::joins_sent},
    {"children_adopted", "Children taken on in topics' trees.", &PubSubCounters::children_adopted},
    {"loops_refused", "Joins or acknowledgements refused because they would make a loop.",
     &PubSubCounters::loops_refused},
    {"parent_failures", "Parents declared dead (no heartbeat within parent_timeout); the topic "
                        "joins again.",
     &PubSubCounters::parent_failures},
    {"children_expired", "Children dropped for not refreshing, or pushed down and stuck, for "
                        "child_timeout.",
     &PubSubCounters::children_expired},
    {"stale_parents_left", "Leaves sent to a former parent that still sent data.",
     &PubSubCounters::stale_parents_left},
    {"repairs_requested", "Gap repairs asked of a parent.", &PubSubCounters::repairs_requested},
    {"repairs_served", "Messages resent from a replay buffer for a repair request.",
     &PubSubCounters::repairs_served},
    {"handovers", "Topics whose root role this node handed to a node closer to the topic.",
     &PubSubCounters::handovers},
    {"roots_taken", "Times this node became a topic's root.", &PubSubCounters::roots_taken},
    {"moves", "Times this node was re-parented under a sibling after a push-down.",
     &PubSubCounters::moves},
    {"rival_roots_merged",
     "Numberings of a topic from another root (two roots numbered it, e.g. across a "
     "partition) or a replica ahead of this root, taken in.",
     &PubSubCounters::rival_roots_merged},
    {"publish_acks_sent", "Publish acknowledgements sent as a root.",
     &PubSubCounters::publish_acks_sent},
    {"publish_acks_received", "Publish acknowledgements matched to a publish from here.",
     &PubSubCounters::publish_acks_received},
    {"publish_resends", "Unacknowledged publishes sent again.", &PubSubCounters::publish_resends},
    {"publishes_deduplicated", "Resent publishes recognised as root and not numbered twice.",
     &PubSubCounters::publishes_deduplicated},
    {"publishes_rerouted",
     "Publishes sent here as the topic's root after it no longer was one, or "
     "held here when the root role moved, routed on.",
     &PubSubCounters::publishes_rerouted},
    {"publishes_passed_on", "Routed publishes that ended here, not closest to the topic, passed "
                            "to the closest node.",
     &PubSubCounters::publishes_passed_on},
    {"publish_acks_abandoned", "Acknowledgements not sent because this node stopped being the "
                               "topic's root while they waited for the replicas.",
     &PubSubCounters::publish_acks_abandoned},
    {"publishes_numbered_at_once",
     "This node's publishes numbered at once as the topic's root, with no replica peer to wait "
     "for (no message to itself, no acknowledgement sent).",
     &PubSubCounters::publishes_numbered_at_once},
    {"root_cache_hits", "Publishes sent straight to a cached root.",
     &PubSubCounters::root_cache_hits},
    {"root_cache_misses", "Publishes routed through the overlay (no cached root).",
     &PubSubCounters::root_cache_misses},
    {"replica_resends", "Unconfirmed copies sent to a replica again.",
     &PubSubCounters::replica_resends},
    {"replicate_batches", "Replicates a root sent with numbers just given (one per run, sent "
                          "to every replica).",
     &PubSubCounters::replicate_batches},
    {"replica_stale_terms", "As a replica: Replicates refused from a root of an older term while "
                            "the newer term's root lives.",
     &PubSubCounters::replica_stale_terms},
    {"numberings_dropped", "Numberings of forgotten topics dropped to remember newer ones "
                           "(max_topics remembered).",
     &PubSubCounters::numberings_dropped},
    {"anycasts_sent", "Anycasts requested here.", &PubSubCounters::anycasts_sent},
    {"anycasts_visited", "Anycast tree-walk visits of this node.",
     &PubSubCounters::anycasts_visited},
};
// A field added to PubSubCounters must be added to the table too.
static_assert(sizeof(PubSubCounters) == std::size(kPubSubCounterFields) * sizeof(uint64_t));

// Pub/sub counters of one node (monotonic unless noted).
struct PubSubStats {
  uint64_t topics = 0;          // topics with tree state here (gauge)
  uint64_t roots = 0;           // topics this node is the root of (gauge)
  uint64_t children = 0;        // children over all topics (gauge)
  uint64_t subscriptions = 0;   // live local subscriptions (gauge)
  uint64_t published = 0;       // messages stamped here as root
  uint64_t forwarded = 0;       // copies sent to children
  uint64_t delivered = 0;       // messages handed to local handlers
  uint64_t duplicates = 0;      // copies dropped as already seen
  uint64_t gaps_repaired = 0;   // missing numbers that arrived later (repair)
  uint64_t gaps_skipped = 0;    // sequence numbers given up
  uint64_t slow_consumer_drops = 0;
  uint64_t malformed = 0;       // peer messages that failed to decode
  uint64_t publish_timeouts = 0;    // publishes never confirmed by a root
  // As a root: confirmations held until every replica held the message,
  // and of those sent without it (more than replay_capacity waiting).
  uint64_t publish_acks_waiting_replicas = 0;
  uint64_t publish_acks_unconfirmed = 0;
  // As a root: publishes held for lack of a root lease (leases from its
  // replica set), and of those held because it had lost every neighbour
  // (lone_root_grace). As a replica: a root's copies not confirmed
  // because another root had given their numbers (a cut-off root).
  uint64_t lease_waits = 0;
  uint64_t lone_root_waits = 0;
  uint64_t replica_conflicts = 0;
  uint64_t replica_tentative_replaced = 0;
  // As a root: numbers never multicast (they wait for the replicas) and
  // taken back because another root gave them to other publishes.
  uint64_t numbers_withdrawn = 0;
  // As a root: publishes held until their publisher's previous one was
  // numbered, and publishes numbered without it (publish_order_wait passed,
  // or max_reorder waiting: that publisher's order was given up).
  uint64_t publishes_held_for_order = 0;
  uint64_t publishes_order_forced = 0;
  // As a root: publishes held while the topic's replica window (numbers
  // waiting for their replicas) was full, and held ones numbered past the
  // window because max_pending_publishes were held on the topic.
  uint64_t publishes_held_for_window = 0;
  uint64_t publishes_window_forced = 0;
  // Message bytes kept now for gap repair and failover (replay buffers and
  // replicas' copies: a gauge), and messages dropped from them early because
  // that passed ScribeOptions::max_replay_bytes.
  uint64_t replay_bytes = 0;
  uint64_t replay_evicted_for_bytes = 0;
  uint64_t leases_refused = 0;  // as a replica: max_lease_grants held already
  // As a replica ahead of a root: its state sent to the root, and sends
  // held back (one went to that root within replica_resend_interval).
  uint64_t replica_states_sent = 0;
  uint64_t replica_sends_limited = 0;
  // As a root: replica confirmations from nodes outside the replica set.
  uint64_t replica_acks_ignored = 0;
  // Payloads that carried several messages for one node (bundles), and the
  // messages they carried.
  uint64_t bundles_sent = 0;
  uint64_t bundled_messages = 0;
  // Messages carrying several Replicates (ReplicaAcks) for one node, and
  // the Replicates (ReplicaAcks) in them (Scribe version 3).
  uint64_t replicate_lists_sent = 0;
  uint64_t replicates_listed = 0;
  uint64_t replica_ack_lists_sent = 0;
  uint64_t replica_acks_listed = 0;
  // Messages carrying several publishes, data and publish acknowledgements
  // for one node, and the messages in them (Scribe version 4). A list that
  // fails to decode here counts in `malformed`.
  uint64_t message_lists_sent = 0;
  uint64_t messages_listed = 0;
  // Of those, runs of one topic's consecutive publishes, data or publish
  // acknowledgements sent as one entry, and the messages in them (Scribe
  // version 5).
  uint64_t message_runs_sent = 0;
  uint64_t messages_in_runs = 0;
  uint64_t anycasts_accepted = 0;   // anycasts taken by a local subscription
  uint64_t anycasts_failed = 0;     // anycasts from here no one took
  uint64_t pushdowns = 0;           // children moved under a sibling (full node)
  uint64_t pushdowns_limited = 0;   // the joiner pushed: max_moving_children moving
  uint64_t topics_refused = 0;      // tree state or replicas refused: max_topics
  uint64_t topics_forgotten = 0;    // idle roots forgotten: topic_idle_timeout
  uint64_t joins_refused = 0;       // joins NACKed: max_children, no sibling to push to
  // Well-formed messages from peers dropped: no state for their topic, a
  // bound full (a publish held by a fresh root beyond max_reorder), stale.
  uint64_t messages_dropped = 0;
  PubSubCounters counters;
};

// One topic as this node holds it (a snapshot for status pages).
struct TopicStatus {
  std::string id_hex;          // the topic id: SHA-256 of the name, 128 bits
  std::string name;            // empty unless a local subscription knows it
  bool is_root = false;
  bool attached = false;       // on the tree (root, or acknowledged by a parent)
  std::string parent_id_hex;   // empty at the root or while detached
  size_t children = 0;
  uint64_t next_seq = 0;       // next sequence number to deliver here
  uint64_t last_seq = 0;       // highest seen here (at the root: stamped)
  size_t local_subscriptions = 0;
};

using PublishCallback = std::function<void(absl::StatusOr<uint64_t> seq)>;
using AnycastCallback = std::function<void(absl::StatusOr<pastry::NodeHandle> taken_by)>;

class Node {
 public:
  // Binds the listener, starts the node's threads, and starts a new ring (no
  // bootstrap) or begins joining. The node becomes active asynchronously
  // (WaitUntilActive). InvalidArgument for bad addresses or options,
  // FailedPrecondition when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<Node>> Start(NodeOptions options);

  // Stops both threads and closes every connection without telling peers
  // (call Leave() first for a graceful exit). Outstanding callbacks are not
  // called. REQUIRES: not called from a callback of this node.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // OK once active; Unavailable if no bootstrap node could be reached;
  // DeadlineExceeded after `timeout`.
  absl::Status WaitUntilActive(absl::Duration timeout);
  // Tells the leaf set and routing table that this node leaves, and waits
  // up to `timeout` for that to be sent. The node is unusable afterwards.
  void Leave(absl::Duration timeout = absl::Seconds(2));

  pastry::NodeHandle self() const;
  // The bound "host:port".
  std::string listen_address() const;

  // Subscribes `handler` to `topic`. Several subscriptions to one topic on
  // one node share its tree membership. InvalidArgument for an empty or
  // over-long topic or an empty handler; FailedPrecondition once the node
  // has stopped or left.
  absl::StatusOr<Subscription> Subscribe(std::string topic, MessageHandler handler,
                                         SubscribeOptions options = {});

  // Publishes `payload` to every subscriber of `topic` on every node.
  // `done` (may be empty) runs on the delivery thread with the sequence
  // number the root gave the message, once the root's replicas hold it (so
  // the message survives the root's failure), or an error: InvalidArgument (name or
  // payload too long), DeadlineExceeded (no confirmation from the root within
  // pubsub.publish_timeout; the message may still have been published),
  // Cancelled (the node stopped).
  void Publish(std::string topic, std::string payload, PublishCallback done = {});
  // Publish and wait for its completion.
  absl::StatusOr<uint64_t> PublishAndWait(std::string topic, std::string payload);

  // Offers `payload` to the topic's subscribers with an anycast handler,
  // nearest first, until one takes it; `done` gets the node that took it,
  // or NotFound if none did.
  void Anycast(std::string topic, std::string payload, AnycastCallback done);

  PubSubStats pubsub_stats();
  std::vector<TopicStatus> topics();

 private:
  friend node_internal::NodeImpl& node_internal::ImplOf(Node& node);
  explicit Node(std::unique_ptr<node_internal::NodeImpl> impl);
  std::unique_ptr<node_internal::NodeImpl> impl_;
};

}  // namespace peter

#endif  // PETER_NODE_H_

// Scribe (Castro et al., IEEE JSAC 2002): topic-based multicast on the
// Pastry overlay, with Peter's ordering and recovery on top.
//
// Each topic has a tree rooted at the overlay root of its id
// (TopicIdOf(name)). A subscriber routes a join toward the topic id; at each
// hop the Forward upcall adopts the previous hop as a child, and either
// stops the join (this node is already on the tree) or carries on with this
// node's own join. The root stamps every published message with a per-topic
// sequence number and sends it down the tree; subscribers get each topic's
// messages in sequence order, without duplicates. Reliable subscriptions
// also repair gaps from replay buffers kept along the tree; the root's
// sequencing state is replicated to the nodes that would succeed it.
//
// Scribe uses the overlay only through pastry::Overlay and its upcalls: no
// I/O, no threads, no clock of its own.
//
// Threading: not thread-safe. Every method, upcall and handler runs on the
// node's thread. Handlers and completion callbacks may call any method.
//
// Lifetime: the Scribe must not outlive its node's Overlay. Its destructor
// does not call into the overlay, so a simulated crash may destroy the node
// and its Scribe together, in either order. Completion callbacks of
// publishes and anycasts still pending are destroyed without running (a
// wrapper that needs every one answered fails its own on shutdown).
#ifndef PETER_PUBSUB_SCRIBE_H_
#define PETER_PUBSUB_SCRIBE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "pastry/core/log_limit.h"
#include "peter/pastry/application.h"
#include "pubsub/messages.h"
#include "pubsub/root_cache.h"
#include "pubsub/scribe_options.h"
#include "pubsub/seq_map.h"
#include "pubsub/subscription.h"
#include "pubsub/topic_state.h"

namespace spdlog {
class logger;
}

namespace peter::pubsub {

// Scribe's application id on every node (ids below 16 are Peter's own).
inline constexpr pastry::AppId kScribeAppId = 1;

// At most this many numbers in one Replicate a root sends for the numbers
// it stamped in one batch of work (FlushReplicates).
inline constexpr size_t kMaxReplicateBatch = 1024;

// A bundle (the messages for one node of one batch of work, in one payload:
// FlushOutbox) holds at most this many messages (each of a list of
// Replicates or ReplicaAcks counted) and, unless one message is larger, this
// many bytes: well under what a receiver decodes (4 MiB,
// wire::DecodeLimits), and a lost frame loses little.
inline constexpr size_t kMaxBundleMessages = 256;
inline constexpr size_t kMaxBundleBytes = size_t{256} << 10;
// Nodes whose Scribe version is remembered (to send them bundles). Beyond
// it the table is emptied and filled again from the next messages heard:
// a peer naming ever new ids cannot grow it.
inline constexpr size_t kMaxPeerVersions = 4096;

struct ScribeStats {
  uint64_t joins_sent = 0;          // own joins routed (first and retries)
  uint64_t children_adopted = 0;
  uint64_t loops_refused = 0;       // joins/acks refused by the path check
  uint64_t parent_failures = 0;     // parents declared dead by timeout
  uint64_t children_expired = 0;
  uint64_t published = 0;           // stamped here as root
  uint64_t data_forwarded = 0;      // copies sent to children
  uint64_t delivered = 0;           // handed to local subscribers
  uint64_t duplicates = 0;          // data dropped as already seen
  uint64_t stale_parents_left = 0;  // Leaves sent to a former parent still sending data
  uint64_t repairs_requested = 0;
  uint64_t repairs_served = 0;      // messages resent from a replay buffer
  uint64_t skipped = 0;             // sequence numbers given up
  uint64_t handovers = 0;           // root role handed to a closer node
  uint64_t roots_taken = 0;         // topics this node became root of
  uint64_t malformed = 0;           // payloads that failed to decode
  uint64_t messages_in = 0;         // Scribe messages delivered here or caught in Forward
  uint64_t messages_out = 0;        // Scribe messages sent or routed from here
  // Payloads carrying several messages for one node (bundles), and the
  // messages they carried (each also in messages_out).
  uint64_t bundles_sent = 0;
  uint64_t bundled_messages = 0;
  // Messages carrying several Replicates (ReplicaAcks) for one node, of
  // several topics (version 3), and the Replicates (ReplicaAcks) in them
  // (each also in messages_out).
  uint64_t replicate_lists_sent = 0;
  uint64_t replicates_listed = 0;
  uint64_t replica_ack_lists_sent = 0;
  uint64_t replica_acks_listed = 0;
  // Messages carrying several publishes, data and publish acknowledgements
  // for one node (version 4), and the messages in them (each also in
  // messages_out).
  uint64_t message_lists_sent = 0;
  uint64_t messages_listed = 0;
  // Of those, runs of consecutive messages of one topic sent as one entry
  // (version 5), and the messages in them.
  uint64_t message_runs_sent = 0;
  uint64_t messages_in_runs = 0;
  uint64_t dropped = 0;             // well-formed messages dropped (no state, full, stale)
  uint64_t gaps_filled = 0;         // missing numbers that arrived later (repair, reorder)
  // Publish with completion and the root cache.
  uint64_t publish_acks_sent = 0;       // as root
  uint64_t publish_acks_received = 0;   // as publisher, matched to a pending publish
  uint64_t publish_resends = 0;         // unacknowledged publishes sent again
  uint64_t publish_timeouts = 0;        // completions with DeadlineExceeded
  uint64_t publishes_deduplicated = 0;  // resends recognised by the root
  // As a root: look-ups of a publish's origin (publisher, request) or its
  // predecessor's among the numbered ones (the de-duplication and publish
  // order checks; not the insertion of a new origin).
  uint64_t origin_lookups = 0;
  // As a root: searches of the replay buffer for a number being replicated
  // (FlushReplicates) or released (ReleaseConfirmed); the next number of a
  // run is taken from the entry after the last one without a search.
  uint64_t replay_searches = 0;
  // Topics the maintenance pass looked at to age their replay buffers out
  // (TrimReplay): only those that stored a message since their buffer last
  // emptied, not every topic.
  uint64_t replay_trim_visits = 0;
  // Publishes of this node numbered at once as their topic's root, with no
  // replica peer to wait for: not sent to itself, not acknowledged by a
  // message (Publish; also counted in published).
  uint64_t publishes_numbered_at_once = 0;
  uint64_t publishes_rerouted = 0;      // direct publishes to a node no longer root
  // Acknowledgements held until every replica peer held the message; of
  // those, sent without all confirmations because more than replay_capacity
  // waited on one topic, and not sent because this node stopped being the
  // topic's root meanwhile (the publisher's resend goes to the new root).
  uint64_t publish_acks_waiting_replicas = 0;
  uint64_t publish_acks_unconfirmed = 0;
  uint64_t publish_acks_abandoned = 0;
  uint64_t replica_resends = 0;  // unconfirmed copies sent to a replica again
  // Replicate messages a root sent with numbers just stamped (one per run
  // of numbers per batch of work, each to every replica peer).
  uint64_t replicate_batches = 0;
  uint64_t lease_waits = 0;             // publishes held for a root lease
  // Of those, held by a root that lost every leaf-set neighbour, within
  // lone_root_grace of the loss.
  uint64_t lone_root_waits = 0;
  // As a replica: messages not confirmed because this node holds another
  // one under the same number (two roots numbered the topic).
  uint64_t replica_conflicts = 0;
  // As a replica: tentative messages (beyond the commit index a root told
  // it) replaced by another message a root released under that number.
  uint64_t replica_tentative_replaced = 0;
  uint64_t leases_refused = 0;  // as a replica: max_lease_grants reached
  // As a replica: Replicates from a root whose term is below the highest
  // this node has seen, while that term's root lives (docs/scribe.md,
  // "Entry terms"): not confirmed, no lease, the replica's state sent.
  uint64_t replica_stale_terms = 0;
  // As a replica ahead of the root: its state sent to the root, and sends
  // held back because one went to that root within replica_resend_interval.
  uint64_t replica_states_sent = 0;
  uint64_t replica_sends_limited = 0;
  // As a root: replica confirmations and leases from nodes not in the
  // topic's replica set, ignored.
  uint64_t replica_acks_ignored = 0;
  uint64_t rival_roots_merged = 0;      // another root's numbering taken in
  // Numbers given here, never multicast (they wait for the replicas), taken
  // back because another root gave them to other publishes.
  uint64_t numbers_withdrawn = 0;
  // Publish order (docs/scribe.md): publishes held as root until their
  // publisher's previous one was numbered; publishes numbered without it
  // (publish_order_wait passed, or max_reorder waiting); routed publishes
  // that ended at a node not closest to the topic, passed to the closest.
  uint64_t publishes_held_for_order = 0;
  uint64_t publishes_order_forced = 0;
  // As a root: publishes held because the topic's replica window was full
  // (docs/scribe.md, "The replica window"), and held ones numbered past it
  // because the hold was full (max_pending_publishes held on the topic).
  uint64_t publishes_held_for_window = 0;
  uint64_t publishes_window_forced = 0;
  // Payload bytes in the replay buffers and replicas' copies now (a gauge),
  // and messages dropped from them early because it passed
  // max_replay_bytes.
  uint64_t replay_bytes = 0;
  uint64_t replay_evicted_for_bytes = 0;
  uint64_t publishes_passed_on = 0;
  uint64_t root_cache_hits = 0;         // publishes sent straight to a cached root
  uint64_t root_cache_misses = 0;       // publishes routed (no cached root)
  // Anycast.
  uint64_t anycasts_sent = 0;       // requested here
  uint64_t anycasts_visited = 0;    // tree-walk visits of this node
  uint64_t anycasts_accepted = 0;   // accepted by a local subscriber here
  uint64_t anycasts_failed = 0;     // requested here, completed with an error
  // Bottleneck remover.
  uint64_t pushdowns = 0;           // children told to join through a sibling
  // Push-downs that moved the newcomer rather than a farther settled child
  // because max_moving_children were being moved already.
  uint64_t pushdowns_limited = 0;
  uint64_t moves = 0;               // re-parented here after a push-down
  uint64_t joins_refused = 0;       // NACKed for lack of room
  // Tree state or a replica refused: max_topics reached (docs/limits.md).
  uint64_t topics_refused = 0;
  uint64_t topics_forgotten = 0;  // idle topics a root forgot (topic_idle_timeout)
  // Numberings of forgotten topics dropped to remember newer ones
  // (max_topics remembered within 2 x replica_ttl).
  uint64_t numberings_dropped = 0;
};

// One topic as this node holds it; a snapshot for status pages.
struct TopicInfo {
  std::string id_hex;
  std::string name;  // empty unless a local subscription knows it
  bool is_root = false;
  bool attached = false;
  std::string parent_id_hex;  // empty at the root or while detached
  size_t child_count = 0;
  uint64_t next_seq = 0;  // next number to deliver here (0: not started)
  uint64_t last_seq = 0;  // highest number seen here (root: stamped), 0 none
  size_t local_subscribers = 0;
};

// Completion of Publish: the sequence number the root gave the message, or
// an error (DeadlineExceeded: no acknowledgement within publish_timeout;
// the message may still have been published). Move-only: a caller's
// callable may tell when it is destroyed uncalled (Scribe destroyed with
// the publish outstanding), as the Redis gateway's does.
using PublishCallback = absl::AnyInvocable<void(absl::StatusOr<uint64_t> seq)>;
// Completion of Anycast: the node whose subscriber accepted, or NotFound (no
// subscriber accepted), DeadlineExceeded, ResourceExhausted (the walk hit
// max_anycast_visits) or Unavailable (no tree, or it changed under the walk).
using AnycastCallback =
    std::function<void(absl::StatusOr<pastry::NodeHandle> accepted_by)>;

class Scribe final : public pastry::Application {
 public:
  // Registers the application on its node; typically
  //   [&](pastry::Application* a) {
  //     return node.RegisterApplication(kScribeAppId, a); }
  using Registrar = absl::FunctionRef<std::unique_ptr<pastry::Overlay>(
      pastry::Application*)>;

  explicit Scribe(Registrar register_app, ScribeOptions options = {});
  ~Scribe() override;
  Scribe(const Scribe&) = delete;
  Scribe& operator=(const Scribe&) = delete;

  // REQUIRES for Subscribe and Publish: the node has started (StartRing or
  // Join called); before that the overlay drops routes and runs no timers.
  //
  // Subscribes to `topic`. on_active may run before this returns (when this
  // node is the topic's root). InvalidArgument if the name is empty or too long,
  // or on_message is empty.
  absl::StatusOr<SubscriptionId> Subscribe(std::string_view topic,
                                           SubscribeOptions options);
  // NotFound if `id` is not a live subscription.
  absl::Status Unsubscribe(SubscriptionId id);
  // Sends `payload` to the topic's subscribers through its root.
  // InvalidArgument for an empty or long name or a payload over the limit.
  absl::Status Publish(std::string_view topic, Payload payload);
  // As above, and asks the root to acknowledge: `done` runs once, on this
  // node's thread, with the message's sequence number or an error (see
  // PublishCallback). The root acknowledges once every node of its replica
  // set holds the message (at once with replicas = 0). Sent straight to the
  // topic's root when its address is cached from an earlier
  // acknowledgement, else routed; resent (routed) every publish_retry until
  // acknowledged. When this node is the topic's root and has no replica
  // peer (one node; --replicas 0), the message is numbered, delivered to
  // the local subscribers and `done` run before this returns; not when this
  // node has no state for the topic yet (its first publish), holds
  // publishes (a fresh root's grace, no lease), has numbers waiting for
  // replicas or an earlier acknowledged publish to the topic in flight, or
  // when called from a callback of this Scribe (a subscriber's handler, a
  // `done`). Then it goes the long way: routed (numbered in this call when
  // the route ends here) or, to a cached root, sent (to itself: numbered
  // later), and `done` runs later. Errors returned here are local
  // (as above, or ResourceExhausted: too many publishes in flight); `done`
  // does not run then, and is left to the caller (not moved from).
  absl::Status Publish(std::string_view topic, Payload payload,
                       PublishCallback&& done);
  // Offers `payload` to one subscriber of `topic` whose on_anycast accepts
  // it: routed toward the topic until it meets the tree, then a depth-first
  // walk of the tree (Scribe's anycast). `done` runs once with the node that
  // accepted, or an error (see AnycastCallback). Local errors as Publish.
  absl::Status Anycast(std::string_view topic, std::string payload,
                       AnycastCallback done);

  // True if this node is on the topic's tree (root, or acknowledged).
  bool IsAttached(std::string_view topic) const;
  bool IsRoot(std::string_view topic) const;
  // True if this node forgot `topic` as its root and remembers its
  // numbering (ForgetIdleTopics; for tests).
  bool RemembersNumbering(std::string_view topic) const;
  // Number of topics with tree state here, and of those this node roots.
  size_t topic_count() const { return topics_.size(); }
  size_t root_count() const;
  // Children of `topic` here (0 if no state).
  size_t ChildCount(std::string_view topic) const;
  // Children over all topics.
  size_t children_total() const;
  // Every topic with tree state here, ordered by id.
  std::vector<TopicInfo> Topics() const;
  // The root address cached for `topic`, if any.
  std::optional<NodeHandle> CachedRoot(std::string_view topic) const;
  const ScribeStats& stats() const { return stats_; }
  // The payload bytes of every replay buffer and replica's copies, added up
  // anew: what stats().replay_bytes keeps track of (for tests).
  uint64_t RecountReplayBytes() const;
  // The slots of `topic`'s replay buffer here and of this node's replica
  // copies of it, held or free (0 if neither): what their rings keep
  // allocated (for tests).
  size_t ReplaySlots(std::string_view topic) const;
  // The publishes of `topic`'s replay buffer here that are indexed by
  // origin (TopicState::origins), for tests.
  size_t OriginsIndexed(std::string_view topic) const;
  // Where warnings go (bounds reached, at most one a second); null, the
  // default: nowhere.
  void set_logger(std::shared_ptr<spdlog::logger> logger) { log_ = std::move(logger); }

  // pastry::Application.
  bool Forward(pastry::RouteMessage& msg, NodeHandle& next_hop) override;
  void Deliver(const pastry::RouteMessage& msg) override;
  void Update(const NodeHandle& node, bool joined) override;

 private:
  // scribe.cc: plumbing.
  NodeHandle Self() const { return overlay_->LocalHandle(); }
  absl::Time Now() const { return overlay_->Now(); }
  void SendTo(const NodeHandle& to, ScribeMessage msg);
  // `count`: the Scribe messages `bytes` holds (a list: several).
  void SendBytes(const NodeHandle& to, std::string bytes, size_t count = 1);
  // scribe_outbox.cc: messages to one node in one batch of work, bundled.
  struct Outbox;
  bool ReadsBundles(const NodeHandle& to) const { return Reads(to, kBundleVersion); }
  bool ReadsLists(const NodeHandle& to) const { return Reads(to, kBatchVersion); }
  bool ReadsListed(const NodeHandle& to) const { return Reads(to, kListedVersion); }
  bool Reads(const NodeHandle& to, uint16_t version) const;
  void NoteVersion(const NodeHandle& from, uint16_t version);
  Outbox& OutboxOf(const NodeHandle& to);
  void Queue(const NodeHandle& to, std::string bytes, size_t count);
  void QueueEncoded(Outbox& o, std::string bytes, size_t count);
  void QueueAck(const NodeHandle& to, const ReplicaAckMsg& ack);
  void CloseAcks(Outbox& o);
  void QueueListed(const NodeHandle& to, ListedMsg msg);
  void CloseListed(Outbox& o);
  void CloseLists(Outbox& o);
  void FlushOutbox();
  void SendOutbox();
  void SendQueued(const NodeHandle& to, std::vector<std::string> queued, size_t count);
  // scribe_data.cc: the Replicates of one FlushReplicates for nodes that
  // read lists, one list per node.
  using ReplicateList = std::pair<NodeHandle, std::vector<const ReplicateMsg*>>;
  void SendReplicateLists(absl::Span<const ReplicateList> lists);
  void RouteToTopic(const TopicId& topic, const ScribeMessage& msg);
  void Dispatch(const NodeHandle& from, ScribeMessage msg);
  void DispatchToSelf(uint64_t ticket);
  void ScheduleTick();
  void EnsureTicking();
  void Tick();
  void Maintenance();
  // Erases the root topics idle for topic_idle_timeout, remembering their
  // numbering (forgotten_); drops what it remembers past 2 x replica_ttl.
  void ForgetIdleTopics();
  // Drops the oldest remembered numberings so that `wanted` more fit under
  // max_topics (numberings_dropped).
  void MakeRoomToRemember(size_t wanted);
  // Erases entry's numbering from forgotten_ unless the entry is stale.
  bool DropForgotten(const std::pair<absl::Time, TopicId>& entry);
  // Keeps forgotten_order_ within twice forgotten_ (and a little) after
  // each ForgetIdleTopics: stale entries of topics made again would
  // otherwise wait out 2 x replica_ttl.
  void CompactForgottenOrder();
  absl::Status CheckTopic(std::string_view topic) const;
  absl::Status CheckMessage(std::string_view topic,
                            std::string_view payload) const;
  TopicState* Find(const TopicId& id);
  const TopicState* Find(const TopicId& id) const;
  TopicState* Create(const TopicId& id);
  void Erase(TopicId id);
  void NotifyActive(TopicState& t, bool active);
  // Counts a topic refused for max_topics, and logs it (rate-limited).
  void RefuseTopic(const TopicId& id, const char* what);
  // Whether debug lines are wanted: the root's decisions (becoming root,
  // handing over, numbering, lease waits, rival merges, replica conflicts)
  // are logged at debug level, checked first so the publish path pays a
  // load and a compare when they are not.
  bool LogsDebug() const;

  // scribe_tree.cc: joins, acks, leaves, heartbeats, root changes.
  bool OnForwardJoin(pastry::RouteMessage& msg, const JoinMsg& join);
  void OnDeliverJoin(const JoinMsg& join);
  void SendJoin(TopicState& t);
  JoinMsg OwnJoin(const TopicState& t) const;
  void Adopt(TopicState& t, const NodeHandle& child, bool reliable);
  void AckChild(TopicState& t, ChildState& child);
  void RefuseChild(TopicState& t, const NodeId& child);
  void BecomeRoot(TopicState& t, const char* why);
  void Detach(TopicState& t);
  void OnJoinAck(const NodeHandle& from, const JoinAckMsg& ack);
  void OnJoinNack(const NodeHandle& from, const JoinNackMsg& nack);
  void OnLeave(const NodeHandle& from, const LeaveMsg& leave);
  void OnHeartbeat(const NodeHandle& from, const HeartbeatMsg& hb);
  void OnHeartbeatReply(const NodeHandle& from, const HeartbeatReplyMsg& r);
  void AdoptPath(TopicState& t, const std::vector<NodeId>& parent_path);
  void LeaveIfUnwanted(TopicState& t);
  void SendHeartbeats();
  void ExpireChildren();
  void CheckParents();
  void RetryJoins();
  void HandOver(TopicState& t, const NodeHandle& new_root, const char* why);
  void OnDirectJoin(const JoinMsg& join);
  bool PushDown(TopicState& t, const NodeHandle& newcomer, bool reliable);
  void OnPushDown(const NodeHandle& from, const PushDownMsg& m);
  void ExpireMoves();

  // scribe_data.cc: publish, multicast, ordering, repair, replication.
  void OnRoutedPublish(PublishMsg publish);
  void OnDeliverPublish(PublishMsg publish);
  void OnDirectPublish(PublishMsg publish);
  void NumberInOrder(TopicState& t, PublishMsg publish);
  void StampChain(TopicState& t, PublishMsg publish, bool checked);
  void ReleaseOrderWaits();
  void ForceOutOfOrder(TopicState& t, PublishMsg publish, const char* why, bool checked);
  bool OriginHeld(const TopicState& t, const NodeId& publisher, uint64_t request);
  bool IsClosestTo(const TopicId& id) const;
  uint64_t Stamp(TopicState& t, PublishMsg publish, bool alone);
  bool MayNumberNow(const TopicState& t, bool leased) const;
  bool HoldsOver(const TopicState& t) const;
  TopicState* NumbersAtOnce(const TopicId& id);
  uint64_t NumberAtOnce(TopicState& t, Payload payload);
  void AckPublish(const PublishMsg& publish, uint64_t seq);
  void ConfirmPublish(TopicState& t, const PublishMsg& publish, uint64_t seq);
  void WaitForReplicas(TopicState& t, uint64_t seq, const PublishMsg& publish, bool ack);
  void ReleaseOldestUnconfirmed(TopicState& t);
  // `acks`, if given, takes the publish acknowledgement instead of its
  // being sent (ReleaseConfirmed sends them after the data). `cursor`, if
  // given, is the replay entry of the number released before (it may be
  // stale) and is set to this number's (SeqMap::next_if).
  std::map<uint64_t, UnconfirmedPublish>::iterator ReleaseNumber(
      TopicState& t, std::map<uint64_t, UnconfirmedPublish>::iterator it,
      std::vector<std::pair<NodeHandle, PublishAckMsg>>* acks = nullptr,
      SeqMap<ReplayEntry>::iterator* cursor = nullptr);
  void ReleaseConfirmed(TopicState& t);
  // The root's commit index: it released every number below it.
  static uint64_t CommitIndex(const TopicState& t);
  // A root term above `known` (docs/scribe.md, "Entry terms").
  uint64_t NextTerm(uint64_t known) const;
  void WithdrawBelow(TopicState& t, uint64_t below);
  bool AloneForGood() const;
  void CheckUnconfirmed();
  void ResendUnconfirmed(TopicState& t);
  void AbandonUnconfirmed(TopicState& t);
  void OnPublishAck(const NodeHandle& from, const PublishAckMsg& ack);
  void SendPublish(uint64_t request);
  void CheckPendingPublishes();
  void CacheRoot(const TopicId& topic, const NodeHandle& root);
  void EraseReplay(TopicState& t, SeqMap<ReplayEntry>::iterator it);
  // Drops the origin of the entry at `it` (on its way out); returns `it`.
  SeqMap<ReplayEntry>::iterator ForgetOrigin(
      TopicState& t, SeqMap<ReplayEntry>::iterator it);
  void ReleaseHolds();
  // The replica window (docs/scribe.md, "The replica window"): at most this
  // many numbers of a topic wait for their replicas before the root holds
  // its new publishes.
  size_t ReplicaWindow() const;
  bool WindowFull(const TopicState& t) const;
  void HoldForWindow(TopicState& t, PublishMsg publish);
  void NumberHeld(TopicState& t);
  // Appends to / takes the oldest from the topic's held publishes.
  void Hold(TopicState& t, PublishMsg publish);
  PublishMsg TakeHeld(TopicState& t);
  void RaiseStamp(TopicState& t, uint64_t frontier);
  void OnData(const NodeHandle& from, DataMsg data);
  bool Accept(TopicState& t, DataMsg data, bool forward);
  bool IsNew(TopicState& t, uint64_t seq);
  void Admit(TopicState& t, uint64_t seq, const Payload& payload, bool forward);
  void Multicast(TopicState& t, uint64_t seq, const Payload& payload);
  void DeliverLocal(TopicState& t, uint64_t seq, const Payload& payload);
  void Drain(TopicState& t);
  void SetFrontier(TopicState& t, uint64_t next);
  void StartFrom(TopicState& t, uint64_t parent_next);
  void NoteKnownEnd(TopicState& t, uint64_t end);
  void UpdateGap(TopicState& t);
  // Keeps `payload` in the replay buffer under `seq` (unless kept there
  // already), with the root term it was numbered under (0: unknown).
  void Store(TopicState& t, uint64_t seq, Payload payload, uint64_t term = 0);
  // Replay entry `seq` newly kept with `payload` (in the byte count): where
  // no Store does it (a replica's messages taken over, a merge).
  void KeepReplay(TopicState& t, uint64_t seq, Payload payload, uint64_t term);
  void TrimReplay(TopicState& t);
  // TrimReplay on each topic of replaying_, dropping those left empty.
  void TrimReplays();
  // Past max_replay_bytes: the topic's oldest entries go, down to its
  // newest and not those its numbering still needs (ScribeOptions).
  void TrimReplayBytes(TopicState& t);
  size_t ReplayShare() const;
  // A replay entry's or a replica's copy's bytes, from `before` to `after`
  // in the topic's and the node's counts.
  void ChargeReplay(TopicState& t, size_t before, size_t after);
  // A replica's copies: kept, replaced, dropped, all in the byte count.
  void ChargeReplica(ReplicaState& replica, size_t before, size_t after);
  void EraseReplicaOldest(ReplicaState& replica);
  // A new, empty replica of `id` (the caller checked max_topics).
  absl::btree_map<TopicId, ReplicaState>::iterator AddReplica(const TopicId& id);
  void TrimReplicaBytes(ReplicaState& replica);
  void CheckGaps();
  void RequestRepair(TopicState& t);
  void OnRepairRequest(const RepairRequestMsg& request);
  void OnSkip(const SkipMsg& skip);
  std::vector<std::string> FullState(const TopicState& t, bool handover,
                                     uint64_t lease = 0) const;
  void Replicate(TopicState& t);
  // False if there is no replica peer to send it to.
  bool QueueReplicate(TopicState& t, uint64_t seq);
  void FlushReplicates();
  void ReplicateAll();
  void OnReplicate(const NodeHandle& from, ReplicateMsg r);
  void SendStateBehind(const NodeHandle& root, const TopicId& topic, ReplicaState& replica);
  void SendReplica(const NodeHandle& root, const TopicId& topic, const ReplicaState& replica);
  void TakeReplica(TopicState& t);
  void KeepAsReplica(const TopicState& t);
  void RememberOrigin(TopicState& t, const StoredMessage& m, bool index = true);
  void MergeRivalRoot(TopicState& t, ReplicateMsg& r, const NodeHandle& from);
  void WaitAsTakenOver(TopicState& t, const StoredMessage& m);
  void MoveIntoDuplicate(TopicState& t, const StoredMessage& m,
                         const UnconfirmedPublish& displaced, Payload payload);
  bool TermRootLives(const ReplicaState& replica) const;
  bool Deposed(const TopicState& t) const;
  bool GrantLease(ReplicaState& replica, const NodeId& root);
  const std::vector<NodeHandle>& ReplicaSetOf(const TopicState& t) const;
  // A topic's replica peers: held inline up to the default replica count,
  // as UnconfirmedPublish::holders (no allocation per call on most rings).
  using ReplicaPeerList = absl::InlinedVector<NodeHandle, 4>;
  ReplicaPeerList ReplicaPeers(const TopicState& t) const;
  bool HasReplicaPeers(const TopicState& t) const;
  bool HoldsLease(const TopicState& t) const;
  bool ReplicaPeersCoverLosses(const TopicState& t) const;
  void AskLease(TopicState& t);
  void OnReplicaAck(const NodeHandle& from, const ReplicaAckMsg& ack);
  void StampOrAck(TopicState& t, PublishMsg publish);
  bool AckIfNumbered(TopicState& t, const PublishMsg& publish);

  // scribe_anycast.cc: anycast by depth-first search of the tree.
  bool OnForwardAnycast(const AnycastMsg& m);
  void OnDeliverAnycast(AnycastMsg m);
  void AnycastStep(AnycastMsg m);
  bool VisitForAnycast(AnycastMsg& m, bool climbing);
  void ReplyAnycast(const AnycastMsg& m, AnycastOutcome outcome);
  void OnAnycastReply(const AnycastReplyMsg& reply);
  void CheckPendingAnycasts();
  uint64_t NextRequest();

  struct PendingPublish {
    TopicId topic;
    Payload payload;
    PublishCallback done;
    absl::Time deadline;
    absl::Time resend_at;
    int sends = 0;
    std::optional<NodeHandle> via_cache;  // the cached root it went to
    uint64_t after = 0;  // the previous publish to the topic, if pending then
  };
  struct PendingAnycast {
    AnycastCallback done;
    absl::Time deadline;
  };
  // This node's publishes to one topic in flight: how many, and the last
  // one made, which the next names as its predecessor (PublishMsg::after)
  // so the root numbers them in order (docs/scribe.md, publish order).
  struct PublishPath {
    size_t in_flight = 0;
    uint64_t last = 0;
  };
  void ReleasePublishPath(const TopicId& topic);

  ScribeOptions options_;
  std::unique_ptr<pastry::Overlay> overlay_;
  // Ordered containers wherever Scribe iterates: what it sends, and in what
  // order, must not depend on absl's per-process hash seed (an address,
  // which changes with address-space randomisation), so the same simulated
  // run gives the same result in every process. Hash maps only for
  // look-ups (subscriptions_, publish_paths_, TopicState::origins).
  absl::btree_map<TopicId, std::unique_ptr<TopicState>> topics_;
  absl::flat_hash_map<SubscriptionId, TopicId> subscriptions_;
  absl::btree_map<TopicId, ReplicaState> replicas_;
  // Topics this node rooted and forgot for being idle (ForgetIdleTopics):
  // the term and next number they had, which this node continues if it
  // becomes the topic's root again (BecomeRoot) while its replicas may
  // still hold that numbering; at most max_topics of them (the oldest
  // make room, MakeRoomToRemember).
  struct ForgottenTopic {
    uint64_t term = 0;
    uint64_t next_stamp = 1;
    absl::Time at;
  };
  absl::btree_map<TopicId, ForgottenTopic> forgotten_;
  // (at, id) per numbering remembered, oldest first, for expiry and for
  // making room without a pass over forgotten_; may hold stale entries.
  std::deque<std::pair<absl::Time, TopicId>> forgotten_order_;
  absl::btree_set<TopicId> joining_;  // waiting for an ack
  absl::btree_set<TopicId> gapped_;   // waiting for a missing seq
  absl::btree_set<TopicId> holding_;  // roots holding publishes
  absl::btree_set<TopicId> confirming_;  // roots with unconfirmed publishes
  absl::btree_set<TopicId> ordering_;    // roots holding publishes for order
  // Roots with numbers queued for their replicas (TopicState::to_replicate),
  // sent by FlushReplicates from a zero-delay timer, scheduled once.
  absl::btree_set<TopicId> replicating_;
  // FlushReplicates' containers, kept from one flush to the next for their
  // capacity (each flush allocated them anew: per topic a Replicate and its
  // message list, per peer a list growing). Used by FlushReplicates and
  // SendReplicateLists only, which run from the flush's timer, never inside
  // each other; what a flush leaves is cleared (no payload stays shared)
  // and bounded (TrimReplicateScratch).
  struct ReplicateScratch {
    std::vector<TopicId> ids;
    std::vector<uint64_t> seqs;
    // The Replicates made for peers that read lists: the first `made` are
    // this flush's. A deque: their addresses stay as it grows.
    std::deque<ReplicateMsg> made_replicates;
    size_t made = 0;
    // Each peer's Replicates, in order: the first `peers` are this flush's.
    std::vector<ReplicateList> lists;
    size_t peers = 0;
    // The peers met so far, each with its list's index (-1: reads none).
    std::vector<std::pair<NodeHandle, int>> peer_lists;
    std::vector<std::string> encoded;  // SendReplicateLists': one list's parts
    std::vector<size_t> counts;        // and the Replicates in each
  };
  ReplicateScratch replicate_scratch_;
  void TrimReplicateScratch();
  // ReleaseConfirmed's acknowledgements, kept for their capacity (taken
  // while in use: a handler run by a release may release again).
  std::vector<std::pair<NodeHandle, PublishAckMsg>> release_acks_;
  // Topics whose replay buffer may hold entries or ring slots: every one
  // that stored a message (Store, KeepReplay) until TrimReplay found its
  // buffer empty and its ring given back. The maintenance pass trims only
  // these, in TopicId order as it walked topics_ before.
  absl::btree_set<TopicId> replaying_;
  bool replicate_flush_scheduled_ = false;
  // By request (ascending: NextRequest). A std::map, whose nodes never
  // move (SendPublish keeps a reference across a send that may reach a
  // handler that publishes), and whose nodes are recycled: an
  // acknowledged publish's node waits in spare_pending_ (at most
  // kSparePending) for the next publish, where a btree freed its root
  // node and allocated it again for every publish on one node.
  std::map<uint64_t, PendingPublish> pending_publishes_;
  std::vector<std::map<uint64_t, PendingPublish>::node_type> spare_pending_;
  PendingPublish& AddPending(uint64_t request);
  std::map<uint64_t, PendingPublish>::iterator ErasePending(
      std::map<uint64_t, PendingPublish>::iterator it);
  absl::btree_map<uint64_t, PendingAnycast> pending_anycasts_;
  RootCache root_cache_{options_.root_cache_size};
  // Looked up only; a hash map keeps its slots when its last entry goes
  // (a btree frees its root node: an allocation per publish on one node).
  absl::flat_hash_map<TopicId, PublishPath> publish_paths_;
  // Round trips measured on heartbeats to each parent node.
  absl::btree_map<NodeId, absl::Time> heartbeat_sent_;
  absl::btree_map<NodeId, absl::Duration> parent_rtt_;
  uint64_t next_request_ = 0;  // set on first use from the clock
  // The application's callbacks running now (a subscriber's on_message,
  // on_active or on_anycast, a publish's or anycast's done), nested: a
  // publish made from one is not numbered at once (NumbersAtOnce), so done
  // callbacks that publish again do not recurse (each publish's done would
  // run inside the last), and a handler's acknowledged publish is answered
  // later, as before. (A delivery of a topic that starts inside another
  // waits for it: TopicState::delivering.)
  int callbacks_running_ = 0;
  class InCallback {
   public:
    explicit InCallback(int& running) : running_(running) { ++running_; }
    ~InCallback() { --running_; }
    InCallback(const InCallback&) = delete;
    InCallback& operator=(const InCallback&) = delete;

   private:
    int& running_;
  };
  // Every call of an application callback goes through here, counted in
  // callbacks_running_ while it runs; nothing else takes an InCallback.
  // A template, not a std::function: on_message runs per message and
  // subscriber, and this inlines.
  template <typename F, typename... Args>
  decltype(auto) RunCallback(F&& callback, Args&&... args) {
    InCallback in_callback(callbacks_running_);
    return std::forward<F>(callback)(std::forward<Args>(args)...);
  }
  SubscriptionId next_subscription_ = 1;
  bool ticking_ = false;
  absl::Time next_maintenance_ = absl::InfinitePast();
  absl::Time next_replication_ = absl::InfinitePast();
  ScribeStats stats_;
  std::shared_ptr<spdlog::logger> log_;
  // Messages SendTo gave this node itself, each waiting for its zero-delay
  // timer (DispatchToSelf), in ticket order from to_self_head_ on.
  struct ToSelf {
    uint64_t ticket;
    ScribeMessage msg;
  };
  std::vector<ToSelf> to_self_;
  size_t to_self_head_ = 0;
  uint64_t next_to_self_ = 1;
  // Encoded messages for nodes that read bundles (ReadsBundles), in the
  // order sent, until FlushOutbox (a zero-delay timer, scheduled once)
  // sends each node's as one payload. Few nodes per batch of work.
  // ReplicaAcks for a node that reads lists (ReadsLists) sent one after
  // another wait in `acks` and go in `queued` as one list (CloseAcks) when
  // something else is queued after them or the outbox is sent. Publishes,
  // data and PublishAcks for a node that reads `listed` lists (ReadsListed)
  // wait in `listed` (at most one of `acks` and `listed` is not empty) and
  // go in as one list (CloseListed) the same way.
  struct Outbox {
    NodeHandle to;
    std::vector<std::string> queued;
    size_t bytes = 0;
    size_t messages = 0;  // in `queued`, a list's each counted
    std::vector<ReplicaAckMsg> acks;
    std::vector<ListedMsg> listed;
    size_t listed_bytes = 0;  // payload bytes in `listed`
  };
  std::vector<Outbox> outbox_;
  bool outbox_flush_scheduled_ = false;
  // The Scribe version each node last wrote to us, for the run of it we
  // heard (its incarnation; 0: not known). At most kMaxPeerVersions.
  struct PeerVersion {
    uint64_t incarnation = 0;
    uint16_t version = 0;
  };
  absl::flat_hash_map<NodeId, PeerVersion> peer_versions_;
  LogLimit bound_warn_;
  // For fresh_root_grace: when this Scribe started, and when a leaf-set
  // neighbour was last reported gone.
  absl::Time started_at_ = absl::InfinitePast();
  absl::Time last_neighbour_loss_ = absl::InfinitePast();
  // Leaf-set neighbours reported gone and not back, with when; pruned
  // lone_root_grace after the loss (ReplicaPeersCoverLosses). At most the
  // neighbours lost within lone_root_grace.
  absl::flat_hash_map<NodeId, absl::Time> lost_neighbours_;
  // Whether a leaf-set neighbour was ever reported (lone_root_grace).
  bool had_neighbour_ = false;
  // The most leaf-set neighbours this node has had: a ring never larger
  // than a replica set has no partial leaf set to mistake for a whole one.
  size_t widest_leaf_set_ = 0;
};

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_SCRIBE_H_

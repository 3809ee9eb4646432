// Per-topic state a Scribe node keeps: its place in the tree (parent,
// children, path to the root), its local subscriptions, and the sequencing
// state (delivery frontier, out-of-order messages, replay buffer).
// Private to pubsub/.
#ifndef PETER_PUBSUB_TOPIC_STATE_H_
#define PETER_PUBSUB_TOPIC_STATE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/time/time.h"
#include "pubsub/lazy_deque.h"
#include "pubsub/messages.h"
#include "pubsub/origin_index.h"
#include "pubsub/seq_map.h"
#include "pubsub/subscription.h"

namespace peter::pubsub {

struct ChildState {
  NodeHandle handle;
  absl::Time last_heard;
  bool acked = false;     // told it is on the tree
  bool reliable = false;  // its subtree repairs gaps
  // Round trip the child measured to us (heartbeats); Infinite if unknown.
  absl::Duration rtt = absl::InfiniteDuration();
  // Pushed down (told to join through another child): still served until
  // it leaves, not counted against max_children, dropped (NACK) if it is
  // still here after child_timeout.
  bool moving = false;
  absl::Time moving_since = absl::InfinitePast();
  uint64_t pushed_to = 0;  // children pushed down to join through this one
};

// Handlers are shared so a handler may subscribe or unsubscribe while it
// runs without invalidating the one being called.
struct LocalSubscription {
  SubscriptionId id = 0;
  std::shared_ptr<const SubscribeOptions> options;
};

struct ReplayEntry {
  Payload payload;
  absl::Time stored;
  NodeId publisher;      // of a publish with an origin (root side)
  uint64_t request = 0;  // 0: unknown / no origin
  // Root side: the root term it was numbered under (StoredMessage::term).
  uint64_t term = 0;
};

// An acknowledged publish, as the root recognises a resend of it.
using PublishOrigin = std::pair<NodeId, uint64_t>;

// Root side: a number given here that waits until every replica peer
// holds it (and every number before it): only then is the message
// multicast, and its publish acknowledged. A root that fails after
// confirming must not take the message with it, and a number a rival root
// gave to another message must not reach subscribers.
struct UnconfirmedPublish {
  NodeHandle publisher;  // the last copy's sender: the ack goes there
  uint64_t request = 0;
  // Replica peers that confirmed holding it: held inline up to the
  // default replica count (no allocation per number on most rings).
  absl::InlinedVector<NodeId, 4> holders;
  absl::Time sent;              // when it was last sent to the replicas
  bool ack = false;             // an acknowledged publish (else best effort)
  // Taken over from this node's replica when it became root (TakeReplica),
  // not numbered here: the root it came from may have released it.
  bool taken_over = false;
  // Numbered here, and sent back by a rival root that took it over from its
  // replica and never released it (MergeRivalRoot): it waits as one taken
  // over for a joiner's frontier (WithdrawBelow), but a replica's state
  // does not release it (the replica may count what it confirmed to that
  // rival as released).
  bool echoed = false;
};

struct TopicState {
  TopicId id;
  std::string name;  // known where subscribed locally; else empty

  // Tree.
  std::optional<NodeHandle> parent;
  bool root = false;
  bool attached = false;       // root, or acknowledged by the parent
  std::vector<NodeId> path;    // this node first, the root last
  absl::Time last_parent_contact = absl::InfinitePast();
  absl::Time join_sent = absl::InfinitePast();
  // Pushed down by our parent: joining through `moving_to` while still
  // attached to the parent.
  std::optional<NodeId> moving_to;
  absl::Time moving_since = absl::InfinitePast();
  absl::btree_map<NodeId, ChildState> children;  // ordered: sent in this order
  std::vector<LocalSubscription> subs;

  // Sequencing. `next` is the first sequence number not yet delivered
  // locally (0: unknown until attached); `held` are later ones received
  // early; `replay` the recent messages kept for repair.
  uint64_t next_stamp = 1;  // root only: the number the next publish gets
  // The root term this node numbers under (docs/scribe.md, "Entry terms"),
  // above every term it knew when it became root (Scribe::NextTerm); kept
  // when it hands over, so that it takes a higher one if it becomes root
  // again. 0: never root.
  uint64_t term = 0;
  // Root only: a higher term a merged state showed, of a root closer to
  // the topic, and when it was last shown. While it is above `term` (and
  // for lone_root_grace after the last showing) this root is deposed: it
  // numbers and releases nothing, and waits to hand over.
  uint64_t higher_term = 0;
  absl::Time higher_term_at = absl::InfinitePast();
  uint64_t next = 0;
  uint64_t known_end = 0;  // one past the highest number known to exist
  std::map<uint64_t, Payload> held;
  // Inside Scribe::DeliverLocal: a number that comes next meanwhile (a
  // handler's publish, numbered at once at a root without replicas) waits
  // in `held` until the delivery in progress has reached every subscriber.
  bool delivering = false;
  absl::Time gap_since = absl::InfiniteFuture();
  absl::Time repair_sent = absl::InfinitePast();
  uint64_t repair_from = 0;  // `next` when the last repair was requested
  // A ring (SeqMap): its iterators do not last across a call that may
  // store (a subscriber's handler, Accept, Store, KeepReplay), see
  // pubsub/seq_map.h.
  SeqMap<ReplayEntry> replay;
  // The payload bytes in `replay`, counted in the node's max_replay_bytes.
  size_t replay_bytes = 0;
  // Where the oldest message in `replay` kept its payload when the buffer
  // was last trimmed: only asked for ahead of the next trim (PrefetchReplay),
  // never read, so it may be stale.
  const void* oldest_block = nullptr;

  // Asks the processor for what storing a message and trimming the oldest
  // will touch (the ring's ends, the oldest payload's block) without
  // waiting: called as soon as a publish's topic is found, the loads run
  // while it is checked and delivered. A topic among many last stored a
  // message many messages ago, and those were loads in a row, each waited
  // for (docs/benchmarks.md, session 23).
  void PrefetchReplay() const {
    replay.PrefetchEnds();
    Payload::PrefetchBlock(oldest_block);
  }
  // Publishes in `replay` with an origin (acknowledged or best effort), by
  // origin (root side), but the root's own numbered at once (Scribe::Stamp:
  // no second copy of one can arrive); bounded by the replay buffer.
  OriginIndex origins;

  // Root only: publishes held until `hold_until` (see fresh_root_grace),
  // for a root lease, or while the replica window is full (oldest first).
  absl::Time hold_until = absl::InfinitePast();
  // Made on the first hold: most topics never hold (pubsub/lazy_deque.h).
  LazyDeque<PublishMsg> held_publishes;
  // The origins of those with one: a resend of a held publish is not held
  // twice (numbered after its origin left the replay buffer, it would be
  // numbered twice).
  absl::flat_hash_set<PublishOrigin> held_origins;
  // A cache: the overlay's ReplicaSet(id, replicas + 1) (this node
  // included, closest first) as of leaf-set version `replica_set_version`;
  // see Scribe::ReplicaSetOf.
  mutable std::vector<NodeHandle> replica_set;
  mutable std::optional<uint64_t> replica_set_version;
  // Root only: numbers stamped since the last FlushReplicates, in order,
  // to be sent to the replica peers in one Replicate.
  std::vector<uint64_t> to_replicate;
  // Root only: the replica set last sent the full state.
  std::vector<NodeId> replicated_to;
  // Root only: until when each replica has promised not to number the
  // topic itself (root leases), and when a lease was last asked for.
  absl::flat_hash_map<NodeId, absl::Time> leases;
  absl::Time lease_asked = absl::InfinitePast();
  // Root only: numbers waiting for the replicas before their multicast and
  // acknowledgement; at most replay_capacity.
  std::map<uint64_t, UnconfirmedPublish> unconfirmed;
  // Root only: publishes waiting for their publisher's previous one (their
  // `after`), keyed by that one's origin; at most max_reorder. `since` is
  // the oldest wait of the chain behind it (a publish waited for inherits
  // it), so a chain's head times out first (publish_order_wait).
  struct OrderWait {
    PublishMsg publish;
    absl::Time since;
  };
  absl::btree_map<PublishOrigin, OrderWait> order_waits;

  // Root only: when it last had a subscriber or child (as of the last
  // maintenance), or a publish; see ScribeOptions::topic_idle_timeout.
  absl::Time last_used = absl::InfinitePast();

  bool Wanted() const { return !subs.empty() || !children.empty() || root; }
  // Children counted against max_children (not being pushed down).
  size_t SettledChildren() const;
  bool Reliable() const;
  bool OnPath(const NodeId& id) const;
  // One past the highest sequence number seen here, 0 if none.
  uint64_t SeenEnd() const;
  // True while messages between `next` and `known_end` are missing.
  bool HasGap() const { return next != 0 && next < known_end; }
};

// What a replica keeps for a topic whose root is a neighbour.
struct ReplicaState {
  uint64_t next_stamp = 1;
  // The highest commit index a root replicated here (ReplicateMsg::commit):
  // a message held under a number below it was released by its root; one
  // from it on may have been held back and never released (tentative).
  uint64_t commit = 0;
  // The highest root term a Replicate showed, and the root that sent it: a
  // root with a lower one gets no confirmation and no lease from here while
  // that root is alive as far as this node knows (docs/scribe.md, "Entry
  // terms").
  uint64_t term = 0;
  NodeId term_root;
  // One past the highest number this replica confirmed to a root (the last
  // one it confirmed to: `confirmed_root`), which may have released it;
  // and one past the highest it confirmed to another root before. No other
  // root's message replaces one confirmed to a root, and the state sent to
  // a root counts what was confirmed to others as released (docs/scribe.md,
  // "Entry terms").
  uint64_t confirmed_end = 0;
  NodeId confirmed_root;
  uint64_t protected_end = 0;
  // Each message keeps the term it was numbered under: a message of a
  // higher term replaces a tentative one (from `commit` on) of a lower term.
  // A ring, as TopicState::replay (the root's messages arrive in order and
  // leave from the oldest): no iterator or reference into it is kept across
  // a call that may store into it (pubsub/seq_map.h).
  SeqMap<StoredMessage> messages;
  // The payload bytes in `messages`, counted in the node's max_replay_bytes.
  size_t bytes = 0;
  absl::Time refreshed;
  // Root leases granted: until when this node promised each root not to
  // number the topic itself.
  absl::flat_hash_map<NodeId, absl::Time> granted;
  // The last root this replica sent its state to (behind it), and when:
  // at most once per ScribeOptions::replica_resend_interval to one root.
  NodeId state_sent_to;
  absl::Time state_sent_at = absl::InfinitePast();
  uint64_t state_sent_term = 0;  // `term` as of that send
};

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_TOPIC_STATE_H_

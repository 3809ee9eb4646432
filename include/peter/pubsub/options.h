// Tunables of Scribe. Defaults suit a data-centre cluster (round trips of a
// millisecond or less) and the overlay's defaults (failures detected in
// about 2 s): a dead parent is noticed within about 3 s and the tree is
// repaired a join round trip later.
#ifndef PETER_PUBSUB_OPTIONS_H_
#define PETER_PUBSUB_OPTIONS_H_

#include <cstddef>

#include "absl/time/time.h"

namespace peter::pubsub {

struct ScribeOptions {
  // Largest topic name and message payload accepted by Subscribe/Publish.
  size_t max_topic_name_bytes = 1024;
  size_t max_payload_bytes = size_t{1} << 20;

  // A join not acknowledged within this time is sent again.
  absl::Duration join_timeout = absl::Seconds(1);
  // Children send their parent a heartbeat this often (FreePastry: 180 s).
  absl::Duration heartbeat_interval = absl::Seconds(1);
  // A child that has heard nothing from its parent for this long joins
  // again; at least a few heartbeat intervals.
  absl::Duration parent_timeout = absl::Seconds(3);
  // A parent drops a child it has not heard from for this long.
  absl::Duration child_timeout = absl::Seconds(5);

  // Messages kept per topic for gap repair, by count and by age (whichever
  // bound bites first), on the root and on tree nodes with a reliable
  // subscriber or child (a best-effort tree's other nodes keep none).
  size_t replay_capacity = 1024;
  absl::Duration replay_max_age = absl::Seconds(60);
  // Payload bytes this node keeps in all its replay buffers and replicas'
  // copies together. Past it, the topic storing a message drops its own
  // oldest ones first if it holds more than its share (the bound divided by
  // the topics and replicas here), down to its newest and to what its
  // numbering still needs (a root's numbers waiting for the replicas or
  // queued for them, a replica's numbers its root has not released). Those,
  // and topics within their share, may take the node past it, to at most
  // about twice it. Without it a publisher of large messages held
  // replay_capacity of them per topic (1,024 x 1 MiB on one channel).
  size_t max_replay_bytes = size_t{256} << 20;
  // Out-of-order messages held per topic while waiting for a missing one;
  // beyond it a best-effort node skips the gap.
  size_t max_reorder = 256;
  // A gap is repaired (reliable) or skipped (best effort) after this long.
  absl::Duration reorder_timeout = absl::Milliseconds(200);
  // An unanswered repair request is sent again after this long.
  absl::Duration repair_retry = absl::Milliseconds(500);

  // The root copies each topic's next sequence number and recent messages to
  // this many nodes of its replica set (the nodes that become root if it
  // fails), at each publish and every replicate_interval in full. Numbering
  // survives unless the root and all of them fail together. At most the
  // overlay's leaf-set size.
  int replicas = 4;
  absl::Duration replicate_interval = absl::Seconds(2);
  // Root lease: the root numbers publishes only while every node of its
  // replica set has granted it a lease, asked for at most root_lease ago
  // (leases are renewed with the replication every replicate_interval), and
  // a replica that becomes root waits until the last lease it granted has
  // run out. A root that was paused or cut off therefore cannot number
  // publishes that reach it late while a successor numbers the same topic.
  // Zero turns leases off. More than replicate_interval.
  absl::Duration root_lease = absl::Seconds(3);
  // Root leases one replica holds granted per topic at once. Legitimately
  // one root at a time asks, two or three around a hand-over; the bound
  // keeps a peer that names ever new ids in its replication messages from
  // growing the table. Expired grants are dropped first; at the bound a
  // lease is refused (leases_refused), so the asking root keeps holding
  // its publishes and asks again: the safe side.
  size_t max_lease_grants = 8;
  // A replica ahead of the root (the root numbers behind what it holds: it
  // restarted without its state, or another root numbered meanwhile) sends
  // the root its whole state (up to replay_capacity messages) so the root
  // catches up. Every Replicate of the root shows it behind until that
  // state arrives, so without a bound a replica would send it once per
  // publish in flight. It is sent again to the same root of a topic only
  // after this long (replica_sends_limited counts the ones held back); a
  // lost send is repeated then.
  absl::Duration replica_resend_interval = absl::Seconds(1);
  // A root whose replica set became empty because it lost every leaf-set
  // neighbour (they failed, or it is cut off from them) cannot tell a
  // cluster shrunk to one node from a partition whose other side has a new
  // root numbering the topic. It holds publishes, as a root without a
  // lease, until a neighbour is back and grants it a lease (after the other
  // side's root hands the topic back with its numbers), or until this long
  // after it lost its last neighbour: then it numbers alone. A node that
  // never had a neighbour (a one-node cluster) numbers at once. Longer
  // than the cut-offs it should survive without giving a number twice;
  // shorter than publish_timeout less publish_retry, so a publish held by a
  // root left alone is still confirmed. Used only with root leases.
  absl::Duration lone_root_grace = absl::Seconds(8);
  // A node that becomes a topic's root through a publish, with neither a
  // replica nor any state of its own for the topic, may be taking over
  // from a root that failed together with all its replicas, or whose
  // hand-over to this (new) node is still in flight. If this node started,
  // or lost a leaf-set neighbour, less than this long ago, it holds
  // publishes until this long after that event, while the old tree's
  // members re-join and report how far the numbering had gone; otherwise
  // the topic is new and is numbered at once. At least parent_timeout +
  // heartbeat_interval + join_timeout.
  absl::Duration fresh_root_grace = absl::Seconds(5);
  // Replicated state not refreshed for this long is dropped.
  absl::Duration replica_ttl = absl::Seconds(30);
  // A root forgets a topic that has had no local subscriber, no child and
  // no publish for this long, and holds nothing unconfirmed: its replicas
  // then drop theirs after replica_ttl. Without it every channel ever
  // published kept its state on its root and replicas for good, and a node
  // that had rooted max_topics channels refused all new ones (a Redis
  // application publishing to per-user channels). Its term and next number
  // are remembered for 2 x replica_ttl, so that a publish soon after
  // continues the numbering its replicas still hold. At least
  // publish_timeout (a late resend must still be recognised).
  absl::Duration topic_idle_timeout = absl::Seconds(60);

  // Most topics a node holds tree state for, and most replicas it keeps; a
  // peer must not make us allocate without bound.
  size_t max_topics = 100000;
  // Most children per topic. A join beyond it is not refused: the
  // bottleneck remover pushes the farthest child (or the newcomer) down to
  // join through one of the other children. Refused (NACK) only when there
  // is no other child to push it to (max_children 0, or every other child
  // is itself being moved).
  size_t max_children = 1024;
  // Most children per topic being pushed down (told to join through a
  // sibling, still served until they leave or child_timeout passes): they
  // are not counted against max_children. At the bound no settled child is
  // moved: the newcomer itself is pushed down (pushdowns_limited), which
  // leaves no entry here, so a stream of joiners cannot grow the table.
  size_t max_moving_children = 64;

  // Publish with completion: the callback gets DeadlineExceeded when no
  // acknowledgement arrived within publish_timeout (the message may still
  // have been published). An unacknowledged publish is sent again, routed,
  // every publish_retry; the root numbers a resend only once. Longer than
  // fresh_root_grace plus a retry, so a publish held by a fresh root is
  // still confirmed.
  absl::Duration publish_timeout = absl::Seconds(10);
  absl::Duration publish_retry = absl::Seconds(1);
  // A root holds a publish whose publisher's previous publish to the topic,
  // unacknowledged when this one was sent, has not been numbered yet (it
  // took a slower path), so that one publisher's publishes are numbered in
  // the order it made them; for at most this long (more than publish_retry,
  // so a lost predecessor's resend can arrive) and at most max_reorder
  // publishes per topic. Beyond either bound it is numbered anyway.
  absl::Duration publish_order_wait = absl::Seconds(2);
  // Most acknowledged publishes in flight per node (their payloads are kept
  // for resending); Publish returns ResourceExhausted beyond it.
  size_t max_pending_publishes = 10000;
  // Topics whose root address is remembered (least recently used evicted).
  size_t root_cache_size = 1024;

  // Messages for one node of one batch of work go in one payload (a
  // bundle) to nodes that read them (docs/scribe.md, "Bundles"). Off: one
  // message per payload, as before version 2 (a fallback, and for tests
  // that lose single messages on purpose).
  bool bundle_messages = true;

  // Anycast: the callback gets DeadlineExceeded after anycast_timeout; the
  // tree walk gives up (ResourceExhausted) after visiting this many nodes.
  absl::Duration anycast_timeout = absl::Seconds(5);
  size_t max_anycast_visits = 1024;
  size_t max_pending_anycasts = 10000;

  // How often pending joins and gaps are checked; bounds the precision of
  // join_timeout, reorder_timeout and repair_retry.
  absl::Duration tick_interval = absl::Milliseconds(100);
};

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_OPTIONS_H_

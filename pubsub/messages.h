// Scribe's messages as plain C++ values. They travel as the overlay's
// application payload, encoded by pubsub/wire/codec.h (the only code that
// sees Cap'n Proto). Routed messages (Join, Publish) go toward a topic id;
// the others are sent straight to one node with Overlay::Route(nullopt, ...).
#ifndef PETER_PUBSUB_MESSAGES_H_
#define PETER_PUBSUB_MESSAGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "peter/pastry/node_handle.h"
#include "peter/pastry/node_id.h"
#include "pubsub/payload.h"

namespace peter::pubsub {

using TopicId = pastry::NodeId;
using pastry::NodeHandle;
using pastry::NodeId;

// Raised when the meaning of existing fields changes or a peer must know a
// new message type before it is sent one; frames below kMinScribeVersion are
// dropped.
//   2: bundles (several messages to one node in one payload,
//      wire::EncodeBundle), sent only to nodes heard from at version >= 2
//      (kBundleVersion); a version-1 node gets one message per payload.
//   3: lists of Replicates and of ReplicaAcks (several topics' in one
//      message: wire::EncodeReplicates, wire::EncodeReplicaAcks), sent only
//      to nodes heard from at version >= 3 (kBatchVersion); a version-2
//      node gets one message per topic (in a bundle).
//   4: lists of the messages sent per publish (PublishMsg to a cached
//      root, DataMsg, PublishAckMsg), any topics' mixed in the order sent,
//      in one message (wire::EncodeListed), sent only to nodes heard from
//      at version >= 4 (kListedVersion); a version-3 node gets one message
//      each (in a bundle).
//   5: runs in `listed` lists: consecutive publishes of one publisher to
//      one topic (consecutive requests, each naming the one before as its
//      predecessor), consecutive data of one topic, and consecutive publish
//      acknowledgements of one topic (consecutive requests and numbers),
//      each as one entry (wire::EncodeListed with runs), sent only to nodes
//      heard from at version >= 5 (kRunVersion); a version-4 node gets an
//      entry each.
inline constexpr uint16_t kScribeVersion = 5;
inline constexpr uint16_t kMinScribeVersion = 1;
inline constexpr uint16_t kBundleVersion = 2;
inline constexpr uint16_t kBatchVersion = 3;
inline constexpr uint16_t kListedVersion = 4;
inline constexpr uint16_t kRunVersion = 5;

// Routed toward `topic`: `joiner` asks to become a child of the first node
// on the way that is on the topic's tree (or of the root).
// `frontier` is one past the highest sequence number the joiner has seen
// (0 if none): a root that lost the numbering continues above it.
struct JoinMsg {
  TopicId topic;
  NodeHandle joiner;
  bool reliable = false;
  uint64_t frontier = 0;
};

// Parent -> child: "you are on the tree". `path` runs from the parent to the
// root, both included; `next_seq` is the first sequence number the parent
// will forward to the child.
struct JoinAckMsg {
  TopicId topic;
  std::vector<NodeId> path;
  uint64_t next_seq = 0;
};

// Parent -> child: adoption refused (the child is on the parent's path to
// the root, or the parent gave the topic up); the child joins again.
struct JoinNackMsg {
  TopicId topic;
};

// Child -> parent: drop me from the topic's children.
struct LeaveMsg {
  TopicId topic;
};

// Child -> parent, periodically: the topics for which the child believes
// the receiver is its parent. `rtt_micros` is the round trip the child
// measured on its previous heartbeat to this parent (0: not known yet); the
// parent uses it to order children by distance (anycast, bottleneck remover).
struct HeartbeatMsg {
  std::vector<TopicId> topics;
  uint64_t rtt_micros = 0;
};

struct TopicStatus {
  TopicId topic;
  bool accepted = false;       // still my child
  std::vector<NodeId> path;    // from the parent to the root
  uint64_t next_seq = 0;       // the parent's delivery frontier
};

// Parent -> child: the answer to a heartbeat, one status per topic asked.
struct HeartbeatReplyMsg {
  std::vector<TopicStatus> topics;
};

// Routed toward `topic`, or sent straight to a cached root: a message for
// the root to stamp and multicast. With `request` != 0 the root recognises
// a second copy of the same (publisher, request) -- a resend, or the
// overlay delivering a routed message twice after a late hop
// acknowledgement -- so it is numbered once; and, if `want_ack`, answers
// `publisher` with a PublishAck. Best-effort publishes carry a request for
// the de-duplication only (want_ack false). `after` (with request != 0) is
// the publisher's previous request to the topic if it was unacknowledged
// when this one was sent: the root numbers that one first, waiting a bounded
// time for it (docs/scribe.md, "Publish order"). `passed_on`: a node whose
// route ended there without being the topic's closest node handed it to the
// closest one, which numbers it rather than routing it again.
struct PublishMsg {
  TopicId topic;
  Payload payload;
  NodeHandle publisher;  // meaningful only with request != 0
  uint64_t request = 0;
  bool want_ack = true;  // with request != 0
  uint64_t after = 0;
  bool passed_on = false;
};

// Root -> publisher: the publish `request` was numbered `seq`. Its sender is
// the root the publisher caches for the topic.
struct PublishAckMsg {
  TopicId topic;
  uint64_t request = 0;
  uint64_t seq = 0;
};

// Routed toward `topic` until it reaches a node on the tree, then passed
// from tree node to tree node, depth first, until a local subscriber
// accepts it. `visited` lists the tree nodes already asked; `pending` is the
// walk's stack of children still to visit (the next one last); `up` is the
// ancestor to climb to once the stack is empty, `top_reached` set once the
// walk has passed the root. `hops` bounds the walk against trees changing
// under it.
struct AnycastMsg {
  TopicId topic;
  uint64_t request = 0;
  NodeHandle requester;
  std::string payload;
  std::vector<NodeId> visited;
  uint32_t hops = 0;
  std::vector<NodeHandle> pending;
  std::optional<NodeHandle> up;
  bool top_reached = false;
};

enum class AnycastOutcome : uint8_t {
  kAccepted = 0,
  kNoneAccepted = 1,  // the whole tree was asked
  kLost = 2,          // the tree changed under the walk, or no tree at all
  kTooFar = 3,        // visit or hop bound reached
};

// Tree node -> requester: how the anycast `request` ended.
struct AnycastReplyMsg {
  TopicId topic;
  uint64_t request = 0;
  AnycastOutcome outcome = AnycastOutcome::kLost;
  NodeHandle accepted_by;  // meaningful for kAccepted
};

// Parent -> child (or -> a refused joiner): the parent is at max_children;
// join through `new_parent` (one of its other children) instead. The
// Scribe paper's bottleneck remover.
struct PushDownMsg {
  TopicId topic;
  NodeHandle new_parent;
};

// Down the tree (parent -> child), or a repair answer to a requester.
struct DataMsg {
  TopicId topic;
  uint64_t seq = 0;
  Payload payload;
};

// Requester -> parent (and upward): resend [from, to) of `topic` straight to
// `requester`.
struct RepairRequestMsg {
  TopicId topic;
  uint64_t from = 0;
  uint64_t to = 0;
  NodeHandle requester;
};

// Root -> requester: sequence numbers below `up_to` are no longer kept
// anywhere; skip them.
struct SkipMsg {
  TopicId topic;
  uint64_t up_to = 0;
};

// `publisher`/`request` identify a publish with an origin (request 0: none)
// so a root that takes over still recognises its resend.
// `term`: the root term it was numbered under (docs/scribe.md, "Entry
// terms"); 0 from a sender before the field, older than any term.
struct StoredMessage {
  uint64_t seq = 0;
  Payload payload;
  NodeId publisher;
  uint64_t request = 0;
  uint64_t term = 0;
};

// Root -> replica (or -> the new root on hand-over): the topic's next
// sequence number and recent messages.
struct ReplicateMsg {
  TopicId topic;
  uint64_t next_seq = 0;
  bool handover = false;  // the receiver is now the topic's root
  std::vector<StoredMessage> messages;
  // Nonzero: the root asks the replica for a root lease (see
  // ScribeOptions::root_lease); the replica echoes it in a ReplicaAck.
  uint64_t lease = 0;
  // The sender's commit index: every number below it that it gave, it
  // released (multicast, acknowledged); numbers from it on are held back
  // for the replicas (tentative). From a replica (a state sent to a root
  // behind it), the highest such index a root told it. 0: not known (a
  // sender from before the field; every message counts as tentative).
  uint64_t commit = 0;
  // The sender's root term (docs/scribe.md, "Entry terms"): a node that
  // becomes root takes a term above every one it knows. From a replica (a
  // state sent to a root behind it, or one it refused), the highest term it
  // has seen. 0: a sender from before the field, not checked.
  uint64_t term = 0;
  // Set by a replica only: the root that replicated `term` to it. Unset
  // (zero) from a root: the sender.
  NodeId term_root{};
};

// Replica -> root, for a Replicate that asked for a lease or carried
// messages. `lease` nonzero: the lease asked for with it is granted; the
// replica will not number the topic itself for root_lease from now.
// `last` nonzero: the replica holds the messages numbered first..last that
// the Replicate carried (the root confirms publishes once all its replicas
// hold them); not sent when it holds another message under one of those
// numbers (two roots numbered the topic).
struct ReplicaAckMsg {
  TopicId topic;
  uint64_t lease = 0;
  uint64_t first = 0;
  uint64_t last = 0;
};

using ScribeMessage =
    std::variant<JoinMsg, JoinAckMsg, JoinNackMsg, LeaveMsg, HeartbeatMsg,
                 HeartbeatReplyMsg, PublishMsg, DataMsg, RepairRequestMsg,
                 SkipMsg, ReplicateMsg, PublishAckMsg, AnycastMsg,
                 AnycastReplyMsg, PushDownMsg, ReplicaAckMsg>;

// What is sent to one node per publish, listed (version 4,
// wire::EncodeListed): a publish to a cached root, data, a publish
// acknowledgement.
using ListedMsg = std::variant<PublishMsg, DataMsg, PublishAckMsg>;

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_MESSAGES_H_

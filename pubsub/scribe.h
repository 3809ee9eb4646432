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
// node's thread. Handlers may call Subscribe/Unsubscribe/Publish.
//
// Lifetime: the Scribe must not outlive its node's Overlay. Its destructor
// does not call into the overlay, so a simulated crash may destroy the node
// and its Scribe together, in either order.
#ifndef PETER_PUBSUB_SCRIBE_H_
#define PETER_PUBSUB_SCRIBE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "peter/pastry/application.h"
#include "pubsub/messages.h"
#include "pubsub/scribe_options.h"
#include "pubsub/subscription.h"
#include "pubsub/topic_state.h"

namespace peter::pubsub {

// Scribe's application id on every node (ids below 16 are Peter's own).
inline constexpr pastry::AppId kScribeAppId = 1;

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
  uint64_t repairs_requested = 0;
  uint64_t repairs_served = 0;      // messages resent from a replay buffer
  uint64_t skipped = 0;             // sequence numbers given up
  uint64_t handovers = 0;           // root role handed to a closer node
  uint64_t roots_taken = 0;         // topics this node became root of
  uint64_t malformed = 0;           // payloads that failed to decode
};

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
  absl::Status Publish(std::string_view topic, std::string payload);

  // True if this node is on the topic's tree (root, or acknowledged).
  bool IsAttached(std::string_view topic) const;
  bool IsRoot(std::string_view topic) const;
  // Number of topics with tree state here, and of those this node roots.
  size_t topic_count() const { return topics_.size(); }
  size_t root_count() const;
  // Children of `topic` here (0 if no state).
  size_t ChildCount(std::string_view topic) const;
  const ScribeStats& stats() const { return stats_; }

  // pastry::Application.
  bool Forward(pastry::RouteMessage& msg, NodeHandle& next_hop) override;
  void Deliver(const pastry::RouteMessage& msg) override;
  void Update(const NodeHandle& node, bool joined) override;

 private:
  // scribe.cc: plumbing.
  NodeHandle Self() const { return overlay_->LocalHandle(); }
  absl::Time Now() const { return overlay_->Now(); }
  void SendTo(const NodeHandle& to, const ScribeMessage& msg);
  void SendBytes(const NodeHandle& to, std::string bytes);
  void RouteToTopic(const TopicId& topic, const ScribeMessage& msg);
  void Dispatch(const NodeHandle& from, ScribeMessage msg);
  void ScheduleTick();
  void EnsureTicking();
  void Tick();
  void Maintenance();
  absl::Status CheckTopic(std::string_view topic) const;
  TopicState* Find(const TopicId& id);
  const TopicState* Find(const TopicId& id) const;
  TopicState* Create(const TopicId& id);
  void Erase(const TopicId& id);
  void NotifyActive(TopicState& t, bool active);

  // scribe_tree.cc: joins, acks, leaves, heartbeats, root changes.
  bool OnForwardJoin(pastry::RouteMessage& msg, const JoinMsg& join);
  void OnDeliverJoin(const JoinMsg& join);
  void SendJoin(TopicState& t);
  JoinMsg OwnJoin(const TopicState& t) const;
  void Adopt(TopicState& t, const NodeHandle& child, bool reliable);
  void AckChild(TopicState& t, ChildState& child);
  void RefuseChild(TopicState& t, const NodeId& child);
  void BecomeRoot(TopicState& t);
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
  void HandOver(TopicState& t, const NodeHandle& new_root);

  // scribe_data.cc: publish, multicast, ordering, repair, replication.
  void OnDeliverPublish(PublishMsg publish);
  void Stamp(TopicState& t, std::string payload);
  void ReleaseHolds();
  void RaiseStamp(TopicState& t, uint64_t frontier);
  void OnData(const NodeHandle& from, DataMsg data);
  bool Accept(TopicState& t, const DataMsg& data, bool forward);
  void Multicast(TopicState& t, const DataMsg& data);
  void DeliverLocal(TopicState& t, uint64_t seq, const std::string& payload);
  void Drain(TopicState& t);
  void SetFrontier(TopicState& t, uint64_t next);
  void StartFrom(TopicState& t, uint64_t parent_next);
  void NoteKnownEnd(TopicState& t, uint64_t end);
  void UpdateGap(TopicState& t);
  void Store(TopicState& t, uint64_t seq, const std::string& payload);
  void TrimReplay(TopicState& t);
  void CheckGaps();
  void RequestRepair(TopicState& t);
  void OnRepairRequest(const RepairRequestMsg& request);
  void OnSkip(const SkipMsg& skip);
  std::vector<std::string> FullState(const TopicState& t, bool handover) const;
  void Replicate(TopicState& t, const DataMsg* latest);
  void ReplicateAll();
  void OnReplicate(const NodeHandle& from, ReplicateMsg r);
  void TakeReplica(TopicState& t);

  ScribeOptions options_;
  std::unique_ptr<pastry::Overlay> overlay_;
  absl::flat_hash_map<TopicId, std::unique_ptr<TopicState>> topics_;
  absl::flat_hash_map<SubscriptionId, TopicId> subscriptions_;
  absl::flat_hash_map<TopicId, ReplicaState> replicas_;
  absl::flat_hash_set<TopicId> joining_;  // waiting for an ack
  absl::flat_hash_set<TopicId> gapped_;   // waiting for a missing seq
  absl::flat_hash_set<TopicId> holding_;  // roots holding publishes
  SubscriptionId next_subscription_ = 1;
  bool ticking_ = false;
  absl::Time next_maintenance_ = absl::InfinitePast();
  absl::Time next_replication_ = absl::InfinitePast();
  ScribeStats stats_;
};

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_SCRIBE_H_

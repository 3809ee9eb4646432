// Scribe: construction, the public API, the overlay upcalls, dispatch and
// the periodic tick. Tree maintenance is in scribe_tree.cc; publishing,
// ordering, repair and replication in scribe_data.cc.
#include "pubsub/scribe.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pubsub/topic_id.h"
#include "pubsub/wire/codec.h"

namespace peter::pubsub {

bool TopicState::Reliable() const {
  for (const LocalSubscription& s : subs) {
    if (s.options->reliable) return true;
  }
  for (const auto& [id, child] : children) {
    if (child.reliable) return true;
  }
  return false;
}

bool TopicState::OnPath(const NodeId& node) const {
  return std::find(path.begin(), path.end(), node) != path.end();
}

uint64_t TopicState::SeenEnd() const {
  uint64_t end = next;
  if (!held.empty()) end = std::max(end, held.rbegin()->first + 1);
  if (!replay.empty()) end = std::max(end, replay.rbegin()->first + 1);
  return end;
}

Scribe::Scribe(Registrar register_app, ScribeOptions options)
    : options_(std::move(options)) {
  overlay_ = register_app(this);
}

// Deliberately does not call into the overlay: the node may be gone.
Scribe::~Scribe() = default;

// ---------------------------------------------------------------------------
// Public API

absl::Status Scribe::CheckTopic(std::string_view topic) const {
  if (topic.empty()) return absl::InvalidArgumentError("empty topic name");
  if (topic.size() > options_.max_topic_name_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic name has ", topic.size(), " bytes; at most ",
                     options_.max_topic_name_bytes, " allowed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SubscriptionId> Scribe::Subscribe(std::string_view topic,
                                                 SubscribeOptions options) {
  EnsureTicking();
  absl::Status status = CheckTopic(topic);
  if (!status.ok()) return status;
  if (!options.on_message) {
    return absl::InvalidArgumentError("on_message is required");
  }
  const TopicId id = TopicIdOf(topic);
  TopicState* t = Find(id);
  if (t == nullptr) t = Create(id);
  if (t == nullptr) return absl::ResourceExhaustedError("too many topics");
  t->name = std::string(topic);
  const SubscriptionId sid = next_subscription_++;
  auto shared = std::make_shared<const SubscribeOptions>(std::move(options));
  t->subs.push_back(LocalSubscription{sid, shared});
  subscriptions_[sid] = id;
  if (t->attached) {
    if (shared->on_active) {
      overlay_->ScheduleTimer(absl::ZeroDuration(), [shared] {
        shared->on_active(true);
      });
    }
  } else if (!joining_.contains(id)) {
    SendJoin(*t);
  }
  return sid;
}

absl::Status Scribe::Unsubscribe(SubscriptionId sid) {
  auto it = subscriptions_.find(sid);
  if (it == subscriptions_.end()) {
    return absl::NotFoundError(absl::StrCat("no subscription ", sid));
  }
  const TopicId id = it->second;
  subscriptions_.erase(it);
  TopicState* t = Find(id);
  if (t == nullptr) return absl::OkStatus();
  std::erase_if(t->subs, [sid](const LocalSubscription& s) {
    return s.id == sid;
  });
  // Deferred: a handler of this topic may be running.
  overlay_->ScheduleTimer(absl::ZeroDuration(), [this, id] {
    if (TopicState* t = Find(id)) LeaveIfUnwanted(*t);
  });
  return absl::OkStatus();
}

absl::Status Scribe::Publish(std::string_view topic, std::string payload) {
  EnsureTicking();
  absl::Status status = CheckTopic(topic);
  if (!status.ok()) return status;
  if (payload.size() > options_.max_payload_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload has ", payload.size(), " bytes; at most ",
                     options_.max_payload_bytes, " allowed"));
  }
  const TopicId id = TopicIdOf(topic);
  RouteToTopic(id, PublishMsg{id, std::move(payload)});
  return absl::OkStatus();
}

bool Scribe::IsAttached(std::string_view topic) const {
  const TopicState* t = Find(TopicIdOf(topic));
  return t != nullptr && t->attached;
}

bool Scribe::IsRoot(std::string_view topic) const {
  const TopicState* t = Find(TopicIdOf(topic));
  return t != nullptr && t->root;
}

size_t Scribe::root_count() const {
  size_t n = 0;
  for (const auto& [id, t] : topics_) n += t->root ? 1 : 0;
  return n;
}

size_t Scribe::ChildCount(std::string_view topic) const {
  const TopicState* t = Find(TopicIdOf(topic));
  return t == nullptr ? 0 : t->children.size();
}

// ---------------------------------------------------------------------------
// Upcalls

bool Scribe::Forward(pastry::RouteMessage& msg, NodeHandle& next_hop) {
  EnsureTicking();
  if (!msg.key.has_value()) return true;  // straight to a node
  absl::StatusOr<ScribeMessage> decoded = wire::Decode(msg.payload);
  if (!decoded.ok()) {
    ++stats_.malformed;
    return false;
  }
  if (auto* join = std::get_if<JoinMsg>(&*decoded)) {
    return OnForwardJoin(msg, *join);
  }
  return true;  // a publish goes on to the root
}

void Scribe::Deliver(const pastry::RouteMessage& msg) {
  EnsureTicking();
  absl::StatusOr<ScribeMessage> decoded = wire::Decode(msg.payload);
  if (!decoded.ok()) {
    ++stats_.malformed;
    return;
  }
  if (msg.key.has_value()) {
    if (auto* join = std::get_if<JoinMsg>(&*decoded)) {
      OnDeliverJoin(*join);
    } else if (auto* publish = std::get_if<PublishMsg>(&*decoded)) {
      OnDeliverPublish(std::move(*publish));
    } else {
      ++stats_.malformed;
    }
    return;
  }
  Dispatch(msg.source, std::move(*decoded));
}

void Scribe::Update(const NodeHandle& node, bool joined) {
  EnsureTicking();
  // The replica sets may have changed: replicate at the next tick.
  next_replication_ = Now();
  if (!joined) return;
  const NodeId self = Self().id;
  std::vector<TopicState*> handed;
  for (auto& [id, t] : topics_) {
    if (t->root && NodeId::CloserTo(id, node.id, self)) handed.push_back(t.get());
  }
  for (TopicState* t : handed) HandOver(*t, node);
}

void Scribe::Dispatch(const NodeHandle& from, ScribeMessage msg) {
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, JoinAckMsg>) {
          OnJoinAck(from, m);
        } else if constexpr (std::is_same_v<T, JoinNackMsg>) {
          OnJoinNack(from, m);
        } else if constexpr (std::is_same_v<T, LeaveMsg>) {
          OnLeave(from, m);
        } else if constexpr (std::is_same_v<T, HeartbeatMsg>) {
          OnHeartbeat(from, m);
        } else if constexpr (std::is_same_v<T, HeartbeatReplyMsg>) {
          OnHeartbeatReply(from, m);
        } else if constexpr (std::is_same_v<T, DataMsg>) {
          OnData(from, std::move(m));
        } else if constexpr (std::is_same_v<T, RepairRequestMsg>) {
          OnRepairRequest(m);
        } else if constexpr (std::is_same_v<T, SkipMsg>) {
          OnSkip(m);
        } else if constexpr (std::is_same_v<T, ReplicateMsg>) {
          OnReplicate(from, std::move(m));
        } else {
          ++stats_.malformed;  // joins and publishes are routed by key
        }
      },
      msg);
}

// ---------------------------------------------------------------------------
// Plumbing

void Scribe::SendTo(const NodeHandle& to, const ScribeMessage& msg) {
  SendBytes(to, wire::Encode(msg));
}

void Scribe::SendBytes(const NodeHandle& to, std::string bytes) {
  if (to.id == Self().id) {
    // To ourselves: delivered from the event loop, never re-entrantly.
    overlay_->ScheduleTimer(absl::ZeroDuration(),
                            [this, bytes = std::move(bytes)] {
      absl::StatusOr<ScribeMessage> decoded = wire::Decode(bytes);
      if (decoded.ok()) Dispatch(Self(), std::move(*decoded));
    });
    return;
  }
  overlay_->Route(std::nullopt, std::move(bytes), to);
}

void Scribe::RouteToTopic(const TopicId& topic, const ScribeMessage& msg) {
  overlay_->Route(topic, wire::Encode(msg));
}

void Scribe::ScheduleTick() {
  overlay_->ScheduleTimer(options_.tick_interval, [this] { Tick(); });
}

// The tick starts with the first call or upcall, not at construction: a
// node that has not started yet runs no timers, and a timer pending on it
// would keep its owner waking it (see docs/scribe.md, overlay gaps).
void Scribe::EnsureTicking() {
  if (ticking_) return;
  ticking_ = true;
  ScheduleTick();
}

void Scribe::Tick() {
  RetryJoins();
  CheckGaps();
  ReleaseHolds();
  if (Now() >= next_maintenance_) {
    next_maintenance_ = Now() + options_.heartbeat_interval;
    Maintenance();
  }
  if (Now() >= next_replication_) {
    next_replication_ = Now() + options_.replicate_interval;
    ReplicateAll();
  }
  ScheduleTick();
}

void Scribe::Maintenance() {
  CheckParents();
  ExpireChildren();
  SendHeartbeats();
  for (auto& [id, t] : topics_) TrimReplay(*t);
  absl::erase_if(replicas_, [this](const auto& entry) {
    return Now() - entry.second.refreshed > options_.replica_ttl;
  });
}

TopicState* Scribe::Find(const TopicId& id) {
  auto it = topics_.find(id);
  return it == topics_.end() ? nullptr : it->second.get();
}

const TopicState* Scribe::Find(const TopicId& id) const {
  auto it = topics_.find(id);
  return it == topics_.end() ? nullptr : it->second.get();
}

TopicState* Scribe::Create(const TopicId& id) {
  if (topics_.size() >= options_.max_topics) return nullptr;
  auto state = std::make_unique<TopicState>();
  state->id = id;
  TopicState* t = state.get();
  topics_[id] = std::move(state);
  return t;
}

void Scribe::Erase(const TopicId& id) {
  topics_.erase(id);
  joining_.erase(id);
  gapped_.erase(id);
  holding_.erase(id);
}

void Scribe::NotifyActive(TopicState& t, bool active) {
  for (size_t i = 0; i < t.subs.size(); ++i) {
    std::shared_ptr<const SubscribeOptions> s = t.subs[i].options;
    if (s->on_active) s->on_active(active);
  }
}

}  // namespace peter::pubsub

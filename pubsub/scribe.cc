// Scribe: construction, the public API, the overlay upcalls, dispatch and
// the periodic tick. Tree maintenance is in scribe_tree.cc; publishing,
// ordering, repair and replication in scribe_data.cc.
#include "pubsub/scribe.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pubsub/topic_id.h"
#include "pubsub/wire/codec.h"
#include "spdlog/spdlog.h"

namespace peter::pubsub {
namespace {

// Self-sent messages whose storage is kept once they have all run: enough
// for a batch of publishes, little memory after a burst.
constexpr size_t kToSelfKeptCapacity = 1024;
// Nodes of acknowledged publishes kept for the next ones (Scribe::
// ErasePending): a burst's worth, not the peak in flight.
constexpr size_t kSparePending = 256;

}  // namespace

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

size_t TopicState::SettledChildren() const {
  size_t n = 0;
  for (const auto& [id, child] : children) n += child.moving ? 0 : 1;
  return n;
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
  started_at_ = overlay_->Now();
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
      overlay_->ScheduleTimer(absl::ZeroDuration(), [this, shared] {
        RunCallback(shared->on_active, true);
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

absl::Status Scribe::CheckMessage(std::string_view topic,
                                  std::string_view payload) const {
  absl::Status status = CheckTopic(topic);
  if (!status.ok()) return status;
  if (payload.size() > options_.max_payload_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload has ", payload.size(), " bytes; at most ",
                     options_.max_payload_bytes, " allowed"));
  }
  return absl::OkStatus();
}

absl::Status Scribe::Publish(std::string_view topic, Payload payload) {
  EnsureTicking();
  absl::Status status = CheckMessage(topic, payload);
  if (!status.ok()) return status;
  const TopicId id = TopicIdOf(topic);
  if (TopicState* t = NumbersAtOnce(id); t != nullptr) {
    NumberAtOnce(*t, std::move(payload));
    return absl::OkStatus();
  }
  // An origin, so the root numbers an overlay duplicate once; no ack.
  RouteToTopic(id, PublishMsg{id, std::move(payload), Self(), NextRequest(),
                              /*want_ack=*/false});
  return absl::OkStatus();
}

absl::Status Scribe::Publish(std::string_view topic, Payload payload,
                             PublishCallback&& done) {
  EnsureTicking();
  absl::Status status = CheckMessage(topic, payload);
  if (!status.ok()) return status;
  if (!done) return absl::InvalidArgumentError("no completion callback");
  const TopicId id = TopicIdOf(topic);
  if (TopicState* t = NumbersAtOnce(id); t != nullptr) {
    const uint64_t seq = NumberAtOnce(*t, std::move(payload));
    RunCallback(done, seq);
    return absl::OkStatus();
  }
  if (pending_publishes_.size() >= options_.max_pending_publishes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(pending_publishes_.size(), " publishes in flight"));
  }
  const uint64_t request = NextRequest();
  PendingPublish& p = AddPending(request);
  p.topic = id;
  p.payload = std::move(payload);
  p.done = std::move(done);
  p.deadline = Now() + options_.publish_timeout;
  SendPublish(request);
  return absl::OkStatus();
}

// Request ids ascend: a new publish goes at the end, in a spare node if
// there is one.
Scribe::PendingPublish& Scribe::AddPending(uint64_t request) {
  if (spare_pending_.empty()) {
    return pending_publishes_.try_emplace(pending_publishes_.end(), request)->second;
  }
  auto node = std::move(spare_pending_.back());
  spare_pending_.pop_back();
  node.key() = request;
  return pending_publishes_.insert(pending_publishes_.end(), std::move(node))->second;
}

// The payload and callback go at once; the node is kept for a later
// publish, up to kSparePending of them.
std::map<uint64_t, Scribe::PendingPublish>::iterator Scribe::ErasePending(
    std::map<uint64_t, PendingPublish>::iterator it) {
  if (spare_pending_.size() >= kSparePending) return pending_publishes_.erase(it);
  auto next = std::next(it);
  auto node = pending_publishes_.extract(it);
  node.mapped() = PendingPublish{};
  spare_pending_.push_back(std::move(node));
  return next;
}

// Request ids start from the clock so a restarted node (same node id) does
// not reuse the ids of its previous incarnation, which roots may remember.
uint64_t Scribe::NextRequest() {
  if (next_request_ == 0) {
    next_request_ =
        (static_cast<uint64_t>(absl::ToUnixMicros(Now())) << 12) | 1;
  }
  return next_request_++;
}

bool Scribe::IsAttached(std::string_view topic) const {
  const TopicState* t = Find(TopicIdOf(topic));
  return t != nullptr && t->attached;
}

bool Scribe::IsRoot(std::string_view topic) const {
  const TopicState* t = Find(TopicIdOf(topic));
  return t != nullptr && t->root;
}

bool Scribe::RemembersNumbering(std::string_view topic) const {
  return forgotten_.contains(TopicIdOf(topic));
}

size_t Scribe::ReplaySlots(std::string_view topic) const {
  const TopicId id = TopicIdOf(topic);
  size_t slots = 0;
  if (const TopicState* t = Find(id); t != nullptr) slots += t->replay.capacity();
  if (auto it = replicas_.find(id); it != replicas_.end()) slots += it->second.messages.capacity();
  return slots;
}

size_t Scribe::OriginsIndexed(std::string_view topic) const {
  const TopicState* t = Find(TopicIdOf(topic));
  return t == nullptr ? 0 : t->origins.size();
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

size_t Scribe::children_total() const {
  size_t n = 0;
  for (const auto& [id, t] : topics_) n += t->children.size();
  return n;
}

std::vector<TopicInfo> Scribe::Topics() const {
  std::vector<TopicInfo> out;
  out.reserve(topics_.size());
  for (const auto& [id, state] : topics_) {  // ordered by id
    const TopicState* t = state.get();
    TopicInfo info;
    info.id_hex = t->id.ToHex();
    info.name = t->name;
    info.is_root = t->root;
    info.attached = t->attached;
    if (t->parent.has_value()) info.parent_id_hex = t->parent->id.ToHex();
    info.child_count = t->children.size();
    info.next_seq = t->next;
    const uint64_t end = t->root ? std::max(t->next_stamp, t->SeenEnd()) : t->SeenEnd();
    info.last_seq = end == 0 ? 0 : end - 1;
    info.local_subscribers = t->subs.size();
    out.push_back(std::move(info));
  }
  return out;
}

std::optional<NodeHandle> Scribe::CachedRoot(std::string_view topic) const {
  const NodeHandle* root = root_cache_.Peek(TopicIdOf(topic));
  if (root == nullptr) return std::nullopt;
  return *root;
}

// ---------------------------------------------------------------------------
// Upcalls

bool Scribe::Forward(pastry::RouteMessage& msg, NodeHandle& next_hop) {
  EnsureTicking();
  if (!msg.key.has_value()) return true;  // straight to a node
  SendOutbox();  // a routed message goes on after what was sent before it
  absl::StatusOr<ScribeMessage> decoded = wire::Decode(msg.payload);
  if (!decoded.ok()) {
    ++stats_.malformed;
    return false;
  }
  if (auto* join = std::get_if<JoinMsg>(&*decoded)) {
    if (join->joiner.id != Self().id) ++stats_.messages_in;
    return OnForwardJoin(msg, *join);
  }
  if (auto* anycast = std::get_if<AnycastMsg>(&*decoded)) {
    return OnForwardAnycast(*anycast);
  }
  return true;  // a publish goes on to the root
}

void Scribe::Deliver(const pastry::RouteMessage& msg) {
  EnsureTicking();
  absl::StatusOr<wire::Received> received = wire::DecodeReceived(msg.payload);
  if (!received.ok() || (msg.key.has_value() && received->messages.size() != 1)) {
    ++stats_.malformed;
    return;
  }
  // A join rewritten on its way (a node without the topic's state routed
  // its own in its place, Forward) carries the version of the node that
  // rewrote it, not the source's: a version-1 source was taken for a bundle
  // reader from it.
  const auto* join =
      msg.key.has_value() ? std::get_if<JoinMsg>(&received->messages.front()) : nullptr;
  if (join == nullptr || join->joiner.id == msg.source.id) {
    NoteVersion(msg.source, received->version);
  }
  stats_.messages_in += received->messages.size();
  if (msg.key.has_value()) {
    ScribeMessage& decoded = received->messages.front();
    if (auto* join = std::get_if<JoinMsg>(&decoded)) {
      OnDeliverJoin(*join);
    } else if (auto* publish = std::get_if<PublishMsg>(&decoded)) {
      OnRoutedPublish(std::move(*publish));
    } else if (auto* anycast = std::get_if<AnycastMsg>(&decoded)) {
      OnDeliverAnycast(std::move(*anycast));
    } else {
      ++stats_.malformed;
    }
    return;
  }
  for (ScribeMessage& m : received->messages) Dispatch(msg.source, std::move(m));
}

void Scribe::Update(const NodeHandle& node, bool joined) {
  EnsureTicking();
  // The replica sets may have changed: replicate at the next tick.
  next_replication_ = Now();
  absl::erase_if(lost_neighbours_, [&](const auto& lost) {
    return Now() - lost.second >= options_.lone_root_grace;
  });
  if (!joined) {
    last_neighbour_loss_ = Now();
    lost_neighbours_[node.id] = Now();
    return;
  }
  lost_neighbours_.erase(node.id);
  had_neighbour_ = true;
  widest_leaf_set_ = std::max(widest_leaf_set_, overlay_->LeafSet().size());
  const NodeId self = Self().id;
  std::vector<TopicState*> handed;
  for (auto& [id, t] : topics_) {
    if (t->root && NodeId::CloserTo(id, node.id, self)) handed.push_back(t.get());
  }
  for (TopicState* t : handed) HandOver(*t, node, "a closer node joined");
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
        } else if constexpr (std::is_same_v<T, PublishMsg>) {
          OnDirectPublish(std::move(m));  // to a cached root, or passed on
        } else if constexpr (std::is_same_v<T, PublishAckMsg>) {
          OnPublishAck(from, m);
        } else if constexpr (std::is_same_v<T, JoinMsg>) {
          OnDirectJoin(m);  // after a push-down
        } else if constexpr (std::is_same_v<T, PushDownMsg>) {
          OnPushDown(from, m);
        } else if constexpr (std::is_same_v<T, ReplicaAckMsg>) {
          OnReplicaAck(from, m);
        } else if constexpr (std::is_same_v<T, AnycastMsg>) {
          AnycastStep(std::move(m));
        } else if constexpr (std::is_same_v<T, AnycastReplyMsg>) {
          OnAnycastReply(m);
        }
      },
      msg);
}

// ---------------------------------------------------------------------------
// Plumbing

void Scribe::SendTo(const NodeHandle& to, ScribeMessage msg) {
  if (to.id == Self().id) {
    // To ourselves (on one node: every publish to the cached root and its
    // acknowledgement): the message itself is handed to Dispatch from the
    // event loop, never re-entrantly, as SendBytes does with bytes, but
    // without a Cap'n Proto encode and decode on the way.
    // The message waits in to_self_, not in the timer's closure (too big
    // for std::function's inline buffer: two allocations per publish on one
    // node); the timer carries its ticket, and timers run in the order
    // they were scheduled.
    ++stats_.messages_out;
    const uint64_t ticket = next_to_self_++;
    to_self_.push_back(ToSelf{ticket, std::move(msg)});
    overlay_->ScheduleTimer(absl::ZeroDuration(), [this, ticket] { DispatchToSelf(ticket); });
    return;
  }
  if (const auto* ack = std::get_if<ReplicaAckMsg>(&msg); ack != nullptr && ReadsLists(to)) {
    QueueAck(to, *ack);  // with the ones before it, one list
    return;
  }
  if (ReadsListed(to)) {  // the messages sent per publish: with the ones before it, one list
    if (auto* publish = std::get_if<PublishMsg>(&msg)) {
      QueueListed(to, std::move(*publish));
      return;
    }
    if (auto* data = std::get_if<DataMsg>(&msg)) {
      QueueListed(to, std::move(*data));
      return;
    }
    if (const auto* ack = std::get_if<PublishAckMsg>(&msg)) {
      QueueListed(to, *ack);
      return;
    }
  }
  SendBytes(to, wire::Encode(msg));
}

// Runs the message queued with `ticket`. Entries ahead of it belong to
// timers that never ran (a node that has left runs none): dropped, as their
// closures were before.
void Scribe::DispatchToSelf(uint64_t ticket) {
  while (to_self_head_ < to_self_.size() && to_self_[to_self_head_].ticket < ticket) {
    ++to_self_head_;
  }
  if (to_self_head_ == to_self_.size() || to_self_[to_self_head_].ticket != ticket) return;
  // Dispatch's parameter is moved from the entry before Dispatch runs, so
  // the entry may move (Dispatch sending to this node again) meanwhile.
  ScribeMessage& msg = to_self_[to_self_head_].msg;
  ++to_self_head_;
  Dispatch(Self(), std::move(msg));
  // Emptied (at the latest when the scheduler has run every job due): the
  // storage is reused from the start, and given back after a burst.
  if (to_self_head_ == to_self_.size()) {
    to_self_.clear();
    if (to_self_.capacity() > kToSelfKeptCapacity) to_self_.shrink_to_fit();
    to_self_head_ = 0;
  }
}

void Scribe::SendBytes(const NodeHandle& to, std::string bytes, size_t count) {
  stats_.messages_out += count;
  if (to.id == Self().id) {
    // To ourselves: delivered from the event loop, never re-entrantly.
    overlay_->ScheduleTimer(absl::ZeroDuration(),
                            [this, bytes = std::move(bytes)] {
      absl::StatusOr<ScribeMessage> decoded = wire::Decode(bytes);
      if (decoded.ok()) Dispatch(Self(), std::move(*decoded));
    });
    return;
  }
  if (ReadsBundles(to)) {
    Queue(to, std::move(bytes), count);
    return;
  }
  overlay_->Route(std::nullopt, std::move(bytes), to);
}

void Scribe::RouteToTopic(const TopicId& topic, const ScribeMessage& msg) {
  SendOutbox();  // not ahead of what was sent before it
  ++stats_.messages_out;
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
  ReleaseOrderWaits();
  CheckUnconfirmed();
  CheckPendingPublishes();
  CheckPendingAnycasts();
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
  ExpireMoves();
  SendHeartbeats();
  TrimReplays();
  // A replica not refreshed for replica_ttl goes. One whose ring grew past
  // its bound (OnReplicate and KeepAsReplica store copies out of order
  // before they trim) or was trimmed to a few copies (max_replay_bytes)
  // gives the slots back (SeqMap::shrink).
  for (auto it = replicas_.begin(); it != replicas_.end();) {
    if (Now() - it->second.refreshed > options_.replica_ttl) {
      stats_.replay_bytes -= it->second.bytes;
      it = replicas_.erase(it);
    } else {
      it->second.messages.shrink();
      ++it;
    }
  }
  ForgetIdleTopics();
}

// A root keeps a topic while a subscriber or child has it, while a publish
// came within topic_idle_timeout (at least publish_timeout, so that a late
// resend is still recognised as one), and while anything of its numbering
// is in flight: held, waiting for order or for the replicas, queued for
// them, or deposed and waiting to hand over. What it forgets is what a
// replay buffer aged out by replay_max_age would have held anyway: nobody
// below it to repair, nobody to deliver to.
void Scribe::ForgetIdleTopics() {
  while (!forgotten_order_.empty() &&
         Now() - forgotten_order_.front().first > 2 * options_.replica_ttl) {
    DropForgotten(forgotten_order_.front());
    forgotten_order_.pop_front();
  }
  const absl::Duration idle = std::max(options_.topic_idle_timeout, options_.publish_timeout);
  std::vector<TopicId> idle_roots;
  for (auto& [id, t] : topics_) {
    if (!t->root) continue;
    if (!t->subs.empty() || !t->children.empty()) {
      t->last_used = Now();
      continue;
    }
    if (Now() - t->last_used < idle || !t->held_publishes.empty() || !t->unconfirmed.empty() ||
        !t->order_waits.empty() || !t->to_replicate.empty() || t->higher_term > t->term ||
        holding_.contains(id) || confirming_.contains(id) || ordering_.contains(id) ||
        replicating_.contains(id)) {
      continue;
    }
    idle_roots.push_back(id);
  }
  MakeRoomToRemember(idle_roots.size());
  for (const TopicId& id : idle_roots) {
    const TopicState& t = *Find(id);
    const uint64_t next_stamp = std::max(t.next_stamp, t.SeenEnd());
    // Beyond max_topics remembered even so (more than that forgotten in
    // one pass) the numbering goes with the state: a topic made again
    // meanwhile then learns it from its replicas' state, as a new root
    // does. Keeping the topic instead would fill topics_ again.
    const bool remembered = forgotten_.size() < options_.max_topics;
    if (remembered) {
      forgotten_[id] = ForgottenTopic{t.term, next_stamp, Now()};
      forgotten_order_.emplace_back(Now(), id);
    }
    if (LogsDebug()) {
      log_->debug("scribe: topic {}: forgotten, idle for {} (term {:x}, next number {}{})",
                  id.ShortHex(), absl::FormatDuration(Now() - t.last_used), t.term, next_stamp,
                  remembered ? "" : ", not remembered: max_topics remembered already");
    }
    Erase(id);
    ++stats_.topics_forgotten;
  }
  CompactForgottenOrder();
}

// At max_topics numberings remembered, the oldest go to make room for
// `wanted` newer ones. The newest matter most: a topic forgotten more than
// replica_ttl (and a refresh) ago has no replica copies left, so it starts
// afresh anyway, while one forgotten just now has them, and without its
// numbering its root, made again, would learn the numbering from their
// state and multicast what they hold: a subscriber that joined meanwhile
// got messages published before it subscribed (ScribeIdleSimTest,
// PastTheCapTheOldestNumberingMakesRoom, failed so when the newest went instead).
// forgotten_order_ has them oldest first; an entry whose topic was made
// again (BecomeRoot) or forgotten again since is stale and skipped.
void Scribe::MakeRoomToRemember(size_t wanted) {
  const size_t bound = options_.max_topics;
  if (wanted == 0 || forgotten_.size() + wanted <= bound) return;
  const size_t drop = std::min(forgotten_.size(), forgotten_.size() + wanted - bound);
  size_t dropped = 0;
  while (dropped < drop && !forgotten_order_.empty()) {
    if (DropForgotten(forgotten_order_.front())) ++dropped;
    forgotten_order_.pop_front();
  }
  stats_.numberings_dropped += dropped;
}

bool Scribe::DropForgotten(const std::pair<absl::Time, TopicId>& entry) {
  auto f = forgotten_.find(entry.second);
  if (f == forgotten_.end() || f->second.at != entry.first) return false;  // stale
  forgotten_.erase(f);
  return true;
}

void Scribe::CompactForgottenOrder() {
  if (forgotten_order_.size() <= 2 * forgotten_.size() + 64) return;
  std::erase_if(forgotten_order_, [this](const auto& entry) {
    auto f = forgotten_.find(entry.second);
    return f == forgotten_.end() || f->second.at != entry.first;
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
  if (topics_.size() >= options_.max_topics) {
    RefuseTopic(id, "tree state");
    return nullptr;
  }
  auto state = std::make_unique<TopicState>();
  state->id = id;
  // Store and WaitAsTakenOver add one before trimming the oldest: the ring
  // grows to that and no further (pubsub/seq_map.h, set_bound).
  state->replay.set_bound(options_.replay_capacity + 1);
  state->last_used = Now();
  TopicState* t = state.get();
  topics_[id] = std::move(state);
  return t;
}

bool Scribe::LogsDebug() const {
  return log_ != nullptr && log_->should_log(spdlog::level::debug);
}

void Scribe::RefuseTopic(const TopicId& id, const char* what) {
  ++stats_.topics_refused;
  if (log_ == nullptr || !bound_warn_.Allow(Now())) return;
  log_->warn("scribe: no {} for topic {}: max_topics ({}) reached ({} warnings suppressed)",
             what, id.ShortHex(), options_.max_topics, bound_warn_.suppressed());
}

// `id` is taken by value: callers pass the erased state's own id (t.id),
// which the first erase frees (AddressSanitizer: heap-use-after-free).
// Every per-topic set loses the topic. replicating_ is emptied by the
// flush after this batch of work; a topic erased while in it can only be a
// former root (ForgetIdleTopics skips one in it, and a root is always
// wanted), and its stale entry did no harm: the flush skips a topic with
// no state or nothing queued (a topic made again meanwhile), and
// ForgetIdleTopics would not forget one made again (last_used is now).
void Scribe::Erase(TopicId id) {
  if (const TopicState* t = Find(id); t != nullptr) stats_.replay_bytes -= t->replay_bytes;
  topics_.erase(id);
  joining_.erase(id);
  gapped_.erase(id);
  holding_.erase(id);
  confirming_.erase(id);
  ordering_.erase(id);
  replaying_.erase(id);
  replicating_.erase(id);
}

void Scribe::NotifyActive(TopicState& t, bool active) {
  for (size_t i = 0; i < t.subs.size(); ++i) {
    std::shared_ptr<const SubscribeOptions> s = t.subs[i].options;
    if (s->on_active) RunCallback(s->on_active, active);
  }
}

}  // namespace peter::pubsub

// Scribe: building and keeping the multicast trees. Joins are caught by the
// Forward upcall at each hop; parents acknowledge children only once they
// are on the tree themselves, with their path to the root; children send
// heartbeats and join again when their parent falls silent.
#include <algorithm>
#include <tuple>
#include <utility>

#include "pubsub/scribe.h"
#include "pubsub/wire/codec.h"
#include "spdlog/logger.h"

namespace peter::pubsub {
namespace {

bool Contains(const std::vector<NodeId>& ids, const NodeId& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

bool Scribe::OnForwardJoin(pastry::RouteMessage& msg, const JoinMsg& join) {
  if (join.joiner.id == Self().id) return true;  // our own, setting out
  TopicState* t = Find(join.topic);
  if (t != nullptr) {
    // A node on our own path to the root must not become our child: let its
    // join pass on toward the root.
    if (t->OnPath(join.joiner.id) ||
        (t->parent.has_value() && t->parent->id == join.joiner.id)) {
      ++stats_.loops_refused;
      return true;
    }
    Adopt(*t, join.joiner, join.reliable);
    return false;
  }
  t = Create(join.topic);
  if (t == nullptr) return true;  // full: relay only
  Adopt(*t, join.joiner, join.reliable);
  // The original join stops here; ours continues in its place.
  msg.payload = wire::Encode(OwnJoin(*t));
  t->join_sent = Now();
  joining_.insert(t->id);
  ++stats_.joins_sent;
  return true;
}

void Scribe::OnDeliverJoin(const JoinMsg& join) {
  TopicState* t = Find(join.topic);
  if (t == nullptr) t = Create(join.topic);
  if (t == nullptr) return;
  if (!t->root) BecomeRoot(*t, "a join was delivered here");
  if (LogsDebug() && join.frontier > t->next_stamp) {
    log_->debug("scribe: topic {}: join of {} raises the next number {} -> {}", t->id.ShortHex(),
                join.joiner.id.ShortHex(), t->next_stamp, join.frontier);
  }
  RaiseStamp(*t, join.frontier);
  if (join.joiner.id != Self().id) Adopt(*t, join.joiner, join.reliable);
}

JoinMsg Scribe::OwnJoin(const TopicState& t) const {
  return JoinMsg{t.id, Self(), t.Reliable(), t.SeenEnd()};
}

void Scribe::SendJoin(TopicState& t) {
  t.join_sent = Now();
  joining_.insert(t.id);
  ++stats_.joins_sent;
  RouteToTopic(t.id, OwnJoin(t));  // may deliver here at once (root)
}

void Scribe::Adopt(TopicState& t, const NodeHandle& child, bool reliable) {
  if (child.id == Self().id) return;
  if (t.parent.has_value() && t.parent->id == child.id) {
    ++stats_.loops_refused;
    return;
  }
  auto it = t.children.find(child.id);
  if (it != t.children.end() && it->second.moving) {
    t.children.erase(it);  // a pushed child joining again: placed anew
    it = t.children.end();
  }
  if (it == t.children.end()) {
    if (t.SettledChildren() >= options_.max_children) {
      if (!PushDown(t, child, reliable)) {
        ++stats_.joins_refused;
        SendTo(child, JoinNackMsg{t.id});
      }
      return;
    }
    it = t.children.emplace(child.id, ChildState{child, Now()}).first;
    ++stats_.children_adopted;
  }
  it->second.handle = child;
  it->second.last_heard = Now();
  it->second.reliable = reliable;
  // Acknowledged again if already acknowledged: the ack may have been lost.
  if (t.attached) AckChild(t, it->second);
}

void Scribe::AckChild(TopicState& t, ChildState& child) {
  if (t.OnPath(child.handle.id)) {
    RefuseChild(t, child.handle.id);
    return;
  }
  child.acked = true;
  SendTo(child.handle, JoinAckMsg{t.id, t.path, t.next});
}

void Scribe::RefuseChild(TopicState& t, const NodeId& child) {
  auto it = t.children.find(child);
  if (it == t.children.end()) return;
  ++stats_.loops_refused;
  SendTo(it->second.handle, JoinNackMsg{t.id});
  t.children.erase(it);
}

// Acknowledges every child not yet told; refuses those on our path.
static std::vector<NodeId> UnackedChildren(const TopicState& t) {
  std::vector<NodeId> ids;
  for (const auto& [id, c] : t.children) {
    if (!c.acked) ids.push_back(id);
  }
  return ids;
}

void Scribe::BecomeRoot(TopicState& t, const char* why) {
  if (t.parent.has_value()) SendTo(*t.parent, LeaveMsg{t.id});
  t.parent.reset();
  t.root = true;
  joining_.erase(t.id);
  ++stats_.roots_taken;
  const bool was_attached = t.attached;
  t.attached = true;
  t.path = {Self().id};
  // A topic this node rooted and forgot (ForgetIdleTopics): its replicas
  // may still hold its numbering (until replica_ttl); it continues it,
  // under a higher term (TakeReplica), as a former root that handed over
  // does. Only here: a tree node's state made meanwhile (a subscribe, a
  // join passing through) must not use it up.
  if (auto f = forgotten_.find(t.id); f != forgotten_.end()) {
    t.term = std::max(t.term, f->second.term);
    t.next_stamp = std::max(t.next_stamp, f->second.next_stamp);
    forgotten_.erase(f);  // its forgotten_order_ entry goes stale
  }
  TakeReplica(t);
  if (LogsDebug()) {
    log_->debug("scribe: topic {}: root here ({}); next number {}, next to deliver {}, "
                "holds publishes for {} (a lease it granted)",
                t.id.ShortHex(), why, t.next_stamp, t.next,
                absl::FormatDuration(std::max(t.hold_until - Now(), absl::ZeroDuration())));
  }
  for (const NodeId& id : UnackedChildren(t)) {
    auto it = t.children.find(id);
    if (it != t.children.end()) AckChild(t, it->second);
  }
  if (!was_attached) NotifyActive(t, true);
  Replicate(t);
}

void Scribe::Detach(TopicState& t) {
  const bool was_attached = t.attached;
  t.parent.reset();
  t.moving_to.reset();
  t.attached = false;
  t.path.clear();
  if (was_attached) NotifyActive(t, false);
  SendJoin(t);
}

void Scribe::OnJoinAck(const NodeHandle& from, const JoinAckMsg& ack) {
  TopicState* t = Find(ack.topic);
  const bool other_parent = t != nullptr && t->attached &&
                            t->parent.has_value() && t->parent->id != from.id;
  const bool moving = other_parent && t->moving_to == from.id;
  if (t == nullptr || t->root || (other_parent && !moving)) {
    SendTo(from, LeaveMsg{ack.topic});  // not (or no longer) wanted
    return;
  }
  if (Contains(ack.path, Self().id)) {
    ++stats_.loops_refused;
    SendTo(from, LeaveMsg{ack.topic});
    if (moving) t->moving_to.reset();  // stay with the old parent
    return;  // the join is retried after join_timeout
  }
  if (moving) {
    // Pushed down: re-parent without falling off the tree. Data the old
    // parent sent is still arriving; a gap waits reorder_timeout for it.
    ++stats_.moves;
    SendTo(*t->parent, LeaveMsg{t->id});
    t->moving_to.reset();
    t->parent = from;
    t->last_parent_contact = Now();
    AdoptPath(*t, ack.path);
    NoteKnownEnd(*t, ack.next_seq);
    return;
  }
  t->moving_to.reset();
  t->parent = from;
  t->last_parent_contact = Now();
  joining_.erase(t->id);
  const bool was_attached = t->attached;
  t->attached = true;
  AdoptPath(*t, ack.path);
  StartFrom(*t, ack.next_seq);
  for (const NodeId& id : UnackedChildren(*t)) {
    auto it = t->children.find(id);
    if (it != t->children.end()) AckChild(*t, it->second);
  }
  if (!was_attached) NotifyActive(*t, true);
}

void Scribe::OnJoinNack(const NodeHandle& from, const JoinNackMsg& nack) {
  TopicState* t = Find(nack.topic);
  if (t == nullptr || t->root) return;
  if (t->moving_to == from.id) t->moving_to.reset();  // stay where we are
  if (t->parent.has_value() && t->parent->id == from.id) Detach(*t);
  // A refused pending join is retried by RetryJoins after join_timeout.
}

void Scribe::OnLeave(const NodeHandle& from, const LeaveMsg& leave) {
  TopicState* t = Find(leave.topic);
  if (t == nullptr) return;
  t->children.erase(from.id);
  LeaveIfUnwanted(*t);
}

void Scribe::LeaveIfUnwanted(TopicState& t) {
  if (t.Wanted()) return;
  if (t.parent.has_value()) SendTo(*t.parent, LeaveMsg{t.id});
  Erase(t.id);
}

void Scribe::AdoptPath(TopicState& t, const std::vector<NodeId>& parent_path) {
  t.path.clear();
  t.path.reserve(parent_path.size() + 1);
  t.path.push_back(Self().id);
  t.path.insert(t.path.end(), parent_path.begin(), parent_path.end());
}

void Scribe::OnHeartbeat(const NodeHandle& from, const HeartbeatMsg& hb) {
  const absl::Duration rtt = hb.rtt_micros == 0
                                 ? absl::InfiniteDuration()
                                 : absl::Microseconds(hb.rtt_micros);
  HeartbeatReplyMsg reply;
  reply.topics.reserve(hb.topics.size());
  for (const TopicId& id : hb.topics) {
    TopicStatus status;
    status.topic = id;
    TopicState* t = Find(id);
    auto it = t == nullptr ? decltype(t->children)::iterator()
                           : t->children.find(from.id);
    if (t != nullptr && it != t->children.end() && it->second.acked) {
      it->second.last_heard = Now();
      if (rtt != absl::InfiniteDuration()) it->second.rtt = rtt;
      status.accepted = true;
      if (t->attached) status.path = t->path;
      status.next_seq = t->next;
    }
    reply.topics.push_back(std::move(status));
  }
  SendTo(from, reply);
}

void Scribe::OnHeartbeatReply(const NodeHandle& from,
                              const HeartbeatReplyMsg& reply) {
  // The round trip to this parent, told to it with the next heartbeat.
  auto sent = heartbeat_sent_.find(from.id);
  if (sent != heartbeat_sent_.end()) {
    parent_rtt_[from.id] = Now() - sent->second;
    heartbeat_sent_.erase(sent);
  }
  for (const TopicStatus& status : reply.topics) {
    TopicState* t = Find(status.topic);
    if (t == nullptr || !t->parent.has_value() || t->parent->id != from.id) {
      continue;
    }
    t->last_parent_contact = Now();
    if (!status.accepted) {
      Detach(*t);
      continue;
    }
    if (Contains(status.path, Self().id)) {
      ++stats_.loops_refused;
      SendTo(from, LeaveMsg{t->id});
      Detach(*t);
      continue;
    }
    if (!status.path.empty()) AdoptPath(*t, status.path);
    NoteKnownEnd(*t, status.next_seq);
  }
}

void Scribe::SendHeartbeats() {
  absl::btree_map<NodeId, std::pair<NodeHandle, HeartbeatMsg>> by_parent;
  for (auto& [id, t] : topics_) {
    if (!t->attached || !t->parent.has_value()) continue;
    auto& entry = by_parent[t->parent->id];
    entry.first = *t->parent;
    entry.second.topics.push_back(id);
  }
  // Round trips are kept for current parents only.
  absl::erase_if(parent_rtt_, [&](const auto& e) { return !by_parent.contains(e.first); });
  heartbeat_sent_.clear();
  // Chunked: a receiver decodes at most 4096 topics per message.
  constexpr size_t kMaxTopicsPerHeartbeat = 1024;
  for (auto& [id, entry] : by_parent) {
    auto rtt = parent_rtt_.find(id);
    const uint64_t rtt_micros =
        rtt == parent_rtt_.end()
            ? 0
            : std::max<int64_t>(1, absl::ToInt64Microseconds(rtt->second));
    heartbeat_sent_[id] = Now();
    const std::vector<TopicId>& all = entry.second.topics;
    for (size_t i = 0; i < all.size(); i += kMaxTopicsPerHeartbeat) {
      const size_t end = std::min(all.size(), i + kMaxTopicsPerHeartbeat);
      SendTo(entry.first,
             HeartbeatMsg{{all.begin() + i, all.begin() + end}, rtt_micros});
    }
  }
}

void Scribe::CheckParents() {
  std::vector<TopicState*> orphans;
  for (auto& [id, t] : topics_) {
    if (t->attached && t->parent.has_value() &&
        Now() - t->last_parent_contact > options_.parent_timeout) {
      orphans.push_back(t.get());
    }
  }
  for (TopicState* t : orphans) {
    ++stats_.parent_failures;
    Detach(*t);
  }
}

void Scribe::ExpireChildren() {
  std::vector<TopicId> emptied;
  for (auto& [id, t] : topics_) {
    const size_t before = t->children.size();
    absl::erase_if(t->children, [this](const auto& entry) {
      return Now() - entry.second.last_heard > options_.child_timeout;
    });
    // Pushed down but never gone: refuse it, so it joins again.
    std::vector<NodeId> stuck;
    for (const auto& [child, c] : t->children) {
      if (c.moving && Now() - c.moving_since > options_.child_timeout) {
        stuck.push_back(child);
      }
    }
    for (const NodeId& child : stuck) {
      SendTo(t->children.at(child).handle, JoinNackMsg{id});
      t->children.erase(child);
    }
    stats_.children_expired += before - t->children.size();
    if (before != t->children.size()) emptied.push_back(id);
  }
  for (const TopicId& id : emptied) {
    if (TopicState* t = Find(id)) LeaveIfUnwanted(*t);
  }
}

void Scribe::RetryJoins() {
  std::vector<TopicId> due;
  for (const TopicId& id : joining_) {
    const TopicState* t = Find(id);
    if (t == nullptr || t->attached || t->root ||
        Now() - t->join_sent >= options_.join_timeout) {
      due.push_back(id);
    }
  }
  for (const TopicId& id : due) {
    joining_.erase(id);
    TopicState* t = Find(id);
    if (t != nullptr && !t->attached && !t->root) SendJoin(*t);
  }
}

// ---------------------------------------------------------------------------
// The bottleneck remover (Scribe paper, section 3.3): a node at max_children
// for a topic does not refuse a joiner. It picks the farthest of its
// children and the joiner and tells it to join through a sibling (the one
// that has had the fewest children pushed to it, then the nearest). Distance
// is the round trip children report on heartbeats. The joiner's is not
// known yet: it is taken as twice the children's median, so an existing
// child is pushed only when it is more than twice as far as the median
// (keeping moves rare); a child that has not reported counts as farthest;
// the id farthest from ours breaks ties. A pushed existing child stays
// served until its new parent has acknowledged it, so it misses nothing.

namespace {

// Larger is farther: unknown round trips beyond every known one.
struct Farness {
  absl::Duration rtt;
  NodeId distance;
  friend bool operator<(const Farness& a, const Farness& b) {
    if (a.rtt != b.rtt) return a.rtt < b.rtt;
    return a.distance < b.distance;
  }
};

// Twice the lower median of the settled children's known round trips;
// Infinite if none is known.
absl::Duration NewcomerEstimate(const TopicState& t) {
  std::vector<absl::Duration> known;
  for (const auto& [id, c] : t.children) {
    if (!c.moving && c.rtt != absl::InfiniteDuration()) known.push_back(c.rtt);
  }
  if (known.empty()) return absl::InfiniteDuration();
  std::sort(known.begin(), known.end());
  return 2 * known[(known.size() - 1) / 2];
}

}  // namespace

bool Scribe::PushDown(TopicState& t, const NodeHandle& newcomer,
                      bool reliable) {
  const NodeId self = Self().id;
  // The victim: the newcomer (null) or a settled child.
  ChildState* victim = nullptr;
  Farness victim_far{NewcomerEstimate(t), NodeId::Distance(self, newcomer.id)};
  for (auto& [id, c] : t.children) {
    if (c.moving) continue;
    Farness far{c.rtt, NodeId::Distance(self, id)};
    if (victim_far < far) {
      victim = &c;
      victim_far = far;
    }
  }
  // A served child that moves stays in the table until it leaves; with
  // max_moving_children moving already, the newcomer goes instead (it is
  // not served yet, so pushing it leaves nothing behind).
  if (victim != nullptr && victim->acked &&
      t.children.size() - t.SettledChildren() >= options_.max_moving_children) {
    victim = nullptr;
    ++stats_.pushdowns_limited;
    if (log_ != nullptr && bound_warn_.Allow(Now())) {
      log_->warn("scribe: topic {}: max_moving_children ({}) children are being pushed "
                 "down; the joiner {} is pushed instead ({} warnings suppressed)",
                 t.id.ShortHex(), options_.max_moving_children, newcomer.id.ShortHex(),
                 bound_warn_.suppressed());
    }
  }
  const NodeId victim_id = victim == nullptr ? newcomer.id : victim->handle.id;
  // Its new parent: a settled sibling, fewest pushed to it, then nearest.
  ChildState* target = nullptr;
  for (auto& [id, c] : t.children) {
    if (c.moving || id == victim_id) continue;
    if (target == nullptr ||
        std::tie(c.pushed_to, c.rtt, id) <
            std::tie(target->pushed_to, target->rtt, target->handle.id)) {
      target = &c;
    }
  }
  if (target == nullptr) return false;
  ++target->pushed_to;
  ++stats_.pushdowns;
  const NodeHandle new_parent = target->handle;
  if (victim == nullptr) {
    SendTo(newcomer, PushDownMsg{t.id, new_parent});
    return true;
  }
  const NodeHandle moved = victim->handle;
  if (victim->acked) {
    victim->moving = true;
    victim->moving_since = Now();
  } else {
    t.children.erase(moved.id);  // not served yet: nothing to lose
  }
  auto it = t.children.emplace(newcomer.id, ChildState{newcomer, Now()}).first;
  ++stats_.children_adopted;
  it->second.reliable = reliable;
  if (t.attached) AckChild(t, it->second);
  SendTo(moved, PushDownMsg{t.id, new_parent});
  return true;
}

// Told by our parent (or, while joining, by the node that would have
// adopted us) to join through `new_parent`.
void Scribe::OnPushDown(const NodeHandle& from, const PushDownMsg& m) {
  TopicState* t = Find(m.topic);
  if (t == nullptr || t->root || m.new_parent.id == Self().id) {
    ++stats_.dropped;
    return;
  }
  if (t->attached) {
    // From our parent, or from the node it sent us to (pushed on again).
    const bool from_parent = t->parent.has_value() && t->parent->id == from.id;
    if (!from_parent && t->moving_to != from.id) {
      ++stats_.dropped;  // stale
      return;
    }
    t->moving_to = m.new_parent.id;
    t->moving_since = Now();
  } else {
    t->join_sent = Now();  // RetryJoins routes a join if this fails
    joining_.insert(t->id);
  }
  ++stats_.joins_sent;
  SendTo(m.new_parent, OwnJoin(*t));
}

// A join sent straight to us after a push-down: adopt the joiner as if its
// join had been routed through us; without state for the topic, route it
// on (our own Forward then adopts it and joins in its place).
void Scribe::OnDirectJoin(const JoinMsg& join) {
  TopicState* t = Find(join.topic);
  if (t == nullptr) {
    RouteToTopic(join.topic, join);
    return;
  }
  if (t->OnPath(join.joiner.id) ||
      (t->parent.has_value() && t->parent->id == join.joiner.id)) {
    ++stats_.loops_refused;
    SendTo(join.joiner, JoinNackMsg{t->id});
    return;
  }
  Adopt(*t, join.joiner, join.reliable);
  if (!t->attached && !t->root && !joining_.contains(t->id)) SendJoin(*t);
}

// A move whose new parent never answered: stay with the old parent.
void Scribe::ExpireMoves() {
  for (auto& [id, t] : topics_) {
    if (t->moving_to.has_value() &&
        Now() - t->moving_since > 2 * options_.join_timeout) {
      t->moving_to.reset();
    }
  }
}

void Scribe::HandOver(TopicState& t, const NodeHandle& new_root, const char* why) {
  ++stats_.handovers;
  if (LogsDebug()) {
    log_->debug("scribe: topic {}: hands the root over to {} ({}); next number {}, {} "
                "acknowledgements abandoned, {} publishes held",
                t.id.ShortHex(), new_root.id.ShortHex(), why, t.next_stamp, t.unconfirmed.size(),
                t.held_publishes.size());
  }
  for (std::string& part : FullState(t, /*handover=*/true)) {
    SendBytes(new_root, std::move(part));
  }
  KeepAsReplica(t);
  t.root = false;
  t.replicated_to.clear();
  AbandonUnconfirmed(t);
  Detach(t);  // our own join now goes to the new root
}

}  // namespace peter::pubsub

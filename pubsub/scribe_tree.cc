// Scribe: building and keeping the multicast trees. Joins are caught by the
// Forward upcall at each hop; parents acknowledge children only once they
// are on the tree themselves, with their path to the root; children send
// heartbeats and join again when their parent falls silent.
#include <algorithm>
#include <utility>

#include "pubsub/scribe.h"
#include "pubsub/wire/codec.h"

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
  if (!t->root) BecomeRoot(*t);
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
  if (it == t.children.end()) {
    if (t.children.size() >= options_.max_children) {
      SendTo(child, JoinNackMsg{t.id});
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

void Scribe::BecomeRoot(TopicState& t) {
  if (t.parent.has_value()) SendTo(*t.parent, LeaveMsg{t.id});
  t.parent.reset();
  t.root = true;
  joining_.erase(t.id);
  ++stats_.roots_taken;
  const bool was_attached = t.attached;
  t.attached = true;
  t.path = {Self().id};
  TakeReplica(t);
  for (const NodeId& id : UnackedChildren(t)) {
    auto it = t.children.find(id);
    if (it != t.children.end()) AckChild(t, it->second);
  }
  if (!was_attached) NotifyActive(t, true);
  Replicate(t, nullptr);
}

void Scribe::Detach(TopicState& t) {
  const bool was_attached = t.attached;
  t.parent.reset();
  t.attached = false;
  t.path.clear();
  if (was_attached) NotifyActive(t, false);
  SendJoin(t);
}

void Scribe::OnJoinAck(const NodeHandle& from, const JoinAckMsg& ack) {
  TopicState* t = Find(ack.topic);
  const bool other_parent = t != nullptr && t->attached &&
                            t->parent.has_value() && t->parent->id != from.id;
  if (t == nullptr || t->root || other_parent) {
    SendTo(from, LeaveMsg{ack.topic});  // not (or no longer) wanted
    return;
  }
  if (Contains(ack.path, Self().id)) {
    ++stats_.loops_refused;
    SendTo(from, LeaveMsg{ack.topic});
    return;  // the join is retried after join_timeout
  }
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
  absl::flat_hash_map<NodeId, std::pair<NodeHandle, HeartbeatMsg>> by_parent;
  for (auto& [id, t] : topics_) {
    if (!t->attached || !t->parent.has_value()) continue;
    auto& entry = by_parent[t->parent->id];
    entry.first = *t->parent;
    entry.second.topics.push_back(id);
  }
  // Chunked: a receiver decodes at most 4096 topics per message.
  constexpr size_t kMaxTopicsPerHeartbeat = 1024;
  for (auto& [id, entry] : by_parent) {
    const std::vector<TopicId>& all = entry.second.topics;
    for (size_t i = 0; i < all.size(); i += kMaxTopicsPerHeartbeat) {
      const size_t end = std::min(all.size(), i + kMaxTopicsPerHeartbeat);
      SendTo(entry.first, HeartbeatMsg{{all.begin() + i, all.begin() + end}});
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

void Scribe::HandOver(TopicState& t, const NodeHandle& new_root) {
  ++stats_.handovers;
  for (std::string& part : FullState(t, /*handover=*/true)) {
    SendBytes(new_root, std::move(part));
  }
  t.root = false;
  t.replicated_to.clear();
  Detach(t);  // our own join now goes to the new root
}

}  // namespace peter::pubsub

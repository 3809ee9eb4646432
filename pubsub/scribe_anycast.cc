// Scribe: anycast by depth-first search of a topic's tree (Scribe paper,
// section 2.3). The anycast is routed toward the topic id; the first node
// on the tree that sees it (in Forward, or the root in Deliver) starts the
// walk: its local subscribers first, then each child's subtree, nearest
// child first, then up to its parent, which goes on with its other
// children, and so on up to the root. The message carries the nodes visited
// (none is asked twice) and the walk's stack of children still to visit, so
// it goes from a finished subtree straight to the next sibling instead of
// back through the parent: each tree node is visited once, about n hops
// for n tree nodes. One message walks the tree at a time, so at most one
// subscriber accepts. The node that accepts (or the last one, having asked
// everyone) answers the requester directly.
#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pubsub/scribe.h"
#include "pubsub/topic_id.h"
#include "pubsub/wire/codec.h"

namespace peter::pubsub {
namespace {

bool Contains(const std::vector<NodeId>& ids, const NodeId& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

absl::Status StatusOf(AnycastOutcome outcome) {
  switch (outcome) {
    case AnycastOutcome::kAccepted: return absl::OkStatus();
    case AnycastOutcome::kNoneAccepted:
      return absl::NotFoundError("no subscriber accepted");
    case AnycastOutcome::kTooFar:
      return absl::ResourceExhaustedError(
          "anycast gave up: too many tree nodes visited");
    case AnycastOutcome::kLost: break;
  }
  return absl::UnavailableError(
      "anycast found no tree for the topic, or the tree changed under it");
}

}  // namespace

absl::Status Scribe::Anycast(std::string_view topic, std::string payload,
                             AnycastCallback done) {
  EnsureTicking();
  absl::Status status = CheckMessage(topic, payload);
  if (!status.ok()) return status;
  if (!done) return absl::InvalidArgumentError("no completion callback");
  if (pending_anycasts_.size() >= options_.max_pending_anycasts) {
    return absl::ResourceExhaustedError(
        absl::StrCat(pending_anycasts_.size(), " anycasts in flight"));
  }
  const uint64_t request = NextRequest();
  pending_anycasts_[request] =
      PendingAnycast{std::move(done), Now() + options_.anycast_timeout};
  ++stats_.anycasts_sent;
  const TopicId id = TopicIdOf(topic);
  AnycastMsg m;
  m.topic = id;
  m.request = request;
  m.requester = Self();
  m.payload = std::move(payload);
  RouteToTopic(id, m);
  return absl::OkStatus();
}

// At each hop of the routed anycast: the first node on the tree takes it.
bool Scribe::OnForwardAnycast(const AnycastMsg& m) {
  const TopicState* t = Find(m.topic);
  if (t == nullptr || !t->attached) return true;
  ++stats_.messages_in;
  // From the event loop: subscriber code does not run inside the upcall.
  overlay_->ScheduleTimer(absl::ZeroDuration(),
                          [this, m] { AnycastStep(m); });
  return false;
}

void Scribe::OnDeliverAnycast(AnycastMsg m) {
  if (Find(m.topic) == nullptr) {
    ReplyAnycast(m, AnycastOutcome::kLost);  // nobody ever subscribed
    return;
  }
  AnycastStep(std::move(m));
}

void Scribe::AnycastStep(AnycastMsg m) {
  const NodeId self = Self().id;
  if (++m.hops > 2 * options_.max_anycast_visits + 64) {
    ReplyAnycast(m, AnycastOutcome::kTooFar);  // the tree kept changing
    return;
  }
  if (!Contains(m.visited, self)) {
    if (m.visited.size() >= options_.max_anycast_visits) {
      ReplyAnycast(m, AnycastOutcome::kTooFar);
      return;
    }
    const bool climbing = m.visited.empty() || (m.up.has_value() && m.up->id == self);
    m.visited.push_back(self);
    ++stats_.anycasts_visited;
    if (VisitForAnycast(m, climbing)) return;  // accepted here
  }
  // The next child still to visit, else up, else done.
  while (!m.pending.empty()) {
    NodeHandle next = m.pending.back();
    m.pending.pop_back();
    if (Contains(m.visited, next.id)) continue;
    SendTo(next, m);
    return;
  }
  if (m.up.has_value() && !Contains(m.visited, m.up->id)) {
    SendTo(*m.up, m);
    return;
  }
  ReplyAnycast(m, m.top_reached ? AnycastOutcome::kNoneAccepted
                                : AnycastOutcome::kLost);
}

// Offers the anycast to the local subscribers; then stacks the children
// not yet visited (nearest on top) and, when the walk is climbing through
// this node, sets the next ancestor. Returns true if it was accepted.
bool Scribe::VisitForAnycast(AnycastMsg& m, bool climbing) {
  TopicState* t = Find(m.topic);
  if (t == nullptr) {
    ++stats_.dropped;  // left the tree meanwhile: the walk goes on
    return false;
  }
  for (size_t i = 0; i < t->subs.size(); ++i) {
    std::shared_ptr<const SubscribeOptions> s = t->subs[i].options;
    if (s->on_anycast && RunCallback(s->on_anycast, Delivery{t->name, 0, m.payload})) {
      ++stats_.anycasts_accepted;
      ReplyAnycast(m, AnycastOutcome::kAccepted);
      return true;
    }
    t = Find(m.topic);  // the handler may have unsubscribed
    if (t == nullptr) return false;
  }
  std::vector<const ChildState*> children;
  for (const auto& [id, c] : t->children) {
    if (c.acked && !Contains(m.visited, id)) children.push_back(&c);
  }
  // Farthest first onto the stack, so the nearest is visited first.
  std::sort(children.begin(), children.end(),
            [](const ChildState* a, const ChildState* b) {
              return std::tie(b->rtt, b->handle.id) < std::tie(a->rtt, a->handle.id);
            });
  for (const ChildState* c : children) m.pending.push_back(c->handle);
  if (climbing) {
    m.up.reset();
    if (t->root) {
      m.top_reached = true;
    } else if (t->parent.has_value()) {
      m.up = *t->parent;
    }
  }
  return false;
}

void Scribe::ReplyAnycast(const AnycastMsg& m, AnycastOutcome outcome) {
  SendTo(m.requester, AnycastReplyMsg{m.topic, m.request, outcome, Self()});
}

void Scribe::OnAnycastReply(const AnycastReplyMsg& reply) {
  auto it = pending_anycasts_.find(reply.request);
  if (it == pending_anycasts_.end()) {
    ++stats_.dropped;  // answered after its deadline
    return;
  }
  AnycastCallback done = std::move(it->second.done);
  pending_anycasts_.erase(it);
  if (reply.outcome == AnycastOutcome::kAccepted) {
    RunCallback(done, reply.accepted_by);
    return;
  }
  ++stats_.anycasts_failed;
  RunCallback(done, StatusOf(reply.outcome));
}

void Scribe::CheckPendingAnycasts() {
  std::vector<AnycastCallback> expired;
  for (auto it = pending_anycasts_.begin(); it != pending_anycasts_.end();) {
    if (Now() < it->second.deadline) {
      ++it;
      continue;
    }
    expired.push_back(std::move(it->second.done));
    it = pending_anycasts_.erase(it);
  }
  for (AnycastCallback& done : expired) {
    ++stats_.anycasts_failed;
    RunCallback(done, absl::DeadlineExceededError(
                          "anycast not answered in time; a subscriber may have accepted it"));
  }
}

}  // namespace peter::pubsub

// Node: routing (each hop tracked until acknowledged, node_ack.cc),
// delivery, lookups, and the Overlay handed to applications.
#include <algorithm>

#include "pastry/core/node.h"
#include "pastry/core/router.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace peter::pastry {
namespace {

// A route longer than this is looping (inconsistent state); it is dropped.
constexpr int kMaxRouteHops = 40;

}  // namespace

class Node::AppOverlay : public Overlay {
 public:
  AppOverlay(Node* node, AppId app) : node_(node), app_(app) {}
  void Route(std::optional<NodeId> key, std::string payload,
             std::optional<NodeHandle> hint) override {
    node_->AppRoute(app_, key, std::move(payload), hint);
  }
  std::vector<NodeHandle> ReplicaSet(const NodeId& key, int k) const override {
    return node_->leaf_set_.ReplicaSet(key, k, node_->self_);
  }
  uint64_t LeafSetVersion() const override { return node_->leaf_set_.version(); }
  NodeHandle LocalHandle() const override { return node_->self_; }
  std::vector<NodeHandle> LeafSet() const override {
    return node_->leaf_set_.Members();
  }
  bool IsActive() const override { return node_->active(); }
  absl::Time Now() const override { return node_->Now(); }
  TimerId ScheduleTimer(absl::Duration delay, std::function<void()> fn) override {
    if (delay == absl::ZeroDuration()) {
      return node_->scheduler_.ScheduleNow(node_->Now(), std::move(fn));
    }
    return node_->scheduler_.Schedule(node_->Now() + delay, std::move(fn));
  }
  void CancelTimer(TimerId id) override { node_->scheduler_.Cancel(id); }

 private:
  Node* node_;
  AppId app_;
};

std::unique_ptr<Overlay> Node::RegisterApplication(AppId app, Application* application) {
  apps_[app] = application;
  return std::make_unique<AppOverlay>(this, app);
}

void Node::AppRoute(AppId app, std::optional<NodeId> key, std::string payload,
                    std::optional<NodeHandle> hint) {
  if (state_ == State::kLeft || state_ == State::kIdle) return;
  RouteMsg msg;
  msg.kind = RouteKind::kApp;
  msg.app = app;
  msg.key = key;
  msg.payload = std::move(payload);
  Originate(std::move(msg), hint);
}

void Node::Lookup(const NodeId& key, absl::Duration timeout, LookupCallback done) {
  if (state_ == State::kLeft || state_ == State::kIdle) {
    done(absl::FailedPreconditionError("node is not running"));
    return;
  }
  uint64_t request_id = next_id_++;
  Scheduler::JobId timer = scheduler_.Schedule(Now() + timeout, [this, request_id] {
    CompleteLookup(request_id, absl::DeadlineExceededError("lookup timed out"));
  });
  lookups_[request_id] = PendingLookup{std::move(done), timer};
  RouteMsg msg;
  msg.kind = RouteKind::kLookup;
  msg.key = key;
  msg.trace = true;
  msg.request_id = request_id;
  Originate(std::move(msg), std::nullopt);
}

void Node::Originate(RouteMsg msg, std::optional<NodeHandle> hint) {
  ++stats_.routes_originated;
  msg.source = self_;
  msg.hops = 0;
  if (hint.has_value() && hint->id != self_.id) {
    if (msg.trace) msg.path.push_back(self_.id);
    NodeHandle next = *hint;
    if (!ForwardUpcall(msg, self_, next)) {
      ++stats_.routes_consumed;
      return;
    }
    SendHop(std::move(msg), next, {}, 0);
    return;
  }
  ProcessRoute(std::move(msg), self_);
}

void Node::OnRoute(const NodeHandle& from, RouteMsg msg, uint16_t version) {
  if (msg.id != 0) Acknowledge(from, msg.id, version);
  if (msg.hops >= kMaxRouteHops) {
    ++stats_.routes_dropped;
    return;
  }
  if (msg.kind == RouteKind::kJoin && msg.source.id == self_.id) {
    ++stats_.dropped_malformed;  // our own join came back: drop it
    return;
  }
  ++msg.hops;
  ProcessRoute(std::move(msg), from);
}

void Node::ProcessRoute(RouteMsg msg, const NodeHandle& previous_hop) {
  if (msg.trace) msg.path.push_back(self_.id);
  if (!msg.key.has_value()) {
    DeliverLocally(std::move(msg), previous_hop);
    return;
  }
  const NodeId joiner = msg.source.id;
  const bool is_join = msg.kind == RouteKind::kJoin;
  std::optional<NodeHandle> next =
      NextHop(leaf_set_, table_, *msg.key, [&](const NodeId& id) {
        return Unusable(id) || (is_join && id == joiner);
      });
  if (!next.has_value()) {
    if (state_ != State::kActive) {
      BufferUntilActive(std::move(msg), previous_hop);
    } else {
      DeliverLocally(std::move(msg), previous_hop);
    }
    return;
  }
  if (!ForwardUpcall(msg, previous_hop, *next)) {
    ++stats_.routes_consumed;
    return;
  }
  if (is_join) AddJoinRows(msg);
  if (previous_hop.id != self_.id) ++stats_.routes_forwarded;
  SendHop(std::move(msg), *next, {}, 0);
}

bool Node::ForwardUpcall(RouteMsg& msg, const NodeHandle& previous_hop, NodeHandle& next) {
  if (msg.kind != RouteKind::kApp) return true;
  auto it = apps_.find(msg.app);
  if (it == apps_.end()) return true;  // a relay need not run the application
  RouteMessage view{msg.key, msg.source, previous_hop, msg.hops, std::move(msg.payload)};
  bool go_on = it->second->Forward(view, next);
  msg.payload = std::move(view.payload);
  return go_on && next.id != self_.id;
}

void Node::DeliverLocally(RouteMsg msg, const NodeHandle& previous_hop) {
  ++stats_.routes_delivered;
  ++stats_.delivered_hops[std::min<int>(msg.hops, NodeStats::kMaxHops)];
  switch (msg.kind) {
    case RouteKind::kApp:
      DeliverToApp(std::move(msg), previous_hop);
      return;
    case RouteKind::kJoin: {
      AddJoinRows(msg);
      JoinReply reply{std::move(msg.join_rows), leaf_set_.Members()};
      Send(msg.source.endpoint, std::move(reply));
      return;
    }
    case RouteKind::kLookup:
      if (msg.source.id == self_.id) {
        CompleteLookup(msg.request_id, LookupResult{self_, msg.hops, msg.path});
      } else {
        Send(msg.source.endpoint,
             LookupReply{msg.request_id, *msg.key, msg.hops, std::move(msg.path)});
      }
      return;
  }
}

void Node::DeliverToApp(RouteMsg msg, const NodeHandle& previous_hop) {
  auto it = apps_.find(msg.app);
  if (it == apps_.end()) {
    ++stats_.dropped_unknown_app;
    return;
  }
  RouteMessage view{msg.key, msg.source, previous_hop, msg.hops, std::move(msg.payload)};
  it->second->Deliver(view);
}

void Node::SendHop(RouteMsg msg, const NodeHandle& next, std::vector<NodeId> tried,
                   int attempts) {
  tried.push_back(next.id);
  if (rerouting_at_pending_bound_ && pending_.size() >= options_.max_pending_acks) {
    // The copy of a hop given up early at the bound (GiveUpEarliestHop):
    // the hop's slot went to the one sent then. The first copy was sent to
    // a peer now suspected; this one goes to another, untracked.
    msg.id = 0;
    Send(next.endpoint, std::move(msg));
    return;
  }
  msg.id = next_id_++;
  const uint64_t id = msg.id;
  Envelope envelope{kProtocolVersion, self_, std::move(msg)};
  ++stats_.messages_sent[envelope.body.index()];
  env_.transport->Send(next.endpoint, envelope);
  const absl::Time now = Now();
  PendingHop& hop = pending_[id];
  hop.msg = std::move(std::get<RouteMsg>(envelope.body));
  hop.next = next;
  hop.tried = std::move(tried);
  hop.attempts = attempts;
  hop.sent = now;
  WatchHop(next.id, id, now + TimeoutFor(next.id, options_.hop_ack_timeout));
  if (pending_.size() > options_.max_pending_acks) GiveUpEarliestHop(id);
}

void Node::Reroute(PendingHop hop) {
  if (++hop.attempts > options_.max_reroutes || !hop.msg.key.has_value()) {
    ++stats_.routes_dropped;
    env_.logger->debug("{} drops a message for {} after {} attempts", self_.id.ShortHex(),
                       hop.msg.key ? hop.msg.key->ShortHex() : "direct", hop.attempts);
    return;
  }
  ++stats_.reroutes;
  const NodeId joiner = hop.msg.source.id;
  const bool is_join = hop.msg.kind == RouteKind::kJoin;
  const auto& tried = hop.tried;
  std::optional<NodeHandle> next =
      NextHop(leaf_set_, table_, *hop.msg.key, [&](const NodeId& id) {
        return Unusable(id) || (is_join && id == joiner) ||
               std::find(tried.begin(), tried.end(), id) != tried.end();
      });
  if (!next.has_value()) {
    if (state_ == State::kActive) {
      DeliverLocally(std::move(hop.msg), self_);
    } else {
      BufferUntilActive(std::move(hop.msg), self_);
    }
    return;
  }
  SendHop(std::move(hop.msg), *next, std::move(hop.tried), hop.attempts);
}

void Node::OnLookupReply(const NodeHandle& from, const LookupReply& reply) {
  CompleteLookup(reply.request_id, LookupResult{from, reply.hops, reply.path});
}

void Node::CompleteLookup(uint64_t request_id, absl::StatusOr<LookupResult> result) {
  auto it = lookups_.find(request_id);
  if (it == lookups_.end()) return;  // a late or duplicate answer
  PendingLookup pending = std::move(it->second);
  lookups_.erase(it);
  scheduler_.Cancel(pending.timer);
  pending.done(std::move(result));
}

}  // namespace peter::pastry

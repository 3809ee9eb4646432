// Node: starting a ring, joining one (with MSPastry's consistent activation),
// and leaving it.
#include <algorithm>

#include "pastry/core/node.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace peter::pastry {

void Node::StartRing() {
  state_ = State::kActive;
  SchedulePeriodic(options_.leaf_probe_interval, &Node::LeafSetMaintenance);
  SchedulePeriodic(options_.routing_maintenance_interval, &Node::TableMaintenance);
  env_.logger->info("{} starts a new ring", self_.id.ShortHex());
}

void Node::Join(std::vector<Endpoint> bootstraps) {
  state_ = State::kJoining;
  bootstraps_ = std::move(bootstraps);
  SchedulePeriodic(options_.leaf_probe_interval, &Node::LeafSetMaintenance);
  SchedulePeriodic(options_.routing_maintenance_interval, &Node::TableMaintenance);
  SendJoinRequest();
}

// The join request is an ordinary routed message toward our own id; the
// first hop is the bootstrap, whose id we do not know yet, so that hop is not
// acknowledged: the join timeout covers it.
void Node::SendJoinRequest() {
  if (bootstraps_.empty()) return;
  ++join_attempt_;
  RouteMsg msg;
  msg.kind = RouteKind::kJoin;
  msg.key = self_.id;
  msg.source = self_;
  msg.request_id = join_attempt_;
  const Endpoint& bootstrap = bootstraps_[bootstrap_index_ % bootstraps_.size()];
  env_.logger->debug("{} joins through {}", self_.id.ShortHex(), bootstrap.ToString());
  Send(bootstrap, std::move(msg));
  join_timer_ =
      scheduler_.Schedule(Now() + Jittered(options_.join_timeout), [this] { OnJoinTimeout(); });
}

void Node::OnJoinTimeout() {
  if (state_ != State::kJoining) return;
  // Two joiners can each hold the other's join request (each would be its
  // root and is not active yet). After a timeout, a node whose leaf set has
  // confirmed it activates without the reply, which breaks the cycle.
  MaybeBecomeActive(/*without_reply=*/true);
  if (state_ != State::kJoining) return;
  ++stats_.join_retries;
  ++bootstrap_index_;
  SendJoinRequest();
}

// Each hop hands the joiner the rows it shares with it (rows 0..l where l is
// the shared prefix length: all are valid rows for the joiner) and itself.
void Node::AddJoinRows(RouteMsg& msg) const {
  const int shared = self_.id.SharedPrefixLength(msg.source.id, options_.b);
  const int last = std::min(shared, table_.rows() - 1);
  for (int row = 0; row <= last; ++row) {
    for (const NodeHandle& n : table_.Row(row)) {
      if (n.id != msg.source.id) msg.join_rows.push_back(n);
    }
  }
  msg.join_rows.push_back(self_);
}

void Node::OnJoinReply(const NodeHandle& from, const JoinReply& reply) {
  if (state_ != State::kJoining) return;
  join_reply_received_ = true;
  // The root's leaf set first: it names our nearest neighbours, so the
  // rows' far-away entries are then offered to the routing table only.
  for (const NodeHandle& n : reply.leaf_set) OfferCandidate(n);
  for (const NodeHandle& n : reply.rows) OfferCandidate(n);
  // The root answered us directly, but may not have heard of us: only a
  // probe that it answers counts as its confirmation.
  SendProbe(from, /*want_leaf_set=*/true);
  MaybeBecomeActive();
}

// Consistent join: active once a root has answered our join (see
// OnJoinTimeout for the exception), every leaf-set member has confirmed us
// (has answered our probe or probed us) and no probed candidate that would
// enter the leaf set is still unanswered. Without the first condition, a probe
// from the bootstrap arriving before the join reply would make us active with
// a leaf set of one.
void Node::MaybeBecomeActive(bool without_reply) {
  if (state_ != State::kJoining || leaf_set_.empty()) return;
  if (!join_reply_received_ && !without_reply) return;
  for (auto it = awaiting_.begin(); it != awaiting_.end();) {
    auto cur = it++;
    if (!leaf_set_.WouldAccept(*cur) && !leaf_set_.Contains(*cur)) awaiting_.erase(cur);
  }
  if (!awaiting_.empty()) return;
  bool all_confirmed = true;
  for (const NodeHandle& m : leaf_set_.Members()) {
    if (confirmed_.contains(m.id)) continue;
    all_confirmed = false;
    SendProbe(m, /*want_leaf_set=*/true);  // no-op if one is outstanding
  }
  if (all_confirmed) BecomeActive();
}

void Node::BecomeActive() {
  state_ = State::kActive;
  scheduler_.Cancel(join_timer_);
  ++stats_.joins_completed;
  confirmed_.clear();
  awaiting_.clear();
  join_candidates_ = LeafSet(self_.id, options_.leaf_set_size);
  env_.logger->info("{} is active with {} leaves and {} table entries", self_.id.ShortHex(),
                    leaf_set_.size(), table_.EntryCount());
  // Announce ourselves to the routing table's nodes (they may adopt us),
  // and ask each for its copy of the row it shares with us: the Pastry
  // paper's second join phase, which offers nearer candidates for every slot
  // than the join route's rows alone. Without known round trips, also
  // measure theirs.
  std::vector<std::pair<int, NodeHandle>> announce;
  table_.ForEach([&](int row, int, const RoutingTable::Entry& e) {
    announce.emplace_back(row, e.node);
  });
  for (const auto& [row, n] : announce) {
    if (env_.proximity == nullptr) SendProbe(n, /*want_leaf_set=*/false);
    Send(n.endpoint, RowRequest{static_cast<uint8_t>(row)});
  }
  std::vector<Buffered> buffered = std::move(join_buffer_);
  join_buffer_.clear();
  for (Buffered& b : buffered) ProcessRoute(std::move(b.msg), b.previous_hop);
}

void Node::BufferUntilActive(RouteMsg msg, const NodeHandle& previous_hop) {
  if (join_buffer_.size() >= options_.max_join_buffer) {
    ++stats_.join_buffer_overflows;
    WarnBound(absl::StrCat("holds ", join_buffer_.size(),
                           " messages while joining, the limit (max_join_buffer): dropping"));
    return;
  }
  // Re-processing adds us to the trace again; undo this visit's entry.
  if (msg.trace && !msg.path.empty() && msg.path.back() == self_.id) msg.path.pop_back();
  join_buffer_.push_back(Buffered{std::move(msg), previous_hop});
}

void Node::Leave() {
  if (state_ == State::kLeft) return;
  std::vector<NodeHandle> tell = leaf_set_.Members();
  table_.ForEach([&](int, int, const RoutingTable::Entry& e) {
    if (!leaf_set_.Contains(e.node.id)) tell.push_back(e.node);
  });
  // Route messages already handled are acknowledged (their senders would
  // time out and reroute them again).
  FlushAcks();
  for (const NodeHandle& n : tell) Send(n.endpoint, pastry::Leave{});
  state_ = State::kLeft;
  scheduler_ = Scheduler();
  auto lookups = std::move(lookups_);
  lookups_.clear();
  for (auto& [id, pending] : lookups) pending.done(absl::CancelledError("node left"));
  env_.logger->info("{} leaves the ring", self_.id.ShortHex());
}

}  // namespace peter::pastry

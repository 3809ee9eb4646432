// Node: per-hop acknowledgements, batched both ways (docs/design.md,
// "Per-hop acknowledgements").
//
// Receiving: the route ids a peer sent in one batch of work are named in one
// RouteAck, sent by a zero-delay job once the owner has handed over what it
// read (the runtime runs due jobs after the handlers already queued on its
// loop; the simulator right after the message). A version-1 peer reads only
// one id per RouteAck and gets one per route message, at once.
//
// Sending: each hop's deadline is queued in its next hop's HopWatch; one
// scheduler job per peer sits at the earliest deadline of a hop still
// unacknowledged. A hop that is not acknowledged by its deadline times out at
// that deadline, as with a job per hop, and is rerouted. Acknowledged entries
// leave the queue at once from its front, and from behind an unacknowledged
// front once they are as many as the hops in flight; a peer has at most
// Options::max_hops_in_flight_per_peer hops in flight.
#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"

#include "pastry/core/node.h"

namespace peter::pastry {

void Node::Acknowledge(const NodeHandle& from, uint64_t id, uint16_t version) {
  if (version < kBatchedAckVersion) {
    Send(from.endpoint, RouteAck{{id}});
    return;
  }
  // Few peers send to us within one batch of work; the latest is likeliest.
  auto it = std::find_if(acks_.rbegin(), acks_.rend(), [&](const AckBatch& b) {
    return b.peer == from.id && b.endpoint == from.endpoint;
  });
  if (it == acks_.rend()) {
    acks_.push_back(AckBatch{from.id, from.endpoint, {}});
    it = acks_.rbegin();
  }
  it->ids.push_back(id);
  if (it->ids.size() >= RouteAck::kMaxAckIds) {
    Send(it->endpoint, RouteAck{std::move(it->ids)});
    it->ids.clear();
  }
  if (!ack_flush_scheduled_) {
    ack_flush_scheduled_ = true;
    scheduler_.ScheduleNow(Now(), [this] { FlushAcks(); });
  }
}

void Node::FlushAcks() {
  ack_flush_scheduled_ = false;
  std::vector<AckBatch> batches = std::move(acks_);
  acks_.clear();
  for (AckBatch& b : batches) {
    if (!b.ids.empty()) Send(b.endpoint, RouteAck{std::move(b.ids)});
  }
}

// One round-trip sample per RouteAck, from the latest hop it acknowledges
// (the one that waited least for the batch to end).
void Node::OnRouteAck(const NodeHandle& from, const RouteAck& ack) {
  absl::Time latest = absl::InfinitePast();
  size_t acknowledged = 0;
  for (uint64_t id : ack.ids) {
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second.next.id != from.id) continue;
    latest = std::max(latest, it->second.sent);
    pending_.erase(it);
    ++acknowledged;
  }
  if (acknowledged == 0) return;
  UpdateRtt(from.id, Now() - latest);
  auto watch = hop_watches_.find(from.id);
  if (watch == hop_watches_.end()) return;
  watch->second.live -= acknowledged;
  if (watch->second.live == 0) {
    scheduler_.Cancel(watch->second.job);
    hop_watches_.erase(watch);
    return;
  }
  DropAcknowledged(watch->second);
}

// Keeps the front live, and the acknowledged entries behind it fewer than
// the live ones: a compaction drops at least half the queue and each entry
// is dropped once, so O(1) amortised a hop, and a hop that stays
// unacknowledged at the front holds fewer acknowledged ones behind it than
// there are hops in flight.
// REQUIRES: watch.live > 0.
void Node::DropAcknowledged(HopWatch& watch) {
  std::deque<HopDeadline>& q = watch.deadlines;
  while (!pending_.contains(q.front().id)) q.pop_front();
  if (q.size() >= 2 * watch.live) {
    std::erase_if(q, [this](const HopDeadline& d) { return !pending_.contains(d.id); });
  }
}

// REQUIRES: `id` is in pending_.
void Node::WatchHop(const NodeId& next, uint64_t id, absl::Time deadline) {
  HopWatch& watch = hop_watches_[next];
  std::deque<HopDeadline>& q = watch.deadlines;
  // At the bound, the hop with the earliest deadline times out now instead
  // of later: it has been sent, so rerouting it loses nothing (docs/limits.md).
  uint64_t early = 0;
  if (watch.live >= options_.max_hops_in_flight_per_peer) {
    early = q.front().id;
    q.pop_front();
    if (--watch.live > 0) {
      DropAcknowledged(watch);
    } else {
      q.clear();
    }
  }
  // Earliest first; a deadline before the last one (the peer's round trip,
  // and so its timeout, shrank) goes in its place.
  auto pos = q.end();
  while (pos != q.begin() && std::prev(pos)->at > deadline) --pos;
  q.insert(pos, HopDeadline{deadline, id});
  ++watch.live;
  ArmHopWatch(next, watch);
  if (early == 0) return;
  ++stats_.hops_in_flight_overflows;
  WarnBound(absl::StrCat("awaits ", options_.max_hops_in_flight_per_peer,
                         " hop acknowledgements from ", next.ShortHex(),
                         ", the limit (max_hops_in_flight_per_peer): the earliest times out "
                         "now"));
  // Rerouting sends hops, which may add watches (`watch` is not used again).
  GiveUpHop(early);
}

// REQUIRES: !watch.deadlines.empty().
void Node::ArmHopWatch(const NodeId& peer, HopWatch& watch) {
  const absl::Time first = watch.deadlines.front().at;
  if (watch.job_at <= first) return;  // it runs early enough, and re-arms
  scheduler_.Cancel(watch.job);
  watch.job_at = first;
  watch.job = scheduler_.Schedule(first, [this, peer] { OnHopWatch(peer); });
}

void Node::OnHopWatch(const NodeId& peer) {
  auto it = hop_watches_.find(peer);
  if (it == hop_watches_.end()) return;
  HopWatch& watch = it->second;
  watch.job = 0;
  watch.job_at = absl::InfiniteFuture();
  const absl::Time now = Now();
  std::vector<uint64_t> due;
  std::deque<HopDeadline>& q = watch.deadlines;
  while (!q.empty()) {
    if (pending_.contains(q.front().id)) {
      if (q.front().at > now) break;
      due.push_back(q.front().id);
      --watch.live;
    }
    q.pop_front();
  }
  if (q.empty()) {
    hop_watches_.erase(it);
  } else {
    ArmHopWatch(peer, watch);
  }
  // Rerouting sends hops (to other peers), which may add watches.
  for (uint64_t id : due) {
    if (GiveUpHop(id)) ++stats_.hop_ack_timeouts;
  }
}

// At max_pending_acks the hop with the earliest deadline of all (other than
// `keep`, just sent and tracked in its place) times out now, as at
// max_hops_in_flight_per_peer (WatchHop): its next hop is suspected and it
// is rerouted, the copy untracked (docs/limits.md). Before, the new hop was
// sent untracked: lost if its next hop was dead, the case that fills
// pending_.
void Node::GiveUpEarliestHop(uint64_t keep) {
  NodeId peer;
  HopDeadline earliest{absl::InfiniteFuture(), 0};
  for (const auto& [p, watch] : hop_watches_) {
    for (const HopDeadline& d : watch.deadlines) {
      if (d.id == keep || !pending_.contains(d.id)) continue;
      // Ties by id: the choice must not depend on the map's order.
      if (d.at < earliest.at || (d.at == earliest.at && d.id < earliest.id)) {
        earliest = d;
        peer = p;
      }
      break;  // the queue's earliest live one
    }
  }
  if (earliest.id == 0) return;  // `keep` is the only hop tracked
  auto it = hop_watches_.find(peer);
  HopWatch& watch = it->second;
  std::deque<HopDeadline>& q = watch.deadlines;
  q.erase(std::find_if(q.begin(), q.end(),
                       [&](const HopDeadline& d) { return d.id == earliest.id; }));
  if (--watch.live == 0) {
    scheduler_.Cancel(watch.job);
    hop_watches_.erase(it);
  } else {
    DropAcknowledged(watch);
  }
  ++stats_.pending_ack_overflows;
  WarnBound(absl::StrCat("awaits ", pending_.size(),
                         " hop acknowledgements, the limit (max_pending_acks): the earliest "
                         "times out now"));
  rerouting_at_pending_bound_ = true;
  GiveUpHop(earliest.id);
  rerouting_at_pending_bound_ = false;
}

bool Node::GiveUpHop(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return false;
  PendingHop hop = std::move(it->second);
  pending_.erase(it);
  Suspect(hop.next);
  Reroute(std::move(hop));
  return true;
}

}  // namespace peter::pastry

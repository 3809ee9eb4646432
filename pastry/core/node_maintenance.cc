// Node: probes, failure detection, leaf-set and routing-table repair, and
// periodic maintenance.
#include <algorithm>
#include <random>

#include "pastry/core/node.h"
#include "spdlog/spdlog.h"

namespace peter::pastry {

void Node::SendProbe(const NodeHandle& to, bool want_leaf_set) {
  if (to.id == self_.id) return;
  auto [it, added] = peers_.try_emplace(to.id);
  Peer& p = it->second;
  // The endpoint and run of a peer we track are the ones it told us itself
  // (NoteAlive); `to` may be a third node's copy of its handle, which only
  // introduces a peer. A later run ends the chain about the earlier one
  // when it speaks for itself (NoteAlive; ProbeHearsay asks it to).
  if (added) p.endpoint = to.endpoint;
  if (p.probe_nonce != 0) {
    p.probe_wants_leaf_set |= want_leaf_set;
    return;  // one probe at a time per peer
  }
  p.probe_nonce = next_id_++;
  p.probe_sent = Now();
  p.probe_wants_leaf_set = want_leaf_set;
  const uint64_t nonce = p.probe_nonce;
  const NodeId id = to.id;
  // While a peer's round trip is unknown, each retry waits twice as long as
  // the last (300 ms, 600 ms, 1.2 s by default), so a live peer on a slow
  // path is measured rather than declared dead; a measured peer gets three
  // round trips each time.
  absl::Duration timeout = TimeoutFor(id, options_.probe_timeout);
  if (RttOf(id) < 0) timeout *= 1 << std::min(p.probe_failures, 4);
  p.probe_timer = scheduler_.Schedule(Now() + timeout,
                                      [this, id, nonce] { OnProbeTimeout(id, nonce); });
  ++stats_.probes_sent;
  Send(p.endpoint, Probe{nonce, state_ == State::kJoining, want_leaf_set,
                          p.known_leaf_version, leaf_set_.version()});
}

void Node::OnProbe(const NodeHandle& from, const Probe& probe) {
  if (state_ == State::kJoining && leaf_set_.Contains(from.id)) {
    confirmed_.insert(from.id);  // it knows us now
  }
  ProbeReply reply;
  reply.nonce = probe.nonce;
  reply.active = active();
  reply.leaf_version = leaf_set_.version();
  if (probe.want_leaf_set && probe.known_leaf_version != leaf_set_.version()) {
    reply.has_leaf_set = true;
    reply.leaf_set = leaf_set_.Members();
  }
  Send(from.endpoint, std::move(reply));
  // A neighbour whose leaf set changed since we last saw it: fetch the set.
  if (probe.leaf_version != 0 && leaf_set_.Contains(from.id)) {
    auto it = peers_.find(from.id);
    if (it == peers_.end() || it->second.known_leaf_version != probe.leaf_version) {
      SendProbe(from, /*want_leaf_set=*/true);
    }
  }
  if (state_ == State::kJoining) MaybeBecomeActive();
}

void Node::OnProbeReply(const NodeHandle& from, const ProbeReply& reply) {
  auto it = peers_.find(from.id);
  if (it != peers_.end() && it->second.probe_nonce == reply.nonce) {
    Peer& p = it->second;
    scheduler_.Cancel(p.probe_timer);
    p.probe_nonce = 0;
    p.probe_failures = 0;
    p.suspected = false;
    p.last_probe_reply = Now();
    UpdateRtt(from.id, Now() - p.probe_sent);
    CacheRtt(from.id, p.rtt_us);
    if (reply.has_leaf_set) p.known_leaf_version = reply.leaf_version;
    ConsiderForTable(from, p.rtt_us, /*first_hand=*/true);
  }
  if (state_ == State::kJoining) {
    awaiting_.erase(from.id);
    if (leaf_set_.Contains(from.id)) confirmed_.insert(from.id);
  }
  if (reply.has_leaf_set) {
    for (const NodeHandle& n : reply.leaf_set) OfferCandidate(n);
    if (leaf_set_.Contains(from.id)) ProbeMissingFrom(from.id, reply.leaf_set);
  }
  ForgetPeerIfUnused(from.id);
  if (state_ == State::kJoining) MaybeBecomeActive();
}

void Node::OnProbeTimeout(const NodeId& id, uint64_t nonce) {
  auto it = peers_.find(id);
  if (it == peers_.end() || it->second.probe_nonce != nonce) return;
  Peer& p = it->second;
  p.probe_nonce = 0;
  ++stats_.probe_timeouts;
  if (++p.probe_failures <= options_.probe_retries) {
    SendProbe(NodeHandle{id, p.endpoint, p.incarnation}, p.probe_wants_leaf_set);
    return;
  }
  MarkDead(id, /*graceful=*/false);
}

void Node::Suspect(const NodeHandle& node) {
  if (node.id == self_.id) return;
  // A hop sent to a run of the node that has since restarted says nothing
  // of the new run (which would be avoided, and messages delivered here
  // instead, until it answered).
  if (NewerIncarnation(KnownIncarnation(node.id), node.incarnation)) return;
  SendProbe(node, /*want_leaf_set=*/false);
  peers_[node.id].suspected = true;
}

// MSPastry-style leaf-set maintenance: each node probes only its nearest
// left neighbour (so every node is watched by its right neighbour), asking
// for the neighbour's leaf set when it changed; the probe carries our own
// version, so the neighbour fetches ours when it changed (OnProbe). Failures
// of other members reach us from the detector (see MarkDead) or from a
// neighbour's leaf set that no longer lists them (ProbeMissingFrom). About
// 2 messages per node per interval, instead of 2 per leaf-set member.
void Node::LeafSetMaintenance() {
  const absl::Time now = Now();
  pns_budget_ = options_.pns_probes_per_tick;
  for (auto it = dead_.begin(); it != dead_.end();) {
    auto cur = it++;
    if (now - cur->second.at > options_.dead_node_memory) dead_.erase(cur);
  }
  ReleaseUnusedMemory();
  ProbeDeclaredDead();
  if (!leaf_set_.Full()) {
    // A ring of at most L nodes: each knows every other, and a failure
    // seen only by its right neighbour may never spread (each member's
    // reported set spans the whole ring, so ProbeMissingFrom sees nothing
    // "missing" inside it). Probe every member; fewer than L of them.
    for (const NodeHandle& m : leaf_set_.Members()) SendProbe(m, /*want_leaf_set=*/true);
    return;
  }
  if (!leaf_set_.left().empty()) SendProbe(leaf_set_.left().front(), /*want_leaf_set=*/true);
}

// A node declared dead that would be in our leaf set is probed again now and
// then, in case it is alive after all: a node cut off for a moment (a network
// partition, a stall) is declared dead by its neighbours, and declares them
// dead, but when the cut heals neither side takes the other back from
// second-hand news (KnownDead, for dead_node_memory), and unless they are
// each other's left neighbour neither contacts the other: the leaf sets
// stayed wrong until the record expired and a leaf-set change happened to
// name the node again (28-40 s in tests/sim/leaf_repair_sim_test.cc, 42 s in
// the chaos soak). The probe is outside any chain of probes: only the node's
// own answer re-admits it (NoteAlive), which also re-admits us there, and an
// unanswered one changes nothing. The gaps double from leaf_probe_interval
// up to 4 x it while the record lasts: about 8 probes from each member of
// the leaf set of a node that really died. Only the nodes that would enter
// the leaf set are probed (at most L a round, however many dead candidates
// peers named); a node that left by itself is not.
void Node::ProbeDeclaredDead() {
  const absl::Time now = Now();
  LeafSet would_be = leaf_set_;
  std::vector<NodeHandle> due;
  for (const auto& [id, dead] : dead_) {
    if (dead.graceful || dead.endpoint.port == 0 || now < dead.next_probe) continue;
    if (!leaf_set_.WouldAccept(id)) continue;
    due.push_back(NodeHandle{id, dead.endpoint, dead.incarnation});
    would_be.Insert(due.back());
  }
  for (const NodeHandle& n : due) {
    if (!would_be.Contains(n.id)) continue;
    DeadRecord& dead = dead_[n.id];
    dead.next_probe = now + dead.probe_gap;
    dead.probe_gap = std::min(2 * dead.probe_gap, 4 * options_.leaf_probe_interval);
    ++stats_.revival_probes;
    SendLoneProbe(n.endpoint);
  }
}

// `reported` is the leaf set of our leaf-set member `from`. A member of ours
// that lies within the span of `from`'s half on its side, but is not in that
// half, is gone as far as `from` knows: probe it (it is declared dead if it
// does not answer). A node `from` has not heard of yet costs one probe.
void Node::ProbeMissingFrom(const NodeId& from, const std::vector<NodeHandle>& reported) {
  // The farthest reported member on each side of `from`.
  NodeId far_right, far_left;  // clockwise distances from / to `from`
  bool has_right = false, has_left = false;
  for (const NodeHandle& n : reported) {
    if (n.id == from) continue;
    NodeId cw = NodeId::ClockwiseDistance(from, n.id);
    NodeId ccw = NodeId::ClockwiseDistance(n.id, from);
    if (cw < ccw) {
      if (!has_right || far_right < cw) far_right = cw;
      has_right = true;
    } else {
      if (!has_left || far_left < ccw) far_left = ccw;
      has_left = true;
    }
  }
  std::vector<NodeHandle> missing;
  for (const NodeHandle& m : leaf_set_.Members()) {
    if (m.id == from) continue;
    NodeId cw = NodeId::ClockwiseDistance(from, m.id);
    NodeId ccw = NodeId::ClockwiseDistance(m.id, from);
    bool covered = cw < ccw ? (has_right && cw < far_right) : (has_left && ccw < far_left);
    if (!covered) continue;
    bool listed = std::any_of(reported.begin(), reported.end(),
                              [&](const NodeHandle& r) { return r.id == m.id; });
    if (!listed) missing.push_back(m);
  }
  for (const NodeHandle& m : missing) SendProbe(m, /*want_leaf_set=*/false);
}

// Asks a random entry of each row for its copy of that row (Pastry 2.4).
void Node::TableMaintenance() {
  if (state_ != State::kActive || !options_.routing_table_repair) return;
  ++stats_.table_maintenance_rounds;
  if (stats_.table_maintenance_rounds % kRttCacheRounds == 0) rtt_cache_ = {};
  for (int row = 0; row < table_.UsedRows(); ++row) {
    std::vector<NodeHandle> entries = table_.Row(row);
    if (entries.empty()) continue;
    std::uniform_int_distribution<size_t> pick(0, entries.size() - 1);
    Send(entries[pick(rng_)].endpoint, RowRequest{static_cast<uint8_t>(row)});
  }
  // Probe every entry (MSPastry's routing-table probing): an entry is
  // otherwise found dead only when a message times out on it, and under
  // churn whole rows died unnoticed (84 s median sessions: lookups ran out
  // of reroutes on entries dead for 30-120 s). A dead entry is removed and
  // its slot repaired (MarkDead); leaf-set members are watched already.
  std::vector<NodeHandle> probe;
  table_.ForEach([&](int, int, const RoutingTable::Entry& e) {
    if (!leaf_set_.Contains(e.node.id)) probe.push_back(e.node);
  });
  for (const NodeHandle& n : probe) SendProbe(n, /*want_leaf_set=*/false);
}

// After losing a leaf, ask the farthest live leaf on each side for its leaf
// set; the answer fills the gap (candidates are probed before admission).
void Node::RepairLeafSet() {
  ++stats_.leaf_set_repairs;
  for (const auto* half : {&leaf_set_.left(), &leaf_set_.right()}) {
    if (half->empty()) continue;
    const NodeHandle& far = half->back();
    peers_[far.id].known_leaf_version = 0;  // make it send the whole set
    peers_[far.id].endpoint = far.endpoint;
    SendProbe(far, /*want_leaf_set=*/true);
  }
}

// Lazy repair of a routing-table slot (Pastry 2.4): ask other entries of the
// same row, or failing that of the next row, for their copy of that row.
void Node::RepairTableSlot(int row) {
  if (!options_.routing_table_repair) return;
  ++stats_.table_repairs;
  for (int r = row; r < table_.rows(); ++r) {
    std::vector<NodeHandle> entries = table_.Row(r);
    if (entries.empty()) continue;
    std::shuffle(entries.begin(), entries.end(), rng_);
    for (size_t i = 0; i < std::min<size_t>(2, entries.size()); ++i) {
      Send(entries[i].endpoint, RowRequest{static_cast<uint8_t>(row)});
    }
    return;
  }
}

void Node::OnRowRequest(const NodeHandle& from, const RowRequest& request) {
  if (request.row >= table_.rows()) {
    ++stats_.dropped_malformed;
    return;
  }
  RowReply reply{request.row, table_.Row(request.row)};
  reply.entries.push_back(self_);
  Send(from.endpoint, std::move(reply));
}

void Node::OnRowReply(const NodeHandle& from, const RowReply& reply) {
  for (const NodeHandle& n : reply.entries) OfferCandidate(n);
}

}  // namespace peter::pastry

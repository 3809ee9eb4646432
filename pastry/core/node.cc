// Node: construction, dispatch, and the bookkeeping of what we know about
// other nodes (alive, suspected, dead, round-trip times).
#include "pastry/core/node.h"

#include <algorithm>
#include <cassert>
#include <random>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace peter::pastry {
namespace {

std::shared_ptr<spdlog::logger> SilentLogger() {
  static auto logger = std::make_shared<spdlog::logger>("peter-silent");
  return logger;
}

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;  // clang 14 lacks aggregate CTAD

}  // namespace

Node::Node(const NodeHandle& self, const Options& options, Environment env)
    : self_(self),
      options_(options),
      env_(std::move(env)),
      rng_(env_.seed),
      leaf_set_(self.id, options.leaf_set_size),
      table_(self.id, options.b),
      join_candidates_(self.id, options.leaf_set_size) {
  assert(env_.transport != nullptr && env_.clock != nullptr);
  if (env_.logger == nullptr) env_.logger = SilentLogger();
  leaf_set_.set_version(rng_() | 1);
}

Node::~Node() = default;

void Node::Send(const Endpoint& to, MessageBody body) {
  ++stats_.messages_sent[body.index()];
  env_.transport->Send(to, Envelope{kProtocolVersion, self_, std::move(body)});
}

void Node::HandleMessage(const Envelope& envelope) {
  if (state_ == State::kLeft || state_ == State::kIdle) {
    ++stats_.dropped_after_leave;
    return;
  }
  if (envelope.version < kMinProtocolVersion) {
    ++stats_.dropped_bad_version;
    return;
  }
  const NodeHandle& from = envelope.sender;
  if (!from.valid() || from.id == self_.id) {
    ++stats_.dropped_malformed;
    return;
  }
  // Sent by a run of the node that has since been restarted (and was
  // delayed): it speaks for a process that is gone, and would bring back
  // what we learnt about the new one, or take it away (a Leave).
  if (NewerIncarnation(KnownIncarnation(from.id), from.incarnation)) {
    ++stats_.dropped_stale_incarnation;
    return;
  }
  ++stats_.messages_received[envelope.body.index()];
  if (std::holds_alternative<pastry::Leave>(envelope.body)) {
    OnLeave(from);
    return;
  }
  NoteAlive(from);
  Dispatch(from, envelope.body, envelope.version);
}

void Node::Dispatch(const NodeHandle& from, const MessageBody& body, uint16_t version) {
  std::visit(
      Overloaded{
          [&](const RouteMsg& m) { OnRoute(from, m, version); },
          [&](const RouteAck& m) { OnRouteAck(from, m); },
          [&](const JoinReply& m) { OnJoinReply(from, m); },
          [&](const Probe& m) { OnProbe(from, m); },
          [&](const ProbeReply& m) { OnProbeReply(from, m); },
          [&](const RowRequest& m) { OnRowRequest(from, m); },
          [&](const RowReply& m) { OnRowReply(from, m); },
          [&](const pastry::Leave&) { OnLeave(from); },
          [&](const LookupReply& m) { OnLookupReply(from, m); },
      },
      body);
}

void Node::Tick(size_t max_jobs) {
  if (state_ == State::kLeft || state_ == State::kIdle) return;
  scheduler_.RunDue(Now(), max_jobs);
}

// A message from `node` itself proves it is alive: it may enter the leaf set
// and the routing table, and whatever we believed about its death is void.
void Node::NoteAlive(const NodeHandle& node) {
  if (!dead_.empty()) dead_.erase(node.id);
  // One look-up serves both the peer's state and its round trip (RttOf's
  // fallback to the table is not needed: Consider() with an unknown round
  // trip leaves a table entry's measured one alone).
  int32_t rtt_us = -1;
  if (auto it = peers_.find(node.id); it != peers_.end()) {
    Peer& p = it->second;
    p.suspected = false;
    if (p.endpoint != node.endpoint || NewerIncarnation(node.incarnation, p.incarnation)) {
      // A new run of the node (restarted with the same id, on a new address
      // or on the same one): what we were probing was the old one, and a
      // chain of retries still running for it (its last probe may have
      // gone out before the restart) must not declare this one dead.
      scheduler_.Cancel(p.probe_timer);
      const bool same_endpoint = p.endpoint == node.endpoint;
      const int32_t rtt = p.rtt_us;
      p = Peer{};
      p.endpoint = node.endpoint;
      if (same_endpoint) p.rtt_us = rtt;
    }
    // HandleMessage dropped the messages of runs earlier than one known.
    if (node.incarnation != 0) p.incarnation = node.incarnation;
    rtt_us = p.rtt_us;
  }
  const NodeHandle* member = leaf_set_.Find(node.id);
  if (leaf_set_.WouldAccept(node.id) ||
      (member != nullptr && (member->endpoint != node.endpoint ||
                             member->incarnation != node.incarnation))) {
    ChangeLeafSet([&] {
      std::vector<NodeHandle> evicted;
      leaf_set_.Insert(node, &evicted);
      if (state_ == State::kJoining) join_candidates_.Insert(node);
      for (const NodeHandle& e : evicted) ForgetPeerIfUnused(e.id);
    });
  }
  ConsiderForTable(node, rtt_us, /*first_hand=*/true);
}

// Second-hand news of a node (a third node's copy of its handle): probe it
// before it may enter the leaf set. Such a copy introduces nodes, but never
// tells which run of a node is the live one: a wrong one (from a clock
// stepped back before an earlier run, skew, corruption, forgery) would make
// the live run's own messages look stale and get it declared dead, over
// and over (docs/design.md, "Incarnations").
void Node::OfferCandidate(const NodeHandle& node) {
  if (node.id == self_.id || !node.valid() || KnownDead(node)) return;
  const NodeHandle* member = leaf_set_.Find(node.id);
  if (NewerIncarnation(node.incarnation, KnownIncarnation(node.id)) &&
      !dead_.contains(node.id)) {
    // A later run than the one we know first-hand (the node restarted,
    // maybe elsewhere), or a wrong copy: only the node can tell.
    ProbeHearsay(node);
  } else if (member == nullptr && leaf_set_.WouldAccept(node.id) && MayTrack(node.id)) {
    // A joiner hears of hundreds of nodes (each hop's rows, the root's and
    // every member's leaf set) while its own leaf set is still short enough
    // to accept any of them: probing all of them cost about 250 probes per
    // join. It probes only nodes among the L nearest heard of so far; one
    // pushed out by nearer ones is not needed.
    const bool joining = state_ == State::kJoining;
    if (!joining || join_candidates_.Insert(node)) {
      if (joining) awaiting_.insert(node.id);
      SendProbe(node, /*want_leaf_set=*/true);
    }
  }
  ConsiderForTable(node, RttOf(node.id), /*first_hand=*/false);
}

// One probe to the endpoint a third node gave for `node`, outside the chain
// of probes about the run we know (its nonce matches no Peer, so it neither
// ends that chain nor starts one): if a later run answers, its own message
// replaces what we knew (NoteAlive); if the copy was wrong, the run we know
// answers as before, or nothing does, and nothing changes.
void Node::ProbeHearsay(const NodeHandle& node) {
  ++stats_.hearsay_probes;
  SendLoneProbe(node.endpoint);
}

void Node::SendLoneProbe(const Endpoint& to) {
  ++stats_.probes_sent;
  Send(to, Probe{next_id_++, state_ == State::kJoining, /*want_leaf_set=*/false, 0,
                 leaf_set_.version()});
}

// Whether a new peer entry may be made for a candidate (max_tracked_peers);
// counts and logs a refusal.
bool Node::MayTrack(const NodeId& id) {
  if (peers_.size() < options_.max_tracked_peers || peers_.contains(id)) return true;
  ++stats_.candidate_probe_overflows;
  WarnBound(absl::StrCat("tracks ", peers_.size(), " peers, the limit (max_tracked_peers): ",
                         "candidate ", id.ShortHex(), " not probed"));
  return false;
}

void Node::WarnBound(const std::string& what) {
  if (!bound_warn_.Allow(Now())) return;
  env_.logger->warn("{} {} ({} warnings suppressed)", self_.id.ShortHex(), what,
                    bound_warn_.suppressed());
}

int32_t Node::CachedRttOf(const NodeId& id) const {
  const CachedRtt& c = rtt_cache_[id.lo() % rtt_cache_.size()];
  return c.tag == id.hi() && c.tag != 0 ? c.rtt_us : -1;
}

void Node::CacheRtt(const NodeId& id, int32_t rtt_us) {
  rtt_cache_[id.lo() % rtt_cache_.size()] = CachedRtt{id.hi(), rtt_us};
}

void Node::ConsiderForTable(const NodeHandle& node, int32_t rtt_us, bool first_hand) {
  // Without PNS the table never learns a round trip from an offer, so an
  // occupied slot is never replaced (round trips still reach it by SetRtt).
  if (!options_.proximity_neighbour_selection) {
    rtt_us = -1;
  } else if (env_.proximity != nullptr) {
    rtt_us = env_.proximity->RoundTripUs(self_.endpoint, node.endpoint);
  } else if (rtt_us < 0) {
    rtt_us = CachedRttOf(node.id);
  }
  RoutingTable::Outcome outcome = table_.Consider(node, rtt_us, first_hand);
  bool measure = outcome == RoutingTable::Outcome::kNeedsProbe ||
                 (outcome == RoutingTable::Outcome::kInserted && rtt_us < 0);
  if (measure && pns_budget_ > 0 && !peers_.contains(node.id) && MayTrack(node.id)) {
    --pns_budget_;
    ++stats_.pns_probes;
    SendProbe(node, /*want_leaf_set=*/false);
  }
}

void Node::ChangeLeafSet(const std::function<void()>& mutate) {
  std::vector<NodeHandle> before = leaf_set_.Members();
  mutate();
  std::vector<NodeHandle> after = leaf_set_.Members();
  // A member replaced by a later run of the same id (restarted) has left
  // and the new run joined: applications hand it state as to a joiner.
  auto missing_from = [](const std::vector<NodeHandle>& set, const NodeHandle& n) {
    return std::none_of(set.begin(), set.end(), [&](const NodeHandle& m) {
      return m.id == n.id && !NewerIncarnation(m.incarnation, n.incarnation) &&
             !NewerIncarnation(n.incarnation, m.incarnation);
    });
  };
  for (const NodeHandle& n : after) {
    if (!missing_from(before, n)) continue;
    for (auto& [id, app] : apps_) app->Update(n, true);
  }
  for (const NodeHandle& n : before) {
    if (!missing_from(after, n)) continue;
    for (auto& [id, app] : apps_) app->Update(n, false);
  }
}

void Node::MarkDead(const NodeId& id, bool graceful, uint64_t told) {
  const uint64_t incarnation = std::max(KnownIncarnation(id), told);
  Endpoint endpoint;
  if (const NodeHandle* m = leaf_set_.Find(id); m != nullptr) {
    endpoint = m->endpoint;
  } else if (const RoutingTable::Entry* e = table_.Find(id); e != nullptr) {
    endpoint = e->node.endpoint;
  }
  if (auto it = peers_.find(id); it != peers_.end()) {
    endpoint = it->second.endpoint;  // the one it told us itself
    scheduler_.Cancel(it->second.probe_timer);
    peers_.erase(it);
  }
  if (dead_.size() < options_.max_dead_nodes || dead_.contains(id)) {
    dead_[id] = DeadRecord{Now(),
                           incarnation,
                           endpoint,
                           graceful,
                           Now() + options_.leaf_probe_interval,
                           options_.leaf_probe_interval};
  } else {
    ++stats_.dead_node_overflows;
    WarnBound(absl::StrCat("remembers ", dead_.size(), " dead nodes, the limit (max_dead_nodes): ",
                           id.ShortHex(), " not remembered"));
  }
  awaiting_.erase(id);
  confirmed_.erase(id);
  join_candidates_.Remove(id);
  bool in_leaf_set = false;
  const bool was_left_neighbour =
      !leaf_set_.left().empty() && leaf_set_.left().front().id == id;
  ChangeLeafSet([&] { in_leaf_set = leaf_set_.Remove(id); });
  std::optional<std::pair<int, int>> slot = table_.Remove(id);
  if (in_leaf_set || slot.has_value()) {
    if (!graceful) ++stats_.failures_detected;
    env_.logger->debug("{} declares {} {}", self_.id.ShortHex(), id.ShortHex(),
                       graceful ? "departed" : "dead");
  }
  if (in_leaf_set) RepairLeafSet();
  // We watch our left neighbour; its other leaf-set members may not (see
  // LeafSetMaintenance). Tell them our leaf set changed: each fetches it and
  // probes the dead node (ProbeMissingFrom).
  if (was_left_neighbour && !graceful) {
    for (const NodeHandle& m : leaf_set_.Members()) SendProbe(m, /*want_leaf_set=*/false);
  }
  if (slot.has_value()) RepairTableSlot(slot->first);
  if (state_ == State::kJoining) MaybeBecomeActive();
}

void Node::OnLeave(const NodeHandle& from) {
  ++stats_.leaves_received;
  // The leaver's own handle: a later run of it is not ignored second-hand.
  MarkDead(from.id, /*graceful=*/true, from.incarnation);
}

uint64_t Node::KnownIncarnation(const NodeId& id) const {
  uint64_t known = 0;
  if (auto it = peers_.find(id); it != peers_.end()) known = it->second.incarnation;
  // Leaf-set members enter only by a message of their own (NoteAlive).
  if (const NodeHandle* m = leaf_set_.Find(id); m != nullptr) {
    known = std::max(known, m->incarnation);
  }
  if (const RoutingTable::Entry* e = table_.Find(id); e != nullptr && e->first_hand) {
    known = std::max(known, e->node.incarnation);
  }
  if (auto it = dead_.find(id); it != dead_.end()) {
    known = std::max(known, it->second.incarnation);
  }
  return known;
}

bool Node::KnownDead(const NodeHandle& node) const {
  auto it = dead_.find(node.id);
  return it != dead_.end() && !NewerIncarnation(node.incarnation, it->second.incarnation);
}

bool Node::Unusable(const NodeId& id) const {
  if (dead_.contains(id)) return true;
  auto it = peers_.find(id);
  return it != peers_.end() && it->second.suspected;
}

void Node::UpdateRtt(const NodeId& id, absl::Duration sample) {
  int32_t us = static_cast<int32_t>(
      std::min<int64_t>(absl::ToInt64Microseconds(sample), INT32_MAX));
  if (auto it = peers_.find(id); it != peers_.end()) {
    Peer& p = it->second;
    p.rtt_us = p.rtt_us < 0 ? us : (7 * static_cast<int64_t>(p.rtt_us) + us) / 8;
    us = p.rtt_us;
  }
  table_.SetRtt(id, us);
}

int32_t Node::RttOf(const NodeId& id) const {
  if (auto it = peers_.find(id); it != peers_.end() && it->second.rtt_us >= 0) {
    return it->second.rtt_us;
  }
  const RoutingTable::Entry* e = table_.Find(id);
  return e != nullptr ? e->rtt_us : -1;
}

// A timeout never below `floor`, and three round trips where one is known.
absl::Duration Node::TimeoutFor(const NodeId& id, absl::Duration floor) const {
  int32_t rtt = RttOf(id);
  return rtt < 0 ? floor : std::max(floor, absl::Microseconds(3 * int64_t{rtt}));
}

void Node::ForgetPeerIfUnused(const NodeId& id) {
  auto it = peers_.find(id);
  if (it == peers_.end() || it->second.probe_nonce != 0) return;
  if (leaf_set_.Contains(id) || table_.Find(id) != nullptr) return;
  peers_.erase(it);
}

// Hash maps and the timer heap keep the capacity of their largest moment
// (a join burst can make a node probe hundreds of peers at once); give it
// back when at most a quarter is used. Runs once per leaf-set interval.
void Node::ReleaseUnusedMemory() {
  auto shrink = [](auto& map) {
    if (map.capacity() > 32 && map.size() * 4 < map.capacity()) map.rehash(0);
  };
  shrink(peers_);
  shrink(dead_);
  shrink(pending_);
  shrink(hop_watches_);
  shrink(lookups_);
  shrink(confirmed_);
  shrink(awaiting_);
  scheduler_.Compact();
}

absl::Duration Node::Jittered(absl::Duration d) {
  std::uniform_real_distribution<double> factor(0.9, 1.1);
  return d * factor(rng_);
}

void Node::SchedulePeriodic(absl::Duration interval, void (Node::*job)()) {
  scheduler_.Schedule(Now() + Jittered(interval), [this, interval, job] {
    (this->*job)();
    SchedulePeriodic(interval, job);
  });
}

}  // namespace peter::pastry

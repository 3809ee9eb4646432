// Scribe: publishing through the root, multicast down the tree, in-order
// delivery without duplicates, gap repair from replay buffers, and the
// replication of the root's sequencing state.
#include <algorithm>
#include <deque>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "pubsub/scribe.h"
#include "pubsub/wire/codec.h"
#include "spdlog/logger.h"

namespace peter::pubsub {

namespace {

// The same publish: the same origin, or, for publishes without one, the
// same payload.
bool SameMessage(const NodeId& publisher, uint64_t request, std::string_view payload,
                 const StoredMessage& b) {
  if (request != 0 || b.request != 0) {
    return request == b.request && publisher == b.publisher;
  }
  return payload == b.payload;
}

bool SameMessage(const StoredMessage& a, const StoredMessage& b) {
  return SameMessage(a.publisher, a.request, a.payload, b);
}

// The entry for `seq` in a map keyed by number, looked for from the newest
// end first: the numbers a root stores, replicates and releases, and a
// replica stores, are almost always the last few, while a find from the
// top descends some ten tree nodes of a full replay buffer (1,024), each a
// cache miss: with many topics that descent was most of OnReplicate's and
// ReleaseNumber's own time (bench/resp-three-nodes, docs/benchmarks.md).
template <typename Map>
typename Map::iterator FindRecent(Map& map, uint64_t seq) {
  constexpr int kNewest = 4;
  auto it = map.end();
  for (int i = 0; i < kNewest && it != map.begin(); ++i) {
    --it;
    if (it->first == seq) return it;
    if (it->first < seq) return map.end();
  }
  return map.find(seq);
}

// The replay entry for `seq` in a run walked in order (FlushReplicates,
// ReleaseConfirmed): the entry after `cursor`, the previous number's, if it
// holds `seq` (one step, however far from the newest end the run is: a run
// released after its replicas confirmed it, or replicated after a burst,
// sat a search's ten cache misses deep), else a search, counted. `cursor`
// may be stale (SeqMap::next_if) and is set to the entry found.
SeqMap<ReplayEntry>::iterator FindInRun(SeqMap<ReplayEntry>& replay,
                                        SeqMap<ReplayEntry>::iterator& cursor, uint64_t seq,
                                        uint64_t& searches) {
  cursor = replay.next_if(cursor, seq);
  if (cursor == replay.end()) {
    ++searches;
    cursor = FindRecent(replay, seq);
  }
  return cursor;
}

// A replica that never saw a number given.
bool ReplicaIsEmpty(const ReplicaState& replica) {
  return replica.next_stamp <= 1 && replica.messages.empty();
}

}  // namespace

// A routed publish whose route ended here. The overlay ends a route at the
// closest node it can use: one it suspects (a hop to it timed out: a stalled
// thread, a slow link) is skipped, and the route ends early. Unless this
// node roots the topic already, the publish goes on to the node its leaf
// set makes closest, straight, over the connection this node's own earlier
// publishes took: a rival root here would hold it and hand it over late,
// after publishes made later. The receiver numbers it (passed_on) rather
// than routing it again: one extra hop at most. Only acknowledged
// publishes: the node skipped may have failed rather than stalled, and its
// leaf-set neighbours list it until failure detection says so; a publish
// passed to it is lost, and only an acknowledged one is sent again (a
// best-effort one is numbered here, once the root lease allows, as before).
void Scribe::OnRoutedPublish(PublishMsg publish) {
  const TopicState* t = Find(publish.topic);
  if ((t == nullptr || !t->root) && publish.request != 0 && publish.want_ack &&
      overlay_->IsActive()) {
    std::vector<NodeHandle> closest = overlay_->ReplicaSet(publish.topic, 1);
    if (!closest.empty() && closest.front().id != Self().id) {
      ++stats_.publishes_passed_on;
      if (LogsDebug()) {
        log_->debug("scribe: topic {}: publish {} of {} passed on to {}", publish.topic.ShortHex(),
                    publish.request, publish.publisher.id.ShortHex(),
                    closest.front().id.ShortHex());
      }
      publish.passed_on = true;
      SendTo(closest.front(), std::move(publish));
      return;
    }
  }
  OnDeliverPublish(std::move(publish));
}

void Scribe::OnDeliverPublish(PublishMsg publish) {
  TopicState* t = Find(publish.topic);
  if (t == nullptr) t = Create(publish.topic);
  if (t == nullptr) {
    ++stats_.dropped;
    return;
  }
  t->last_used = Now();
  t->PrefetchReplay();  // where a number given below is stored
  if (!t->root) {
    // A replica that never saw a number (the hand-over of a root that held
    // its publishes as fresh itself, or numbered nothing) tells nothing of
    // an older numbering: before, it let this node number from 1 at once
    // (the root-fault sweep, seed 720: a shrink killed the root and its
    // replicas, a fresh root held and handed the topic to a restarted
    // closer node, which numbered from 1 before the subscribers' joins
    // showed their frontiers).
    auto replica = replicas_.find(t->id);
    const bool fresh =
        t->next == 0 && (replica == replicas_.end() || ReplicaIsEmpty(replica->second));
    BecomeRoot(*t, publish.passed_on ? "a publish was passed on to it" : "a publish was delivered here");
    // Only a recent start or neighbour loss can hide an older numbering.
    const absl::Time hold_until =
        std::max(started_at_, last_neighbour_loss_) + options_.fresh_root_grace;
    if (fresh && Now() < hold_until) {
      t->hold_until = hold_until;
      holding_.insert(t->id);
    }
  }
  // A hold that ended since the last tick, or a replica window with room
  // again: what it held goes first (and a resend of a publish numbered so
  // is then recognised below).
  if (!t->held_publishes.empty() && HoldsOver(*t)) NumberHeld(*t);
  if (AckIfNumbered(*t, publish)) return;
  // Looked up once (a walk of the replica set and its leases): the gate
  // needs it, and so does a publish the gate shuts out.
  const bool leased = HoldsLease(*t);
  if (MayNumberNow(*t, leased)) {
    NumberInOrder(*t, std::move(publish));
    return;
  }
  if (!leased) {
    ++stats_.lease_waits;
    const bool lone = !HasReplicaPeers(*t);
    if (lone) ++stats_.lone_root_waits;
    if (t->held_publishes.empty() && LogsDebug()) {
      log_->debug("scribe: topic {}: holds publishes for a root lease{}, from publish {} of {}",
                  t->id.ShortHex(), lone ? " (every neighbour lost)" : "", publish.request,
                  publish.publisher.id.ShortHex());
    }
    AskLease(*t);
    holding_.insert(t->id);
  }
  if (Now() < t->hold_until || !leased) {
    const bool resent =
        publish.request != 0 &&
        t->held_origins.contains(PublishOrigin{publish.publisher.id, publish.request});
    if (resent) {
      ++stats_.publishes_deduplicated;
    } else if (t->held_publishes.size() < options_.max_reorder) {
      Hold(*t, std::move(publish));
    } else {
      ++stats_.dropped;
    }
    return;
  }
  // Past its hold and leased: it holds publishes already, or its replica
  // window is full (MayNumberNow).
  HoldForWindow(*t, std::move(publish));
}

// The gate every new publish at a root passes to be numbered now, on
// arrival (OnDeliverPublish) or within Publish (NumbersAtOnce): this node
// holds nothing (held publishes go first), has room in its replica window,
// and its holds are over (HoldsOver, written out: `leased` is its
// HoldsLease, which the caller looked up, as a publish arriving that the
// gate shuts out needs it again).
// Checks t.root again: OnDeliverPublish made this node the root before,
// but numbered held publishes and delivered them since.
bool Scribe::MayNumberNow(const TopicState& t, bool leased) const {
  return t.root && t.held_publishes.empty() && !WindowFull(t) && Now() >= t.hold_until && leased;
}

// A fresh root's hold (fresh_root_grace) has ended and the root holds a
// lease: what it holds, or a new publish, may be numbered as its replica
// window allows. MayNumberNow and ReleaseHolds (which asks for a lease)
// write the two out: keep the three in step.
bool Scribe::HoldsOver(const TopicState& t) const {
  return Now() >= t.hold_until && HoldsLease(t);
}

// The replica window: half the replay buffer. Every number waiting for its
// replicas keeps its message there; beyond replay_capacity waiting the
// oldest is released unconfirmed (Stamp). Holding new publishes at half of
// it leaves the other half to what is numbered past the window anyway (a
// chain of publishes that waited for their predecessor, one forced out of
// a full hold, numbers taken over from a former root).
size_t Scribe::ReplicaWindow() const {
  return std::max<size_t>(options_.replay_capacity / 2, 1);
}

bool Scribe::WindowFull(const TopicState& t) const {
  return t.unconfirmed.size() >= ReplicaWindow();
}

// Issue 6: a root whose publishers outran its replicas (8 publisher
// connections on one topic of a 3-node cluster) had more than
// replay_capacity numbers waiting, and released most numbers unconfirmed:
// a root failing then lost them. Now, with the window full, it holds the
// topic's new publishes (after any held already: in arrival order), and
// numbers them as the replicas' confirmations free the window
// (ReleaseConfirmed): the publishers wait for their acknowledgements, so
// their own bounds (pending publishes, a gateway's publishes in flight)
// slow them. At most max_pending_publishes are held per topic (as many as
// one node may have in flight); beyond it the oldest held is numbered past
// the window, counted and logged, and the replay_capacity bound stays the
// last resort. A resend of a held publish is not held again (numbered
// after its origin left the replay buffer, it would be numbered twice).
void Scribe::HoldForWindow(TopicState& t, PublishMsg publish) {
  if (publish.request != 0 &&
      t.held_origins.contains(PublishOrigin{publish.publisher.id, publish.request})) {
    ++stats_.publishes_deduplicated;
    return;
  }
  ++stats_.publishes_held_for_window;
  if (t.held_publishes.empty() && LogsDebug()) {
    log_->debug("scribe: topic {}: holds publishes: {} numbers wait for the replicas, from "
                "publish {} of {}",
                t.id.ShortHex(), t.unconfirmed.size(), publish.request,
                publish.publisher.id.ShortHex());
  }
  Hold(t, std::move(publish));
  holding_.insert(t.id);
  while (t.held_publishes.size() > options_.max_pending_publishes) {
    PublishMsg oldest = TakeHeld(t);
    ++stats_.publishes_window_forced;
    if (log_ != nullptr && bound_warn_.Allow(Now())) {
      log_->warn("scribe: topic {}: max_pending_publishes ({}) held for the replica window; "
                 "publish {} of {} numbered past it ({} warnings suppressed)",
                 t.id.ShortHex(), options_.max_pending_publishes, oldest.request,
                 oldest.publisher.id.ShortHex(), bound_warn_.suppressed());
    }
    StampOrAck(t, std::move(oldest));
  }
}

// Numbers what `t` holds, oldest first, while its replica window has room
// (its hold for fresh_root_grace and for a lease ended: the callers check).
void Scribe::NumberHeld(TopicState& t) {
  while (!t.held_publishes.empty() && !WindowFull(t)) StampOrAck(t, TakeHeld(t));
  if (t.held_publishes.empty()) holding_.erase(t.id);
}

void Scribe::Hold(TopicState& t, PublishMsg publish) {
  if (publish.request != 0) t.held_origins.emplace(publish.publisher.id, publish.request);
  t.held_publishes.push_back(std::move(publish));
}

PublishMsg Scribe::TakeHeld(TopicState& t) {
  PublishMsg publish = std::move(t.held_publishes.front());
  t.held_publishes.pop_front();
  if (publish.request != 0) {
    t.held_origins.erase(PublishOrigin{publish.publisher.id, publish.request});
  }
  return publish;
}

// A publish sent straight to this node as the topic's cached root, or
// passed on by a node its route ended at. If the overlay no longer makes
// this node the topic's root, a publish to a cached root goes on, routed.
void Scribe::OnDirectPublish(PublishMsg publish) {
  if (publish.passed_on || IsClosestTo(publish.topic)) {
    OnDeliverPublish(std::move(publish));
    return;
  }
  ++stats_.publishes_rerouted;
  const TopicId id = publish.topic;
  RouteToTopic(id, publish);
}

// True if this node is the live node numerically closest to `id` as far as
// its leaf set knows: the node the overlay delivers `id` to.
bool Scribe::IsClosestTo(const TopicId& id) const {
  if (!overlay_->IsActive()) return false;
  if (const TopicState* t = Find(id); t != nullptr) {
    const std::vector<NodeHandle>& set = ReplicaSetOf(*t);
    return !set.empty() && set.front().id == Self().id;
  }
  std::vector<NodeHandle> closest = overlay_->ReplicaSet(id, 1);
  return !closest.empty() && closest.front().id == Self().id;
}

// Stamps a publish released from a hold, unless it is a resend of one that
// was numbered meanwhile (by this node, or by a rival root merged since).
void Scribe::StampOrAck(TopicState& t, PublishMsg publish) {
  if (!AckIfNumbered(t, publish)) NumberInOrder(t, std::move(publish));
}

// A second copy of a publish numbered before (a resend, or an overlay
// duplicate): acknowledged again if asked, counted, and true: it is
// numbered no more.
bool Scribe::AckIfNumbered(TopicState& t, const PublishMsg& publish) {
  if (publish.request == 0) return false;
  ++stats_.origin_lookups;
  const std::optional<uint64_t> seq = t.origins.Find(publish.publisher.id, publish.request);
  if (!seq.has_value()) return false;
  ++stats_.publishes_deduplicated;
  if (publish.want_ack) ConfirmPublish(t, publish, *seq);
  return true;
}

bool Scribe::OriginHeld(const TopicState& t, const NodeId& publisher, uint64_t request) {
  ++stats_.origin_lookups;
  return t.origins.Contains(publisher, request);
}

// Numbers a publish once its publisher's previous one to the topic
// (`after`) is numbered here. A publish that overtook its predecessor
// (routed around a suspected root through another node, read from another
// connection first, or sent straight while the predecessor was routed)
// waits for it, at most publish_order_wait and max_reorder per topic; then
// it is numbered anyway, counted and logged: order is given up, never a
// message. A predecessor numbered by an earlier root is known here from
// the origins its replicas carried. Its callers found `publish` itself not
// numbered here just before (AckIfNumbered).
void Scribe::NumberInOrder(TopicState& t, PublishMsg publish) {
  if (publish.request == 0 || publish.after == 0 ||
      OriginHeld(t, publish.publisher.id, publish.after)) {
    StampChain(t, std::move(publish), /*checked=*/true);
    return;
  }
  const PublishOrigin predecessor{publish.publisher.id, publish.after};
  auto it = t.order_waits.find(predecessor);
  if (it != t.order_waits.end() && it->second.publish.request == publish.request) {
    ++stats_.publishes_deduplicated;  // a resend of one already waiting
    it->second.publish.publisher = publish.publisher;
    return;
  }
  if (it != t.order_waits.end() || t.order_waits.size() >= options_.max_reorder) {
    ForceOutOfOrder(t, std::move(publish), "max_reorder publishes wait for their predecessors",
                    /*checked=*/true);
    return;
  }
  ++stats_.publishes_held_for_order;
  absl::Time since = Now();
  // Its successor may be waiting for it already: the chain's head carries
  // the chain's oldest wait.
  auto successor = t.order_waits.find(PublishOrigin{publish.publisher.id, publish.request});
  if (successor != t.order_waits.end()) since = std::min(since, successor->second.since);
  t.order_waits.emplace(predecessor, TopicState::OrderWait{std::move(publish), since});
  ordering_.insert(t.id);
}

// Stamps `publish`, then each publish that waited for the one before it.
// One that waited may have been numbered meanwhile: a resend made after its
// predecessor was acknowledged names none (SendPublish) and does not wait.
// `checked`: the caller found `publish` not numbered here just before
// (AckIfNumbered), and nothing was numbered since: its origin is not
// looked up a second time (session 17's profile: four look-ups of the
// publisher per publish, this one of them; docs/benchmarks.md, session 18).
void Scribe::StampChain(TopicState& t, PublishMsg publish, bool checked) {
  for (;;) {
    const PublishOrigin origin{publish.publisher.id, publish.request};
    if (checked || !AckIfNumbered(t, publish)) Stamp(t, std::move(publish), /*alone=*/false);
    checked = false;
    if (origin.second == 0 || t.order_waits.empty()) break;
    auto it = t.order_waits.find(origin);
    if (it == t.order_waits.end()) break;
    publish = std::move(it->second.publish);
    t.order_waits.erase(it);
  }
  if (t.order_waits.empty()) ordering_.erase(t.id);
}

void Scribe::ForceOutOfOrder(TopicState& t, PublishMsg publish, const char* why, bool checked) {
  ++stats_.publishes_order_forced;
  if (log_ != nullptr && bound_warn_.Allow(Now())) {
    log_->warn("scribe: topic {}: publish {} of {} numbered before its predecessor {}: {} "
               "({} warnings suppressed)",
               t.id.ShortHex(), publish.request, publish.publisher.id.ShortHex(), publish.after,
               why, bound_warn_.suppressed());
  }
  StampChain(t, std::move(publish), checked);
}

// Numbers the chains whose head waited publish_order_wait for a
// predecessor that never came (lost with a failed root, given up by its
// publisher, or numbered by a rival root not merged yet). A topic this node
// no longer roots sends what waits on to the new root.
void Scribe::ReleaseOrderWaits() {
  std::vector<TopicId> ids(ordering_.begin(), ordering_.end());
  for (const TopicId& id : ids) {
    TopicState* t = Find(id);
    if (t == nullptr || t->order_waits.empty()) {
      ordering_.erase(id);
      continue;
    }
    if (!t->root) {
      for (auto& [predecessor, wait] : t->order_waits) {
        ++stats_.publishes_rerouted;
        RouteToTopic(id, wait.publish);
      }
      t->order_waits.clear();
      ordering_.erase(id);
      continue;
    }
    std::vector<PublishOrigin> heads;
    absl::flat_hash_set<PublishOrigin> waiting;
    for (const auto& [predecessor, wait] : t->order_waits) {
      waiting.insert(PublishOrigin{wait.publish.publisher.id, wait.publish.request});
    }
    for (const auto& [predecessor, wait] : t->order_waits) {
      if (Now() - wait.since >= options_.publish_order_wait && !waiting.contains(predecessor)) {
        heads.push_back(predecessor);
      }
    }
    for (const PublishOrigin& head : heads) {
      auto it = t->order_waits.find(head);
      if (it == t->order_waits.end()) continue;
      PublishMsg publish = std::move(it->second.publish);
      t->order_waits.erase(it);
      // It waited: a resend of it may have been numbered meanwhile.
      ForceOutOfOrder(*t, std::move(publish), "publish_order_wait passed", /*checked=*/false);
    }
  }
}

// Gives `publish` the next number, released at once if there is no replica
// peer and no number waits for one, otherwise once every replica peer holds
// it (WaitForReplicas).
// `alone`: the caller found, just before, this node alone in the topic's
// replica set (NumbersAtOnce): the replica peers are not looked up again
// (QueueReplicate: the leaf set's version and a walk of the replica set).
// Only NumberAtOnce passes it, for a publish of this node's own that was
// never sent anywhere: its origin is then not indexed (below). A publish
// that arrived must not pass it: a resend of it would be numbered again.
uint64_t Scribe::Stamp(TopicState& t, PublishMsg publish, bool alone) {
  const uint64_t seq = t.next_stamp++;
  ++stats_.published;
  if (LogsDebug()) {
    log_->debug("scribe: topic {}: numbered #{}: publish {} of {}{}{}", t.id.ShortHex(), seq,
                publish.request, publish.publisher.id.ShortHex(),
                publish.passed_on ? " (passed on)" : "",
                publish.request != 0 && !publish.want_ack ? " (best effort)" : "");
  }
  // The payload is moved, not copied, into the replay buffer (without
  // replicas by Accept, once it is delivered), and copied from there into
  // the replicas' message (if there are replicas).
  const StoredMessage origin{seq, {}, publish.publisher.id, publish.request};
  const bool replicated = !alone && QueueReplicate(t, seq);
  const bool ack = publish.request != 0 && publish.want_ack;
  if (!replicated && t.unconfirmed.empty()) {
    // No replica peer (replicas = 0, a one-node ring): at once.
    Accept(t, DataMsg{t.id, seq, std::move(publish.payload)}, /*forward=*/true);
    // A publish of this node's own numbered at once (`alone`,
    // NumberAtOnce) is kept with its origin, which hand-overs and merges
    // compare (SameMessage), but not indexed by it: the index only finds a
    // second copy of a publish numbered (AckIfNumbered, OriginHeld,
    // MoveIntoDuplicate), and this one has none: it was never sent as a
    // publish, to this root or another, and its request id is used for
    // nothing else. A root publishing on many topics touched each topic's
    // index twice per publish (set, and erased with the oldest message),
    // both cold (bench/resp-profile, 1 subscriber on 100 channels:
    // OriginIndex::Erase alone 2.7-5.8% of one node, docs/benchmarks.md,
    // session 23).
    RememberOrigin(t, origin, /*index=*/!alone);
    if (ack) AckPublish(publish, seq);
    return seq;
  }
  // Every number waiting for its replicas keeps its message in the replay
  // buffer: with replay_capacity waiting, the oldest is released before the
  // new one pushes it out. Released after, it was multicast without its
  // message (the 3-node bench, 8 publishers: the 976 numbers released so
  // were lost).
  if (t.unconfirmed.size() >= options_.replay_capacity) ReleaseOldestUnconfirmed(t);
  Store(t, seq, std::move(publish.payload), t.term);
  RememberOrigin(t, origin);
  WaitForReplicas(t, seq, publish, ack);
  TrimReplayBytes(t);
  return seq;
}

// Issue 6: on one node a publish went to the node itself as a message,
// was numbered when that message was dispatched, and was acknowledged with
// a second message to itself, each through the scheduler, with a pending
// publish, a root cache entry and two origin look-ups: about a third of
// the instructions of a PUBLISH on one node (docs/benchmarks.md, session
// 21). A publish of this node's own is numbered at once where that path
// would have numbered it at once the same way: this node roots the topic
// and is the closest node to it, has no replica peer to wait for, holds
// nothing (a fresh root's hold, a full replica window: these order what
// they hold before new publishes) and may number (its lease): the gate a
// publish arriving passes (MayNumberNow); no number waits for replicas;
// and none of this node's earlier publishes to the topic is in flight
// (their order). Not from inside a callback of this Scribe
// (callbacks_running_): a done callback that publishes again would run the
// next done inside itself, and so on as deep as the chain; the long way
// answers later.
TopicState* Scribe::NumbersAtOnce(const TopicId& id) {
  if (callbacks_running_ > 0 || !overlay_->IsActive()) return nullptr;
  TopicState* t = Find(id);
  // `root` first: the replica set is not looked up for a topic not rooted
  // here; the lease (for MayNumberNow) last, after the cheaper replica set.
  if (t == nullptr || !t->root || !t->unconfirmed.empty() || publish_paths_.contains(id)) {
    return nullptr;
  }
  t->PrefetchReplay();  // Stamp stores the message there
  // Closest to the topic (IsClosestTo) with no replica peer
  // (HasReplicaPeers): its replica set is this node alone.
  const std::vector<NodeHandle>& set = ReplicaSetOf(*t);
  if (set.size() != 1 || set.front().id != Self().id || !MayNumberNow(*t, HoldsLease(*t))) {
    return nullptr;
  }
  return t;
}

// With an origin (this node, a new request), as the long way's publish
// carries: a later merge or hand-over tells it from another message under
// the number. Stamp releases it at once (no replica peer).
uint64_t Scribe::NumberAtOnce(TopicState& t, Payload payload) {
  ++stats_.publishes_numbered_at_once;
  t.last_used = Now();
  return Stamp(t, PublishMsg{t.id, std::move(payload), Self(), NextRequest(), /*want_ack=*/false},
               /*alone=*/true);
}

void Scribe::AckPublish(const PublishMsg& publish, uint64_t seq) {
  ++stats_.publish_acks_sent;
  if (LogsDebug()) {
    log_->debug("scribe: topic {}: acknowledges publish {} of {} as #{}", publish.topic.ShortHex(),
                publish.request, publish.publisher.id.ShortHex(), seq);
  }
  SendTo(publish.publisher, PublishAckMsg{publish.topic, publish.request, seq});
}

// A resend (or overlay duplicate) of the publish numbered `seq`: if its
// number still waits for the replicas, the acknowledgement goes where the
// last copy came from once it is released; if not, it was released before
// (here, or by the root this node took over from, whose replica it was)
// and is acknowledged at once.
void Scribe::ConfirmPublish(TopicState& t, const PublishMsg& publish, uint64_t seq) {
  auto it = t.unconfirmed.find(seq);
  if (it == t.unconfirmed.end()) {
    AckPublish(publish, seq);
    return;
  }
  it->second.publisher = publish.publisher;
  it->second.ack = true;
}

// Number `seq`, stored in the replay buffer and sent to the replica peers,
// is multicast (and delivered here), and its publish acknowledged, only
// once every replica peer holds it and every number before it (a commit
// index). Issue 8: a root that confirmed a publish and failed before its
// copies reached the replicas lost it; and a root cut off for less than
// failure detection kept numbering under its lease while the node next to
// it, which had declared it dead, numbered the same numbers: the old
// root's copies, held in its connections, reached subscribers at the heal,
// the successor's numbering won the merge (MergeRivalRoot), and the
// publishers' resends were numbered again, so subscribers got them twice
// (the seed-2 soak). Now a number another root gave meanwhile is never
// confirmed by the replicas that hold the other message, so it is never
// multicast, and is withdrawn when the other numbering arrives.
void Scribe::WaitForReplicas(TopicState& t, uint64_t seq, const PublishMsg& publish, bool ack) {
  if (ack) ++stats_.publish_acks_waiting_replicas;
  // A topic with numbers waiting is in confirming_ already (it leaves it
  // only once none waits, or with its state).
  if (t.unconfirmed.empty()) confirming_.insert(t.id);
  t.unconfirmed.try_emplace(t.unconfirmed.end(), seq,
                            UnconfirmedPublish{publish.publisher, publish.request, {}, Now(), ack});
}

// At replay_capacity numbers waiting for their replicas (Stamp): beyond
// the replay buffer the root would no longer hold the oldest message to
// multicast it or to send a new replica: release it as it is, and say so.
void Scribe::ReleaseOldestUnconfirmed(TopicState& t) {
  auto oldest = t.unconfirmed.begin();
  ++stats_.publish_acks_unconfirmed;
  if (log_ != nullptr && bound_warn_.Allow(Now())) {
    log_->warn("scribe: topic {}: replay_capacity ({}) numbers wait for their replicas; "
               "#{} released unconfirmed ({} warnings suppressed)",
               t.id.ShortHex(), options_.replay_capacity, oldest->first,
               bound_warn_.suppressed());
  }
  ReleaseNumber(t, oldest);
  if (t.unconfirmed.empty()) confirming_.erase(t.id);
}

// Multicasts the message numbered `it->first` (and delivers it here), and
// acknowledges its publish if asked. Returns the next waiting number.
std::map<uint64_t, UnconfirmedPublish>::iterator Scribe::ReleaseNumber(
    TopicState& t, std::map<uint64_t, UnconfirmedPublish>::iterator it,
    std::vector<std::pair<NodeHandle, PublishAckMsg>>* acks,
    SeqMap<ReplayEntry>::iterator* cursor) {
  const auto entry = cursor != nullptr
                         ? FindInRun(t.replay, *cursor, it->first, stats_.replay_searches)
                         : FindRecent(t.replay, it->first);
  if (entry != t.replay.end()) {
    if (t.subs.empty()) {
      // No handler runs (no subscriber here): the stored bytes are read in
      // place, copied only into each child's message. A handler may
      // publish, and the new number push this very entry out of the
      // replay buffer: with subscribers here Accept delivers a copy.
      if (IsNew(t, it->first)) Admit(t, it->first, entry->second.payload, /*forward=*/true);
    } else {
      Accept(t, DataMsg{t.id, it->first, entry->second.payload}, /*forward=*/true);
    }
  }
  if (it->second.ack) {
    ++stats_.publish_acks_sent;
    if (LogsDebug()) {
      log_->debug("scribe: topic {}: acknowledges publish {} of {} as #{} (replicas hold it)",
                  t.id.ShortHex(), it->second.request, it->second.publisher.id.ShortHex(),
                  it->first);
    }
    PublishAckMsg ack{t.id, it->second.request, it->first};
    if (acks != nullptr) {
      acks->emplace_back(it->second.publisher, ack);
    } else {
      SendTo(it->second.publisher, ack);
    }
  }
  return t.unconfirmed.erase(it);
}

// A root term above `known`: a counter in the high bits, and the low 16
// bits of this node's id, so that two nodes taking the topic over from the
// same known term (the two sides of a cut) take different terms.
uint64_t Scribe::NextTerm(uint64_t known) const {
  return (((known >> 16) + 1) << 16) | (Self().id.lo() & 0xffff);
}

// The root's commit index: every number below it was released.
uint64_t Scribe::CommitIndex(const TopicState& t) {
  return t.unconfirmed.empty() ? t.next_stamp : t.unconfirmed.begin()->first;
}

// Releases, in order, the numbers every current replica peer holds with
// every number before them. Peers are those of now: one that left the
// replica set (failed, or a closer node joined) no longer counts, one that
// joined it gets the full state (Replicate) and confirms it. But one holder
// at least: a root cut off from every peer sees its replica set empty (each
// declared dead) and must not release what only it holds; its publishers
// resend to the root on the other side. Unless it is alone for good
// (lone_root_grace passed, as for numbering: a cluster that shrank to one
// node).
void Scribe::ReleaseConfirmed(TopicState& t) {
  if (!t.root) {
    AbandonUnconfirmed(t);
    return;
  }
  ReplicaPeerList peers;
  if (options_.replicas > 0) peers = ReplicaPeers(t);
  const bool alone = peers.empty() && AloneForGood();
  // A root that lost neighbours lately may see part of its leaf set again
  // after a cut: its replicas then need not be the ones a successor
  // numbered with, and both would release the same numbers (the seed-1
  // soak, docs/scribe.md "Two roots after a cut"). It releases only
  // against a full replica set until lone_root_grace after the loss, in a
  // ring that ever had that many nodes.
  const size_t full = static_cast<size_t>(std::max(options_.replicas, 0));
  if (!alone && peers.size() < full && widest_leaf_set_ >= full &&
      Now() - last_neighbour_loss_ < options_.lone_root_grace) {
    return;
  }
  // A full replica set back after a cut need not hold the successor's
  // numbering either (the seed-11 soak): ReplicaPeersCoverLosses.
  if (!alone && !ReplicaPeersCoverLosses(t)) return;
  if (Deposed(t)) return;
  // The acknowledgements go after the data of every number released here:
  // to a publisher's node that is also on the tree (the RESP gateway's,
  // with a subscriber), its consecutive data and acknowledgements are then
  // two runs (version 5), not each publish's data and acknowledgement in
  // turn. An acknowledgement still follows its own number's data. The list
  // is release_acks_', taken while in use (a handler run by a release may
  // release again: it then takes an empty one).
  std::vector<std::pair<NodeHandle, PublishAckMsg>> acks;
  acks.swap(release_acks_);
  // Consecutive numbers' replay entries are next to each other: one search
  // for the first, then a step each (a handler's publish while one is
  // delivered may move them: the cursor is then checked, not trusted).
  auto cursor = t.replay.end();
  while (!t.unconfirmed.empty()) {
    auto it = t.unconfirmed.begin();
    const auto& holders = it->second.holders;
    const bool held =
        alone ||
        (!holders.empty() && std::all_of(peers.begin(), peers.end(), [&](const NodeHandle& h) {
          return std::find(holders.begin(), holders.end(), h.id) != holders.end();
        }));
    if (!held) break;
    ReleaseNumber(t, it, &acks, &cursor);
  }
  for (const auto& [to, ack] : acks) SendTo(to, ack);
  constexpr size_t kKeepAcks = 256;  // a larger release's list is freed
  if (!acks.empty()) acks.clear();
  if (acks.capacity() <= kKeepAcks) acks.swap(release_acks_);
  if (t.unconfirmed.empty()) confirming_.erase(t.id);
  if (!t.held_publishes.empty() && !WindowFull(t) && HoldsOver(t)) NumberHeld(t);
}

// Another root's numbering reached up to `below` (a join's frontier, a
// rival's hand-over): the numbers below it waiting here were given twice
// and never multicast. They are withdrawn unacknowledged; an acknowledged
// publish's resend is numbered anew (a best-effort one is lost, counted).
void Scribe::WithdrawBelow(TopicState& t, uint64_t below) {
  for (auto it = t.unconfirmed.begin(); it != t.unconfirmed.end() && it->first < below;) {
    if (it->second.taken_over || it->second.echoed) {
      // Not numbered here: a subscriber past it shows that the root it came
      // from released it (most likely this very message; a rival's state
      // withdraws it only through MergeRivalRoot). Multicast, as it was
      // before taken-over numbers waited for the replicas.
      it = ReleaseNumber(t, it);
      continue;
    }
    ++stats_.numbers_withdrawn;
    if (LogsDebug()) {
      log_->debug("scribe: topic {}: #{} (publish {} of {}) withdrawn: another root's numbering "
                  "reached #{}",
                  t.id.ShortHex(), it->first, it->second.request,
                  it->second.publisher.id.ShortHex(), below - 1);
    }
    if (auto entry = t.replay.find(it->first); entry != t.replay.end()) EraseReplay(t, entry);
    it = t.unconfirmed.erase(it);
  }
  if (t.unconfirmed.empty()) confirming_.erase(t.id);
}

void Scribe::CheckUnconfirmed() {
  std::vector<TopicId> ids(confirming_.begin(), confirming_.end());
  for (const TopicId& id : ids) {
    TopicState* t = Find(id);
    if (t == nullptr) {
      confirming_.erase(id);
      continue;
    }
    ReleaseConfirmed(*t);
    if (t->root) ResendUnconfirmed(*t);
  }
}

// Sends a waiting message again to the replica peers that have not
// confirmed it within repair_retry: their copy may be lost (a connection
// reset, or a replica restarted under the same id, which the periodic
// replication sends only the next number). One message per number: a
// replica confirms the range a Replicate carries, so one must carry a run
// of the replay buffer without holes.
void Scribe::ResendUnconfirmed(TopicState& t) {
  const ReplicaPeerList peers = ReplicaPeers(t);
  for (auto& [seq, waiting] : t.unconfirmed) {
    if (Now() - waiting.sent < options_.repair_retry) continue;
    auto entry = t.replay.find(seq);
    if (entry == t.replay.end()) continue;
    waiting.sent = Now();
    std::string bytes;
    for (const NodeHandle& h : peers) {
      const auto& holders = waiting.holders;
      if (std::find(holders.begin(), holders.end(), h.id) != holders.end()) continue;
      if (bytes.empty()) {
        const ReplayEntry& e = entry->second;
        bytes = wire::Encode(
            ReplicateMsg{t.id,
                         t.next_stamp,
                         false,
                         {StoredMessage{seq, e.payload, e.publisher, e.request, e.term}},
                         0,
                         CommitIndex(t),
                         t.term,
                         {}});
      }
      ++stats_.replica_resends;
      SendBytes(h, bytes);
    }
  }
}

// No longer the root: the new root confirms the publishers' resends.
// Its waiting numbers were never multicast from here: they went to the new
// root with the hand-over (FullState), which multicasts them unless it gave
// the numbers to other publishes. This node forgets them, so that it keeps
// no copy the new root's numbering may contradict.
void Scribe::AbandonUnconfirmed(TopicState& t) {
  if (!t.unconfirmed.empty() && LogsDebug()) {
    log_->debug("scribe: topic {}: not root any more: numbers #{}..#{} ({}) left to the new root",
                t.id.ShortHex(), t.unconfirmed.begin()->first, t.unconfirmed.rbegin()->first,
                t.unconfirmed.size());
  }
  for (const auto& [seq, waiting] : t.unconfirmed) {
    if (waiting.ack) ++stats_.publish_acks_abandoned;
    if (auto entry = t.replay.find(seq); entry != t.replay.end()) EraseReplay(t, entry);
  }
  t.unconfirmed.clear();
  confirming_.erase(t.id);
}

void Scribe::ReleaseHolds() {
  std::vector<TopicId> ids(holding_.begin(), holding_.end());
  for (const TopicId& id : ids) {
    TopicState* t = Find(id);
    // HoldsOver written out, as a root without a lease asks for one: keep
    // the three in step (MayNumberNow).
    if (t != nullptr && t->root && Now() < t->hold_until) continue;
    if (t != nullptr && t->root && !HoldsLease(*t)) {
      AskLease(*t);
      continue;
    }
    if (t != nullptr && t->root) {
      // As many as the replica window takes; the rest as it frees.
      if (!t->held_publishes.empty() && !WindowFull(*t) && LogsDebug()) {
        log_->debug("scribe: topic {}: releases {} held publishes to number", id.ShortHex(),
                    t->held_publishes.size());
      }
      NumberHeld(*t);
      continue;
    }
    holding_.erase(id);
    if (t == nullptr) continue;
    LazyDeque<PublishMsg> held = std::move(t->held_publishes);
    t->held_publishes.clear();
    t->held_origins.clear();
    if (!held.empty() && LogsDebug()) {
      log_->debug("scribe: topic {}: releases {} held publishes to the new root", id.ShortHex(),
                  held.size());
    }
    for (; !held.empty(); held.pop_front()) {
      ++stats_.publishes_rerouted;  // handed over meanwhile: to the new root
      RouteToTopic(id, held.front());
    }
  }
}

// ---------------------------------------------------------------------------
// The publisher's side: pending acknowledgements and the root cache.

// The first send goes straight to the cached root, or is routed when none
// is cached; resends are routed. Each names the previous publish to the
// topic while that one is unacknowledged (`after`), and the root numbers
// them in that order whatever path each took: a direct send may overtake
// routed ones, a route may end at another node or pass through one (a
// suspected root), a resend may overtake its successors.
void Scribe::SendPublish(uint64_t request) {
  PendingPublish& p = pending_publishes_.at(request);
  std::optional<NodeHandle> direct;
  if (p.sends++ == 0) {
    PublishPath& path = publish_paths_[p.topic];
    ++path.in_flight;
    p.after = path.last;
    path.last = request;
    if (const NodeHandle* cached = root_cache_.Use(p.topic); cached != nullptr) direct = *cached;
  }
  // A predecessor acknowledged (numbered) or given up since is not waited for.
  if (p.after != 0 && !pending_publishes_.contains(p.after)) p.after = 0;
  PublishMsg msg{p.topic, p.payload, Self(), request, /*want_ack=*/true, p.after};
  if (direct.has_value()) {
    ++stats_.root_cache_hits;
    p.via_cache = direct;
    SendTo(*direct, std::move(msg));
  } else {
    ++stats_.root_cache_misses;
    RouteToTopic(p.topic, msg);
  }
  p.resend_at = Now() + options_.publish_retry;
}

void Scribe::ReleasePublishPath(const TopicId& topic) {
  auto it = publish_paths_.find(topic);
  if (it != publish_paths_.end() && --it->second.in_flight == 0) publish_paths_.erase(it);
}

void Scribe::OnPublishAck(const NodeHandle& from, const PublishAckMsg& ack) {
  auto it = pending_publishes_.find(ack.request);
  if (it == pending_publishes_.end() || it->second.topic != ack.topic) {
    ++stats_.dropped;  // late, or a second answer to a resend
    return;
  }
  CacheRoot(ack.topic, from);
  ++stats_.publish_acks_received;
  PublishCallback done = std::move(it->second.done);
  ErasePending(it);
  ReleasePublishPath(ack.topic);
  RunCallback(done, ack.seq);
}

void Scribe::CacheRoot(const TopicId& topic, const NodeHandle& root) {
  root_cache_.Put(topic, root);
}

// Resends what is unacknowledged after publish_retry (forgetting a cached
// root that did not answer), and fails what is over publish_timeout.
void Scribe::CheckPendingPublishes() {
  std::vector<uint64_t> resend;
  std::vector<std::pair<PublishCallback, absl::Status>> failed;
  for (auto it = pending_publishes_.begin(); it != pending_publishes_.end();) {
    PendingPublish& p = it->second;
    if (Now() >= p.deadline) {
      ++stats_.publish_timeouts;
      failed.emplace_back(std::move(p.done),
                          absl::DeadlineExceededError(
                              "publish not acknowledged in time; it may still "
                              "have been published"));
      const TopicId topic = p.topic;
      it = ErasePending(it);
      ReleasePublishPath(topic);
      continue;
    }
    if (Now() >= p.resend_at) resend.push_back(it->first);
    ++it;
  }
  for (uint64_t request : resend) {
    PendingPublish& p = pending_publishes_.at(request);
    if (p.via_cache.has_value()) root_cache_.EraseIf(p.topic, *p.via_cache);
    ++stats_.publish_resends;
    SendPublish(request);
  }
  for (auto& [done, status] : failed) RunCallback(done, status);
}

// The root learns that numbers below `frontier` were used before it.
// Past this root's multicast frontier: numbers that are waiting here were
// given by another root too (nothing waiting has been multicast).
void Scribe::RaiseStamp(TopicState& t, uint64_t frontier) {
  if (!t.root) return;
  if (frontier > t.next) {
    WithdrawBelow(t, frontier);
    SetFrontier(t, frontier);
  }
  t.next_stamp = std::max(t.next_stamp, frontier);
}

void Scribe::OnData(const NodeHandle& from, DataMsg data) {
  TopicState* t = Find(data.topic);
  if (t == nullptr) {
    SendTo(from, LeaveMsg{data.topic});  // it still counts us as a child
    return;
  }
  if (t->parent.has_value() && t->parent->id == from.id) {
    t->last_parent_contact = Now();
  } else if ((t->root || t->attached) && !t->OnPath(from.id)) {
    // Neither our parent nor an ancestor answering a repair: a former
    // parent that still counts us as a child. It was paused or cut off
    // while we joined another parent (CheckParents sends it no Leave),
    // and would send us every message again until child_timeout. The data
    // is still taken (it may fill a gap); the Leave stops the rest. Not
    // sent while we are joining: the join may be on its way to that node.
    ++stats_.stale_parents_left;
    SendTo(from, LeaveMsg{data.topic});
  }
  Accept(*t, std::move(data), /*forward=*/true);
}

// New data is stored, passed to every child and delivered in order; data
// seen before is dropped. Returns whether `data` was new.
bool Scribe::Accept(TopicState& t, DataMsg data, bool forward) {
  if (!IsNew(t, data.seq)) return false;
  // Only reliable subtrees ask for repairs, and a repair this node cannot
  // serve goes on to its parent: the root (numbering, replicas, resends)
  // and nodes with a reliable subscriber or child keep a replay buffer; a
  // best-effort tree's other nodes keep none.
  const bool store =
      (t.root || t.Reliable()) && FindRecent(t.replay, data.seq) == t.replay.end();
  Admit(t, data.seq, data.payload, forward);
  // Stored last, so the replay buffer takes the payload itself rather than
  // a copy: the subscribers were handed `data`'s bytes, which a handler
  // that publishes (numbered, stored and trimmed here before it returns)
  // cannot free. Nothing a handler can reach reads this number's entry
  // before it returns: repairs, replication and hand-overs run from
  // messages and timers. try_emplace keeps an entry stored meanwhile.
  if (store) {
    Store(t, data.seq, std::move(data.payload));
    TrimReplayBytes(t);
  }
  return true;
}

// False, counted, for a number delivered or held here already.
bool Scribe::IsNew(TopicState& t, uint64_t seq) {
  if (t.next == 0 || seq < t.next || t.held.contains(seq)) {
    ++stats_.duplicates;
    return false;
  }
  return true;
}

// New number `seq` (IsNew) passed to every child and delivered in order,
// or held until the numbers before it are; not stored. `payload` must
// outlive the call: a subscriber's handler that publishes may store, and
// push out, replay entries meanwhile (Accept passes its own copy).
void Scribe::Admit(TopicState& t, uint64_t seq, const Payload& payload, bool forward) {
  if (seq < t.known_end) ++stats_.gaps_filled;  // it was missing
  if (forward) Multicast(t, seq, payload);
  if (seq == t.next && !t.delivering) {
    t.next = seq + 1;
    DeliverLocal(t, seq, payload);
    Drain(t);
  } else {
    // While a delivery is in progress (a handler published, and the root
    // numbered it at once), even the next number waits: the delivery's
    // Drain delivers it once every subscriber has the one before, and the
    // bound is enforced after it (SetFrontier here would deliver inside it).
    t.held.emplace(seq, payload);
    if (t.held.size() > options_.max_reorder && !t.delivering) {
      SetFrontier(t, t.held.begin()->first);
    }
  }
  NoteKnownEnd(t, seq + 1);
}

// A child that reads `listed` lists gets the data in its node's list
// (QueueListed); the others get the same bytes, encoded once.
void Scribe::Multicast(TopicState& t, uint64_t seq, const Payload& payload) {
  std::vector<NodeHandle> to;
  for (const auto& [id, child] : t.children) {
    if (!child.acked) continue;
    ++stats_.data_forwarded;
    if (ReadsListed(child.handle)) {
      QueueListed(child.handle, DataMsg{t.id, seq, payload});
    } else {
      to.push_back(child.handle);
    }
  }
  if (to.empty()) return;
  std::string bytes = wire::Encode(DataMsg{t.id, seq, payload});
  for (size_t i = 0; i + 1 < to.size(); ++i) SendBytes(to[i], bytes);
  SendBytes(to.back(), std::move(bytes));
}

// Every caller drains `held` after it (Accept, Drain, SetFrontier), which
// delivers what a handler published meanwhile (TopicState::delivering).
void Scribe::DeliverLocal(TopicState& t, uint64_t seq,
                          const Payload& payload) {
  const bool outer = !t.delivering;
  t.delivering = true;
  for (size_t i = 0; i < t.subs.size(); ++i) {
    std::shared_ptr<const SubscribeOptions> s = t.subs[i].options;
    ++stats_.delivered;
    RunCallback(s->on_message, Delivery{t.name, seq, payload});
  }
  if (outer) t.delivering = false;
}

void Scribe::Drain(TopicState& t) {
  while (!t.held.empty() && t.held.begin()->first <= t.next) {
    auto node = t.held.extract(t.held.begin());
    if (node.key() < t.next) continue;
    t.next = node.key() + 1;
    DeliverLocal(t, node.key(), node.mapped());
  }
  UpdateGap(t);
}

// Gives up every number below `next`: delivers what is held below it, in
// order, and counts the rest as skipped.
void Scribe::SetFrontier(TopicState& t, uint64_t next) {
  while (!t.held.empty() && t.held.begin()->first < next) {
    auto node = t.held.extract(t.held.begin());
    if (node.key() < t.next) continue;
    stats_.skipped += node.key() - t.next;
    t.next = node.key() + 1;
    DeliverLocal(t, node.key(), node.mapped());
  }
  if (t.next < next) {
    stats_.skipped += next - t.next;
    t.next = next;
  }
  Drain(t);
}

// On (re)attaching under a parent whose frontier is `parent_next`.
void Scribe::StartFrom(TopicState& t, uint64_t parent_next) {
  parent_next = std::max<uint64_t>(parent_next, 1);
  if (t.next == 0) {
    uint64_t start = parent_next;
    for (const LocalSubscription& s : t.subs) {
      if (s.options->reliable && s.options->since_seq.has_value()) {
        start = std::max<uint64_t>(*s.options->since_seq, 1);
      }
    }
    t.next = start;
    NoteKnownEnd(t, parent_next);
    return;
  }
  if (parent_next <= t.next) return;
  if (t.Reliable()) {
    NoteKnownEnd(t, parent_next);
  } else {
    SetFrontier(t, parent_next);  // best effort: from the repair on
  }
}

void Scribe::NoteKnownEnd(TopicState& t, uint64_t end) {
  t.known_end = std::max(t.known_end, end);
  UpdateGap(t);
}

void Scribe::UpdateGap(TopicState& t) {
  if (t.HasGap() || !t.held.empty()) {
    if (t.gap_since == absl::InfiniteFuture()) {
      t.gap_since = Now();
      gapped_.insert(t.id);
    }
  } else {
    t.gap_since = absl::InfiniteFuture();
  }
}

void Scribe::Store(TopicState& t, uint64_t seq, Payload payload, uint64_t term) {
  // Numbers mostly come in order: after the last, no allocation once the
  // ring (TopicState::replay) has grown to its bound.
  const size_t size = payload.size();
  // After the newest without a search; into a full buffer in the ring's
  // one free slot, next to the oldest entry, trimmed next.
  if (!t.replay.try_emplace(seq, ReplayEntry{std::move(payload), Now(), {}, 0, term}).second) {
    return;  // kept already
  }
  if (t.replay.size() == 1) replaying_.insert(t.id);  // else in it already
  ChargeReplay(t, 0, size);
  while (t.replay.size() > options_.replay_capacity) {
    EraseReplay(t, t.replay.begin());
  }
}

void Scribe::KeepReplay(TopicState& t, uint64_t seq, Payload payload, uint64_t term) {
  const size_t size = payload.size();
  if (!t.replay.try_emplace(seq, ReplayEntry{std::move(payload), Now(), {}, 0, term}).second) {
    return;
  }
  if (t.replay.size() == 1) replaying_.insert(t.id);  // else in it already
  ChargeReplay(t, 0, size);
}

// A topic's share of max_replay_bytes: one that holds no more gives
// nothing up for the others (a replica of a topic of large messages would
// otherwise leave every other topic here one message).
size_t Scribe::ReplayShare() const {
  return options_.max_replay_bytes / std::max<size_t>(topics_.size() + replicas_.size(), 1);
}

void Scribe::TrimReplayBytes(TopicState& t) {
  if (stats_.replay_bytes <= options_.max_replay_bytes) return;
  const size_t share = ReplayShare();
  // Not a number still waiting for its replicas (nor any after it): its
  // message is multicast from here once they hold it. Nor one queued for
  // them (a rival root's released message taken in, MergeRivalRoot): its
  // Replicate is made from the entry.
  uint64_t keep = t.unconfirmed.empty() ? UINT64_MAX : t.unconfirmed.begin()->first;
  for (uint64_t seq : t.to_replicate) keep = std::min(keep, seq);
  while (stats_.replay_bytes > options_.max_replay_bytes && t.replay_bytes > share &&
         t.replay.size() > 1 && t.replay.begin()->first < keep) {
    EraseReplay(t, t.replay.begin());
    ++stats_.replay_evicted_for_bytes;
  }
}

void Scribe::ChargeReplay(TopicState& t, size_t before, size_t after) {
  t.replay_bytes = t.replay_bytes - before + after;
  stats_.replay_bytes = stats_.replay_bytes - before + after;
}

void Scribe::ChargeReplica(ReplicaState& replica, size_t before, size_t after) {
  replica.bytes = replica.bytes - before + after;
  stats_.replay_bytes = stats_.replay_bytes - before + after;
}

absl::btree_map<TopicId, ReplicaState>::iterator Scribe::AddReplica(const TopicId& id) {
  auto it = replicas_.emplace(id, ReplicaState{}).first;
  // OnReplicate pushes the oldest out before it stores past replay_capacity
  // in order, and trims after storing out of order (the ring then grows
  // past the bound, until the maintenance pass shrinks it back).
  it->second.messages.set_bound(options_.replay_capacity + 1);
  return it;
}

void Scribe::EraseReplicaOldest(ReplicaState& replica) {
  auto oldest = replica.messages.begin();
  ChargeReplica(replica, oldest->second.payload.size(), 0);
  replica.messages.erase(oldest);
}

void Scribe::TrimReplicaBytes(ReplicaState& replica) {
  // Only what the root released: a number from `commit` on may still be
  // the one a successor numbers on with (TakeReplica).
  if (stats_.replay_bytes <= options_.max_replay_bytes) return;
  const size_t share = ReplayShare();
  while (stats_.replay_bytes > options_.max_replay_bytes && replica.bytes > share &&
         replica.messages.size() > 1 && replica.messages.begin()->first < replica.commit) {
    EraseReplicaOldest(replica);
    ++stats_.replay_evicted_for_bytes;
  }
}

uint64_t Scribe::RecountReplayBytes() const {
  uint64_t bytes = 0;
  for (const auto& [id, t] : topics_) {
    for (const auto& [seq, e] : t->replay) bytes += e.payload.size();
  }
  for (const auto& [id, replica] : replicas_) {
    for (const auto& [seq, m] : replica.messages) bytes += m.payload.size();
  }
  return bytes;
}

SeqMap<ReplayEntry>::iterator Scribe::ForgetOrigin(
    TopicState& t, SeqMap<ReplayEntry>::iterator it) {
  if (it->second.request != 0) {
    t.origins.Erase(it->second.publisher, it->second.request);
  }
  return it;
}

void Scribe::EraseReplay(TopicState& t,
                         SeqMap<ReplayEntry>::iterator it) {
  ChargeReplay(t, it->second.payload.size(), 0);
  t.replay.erase(ForgetOrigin(t, it));
  t.oldest_block = t.replay.empty() ? nullptr : t.replay.begin()->second.payload.block();
}

void Scribe::TrimReplays() {
  // Most topics holding something (a node whose every channel was just
  // published, say): the walk over topics_ in order is cheaper than a
  // look-up of each; a topic it empties leaves the set. A stale entry (a
  // topic already empty) is harmless: dropped by a later walk of the set.
  if (replaying_.size() * 8 > topics_.size()) {
    for (auto& [id, t] : topics_) {
      if (t->replay.empty() && t->replay.capacity() == 0) continue;
      ++stats_.replay_trim_visits;
      TrimReplay(*t);
      if (t->replay.capacity() == 0) replaying_.erase(id);
    }
    return;
  }
  for (auto it = replaying_.begin(); it != replaying_.end();) {
    TopicState* t = Find(*it);
    if (t != nullptr) {
      ++stats_.replay_trim_visits;
      TrimReplay(*t);
    }
    if (t == nullptr || (t->replay.empty() && t->replay.capacity() == 0)) {
      it = replaying_.erase(it);
    } else {
      ++it;
    }
  }
}

void Scribe::TrimReplay(TopicState& t) {
  // Not a number still waiting for its replicas (nor any after it): its
  // message is multicast from here once they hold it.
  const uint64_t waiting = t.unconfirmed.empty() ? UINT64_MAX : t.unconfirmed.begin()->first;
  while (!t.replay.empty() && t.replay.begin()->first < waiting &&
         Now() - t.replay.begin()->second.stored > options_.replay_max_age) {
    EraseReplay(t, t.replay.begin());
  }
  // An idle topic's ring gives its slots back, as the map's nodes went; one
  // trimmed to a few entries, or grown past its bound (a rival's state
  // merged), gives back what it holds beyond them (SeqMap::shrink).
  t.replay.shrink();
}

void Scribe::CheckGaps() {
  std::vector<TopicId> ids(gapped_.begin(), gapped_.end());
  for (const TopicId& id : ids) {
    TopicState* t = Find(id);
    if (t == nullptr || t->gap_since == absl::InfiniteFuture()) {
      gapped_.erase(id);
      continue;
    }
    if (Now() - t->gap_since < options_.reorder_timeout) continue;
    if (t->Reliable() && !t->root) {
      const bool progress = t->repair_from != t->next;
      if (t->attached &&
          (progress || Now() - t->repair_sent >= options_.repair_retry)) {
        RequestRepair(*t);
      }
    } else {
      uint64_t to = t->held.empty() ? t->known_end : t->held.begin()->first;
      // A root does not skip numbers that still wait for its replicas
      // (taken over from its replica: TakeReplica); they are delivered here
      // once released.
      if (t->root && !t->unconfirmed.empty()) to = std::min(to, t->unconfirmed.begin()->first);
      SetFrontier(*t, to);
    }
  }
}

// Asks the parent for the first missing run, [next, first held).
void Scribe::RequestRepair(TopicState& t) {
  if (!t.parent.has_value()) return;
  uint64_t to = t.held.empty() ? t.known_end : t.held.begin()->first;
  to = std::min<uint64_t>(to, t.next + options_.replay_capacity);
  if (to <= t.next) return;
  t.repair_sent = Now();
  t.repair_from = t.next;
  ++stats_.repairs_requested;
  SendTo(*t.parent, RepairRequestMsg{t.id, t.next, to, Self()});
}

// Sends the requester what the replay buffer holds of the range; asks the
// parent for the rest, or (at the root) tells the requester to skip it.
void Scribe::OnRepairRequest(const RepairRequestMsg& r) {
  TopicState* t = Find(r.topic);
  if (t == nullptr || r.to <= r.from) return;
  uint64_t to = std::min<uint64_t>(r.to, r.from + options_.replay_capacity);
  // A root holds numbers its replicas have not confirmed yet: not served.
  if (t->root) to = std::min(to, t->next);
  uint64_t expect = r.from;
  std::optional<uint64_t> missing;
  for (auto it = t->replay.lower_bound(r.from);
       it != t->replay.end() && it->first < to; ++it) {
    if (it->first != expect && !missing.has_value()) missing = expect;
    SendTo(r.requester, DataMsg{t->id, it->first, it->second.payload});
    ++stats_.repairs_served;
    expect = it->first + 1;
  }
  if (!missing.has_value() && expect < to) missing = expect;
  if (!missing.has_value()) return;
  if (t->root) {
    if (*missing >= t->next_stamp) return;  // not published yet
    auto it = t->replay.lower_bound(*missing);
    const uint64_t up_to =
        std::min(it == t->replay.end() ? t->next_stamp : it->first, t->next);
    SendTo(r.requester, SkipMsg{t->id, up_to});
  } else if (t->attached && t->parent.has_value()) {
    SendTo(*t->parent, RepairRequestMsg{t->id, *missing, to, r.requester});
  }
}

void Scribe::OnSkip(const SkipMsg& skip) {
  TopicState* t = Find(skip.topic);
  if (t != nullptr && t->next != 0 && skip.up_to > t->next) {
    SetFrontier(*t, skip.up_to);
  }
}

// The next number and the replay buffer, encoded in as many messages as it
// takes to keep each under kMaxReplicateBytes of payload (a receiver's
// decode limit is 4 MiB).
std::vector<std::string> Scribe::FullState(const TopicState& t,
                                           bool handover,
                                           uint64_t lease) const {
  constexpr size_t kMaxReplicateBytes = size_t{2} << 20;
  std::vector<std::string> out;
  ReplicateMsg msg{t.id, t.next_stamp, handover, {}, lease, CommitIndex(t), t.term, {}};
  size_t bytes = 0;
  for (const auto& [seq, entry] : t.replay) {
    if (!msg.messages.empty() &&
        bytes + entry.payload.size() > kMaxReplicateBytes) {
      out.push_back(wire::Encode(msg));
      msg.messages.clear();
      bytes = 0;
    }
    msg.messages.push_back(
        StoredMessage{seq, entry.payload, entry.publisher, entry.request, entry.term});
    bytes += entry.payload.size();
  }
  out.push_back(wire::Encode(msg));
  return out;
}

// The number just stamped goes to every replica peer with the others
// stamped in the same batch of work (FlushReplicates, a zero-delay timer:
// it runs once the event loop has handled what it read, so a burst of
// publishes is one Replicate, and one ReplicaAck naming the range, per
// peer rather than one each). False, and nothing queued, when there is no
// replica peer (a one-node ring).
bool Scribe::QueueReplicate(TopicState& t, uint64_t seq) {
  if (!t.root || options_.replicas <= 0 || !HasReplicaPeers(t)) return false;
  // A topic with numbers queued is in replicating_ already (only
  // FlushReplicates takes it out, and empties its queue).
  if (t.to_replicate.empty()) replicating_.insert(t.id);
  t.to_replicate.push_back(seq);
  if (!replicate_flush_scheduled_) {
    replicate_flush_scheduled_ = true;
    overlay_->ScheduleTimer(absl::ZeroDuration(), [this] { FlushReplicates(); });
  }
  return true;
}

// Sends each root topic's queued numbers to its replica peers of now, from
// the replay buffer: in runs without holes (a replica confirms the range a
// Replicate carries; a number withdrawn meanwhile is no longer there), of
// at most kMaxReplicateBytes of payload each (a receiver decodes at most
// 4 MiB) and kMaxReplicateBatch messages. A topic no longer rooted here
// sends nothing: its hand-over carried the replay buffer. A peer that reads
// lists (version 3) gets every topic's Replicates of this flush in one
// list (SendReplicateLists), the others one message each. Its containers
// are replicate_scratch_'s, reused.
void Scribe::FlushReplicates() {
  constexpr size_t kMaxReplicateBytes = size_t{2} << 20;
  replicate_flush_scheduled_ = false;
  ReplicateScratch& s = replicate_scratch_;
  s.ids.assign(replicating_.begin(), replicating_.end());
  replicating_.clear();
  // The Replicates for peers that read lists are kept until every topic's
  // are made, and each such peer's listed, in order.
  auto list_of = [&s](const NodeHandle& peer) -> size_t {
    for (size_t i = 0; i < s.peers; ++i) {
      const NodeHandle& to = s.lists[i].first;
      if (to.id == peer.id && to.endpoint == peer.endpoint) return i;
    }
    if (s.peers == s.lists.size()) s.lists.emplace_back();
    s.lists[s.peers].first = peer;
    return s.peers++;
  };
  // A peer's list, or -1 if it reads none: asked of Reads once a flush (no
  // message is received, so no version learnt, while it runs).
  auto list_index_of = [&](const NodeHandle& peer) -> int {
    for (const auto& [known, index] : s.peer_lists) {
      if (known == peer) return index;
    }
    const int index = ReadsLists(peer) ? static_cast<int>(list_of(peer)) : -1;
    s.peer_lists.emplace_back(peer, index);
    return index;
  };
  // The Replicate being filled: the first of made_replicates not made yet.
  auto next = [&s]() -> ReplicateMsg& {
    if (s.made == s.made_replicates.size()) s.made_replicates.emplace_back();
    return s.made_replicates[s.made];
  };
  for (const TopicId& id : s.ids) {
    TopicState* t = Find(id);
    if (t == nullptr) continue;
    // Copied out, the topic's queue keeps its capacity for the next flush,
    // up to kKeepQueued numbers (every root topic keeps it: 512 bytes).
    constexpr size_t kKeepQueued = 64;
    s.seqs.assign(t->to_replicate.begin(), t->to_replicate.end());
    t->to_replicate.clear();
    if (t->to_replicate.capacity() > kKeepQueued) t->to_replicate.shrink_to_fit();
    if (!t->root || s.seqs.empty()) continue;
    const ReplicaPeerList peers = ReplicaPeers(*t);
    if (peers.empty()) continue;
    // Each of the topic's Replicates: as ReplicateMsg{t->id, t->next_stamp,
    // false, {}, 0, CommitIndex(*t), t->term, {}}, its message list (empty)
    // keeping its capacity.
    auto start = [id = t->id, next_seq = t->next_stamp, commit = CommitIndex(*t),
                  term = t->term](ReplicateMsg& m) {
      m.topic = id;
      m.next_seq = next_seq;
      m.handover = false;
      m.lease = 0;
      m.commit = commit;
      m.term = term;
      m.term_root = NodeId{};
    };
    ReplicateMsg* msg = &next();
    start(*msg);
    // Per peer, its list, or -1 if it reads none (looked up at the first send).
    absl::InlinedVector<int, 4> list_index;
    size_t bytes = 0;
    auto send = [&] {
      if (msg->messages.empty()) return;
      ++stats_.replicate_batches;
      if (list_index.empty()) {
        for (const NodeHandle& peer : peers) list_index.push_back(list_index_of(peer));
      }
      std::string encoded;
      bool listed = false;
      for (size_t i = 0; i < peers.size(); ++i) {
        if (list_index[i] >= 0) {
          listed = true;
          continue;
        }
        if (encoded.empty()) encoded = wire::Encode(*msg);
        SendBytes(peers[i], encoded);
      }
      bytes = 0;
      if (!listed) {
        msg->messages.clear();
        return;
      }
      for (int i : list_index) {
        if (i >= 0) s.lists[i].second.push_back(msg);
      }
      ++s.made;
      msg = &next();
      start(*msg);
    };
    auto cursor = t->replay.end();
    for (uint64_t seq : s.seqs) {
      const auto entry = FindInRun(t->replay, cursor, seq, stats_.replay_searches);
      if (entry == t->replay.end()) {
        send();  // a hole: the run ends here
        continue;
      }
      const ReplayEntry& e = entry->second;
      if (!msg->messages.empty() &&
          (msg->messages.back().seq + 1 != seq || msg->messages.size() >= kMaxReplicateBatch ||
           bytes + e.payload.size() > kMaxReplicateBytes)) {
        send();
      }
      msg->messages.push_back(StoredMessage{seq, e.payload, e.publisher, e.request, e.term});
      bytes += e.payload.size();
    }
    send();
  }
  SendReplicateLists(absl::MakeConstSpan(s.lists.data(), s.peers));
  TrimReplicateScratch();
}

// What a flush leaves: no payload shared, the made Replicates and lists
// emptied for the next one (their capacity kept up to a bound, so that one
// large flush does not keep its memory).
void Scribe::TrimReplicateScratch() {
  // At most 128 Replicates of 64 message slots each are kept (about 400
  // KB), and 256 places in the ids and peers' lists.
  constexpr size_t kKeepReplicates = 128;
  constexpr size_t kKeepListed = 256;
  constexpr size_t kKeepMessages = 64;
  ReplicateScratch& s = replicate_scratch_;
  // Through the one at `made` too: filled and sent for peers that read no
  // lists, never counted as made.
  const size_t filled = std::min(s.made + 1, s.made_replicates.size());
  for (size_t i = 0; i < filled; ++i) {
    std::vector<StoredMessage>& messages = s.made_replicates[i].messages;
    messages.clear();
    if (messages.capacity() > kKeepMessages) messages = std::vector<StoredMessage>();
  }
  s.made = 0;
  if (s.made_replicates.size() > kKeepReplicates) s.made_replicates.resize(kKeepReplicates);
  for (size_t i = 0; i < s.peers; ++i) {
    std::vector<const ReplicateMsg*>& list = s.lists[i].second;
    list.clear();
    if (list.capacity() > kKeepListed) list = std::vector<const ReplicateMsg*>();
  }
  s.peers = 0;
  s.peer_lists.clear();
  s.ids.clear();
  if (s.ids.capacity() > kKeepListed) s.ids = std::vector<TopicId>();
  if (s.seqs.capacity() > kMaxReplicateBatch) s.seqs = std::vector<uint64_t>();
  s.encoded.clear();
  s.counts.clear();
}

// Each peer's Replicates in lists of at most kMaxBundleMessages and, unless
// one is larger, about kMaxBundleBytes of payload; a lone one as itself. Peers
// given the same Replicates (every peer, on a small ring) share the
// encoding: the last of them takes its bytes, the others a copy.
void Scribe::SendReplicateLists(absl::Span<const ReplicateList> lists) {
  std::vector<std::string>& encoded = replicate_scratch_.encoded;  // a list's, in parts
  std::vector<size_t>& counts = replicate_scratch_.counts;
  bool same_as_last = false;  // lists[p]'s Replicates are lists[p - 1]'s: `encoded`
  for (size_t p = 0; p < lists.size(); ++p) {
    const auto& [peer, list] = lists[p];
    if (!same_as_last) {
      encoded.clear();
      counts.clear();
      size_t start = 0;
      size_t bytes = 0;
      auto part = [&](size_t end) {
        if (end == start) return;
        const absl::Span<const ReplicateMsg* const> run(list.data() + start, end - start);
        if (run.size() == 1) {
          encoded.push_back(wire::Encode(*run.front()));
        } else {
          encoded.push_back(wire::EncodeReplicates(run));
        }
        counts.push_back(run.size());
        start = end;
        bytes = 0;
      };
      for (size_t i = 0; i < list.size(); ++i) {
        size_t size = 64;
        for (const StoredMessage& m : list[i]->messages) size += m.payload.size() + 56;
        if (i - start >= kMaxBundleMessages || (i > start && bytes + size > kMaxBundleBytes)) {
          part(i);
        }
        bytes += size;
      }
      part(list.size());
    }
    const bool next_shares = p + 1 < lists.size() && lists[p + 1].second == list;
    for (size_t i = 0; i < encoded.size(); ++i) {
      if (counts[i] > 1) {
        ++stats_.replicate_lists_sent;
        stats_.replicates_listed += counts[i];
      }
      if (next_shares) {
        SendBytes(peer, encoded[i], counts[i]);
      } else {
        SendBytes(peer, std::move(encoded[i]), counts[i]);
      }
    }
    same_as_last = next_shares;
  }
}

// The full state to replicas new since the last time, the next sequence
// number to the others.
void Scribe::Replicate(TopicState& t) {
  if (!t.root || options_.replicas <= 0) return;
  const ReplicaPeerList set = ReplicaPeers(t);
  // The full replication also renews the root's leases.
  uint64_t lease = 0;
  if (options_.root_lease > absl::ZeroDuration()) {
    lease = static_cast<uint64_t>(absl::ToUnixNanos(Now())) + 1;
    t.lease_asked = Now();
    for (auto it = t.leases.begin(); it != t.leases.end();) {
      const bool member =
          std::any_of(set.begin(), set.end(),
                      [&](const NodeHandle& h) { return h.id == it->first; });
      if (member) {
        ++it;
      } else {
        t.leases.erase(it++);
      }
    }
  }
  std::string light =
      wire::Encode(ReplicateMsg{t.id, t.next_stamp, false, {}, lease, CommitIndex(t), t.term, {}});
  std::vector<std::string> full;
  std::vector<NodeId> ids;
  for (const NodeHandle& h : set) {
    ids.push_back(h.id);
    if (std::find(t.replicated_to.begin(), t.replicated_to.end(), h.id) !=
        t.replicated_to.end()) {
      SendBytes(h, light);
      continue;
    }
    if (full.empty()) full = FullState(t, /*handover=*/false, lease);
    for (const std::string& part : full) SendBytes(h, part);
  }
  t.replicated_to = std::move(ids);
}

void Scribe::ReplicateAll() {
  for (auto& [id, t] : topics_) {
    if (t->root) Replicate(*t);
  }
}

void Scribe::OnReplicate(const NodeHandle& from, ReplicateMsg r) {
  TopicState* t = Find(r.topic);
  if (t != nullptr && t->root) {
    // Two nodes believe they are root: the closer one keeps the role, and
    // the numbers the other one gave (it took over while this node was
    // paused or cut off, say).
    if (NodeId::CloserTo(r.topic, from.id, Self().id)) {
      HandOver(*t, from, "a closer root replicated to it");
    } else if (r.handover) {
      MergeRivalRoot(*t, r, from);
    }
    return;
  }
  auto it = replicas_.find(r.topic);
  if (it == replicas_.end()) {
    if (replicas_.size() >= options_.max_topics) {
      RefuseTopic(r.topic, "replica");
      return;
    }
    it = AddReplica(r.topic);
  }
  ReplicaState& replica = it->second;
  // A root whose next number is behind this replica's does not know numbers
  // given before: by its own previous run (restarted without its state:
  // they waited for the replicas when it failed, so no subscriber's
  // frontier shows them), or by another root while it was cut off. It is
  // told them rather than refused number by number (replica conflicts
  // would hold its multicast back for good).
  const bool behind = !r.handover && r.next_seq != 0 && r.next_seq < replica.next_stamp;
  // A root whose term is below the highest this replica has seen is a
  // former root while the root of that term lives (as far as this node
  // knows): it gets no confirmation and no lease from here, and is sent
  // this replica's state (it takes a term above if it is the closer root,
  // else it waits to hand over). A sender with no term (an older version)
  // is not checked; nor is one whose rival this node has lost (a root that
  // failed must not stall the topic). docs/scribe.md, "Entry terms".
  const bool stale = r.term != 0 && r.term < replica.term && from.id != replica.term_root &&
                     TermRootLives(replica);
  if (stale) {
    ++stats_.replica_stale_terms;
    if (LogsDebug()) {
      log_->debug("scribe: topic {}: root {} numbers under term {:x}, this replica has seen "
                  "{:x} of {}: no confirmation, no lease",
                  r.topic.ShortHex(), from.id.ShortHex(), r.term, replica.term,
                  replica.term_root.ShortHex());
    }
  } else if (r.term != 0 && (r.term > replica.term || !r.handover)) {
    replica.term = r.term;
    replica.term_root = from.id;
  }
  if (behind && LogsDebug()) {
    log_->debug("scribe: topic {}: root {} numbers from {}, this replica holds up to {}: "
                "sends it the replica",
                r.topic.ShortHex(), from.id.ShortHex(), r.next_seq, replica.next_stamp - 1);
  }
  replica.next_stamp = std::max(replica.next_stamp, r.next_seq);
  replica.refreshed = Now();
  // A number this node holds another message under was given twice: by
  // the sender, and by another root while the sender was cut off (its copy
  // reached us late). The first one kept is the one a root may have
  // confirmed; the sender's is not confirmed, and the sender learns the
  // other numbering when the other root hands the topic over
  // (MergeRivalRoot).
  // The origins come with the messages: a new root taken over from here
  // recognises a resend of one confirmed now.
  //
  // Except that a message its sender released (below its commit index)
  // wins over a tentative one held here (from it on: its root may have
  // held it back for the replicas as a cut began, and never released it):
  // a root releases a number only once its replicas hold it, so the
  // released one is the one subscribers have (the root-fault sweep, issue
  // 8). A released number is never overwritten.
  bool conflict = false;
  ReplicaAckMsg ack{r.topic};
  if (!stale && r.term != 0 && from.id != replica.confirmed_root) {
    replica.protected_end = std::max(replica.protected_end, replica.confirmed_end);
  }
  // Numbers in ascending order past what is held, into a full replica:
  // each pushes the oldest out first (as Store), so the ring stays within
  // its bound and stores in the slot just freed. The oldest would be
  // trimmed below anyway (replay_capacity numbers above it arrive); out of
  // order, one that follows could match it, so then it stays until the
  // trim.
  const bool ascending =
      std::adjacent_find(r.messages.begin(), r.messages.end(),
                         [](const StoredMessage& a, const StoredMessage& b) {
                           return a.seq >= b.seq;
                         }) == r.messages.end();
  for (StoredMessage& m : r.messages) {
    const bool released = m.seq < r.commit;
    const size_t size = m.payload.size();
    if (ascending && !replica.messages.empty() &&
        replica.messages.size() >= options_.replay_capacity &&
        replica.messages.rbegin()->first < m.seq) {
      EraseReplicaOldest(replica);
    }
    // In order, after what is held: appended without a search.
    auto [held, fresh] = replica.messages.try_emplace(m.seq, std::move(m));
    if (fresh) ChargeReplica(replica, 0, size);
    // A tentative one that this replica did not confirm to another root
    // (which may have released it) is also replaced by a message of a
    // higher term, or by any message of a root whose term is not below the
    // tentative one's (Raft's rule: the current root's numbering wins over
    // what an older term left). docs/scribe.md, "Entry terms".
    const uint64_t held_term = fresh ? 0 : held->second.term;
    const bool confirmed = held->first < replica.protected_end;
    if (!fresh && !SameMessage(held->second, m) && held->first >= replica.commit &&
        (released ||
         (!confirmed && (m.term > held_term || (!stale && r.term != 0 && r.term >= held_term))))) {
      ++stats_.replica_tentative_replaced;
      if (LogsDebug()) {
        log_->debug("scribe: topic {}: replica: #{}: publish {} of {}, from {}, replaces "
                    "tentative publish {} of {}",
                    r.topic.ShortHex(), m.seq, m.request, m.publisher.ShortHex(),
                    from.id.ShortHex(), held->second.request, held->second.publisher.ShortHex());
      }
      ChargeReplica(replica, held->second.payload.size(), m.payload.size());
      held->second = std::move(m);
    } else if (!fresh && !SameMessage(held->second, m)) {
      conflict = true;
      ++stats_.replica_conflicts;
      if (LogsDebug()) {
        log_->debug("scribe: topic {}: replica conflict at #{}: {} sent publish {} of {}, "
                    "held is publish {} of {}",
                    r.topic.ShortHex(), m.seq, from.id.ShortHex(), m.request,
                    m.publisher.ShortHex(), held->second.request,
                    held->second.publisher.ShortHex());
      }
      continue;
    }
    ack.first = ack.first == 0 ? held->first : std::min(ack.first, held->first);
    ack.last = std::max(ack.last, held->first);
  }
  if (conflict || stale) ack.first = ack.last = 0;
  if (ack.last != 0 && r.term != 0) {
    replica.confirmed_end = std::max(replica.confirmed_end, ack.last + 1);
    replica.confirmed_root = from.id;
  }
  if (!stale) replica.commit = std::max(replica.commit, r.commit);
  while (replica.messages.size() > options_.replay_capacity) EraseReplicaOldest(replica);
  TrimReplicaBytes(replica);
  // A root that hands the role over can no longer number: its lease is void.
  if (r.handover) replica.granted.erase(from.id);
  if (r.lease != 0 && !stale && options_.root_lease > absl::ZeroDuration()) {
    if (GrantLease(replica, from.id)) {
      ack.lease = r.lease;
    } else {
      ++stats_.leases_refused;
    }
  }
  // The state goes before the acknowledgement and its lease: a root
  // holding publishes for a lease numbers them as the lease arrives, and
  // must know this replica's numbers by then (the root-fault sweep, seed
  // 293, and the lagged-heal sweep, seeds 160 and 260: it numbered again
  // publishes the state carried, then merged the state, and both numbers
  // were released).
  if (behind || stale || (conflict && r.term != 0)) SendStateBehind(from, r.topic, replica);
  if (ack.lease != 0 || ack.last != 0) SendTo(from, ack);
}

// This replica's state to a root behind it, at most once per
// replica_resend_interval to one root: the root shows itself behind in
// every Replicate until the state arrives.
void Scribe::SendStateBehind(const NodeHandle& root, const TopicId& topic,
                             ReplicaState& replica) {
  const absl::Time now = Now();
  // A term the root was not sent yet goes at once: it stops a root that
  // another, closer one has deposed.
  if (replica.state_sent_to == root.id && replica.state_sent_term == replica.term &&
      now - replica.state_sent_at < options_.replica_resend_interval) {
    ++stats_.replica_sends_limited;
    if (LogsDebug()) {
      log_->debug("scribe: topic {}: replica state sent to root {} {} ago: not again yet",
                  topic.ShortHex(), root.id.ShortHex(),
                  absl::FormatDuration(now - replica.state_sent_at));
    }
    return;
  }
  replica.state_sent_to = root.id;
  replica.state_sent_at = now;
  replica.state_sent_term = replica.term;
  ++stats_.replica_states_sent;
  SendReplica(root, topic, replica);
}

// This replica's state, to a root that numbers behind it, as a rival
// root's state (a hand-over), which the root merges (MergeRivalRoot): the
// messages it lacks are multicast, what it numbered under their numbers
// and still holds back for the replicas is withdrawn, and it numbers on
// after them. In parts of at most 2 MiB of payload; only the last names
// the next number (the root skips to it, so the messages come first).
void Scribe::SendReplica(const NodeHandle& root, const TopicId& topic,
                         const ReplicaState& replica) {
  constexpr size_t kMaxReplicateBytes = size_t{2} << 20;
  const uint64_t confirmed =
      root.id == replica.confirmed_root ? replica.protected_end : replica.confirmed_end;
  const uint64_t commit = replica.term != 0 ? std::max(replica.commit, confirmed) : replica.commit;
  ReplicateMsg msg{topic, 0, /*handover=*/true, {}, 0, commit, replica.term, replica.term_root};
  size_t bytes = 0;
  for (const auto& [seq, m] : replica.messages) {
    if (!msg.messages.empty() && bytes + m.payload.size() > kMaxReplicateBytes) {
      SendTo(root, msg);
      msg.messages.clear();
      bytes = 0;
    }
    msg.messages.push_back(m);
    bytes += m.payload.size();
  }
  msg.next_seq = replica.next_stamp;
  SendTo(root, std::move(msg));
}

// Records a root lease for `root` unless max_lease_grants others, still
// running, are held: then refused (the root holds its publishes and asks
// again with the next replication). A renewal always succeeds.
bool Scribe::GrantLease(ReplicaState& replica, const NodeId& root) {
  const absl::Time now = Now();
  auto it = replica.granted.find(root);
  if (it == replica.granted.end() && replica.granted.size() >= options_.max_lease_grants) {
    absl::erase_if(replica.granted, [now](const auto& grant) { return grant.second <= now; });
    if (replica.granted.size() >= options_.max_lease_grants) return false;
  }
  replica.granted[root] = now + options_.root_lease;
  return true;
}

// Another node numbered this topic as its root while this node also was
// (or believed it was): take its messages, their origins and its next
// number, so no number is given twice and resends are recognised.
//
// Where both numbered the same number, the other root's message wins over
// one still waiting here for the replicas if the other released it (below
// its commit index: numbered under a lease as the cut began, this root's
// copies to the replicas too late) or if it was numbered under a term above
// this root's (docs/scribe.md, "Entry terms"); a sender with no term (an
// older version) wins always, as before. Nothing waiting was multicast, so
// no subscriber has it: it is withdrawn, the other root's is multicast if
// released, else it waits for this root's replicas, and an acknowledged
// publish's resend is numbered anew. One this node released was held by
// every replica, so the other root took it over and numbered nothing else
// under its number. One numbered alike by both is released. The state may
// also be a replica's, sent to a root behind it.
void Scribe::MergeRivalRoot(TopicState& t, ReplicateMsg& r, const NodeHandle& from) {
  ++stats_.rival_roots_merged;
  const bool debug = LogsDebug();
  // A replica's state names the root of its term. It may echo this root's
  // own waiting numbers: those it does not release (docs/scribe.md, "Entry
  // terms").
  const bool from_replica = r.term_root != NodeId();
  const NodeId term_root = from_replica ? r.term_root : from.id;
  const bool termed = r.term != 0;
  if (debug) {
    log_->debug("scribe: topic {}: merges a rival {}'s state: {} messages, next number {} "
                "(here {}), term {:x} of {} (here {:x})",
                t.id.ShortHex(), from_replica ? "replica" : "root", r.messages.size(),
                r.next_seq, t.next_stamp, r.term, term_root.ShortHex(), t.term);
  }
  for (const StoredMessage& m : r.messages) {
    // `mine` is not used once a call may have stored (Accept, ReleaseNumber:
    // a subscriber's handler may publish; the ring's end() moves, and an
    // insertion before it shifts it): what the branches after need of it is
    // kept here.
    auto mine = t.replay.find(m.seq);
    const bool had_mine = mine != t.replay.end();
    const bool same = had_mine && SameMessage(mine->second.publisher, mine->second.request,
                                              mine->second.payload, m);
    const uint64_t my_term = had_mine ? mine->second.term : 0;
    const NodeId my_publisher = had_mine ? mine->second.publisher : NodeId();
    const uint64_t my_request = had_mine ? mine->second.request : 0;
    // Released (below the commit index; a replica takes its commit index
    // only from the root of the highest term it has seen, and counts what
    // it confirmed to another root as released too, SendReplica):
    // subscribers may have it. A sender with no term (an older version) is
    // merged as before: its messages win over waiting ones and are
    // multicast.
    const bool rival_released = !termed || (r.commit != 0 && m.seq < r.commit);
    if (auto waiting = t.unconfirmed.find(m.seq); waiting != t.unconfirmed.end()) {
      if (same) {
        // Numbered alike by both. Released by the other root: its replicas
        // held it. Else it may be this root's own waiting number echoed: by
        // a replica, or by a root that took the topic over from a replica
        // holding it and hands it back (the root-fault sweep, seeds 596 and
        // 692: the cut root released its held-back numbers at that hand-over
        // while the other side's root had released other messages under
        // them). It stays waiting for this root's replicas; from a root, as
        // one taken over: a joining subscriber's frontier past it shows it
        // was released where the subscriber had it (WithdrawBelow; seed 65:
        // the rival had multicast it, taken as released from a replica that
        // confirmed it here). A rival's number taken over here (not echoed
        // back) that a replica's state shows released (confirmed to its
        // root) is released: the root-fault sweep, seed 551, a deposed root
        // held its successor's two numbers so while multicasting the later
        // ones, and its subtree skipped them. An echoed one is not: the
        // replica counts what it confirmed to the echoing root as released
        // (seed 596 again).
        const bool taken_over = waiting->second.taken_over && !waiting->second.echoed;
        if (rival_released && (!from_replica || taken_over)) {
          ReleaseNumber(t, waiting);
        } else if (!from_replica) {
          waiting->second.echoed = true;
        }
      } else if (rival_released || m.term > t.term) {
        ++stats_.numbers_withdrawn;
        if (debug) {
          log_->debug("scribe: topic {}: #{}: the rival's publish {} of {} (term {:x}{}) "
                      "replaces waiting publish {} of {} (term {:x}, withdrawn)",
                      t.id.ShortHex(), m.seq, m.request, m.publisher.ShortHex(), m.term,
                      rival_released ? ", released" : "", waiting->second.request,
                      waiting->second.publisher.id.ShortHex(), my_term);
        }
        const UnconfirmedPublish displaced = waiting->second;
        Payload displaced_payload;
        if (had_mine) {  // nothing has stored since the find
          // Out of the byte count with its entry (EraseReplay counts what
          // is left of it: nothing).
          ChargeReplay(t, mine->second.payload.size(), 0);
          displaced_payload = std::move(mine->second.payload);
          mine->second.payload.clear();  // moved from: empty, whatever the library
          EraseReplay(t, mine);
        }
        t.unconfirmed.erase(waiting);
        if (termed && had_mine) {
          MoveIntoDuplicate(t, m, displaced, std::move(displaced_payload));
        }
        if (rival_released) {
          // Its replicas hold the withdrawn message under the number, and
          // would pass it on in their state: the released one replaces it.
          Accept(t, DataMsg{t.id, m.seq, m.payload}, /*forward=*/true);
          QueueReplicate(t, m.seq);
        } else {
          WaitAsTakenOver(t, m);
        }
      } else {
        // Kept: the rival's entry is of a term not above this root's, whose
        // replicas replace the rival's (OnReplicate).
        if (debug) {
          log_->debug("scribe: topic {}: #{}: keeps waiting publish {} of {} (term {:x}), the "
                      "rival gave it publish {} of {} (term {:x})",
                      t.id.ShortHex(), m.seq, waiting->second.request,
                      waiting->second.publisher.id.ShortHex(), my_term, m.request,
                      m.publisher.ShortHex(), m.term);
        }
        continue;
      }
    } else if (!rival_released && !had_mine && t.next != 0 && m.seq >= t.next) {
      // The rival's tentative number, past this root's frontier: it waits
      // for this root's replica peers as one taken over from a replica.
      WaitAsTakenOver(t, m);
    } else {
      const bool fresh = Accept(t, DataMsg{t.id, m.seq, m.payload}, /*forward=*/true);
      if (fresh && termed) QueueReplicate(t, m.seq);
      if (!fresh && !had_mine && r.commit != 0 && m.seq < r.commit) {
        // Released by the rival, behind this root's frontier (skipped at an
        // earlier merge, of a replica's state that lacked it) and not kept
        // here: kept now, with its origin, so that a resend of its publish
        // is acknowledged under its number rather than numbered again (the
        // root-fault sweep, seed 344: subscribers got it twice).
        Store(t, m.seq, m.payload);
      }
      if (had_mine && !same) {
        // Kept: the rival's publish is not known here under this number
        // (its resend is numbered anew, not acknowledged with a number
        // that names another message: the seed-1 soak lost two so).
        if (debug) {
          log_->debug("scribe: topic {}: #{}: keeps its multicast publish {} of {}, the rival "
                      "gave it publish {} of {}",
                      t.id.ShortHex(), m.seq, my_request, my_publisher.ShortHex(), m.request,
                      m.publisher.ShortHex());
        }
        continue;
      }
    }
    RememberOrigin(t, m);
  }
  if (t.unconfirmed.empty()) confirming_.erase(t.id);
  // Numbers the other state has no message for and this node holds back
  // stay waiting (they may be its own, in flight to that replica); their
  // replicas decide. Below the first of them nobody holds a message: skipped.
  if (r.next_seq > t.next_stamp) t.next_stamp = r.next_seq;
  // A term above the rival's, only for the closer of the two roots: the
  // farther one stays below (the replicas that follow the other refuse it)
  // until the closer one's Replicate reaches it and it hands over. Both
  // taking terms above each other's would refuse each other in turn (two
  // roots that do not hear each other, sharing a replica).
  if (r.term != 0 && r.term >= t.term && term_root != Self().id &&
      NodeId::CloserTo(t.id, Self().id, term_root)) {
    t.term = NextTerm(r.term);
    if (debug) log_->debug("scribe: topic {}: takes term {:x}", t.id.ShortHex(), t.term);
  } else if (r.term > t.term && term_root != Self().id) {
    // A closer root numbers under a higher term: this one is deposed.
    t.higher_term = std::max(t.higher_term, r.term);
    t.higher_term_at = Now();
    if (debug) {
      log_->debug("scribe: topic {}: deposed by term {:x} of {}", t.id.ShortHex(), r.term,
                  term_root.ShortHex());
    }
  }
  const uint64_t skip_to =
      t.unconfirmed.empty() ? r.next_seq : std::min(r.next_seq, t.unconfirmed.begin()->first);
  if (skip_to > t.next) SetFrontier(t, skip_to);
}

// A rival's number it may not have released: kept in the replay buffer
// under its term, waiting for this root's replica peers (as one taken over
// from a replica, TakeReplica).
void Scribe::WaitAsTakenOver(TopicState& t, const StoredMessage& m) {
  const size_t kept = t.replay.size();
  KeepReplay(t, m.seq, m.payload, m.term);
  if (t.replay.size() == kept) return;
  while (t.replay.size() > options_.replay_capacity) EraseReplay(t, t.replay.begin());
  if (!t.replay.contains(m.seq)) return;
  t.unconfirmed.emplace(m.seq, UnconfirmedPublish{NodeHandle{m.publisher, {}}, m.request, {},
                                                  Now(), false, /*taken_over=*/true});
  confirming_.insert(t.id);
  QueueReplicate(t, m.seq);
}

// The rival's publish `m` may be waiting here under another number too
// (both roots numbered it): the message `m` displaced takes that number, so
// that neither a publish is numbered twice nor a hole is left.
void Scribe::MoveIntoDuplicate(TopicState& t, const StoredMessage& m,
                               const UnconfirmedPublish& displaced, Payload payload) {
  if (m.request == 0) return;
  const std::optional<uint64_t> origin = t.origins.Find(m.publisher, m.request);
  if (!origin.has_value() || *origin == m.seq) return;
  const uint64_t seq = *origin;
  auto waiting = t.unconfirmed.find(seq);
  if (waiting == t.unconfirmed.end()) return;
  if (LogsDebug()) {
    log_->debug("scribe: topic {}: #{}: numbered here too (publish {} of {}): publish {} of {} "
                "takes it",
                t.id.ShortHex(), seq, m.request, m.publisher.ShortHex(), displaced.request,
                displaced.publisher.id.ShortHex());
  }
  if (auto entry = t.replay.find(seq); entry != t.replay.end()) EraseReplay(t, entry);
  t.unconfirmed.erase(waiting);
  KeepReplay(t, seq, std::move(payload), t.term);
  RememberOrigin(t, StoredMessage{seq, {}, displaced.publisher.id, displaced.request});
  t.unconfirmed.emplace(seq, UnconfirmedPublish{displaced.publisher, displaced.request, {}, Now(),
                                                displaced.ack, displaced.taken_over});
  QueueReplicate(t, seq);
}

// A root that learned of a higher term of a closer root (MergeRivalRoot)
// numbers and releases nothing until it hands over to that root, or until
// lone_root_grace has passed since the last state that showed the term (the
// closer root failed: the replicas that followed it stop refusing this one
// once they lose it, TermRootLives).
bool Scribe::Deposed(const TopicState& t) const {
  return t.higher_term > t.term && Now() - t.higher_term_at < options_.lone_root_grace;
}

// True if the root of the highest term this replica has seen is this node
// or one of its leaf-set neighbours (not declared dead).
bool Scribe::TermRootLives(const ReplicaState& replica) const {
  if (replica.term_root == Self().id) return true;
  const std::vector<NodeHandle> leaf_set = overlay_->LeafSet();
  return std::any_of(leaf_set.begin(), leaf_set.end(),
                     [&](const NodeHandle& h) { return h.id == replica.term_root; });
}

void Scribe::RememberOrigin(TopicState& t, const StoredMessage& m, bool index) {
  if (m.request == 0) return;
  auto entry = FindRecent(t.replay, m.seq);
  if (entry == t.replay.end()) return;
  entry->second.publisher = m.publisher;
  entry->second.request = m.request;
  if (index) t.origins.Set(m.publisher, m.request, m.seq);
}

// The topic's replica set (this node included) is computed again only when
// the leaf set has changed: it was built, sorted and allocated three or
// four times per publish (bench/resp-instructions, docs/benchmarks.md).
const std::vector<NodeHandle>& Scribe::ReplicaSetOf(const TopicState& t) const {
  const uint64_t version = overlay_->LeafSetVersion();
  if (t.replica_set_version != version) {
    t.replica_set = overlay_->ReplicaSet(t.id, std::max(options_.replicas, 0) + 1);
    t.replica_set_version = version;
  }
  return t.replica_set;
}

// A copy: callers send while they walk it, and a send may change the leaf
// set (and so the cache) under them. Inline: a std::vector grown by
// push_back allocated twice per call (two peers), and the root calls it
// twice per publish (FlushReplicates, ReleaseConfirmed): 4.3 of its 43
// allocations per message (docs/benchmarks.md, session 23).
Scribe::ReplicaPeerList Scribe::ReplicaPeers(const TopicState& t) const {
  const NodeId self = Self().id;
  ReplicaPeerList peers;
  for (const NodeHandle& h : ReplicaSetOf(t)) {
    if (h.id != self) peers.push_back(h);
  }
  return peers;
}

bool Scribe::HasReplicaPeers(const TopicState& t) const {
  const NodeId self = Self().id;
  const std::vector<NodeHandle>& set = ReplicaSetOf(t);
  return std::any_of(set.begin(), set.end(),
                     [&](const NodeHandle& h) { return h.id != self; });
}

// True if every node that could take the topic over from this root has
// promised not to number it for now. With no such node, true only if this
// node never had a neighbour or lost its last one lone_root_grace ago: a
// root cut off from every other node sees its replica set empty (each
// declared dead) while a successor numbers the topic on the other side
// (docs/chaos.md, "A root cut off for longer than failure detection ...").
bool Scribe::HoldsLease(const TopicState& t) const {
  if (options_.root_lease <= absl::ZeroDuration() || options_.replicas <= 0) {
    return true;
  }
  if (Deposed(t)) return false;
  if (!HasReplicaPeers(t)) return AloneForGood();
  if (!ReplicaPeersCoverLosses(t)) return false;
  const NodeId self = Self().id;
  for (const NodeHandle& h : ReplicaSetOf(t)) {
    if (h.id == self) continue;
    auto it = t.leases.find(h.id);
    if (it == t.leases.end() || it->second <= Now()) return false;
  }
  return true;
}

// True unless this node lost, less than lone_root_grace ago, the
// `replicas + 1` nodes nearest the topic among its replica peers and those
// lost neighbours, i.e. none of its replica peers is among the nodes that
// formed a successor's replica set (the successor and its `replicas`
// peers; docs/scribe.md, "A root back in part after a cut"). A root cut off
// past failure detection is re-admitted by each node on that node's own
// answer to its probe, so after the heal its leaf set may refill from
// farther nodes first, while the successor's side, which numbered the topic
// meanwhile, is still unheard: those farther nodes, a full replica set,
// would grant leases and confirm numbers the successor gave to other
// publishes. One peer of the successor's set suffices: a number is
// released only once every replica peer holds it, and that peer refuses it
// (it holds another message under it) or sends its state (this root is
// behind it), which withdraws it.
bool Scribe::ReplicaPeersCoverLosses(const TopicState& t) const {
  if (lost_neighbours_.empty()) return true;
  const ReplicaPeerList peers = ReplicaPeers(t);
  const auto is_peer = [&](const NodeId& id) {
    return std::any_of(peers.begin(), peers.end(), [&](const NodeHandle& h) { return h.id == id; });
  };
  std::vector<NodeId> near;
  for (const NodeHandle& h : peers) near.push_back(h.id);
  const size_t own = near.size();
  for (const auto& [id, at] : lost_neighbours_) {
    if (Now() - at < options_.lone_root_grace && id != Self().id && !is_peer(id)) {
      near.push_back(id);
    }
  }
  if (near.size() == own) return true;
  const size_t k = std::min(near.size(), static_cast<size_t>(options_.replicas) + 1);
  std::partial_sort(near.begin(), near.begin() + static_cast<std::ptrdiff_t>(k), near.end(),
                    [&](const NodeId& a, const NodeId& b) { return NodeId::CloserTo(t.id, a, b); });
  return std::any_of(near.begin(), near.begin() + static_cast<std::ptrdiff_t>(k), is_peer);
}

// A node with no replica peer numbers alone only if it never had a
// neighbour, or lost its last one lone_root_grace ago.
bool Scribe::AloneForGood() const {
  return !had_neighbour_ || Now() - last_neighbour_loss_ >= options_.lone_root_grace;
}

// Renews the leases now, unless that was done within a tick.
void Scribe::AskLease(TopicState& t) {
  if (Now() - t.lease_asked < options_.tick_interval) return;
  Replicate(t);
}

void Scribe::OnReplicaAck(const NodeHandle& from, const ReplicaAckMsg& ack) {
  TopicState* t = Find(ack.topic);
  if (t == nullptr || !t->root) return;
  // Only the replica set's confirmations and leases count (ReleaseConfirmed,
  // HoldsLease); one from another node (a former member, or a peer naming
  // ever new ids) would only grow the topic's lease table and each waiting
  // message's holders.
  const std::vector<NodeHandle>& set = ReplicaSetOf(*t);
  if (from.id == Self().id ||
      std::none_of(set.begin(), set.end(), [&](const NodeHandle& h) { return h.id == from.id; })) {
    ++stats_.replica_acks_ignored;
    return;
  }
  if (ack.last != 0 && !t->unconfirmed.empty()) {
    for (auto it = t->unconfirmed.lower_bound(ack.first);
         it != t->unconfirmed.end() && it->first <= ack.last; ++it) {
      auto& holders = it->second.holders;
      if (std::find(holders.begin(), holders.end(), from.id) == holders.end()) {
        if (holders.empty()) holders.reserve(set.size());  // past the inline ones: one allocation
        holders.push_back(from.id);
      }
    }
    ReleaseConfirmed(*t);
  }
  if (ack.lease == 0) return;
  // Counted from when the lease was asked for, by this node's clock: it
  // ends before the replica's promise does.
  const absl::Time asked =
      absl::FromUnixNanos(static_cast<int64_t>(ack.lease - 1));
  absl::Time& until = t->leases[from.id];
  until = std::max(until, asked + options_.root_lease);
  if (!t->held_publishes.empty() && holding_.contains(t->id)) ReleaseHolds();
}

// On becoming root: continue the numbering from the replicated state, and
// deliver and pass down what it holds that this node had not seen.
void Scribe::TakeReplica(TopicState& t) {
  uint64_t stamp = std::max(t.next_stamp, t.SeenEnd());
  // The replica's commit index: below it, its root released. Without a
  // replica, all this node holds came to it multicast.
  uint64_t commit = stamp;
  auto it = replicas_.find(t.id);
  if (LogsDebug()) {
    log_->debug("scribe: topic {}: takes {}: next number {} here, seen up to {}; replica: {}",
                t.id.ShortHex(), it == replicas_.end() ? "no replica" : "its replica",
                t.next_stamp, t.SeenEnd(),
                it == replicas_.end()
                    ? std::string("-")
                    : absl::StrCat("next number ", it->second.next_stamp, ", commit index ",
                                   it->second.commit, ", ", it->second.messages.size(),
                                   " messages, ",
                                   it->second.granted.size(), " leases granted"));
  }
  // A term above every one it knows: its own last one, and the highest its
  // replica saw (docs/scribe.md, "Entry terms"). Unless a closer root showed
  // it a higher term lately (Deposed): it keeps its term, below that one,
  // rather than out-bid a root it may only not hear for now (a heal whose
  // directions recover at different times).
  const bool deposed = Deposed(t);
  uint64_t known_term = t.term;
  if (it != replicas_.end()) {
    known_term = std::max(known_term, it->second.term);
    stamp = std::max(stamp, it->second.next_stamp);
    commit = it->second.commit;
    for (const auto& [seq, m] : it->second.messages) {
      if (!t.replay.contains(seq)) {
        Store(t, seq, m.payload, m.term);
      }
      RememberOrigin(t, m);
    }
    // The root it granted a lease may still be numbering (paused, or cut
    // off from us but not from its publishers) until the lease runs out.
    for (const auto& [root, until] : it->second.granted) {
      if (until <= Now()) continue;
      t.hold_until = std::max(t.hold_until, until);
      holding_.insert(t.id);
    }
    stats_.replay_bytes -= it->second.bytes;
    replicas_.erase(it);
  }
  t.next_stamp = std::max<uint64_t>(stamp, 1);
  if (!deposed || t.term == 0) t.term = NextTerm(known_term);
  commit = std::min(commit, t.next_stamp);
  // A node with no frontier (no subscription, not in the tree) starts at
  // the commit index. It used to start at the next number, so that it
  // counted all the replica held as released, and acknowledged a resend of
  // a publish the cut root had numbered and never released under that
  // number, while the other side's root had released another message
  // under it (the root-fault sweep, seed 152).
  if (t.next == 0) {
    t.next = commit != 0 || t.replay.empty() ? commit : t.replay.begin()->first;
    t.next = std::max<uint64_t>(t.next, 1);
  }
  // What it holds from the commit index on need not have been released by
  // the root it came from: that root may have numbered it on the small
  // side of a partition, holding it back for a full replica set, while the
  // other side's root released other messages under the same numbers (the
  // root-fault sweep, seed 133: docs/scribe.md, "The root-fault sweep").
  // It is tentative: it waits for this root's replica peers like a publish
  // numbered here: one that holds another message under a number refuses
  // it (or replaces it with the released one: OnReplicate), and the
  // rival's state, when it arrives, withdraws it (MergeRivalRoot). Numbers
  // nobody kept are skipped once the ones before them are released.
  // It waits before anything is delivered below: a subscriber's handler
  // here that publishes is numbered at once (root_lease 0), and the byte
  // bound keeps only the waiting numbers (TrimReplayBytes).
  for (auto r = t.replay.lower_bound(std::max(t.next, commit)); r != t.replay.end(); ++r) {
    if (t.unconfirmed.contains(r->first)) continue;
    t.unconfirmed.emplace(r->first, UnconfirmedPublish{NodeHandle{r->second.publisher, {}},
                                                       r->second.request, {}, Now(), false,
                                                       /*taken_over=*/true});
    confirming_.insert(t.id);
  }
  // What the replica holds below the commit index its root released: it is
  // multicast at once, from copies taken first: a handler's publishes,
  // stored meanwhile, may push the next ones out of the replay buffer.
  std::vector<std::pair<uint64_t, Payload>> released;  // shares the blocks: no copy
  for (auto r = t.replay.lower_bound(t.next); r != t.replay.end() && r->first < commit; ++r) {
    released.emplace_back(r->first, r->second.payload);
  }
  for (auto& [seq, payload] : released) {
    Accept(t, DataMsg{t.id, seq, std::move(payload)}, /*forward=*/true);
  }
  // What nobody kept is lost; never a number that waits for the replicas
  // (taken over above, or a handler's publish numbered meanwhile: skipped
  // here, it was taken for a duplicate once they held it).
  uint64_t skip_to = t.next_stamp;
  if (!t.unconfirmed.empty()) skip_to = std::min(skip_to, t.unconfirmed.begin()->first);
  SetFrontier(t, skip_to);
}

// A root that hands the role over keeps its numbers (released, and those
// waiting, as tentative) as a replica of the topic, as if the new root had
// replicated them here. Before, it kept none:
// a rival root that numbered the same numbers to other messages (the other
// side of a partition, at the heal) found it an empty replica, which
// confirmed them, and released them against a full replica set although
// this node had multicast other messages under them (the root-fault sweep,
// seed 133: docs/scribe.md, "The root-fault sweep").
void Scribe::KeepAsReplica(const TopicState& t) {
  if (options_.replicas <= 0) return;
  auto it = replicas_.find(t.id);
  if (it == replicas_.end()) {
    if (replicas_.size() >= options_.max_topics) return;
    it = AddReplica(t.id);
  }
  ReplicaState& replica = it->second;
  // Its commit index is up to what it released; a root behind the replica
  // is sent the state (SendReplica), the waiting numbers included.
  replica.next_stamp = std::max(replica.next_stamp, t.next_stamp);
  replica.commit = std::max(replica.commit, CommitIndex(t));
  if (t.term > replica.term) {
    replica.term = t.term;
    replica.term_root = Self().id;
  }
  replica.refreshed = Now();
  // What it released, and what still waited for the replicas: that went to
  // the new root, which decides it, but is kept here too, beyond the
  // commit index (tentative: a released message replaces it, OnReplicate).
  // This node may take the topic back from this replica before its
  // hand-over reaches the new root (a link that heals late), and would
  // skip those numbers: the new root multicasts them when the hand-over
  // arrives, and this node's subtree, past them, never got them (the
  // lagged-heal sweep; docs/scribe.md, "A root back in part after a cut").
  for (const auto& [seq, e] : t.replay) {
    if (replica.messages
            .try_emplace(seq, StoredMessage{seq, e.payload, e.publisher, e.request, e.term})
            .second) {
      ChargeReplica(replica, 0, e.payload.size());
    }
  }
  while (replica.messages.size() > options_.replay_capacity) EraseReplicaOldest(replica);
}

}  // namespace peter::pubsub

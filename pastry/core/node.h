// The Pastry node core: one overlay member's state and protocol, with no I/O.
//
// The node is driven by two inputs, HandleMessage() for a decoded message
// from a peer and Tick() for the passage of time, and acts through the
// Transport and Clock of its Environment. Its owner (the Asio runtime or the
// simulator) calls Tick() at or after NextDeadline(), and again whenever the
// deadline may have moved (after any call into the node).
//
// Not thread-safe: all calls, and all application upcalls, happen on one
// thread.
#ifndef PETER_PASTRY_CORE_NODE_H_
#define PETER_PASTRY_CORE_NODE_H_

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pastry/core/environment.h"
#include "pastry/core/leaf_set.h"
#include "pastry/core/log_limit.h"
#include "pastry/core/messages.h"
#include "pastry/core/random.h"
#include "pastry/core/routing_table.h"
#include "pastry/core/scheduler.h"
#include "pastry/core/stats.h"
#include "peter/pastry/application.h"
#include "peter/pastry/options.h"

namespace peter::pastry {

class Node {
 public:
  // REQUIRES: options valid (see Options); env.transport and env.clock set.
  Node(const NodeHandle& self, const Options& options, Environment env);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Starts a new ring with this node as its only member; active at once.
  void StartRing();
  // Joins an existing ring through `bootstraps` (tried in turn on timeout).
  // The node becomes active once its leaf-set neighbours have confirmed it.
  // REQUIRES: !bootstraps.empty().
  void Join(std::vector<Endpoint> bootstraps);
  // Tells the leaf set that this node is leaving and stops acting: messages
  // and ticks are ignored afterwards.
  void Leave();

  // Handles one message from a peer.
  void HandleMessage(const Envelope& envelope);
  // Runs the work due at the clock's current time, at most `max_jobs` jobs
  // of it (Scheduler::RunDue): what is left stays due (NextDeadline()).
  void Tick(size_t max_jobs = std::numeric_limits<size_t>::max());
  // When Tick() should next run; InfiniteFuture() if nothing is scheduled.
  absl::Time NextDeadline() const { return scheduler_.NextDeadline(); }

  // Registers an application; messages carrying `app` reach it. The returned
  // Overlay must not outlive the node, and `application` must outlive both.
  // REQUIRES: app not yet registered. Ids below kFirstUserAppId are Peter's.
  std::unique_ptr<Overlay> RegisterApplication(AppId app, Application* application);

  struct LookupResult {
    NodeHandle root;
    int hops = 0;
    std::vector<NodeId> path;  // from this node to the root, both included
  };
  using LookupCallback = std::function<void(absl::StatusOr<LookupResult>)>;
  // Routes a lookup for `key` through the overlay; the root answers with its
  // handle and the path taken. `done` runs on the node's thread, with
  // DeadlineExceeded if no answer arrives within `timeout`.
  void Lookup(const NodeId& key, absl::Duration timeout, LookupCallback done);

  const NodeHandle& self() const { return self_; }
  bool active() const { return state_ == State::kActive; }
  bool departed() const { return state_ == State::kLeft; }
  const LeafSet& leaf_set() const { return leaf_set_; }
  const RoutingTable& routing_table() const { return table_; }
  const NodeStats& stats() const { return stats_; }
  // Sizes of the tables peers can grow (Options::max_tracked_peers,
  // max_dead_nodes).
  size_t tracked_peer_count() const { return peers_.size(); }
  size_t dead_node_count() const { return dead_.size(); }
  // Hop deadlines queued for `peer`, acknowledged or not
  // (Options::max_hops_in_flight_per_peer bounds the others).
  size_t queued_hop_deadlines(const NodeId& peer) const {
    auto it = hop_watches_.find(peer);
    return it == hop_watches_.end() ? 0 : it->second.deadlines.size();
  }
  const Options& options() const { return options_; }
  // Turns routing-table repair on or off from now on (see Options).
  void set_routing_table_repair(bool on) { options_.routing_table_repair = on; }

 private:
  class AppOverlay;
  enum class State { kIdle, kJoining, kActive, kLeft };

  // What we know of a peer we probe or suspect.
  struct Peer {
    Endpoint endpoint;
    // The run of the node as it told us itself: the incarnation of its own
    // messages (0: not heard from it yet, or unknown). Never taken from a
    // third node's copy of its handle (see OfferCandidate). Probes and their
    // retries are about this run only: a message from a later run ends the
    // chain (NoteAlive).
    uint64_t incarnation = 0;
    absl::Time last_probe_reply = absl::InfinitePast();
    int32_t rtt_us = -1;
    uint64_t known_leaf_version = 0;  // of its leaf set, from its replies
    uint64_t probe_nonce = 0;         // 0: no probe outstanding
    absl::Time probe_sent;
    bool probe_wants_leaf_set = false;
    int probe_failures = 0;
    Scheduler::JobId probe_timer = 0;
    bool suspected = false;  // an ack timed out; avoided until it answers
  };
  // A routed message sent to `next` and not yet acknowledged. Its deadline
  // is kept in the HopWatch of `next`.
  struct PendingHop {
    RouteMsg msg;
    NodeHandle next;
    std::vector<NodeId> tried;
    int attempts = 0;
    absl::Time sent;
  };
  // The deadlines of the hops sent to one peer, earliest first, and one
  // scheduler job at the earliest deadline of a hop still unacknowledged
  // (not a job per hop). An acknowledgement erases the hop from pending_
  // and its entry here once it is at the front, or once the acknowledged
  // entries are as many as the live ones (DropAcknowledged). Invariant: `live`
  // entries are in pending_, at most max_hops_in_flight_per_peer, and the
  // front is one of them; a watch with none is erased.
  struct HopDeadline {
    absl::Time at;
    uint64_t id;
  };
  struct HopWatch {
    std::deque<HopDeadline> deadlines;
    size_t live = 0;
    Scheduler::JobId job = 0;
    absl::Time job_at = absl::InfiniteFuture();  // InfiniteFuture: no job
  };
  // Route ids received from one peer in the current batch of work, to be
  // acknowledged together (FlushAcks).
  struct AckBatch {
    NodeId peer;
    Endpoint endpoint;
    std::vector<uint64_t> ids;
  };
  struct PendingLookup {
    LookupCallback done;
    Scheduler::JobId timer = 0;
  };
  struct Buffered {
    RouteMsg msg;
    NodeHandle previous_hop;
  };

  // node.cc: plumbing, liveness bookkeeping, dispatch.
  absl::Time Now() const { return env_.clock->Now(); }
  void Send(const Endpoint& to, MessageBody body);
  void NoteAlive(const NodeHandle& node);
  void OfferCandidate(const NodeHandle& node);
  void ProbeHearsay(const NodeHandle& node);
  // One probe outside any chain of probes (its nonce matches no Peer): an
  // answer counts only as the node's own message (NoteAlive), no answer
  // changes nothing.
  void SendLoneProbe(const Endpoint& to);
  bool MayTrack(const NodeId& id);
  // Logs that a bound was reached (at most one a second; see LogLimit).
  void WarnBound(const std::string& what);
  // `first_hand`: `node` sent the message we are handling (see
  // RoutingTable::Entry::first_hand).
  void ConsiderForTable(const NodeHandle& node, int32_t rtt_us, bool first_hand);
  void ChangeLeafSet(const std::function<void()>& mutate);
  // `told`: the incarnation the node itself gave with its Leave (0: none).
  void MarkDead(const NodeId& id, bool graceful, uint64_t told = 0);
  bool Unusable(const NodeId& id) const;
  // The latest run of `id` we know of first-hand, from the node's own
  // messages (0: none known): a message from an earlier run is stale.
  uint64_t KnownIncarnation(const NodeId& id) const;
  // True if `node` was declared dead (or left) and is no later run than
  // the one declared dead.
  bool KnownDead(const NodeHandle& node) const;
  void UpdateRtt(const NodeId& id, absl::Duration sample);
  int32_t RttOf(const NodeId& id) const;
  absl::Duration TimeoutFor(const NodeId& id, absl::Duration floor) const;
  void ForgetPeerIfUnused(const NodeId& id);
  void ReleaseUnusedMemory();
  // `version`: the protocol version of the envelope that carried `body`.
  void Dispatch(const NodeHandle& from, const MessageBody& body, uint16_t version);
  void OnLeave(const NodeHandle& from);
  void SchedulePeriodic(absl::Duration interval, void (Node::*job)());
  absl::Duration Jittered(absl::Duration d);

  // node_route.cc: routing, per-hop acknowledgements, delivery, lookups.
  void Originate(RouteMsg msg, std::optional<NodeHandle> hint);
  void OnRoute(const NodeHandle& from, RouteMsg msg, uint16_t version);
  void ProcessRoute(RouteMsg msg, const NodeHandle& previous_hop);
  void DeliverLocally(RouteMsg msg, const NodeHandle& previous_hop);
  void DeliverToApp(RouteMsg msg, const NodeHandle& previous_hop);
  bool ForwardUpcall(RouteMsg& msg, const NodeHandle& previous_hop, NodeHandle& next);
  void SendHop(RouteMsg msg, const NodeHandle& next, std::vector<NodeId> tried,
               int attempts);
  void Reroute(PendingHop hop);
  void OnLookupReply(const NodeHandle& from, const LookupReply& reply);
  void CompleteLookup(uint64_t request_id, absl::StatusOr<LookupResult> result);
  void AppRoute(AppId app, std::optional<NodeId> key, std::string payload,
                std::optional<NodeHandle> hint);

  // node_ack.cc: per-hop acknowledgements, batched both ways.
  void Acknowledge(const NodeHandle& from, uint64_t id, uint16_t version);
  void FlushAcks();
  void OnRouteAck(const NodeHandle& from, const RouteAck& ack);
  void WatchHop(const NodeId& next, uint64_t id, absl::Time deadline);
  void DropAcknowledged(HopWatch& watch);
  void ArmHopWatch(const NodeId& peer, HopWatch& watch);
  void OnHopWatch(const NodeId& peer);
  // Suspects the hop's next node and reroutes the message; false if the hop
  // is no longer pending.
  bool GiveUpHop(uint64_t id);
  // At max_pending_acks: the hop with the earliest deadline other than
  // `keep` (just sent) times out now.
  void GiveUpEarliestHop(uint64_t keep);

  // node_join.cc: joining, consistent activation, leaving.
  void SendJoinRequest();
  void OnJoinTimeout();
  void OnJoinReply(const NodeHandle& from, const JoinReply& reply);
  void AddJoinRows(RouteMsg& msg) const;
  void MaybeBecomeActive(bool without_reply = false);
  void BecomeActive();
  void BufferUntilActive(RouteMsg msg, const NodeHandle& previous_hop);

  // node_maintenance.cc: probes, failure detection, repair.
  void SendProbe(const NodeHandle& to, bool want_leaf_set);
  void OnProbe(const NodeHandle& from, const Probe& probe);
  void OnProbeReply(const NodeHandle& from, const ProbeReply& reply);
  void OnProbeTimeout(const NodeId& id, uint64_t nonce);
  void Suspect(const NodeHandle& node);
  void LeafSetMaintenance();
  void ProbeDeclaredDead();
  void ProbeMissingFrom(const NodeId& from, const std::vector<NodeHandle>& reported);
  void TableMaintenance();
  void RepairLeafSet();
  void RepairTableSlot(int row);
  void OnRowRequest(const NodeHandle& from, const RowRequest& request);
  void OnRowReply(const NodeHandle& from, const RowReply& reply);

  NodeHandle self_;
  Options options_;
  Environment env_;
  SplitMix64 rng_;
  State state_ = State::kIdle;
  LeafSet leaf_set_;
  RoutingTable table_;
  Scheduler scheduler_;
  NodeStats stats_;
  uint64_t next_id_ = 1;

  absl::flat_hash_map<AppId, Application*> apps_;
  absl::flat_hash_map<NodeId, Peer> peers_;
  // Peers declared dead (or departed), remembered for dead_node_memory and
  // ignored second-hand meanwhile: only the run declared dead, a later run
  // of the same id is not.
  struct DeadRecord {
    absl::Time at;
    // The run declared dead, as it told us itself; 0: unknown (it never
    // answered us, or predates incarnations), and every run is ignored.
    uint64_t incarnation = 0;
    // Where it was (port 0: unknown), and whether it left by itself (a
    // departed node is not probed again; a later run contacts us itself).
    Endpoint endpoint;
    bool graceful = false;
    // Revival probes (ProbeDeclaredDead): when the next is due, and the gap
    // before the one after it.
    absl::Time next_probe;
    absl::Duration probe_gap;
  };
  absl::flat_hash_map<NodeId, DeadRecord> dead_;
  absl::flat_hash_map<uint64_t, PendingHop> pending_;
  absl::flat_hash_map<NodeId, HopWatch> hop_watches_;  // peers with hops in pending_
  // True while GiveUpEarliestHop reroutes: the copy goes untracked.
  bool rerouting_at_pending_bound_ = false;
  // In the order the peers first sent in this batch (a vector: the order of
  // the acknowledgements must not depend on a hash seed).
  std::vector<AckBatch> acks_;
  bool ack_flush_scheduled_ = false;
  absl::flat_hash_map<uint64_t, PendingLookup> lookups_;
  int pns_budget_ = 0;
  // Round trips measured by probes, kept after the peer is forgotten so that
  // a candidate offered again (row replies repeat themselves) is compared
  // without a new probe. Direct-mapped by id; cleared every
  // kRttCacheRounds rounds of table maintenance, so round trips that change
  // are measured again.
  struct CachedRtt {
    uint64_t tag = 0;  // the id's high word; 0: empty
    int32_t rtt_us = -1;
  };
  static constexpr int kRttCacheRounds = 15;
  std::array<CachedRtt, 32> rtt_cache_{};
  int32_t CachedRttOf(const NodeId& id) const;
  void CacheRtt(const NodeId& id, int32_t rtt_us);

  // Joining.
  std::vector<Endpoint> bootstraps_;
  size_t bootstrap_index_ = 0;
  uint64_t join_attempt_ = 0;
  bool join_reply_received_ = false;  // a root has answered our join
  Scheduler::JobId join_timer_ = 0;
  absl::flat_hash_set<NodeId> confirmed_;  // leaf members that know us
  absl::flat_hash_set<NodeId> awaiting_;   // leaf candidates being probed
  // The L nearest nodes heard of while joining (members and candidates
  // probed); a candidate outside it is not probed (see OfferCandidate).
  LeafSet join_candidates_;
  std::vector<Buffered> join_buffer_;
  // Warnings of bounds reached, which peers can trigger (one per second).
  LogLimit bound_warn_;
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_CORE_NODE_H_

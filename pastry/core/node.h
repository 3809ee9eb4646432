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
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pastry/core/environment.h"
#include "pastry/core/leaf_set.h"
#include "pastry/core/messages.h"
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
  // Runs the work due at the clock's current time.
  void Tick();
  // When Tick() should next run; InfiniteFuture() if nothing is scheduled.
  absl::Time NextDeadline() const { return scheduler_.NextDeadline(); }

  // Registers an application; messages carrying `app` reach it. The returned
  // Overlay must not outlive the node. REQUIRES: app not yet registered,
  // app >= kFirstUserAppId or registered by Peter itself.
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
  const Options& options() const { return options_; }

 private:
  class AppOverlay;
  enum class State { kIdle, kJoining, kActive, kLeft };

  // PRIVATE-MEMBERS-BEGIN (owned by the core author; being filled in)
  NodeHandle self_;
  Options options_;
  Environment env_;
  State state_ = State::kIdle;
  LeafSet leaf_set_;
  RoutingTable table_;
  Scheduler scheduler_;
  NodeStats stats_;
  // PRIVATE-MEMBERS-END
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_CORE_NODE_H_

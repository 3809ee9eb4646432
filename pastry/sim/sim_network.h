// Pastry nodes on a simulated network: the harness for simulation tests and
// `peter sim`. Owns a Network (clock, event queue, topology, transports),
// one pastry::Node per host, and the ground truth (the live ring) that
// tests compare the nodes' state against.
//
// Calls into a node from outside the event loop (StartRing, Join, Lookup,
// or node(i) followed by Reschedule(i), or Call) must be followed by a
// reschedule of the node's wake-up; the helpers here do it.
//
// Not thread-safe.
#ifndef PETER_PASTRY_SIM_SIM_NETWORK_H_
#define PETER_PASTRY_SIM_SIM_NETWORK_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "pastry/core/node.h"
#include "pastry/sim/live_ring.h"
#include "pastry/sim/network.h"
#include "pastry/sim/topology.h"
#include "peter/pastry/node_id.h"
#include "peter/pastry/options.h"

namespace peter::pastry::sim {

class SimNetwork {
 public:
  using Config = NetworkConfig;

  explicit SimNetwork(Config config,
                      std::unique_ptr<Topology> topology = nullptr);
  ~SimNetwork();

  // Creates a node with `id` at index size() and returns that index. The node
  // is idle until StartRing or Join. REQUIRES: id not held by a live node.
  int AddNode(const NodeId& id, const Options& options);
  int size() const { return net_.size(); }
  bool alive(int i) const { return net_.alive(i); }
  // REQUIRES: alive(i).
  Node& node(int i);
  const Node& node(int i) const;
  // The live node's own handle (with its incarnation); a crashed one's id
  // and endpoint.
  NodeHandle handle(int i) const {
    return alive(i) ? node(i).self() : NodeHandle{ids_[i], Network::EndpointOf(i)};
  }
  const NodeId& id(int i) const { return ids_[i]; }
  int IndexOf(const Endpoint& endpoint) const { return net_.IndexOf(endpoint); }

  // Silent failure (see Network::Crash); the node leaves the ground truth.
  void Crash(int i);
  // A new Node object with the same id and endpoint; idle until StartRing
  // or Join. REQUIRES: !alive(i); no live node holds its id.
  void Restart(int i, const Options& options);

  // Calls into node i, then reschedules its wake-up.
  void Call(int i, absl::FunctionRef<void(Node&)> fn);
  void StartRing(int i);
  void Join(int i, int bootstrap);
  // Graceful leave; the node leaves the ground truth at once.
  void Leave(int i);
  void Lookup(int i, const NodeId& key, absl::Duration timeout,
              Node::LookupCallback done);
  // After calling into node(i) directly.
  void Reschedule(int i) { net_.Reschedule(i); }

  void Schedule(absl::Time at, std::function<void()> fn) {
    net_.Schedule(at, std::move(fn));
  }
  void RunFor(absl::Duration d) { net_.RunFor(d); }
  void RunUntil(absl::Time t) { net_.RunUntil(t); }
  bool RunUntil(const std::function<bool()>& pred, absl::Duration max,
                absl::Duration check_every) {
    return net_.RunUntil(pred, max, check_every);
  }
  absl::Time Now() const { return net_.Now(); }
  absl::Duration Delay(int a, int b) const { return net_.Delay(a, b); }
  const NetworkStats& stats() const { return net_.stats(); }
  Network& network() { return net_; }
  const Network& network() const { return net_; }

  // Ground truth over the ring members: live nodes that have not left
  // (joining nodes included).
  std::vector<int> LiveIndices() const;
  int live_count() const { return ring_.size(); }
  // The member numerically closest to `key`; -1 if there is none.
  int ClosestLiveNode(const NodeId& key) const;
  // The leaf set node i should have (see ExpectedLeaves).
  ExpectedLeaves ExpectedLeafSet(int i, int leaf_set_size) const;
  const LiveRing& ring() const { return ring_; }

 private:
  class NodeHost;

  // True if node i (not another node with its id) is a ring member.
  bool InRing(int i) const;
  std::unique_ptr<SimHost> MakeHost(const HostContext& ctx, const NodeId& id,
                                    const Options& options);

  Network net_;
  std::vector<NodeId> ids_;  // by index, kept after a crash
  LiveRing ring_;
};

}  // namespace peter::pastry::sim

#endif  // PETER_PASTRY_SIM_SIM_NETWORK_H_

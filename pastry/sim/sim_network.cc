#include "pastry/sim/sim_network.h"

#include <cassert>
#include <utility>

namespace peter::pastry::sim {

// A pastry::Node as the network sees it.
class SimNetwork::NodeHost final : public SimHost {
 public:
  NodeHost(const NodeHandle& self, const Options& options, Environment env)
      : node_(self, options, std::move(env)) {}

  void HandleMessage(const Envelope& envelope) override {
    node_.HandleMessage(envelope);
  }
  void Tick() override { node_.Tick(); }
  absl::Time NextDeadline() const override { return node_.NextDeadline(); }
  Node& node() { return node_; }
  const Node& node() const { return node_; }

 private:
  Node node_;
};

SimNetwork::SimNetwork(Config config, std::unique_ptr<Topology> topology)
    : net_(std::move(config), std::move(topology)) {}

SimNetwork::~SimNetwork() = default;

std::unique_ptr<SimHost> SimNetwork::MakeHost(const HostContext& ctx,
                                              const NodeId& id,
                                              const Options& options) {
  return std::make_unique<NodeHost>(NodeHandle{id, ctx.endpoint, ctx.incarnation}, options,
                                    ctx.env);
}

int SimNetwork::AddNode(const NodeId& id, const Options& options) {
  int i = net_.AddHost([&](const HostContext& ctx) {
    return MakeHost(ctx, id, options);
  });
  ids_.push_back(id);
  bool inserted = ring_.Insert(id, i);
  assert(inserted && "AddNode: id already held by a live node");
  (void)inserted;
  return i;
}

Node& SimNetwork::node(int i) {
  return static_cast<NodeHost&>(net_.host(i)).node();
}

const Node& SimNetwork::node(int i) const {
  return static_cast<const NodeHost&>(net_.host(i)).node();
}

bool SimNetwork::InRing(int i) const {
  auto it = ring_.members().find(ids_[i]);
  return it != ring_.members().end() && it->second == i;
}

void SimNetwork::Crash(int i) {
  if (!net_.alive(i)) return;
  if (InRing(i)) ring_.Erase(ids_[i]);
  net_.Crash(i);
}

void SimNetwork::Restart(int i, const Options& options) {
  net_.Restart(i, [&](const HostContext& ctx) {
    return MakeHost(ctx, ids_[i], options);
  });
  bool inserted = ring_.Insert(ids_[i], i);
  assert(inserted && "Restart: id already held by a live node");
  (void)inserted;
}

void SimNetwork::Call(int i, absl::FunctionRef<void(Node&)> fn) {
  fn(node(i));
  net_.Reschedule(i);
}

void SimNetwork::StartRing(int i) {
  Call(i, [](Node& n) { n.StartRing(); });
}

void SimNetwork::Join(int i, int bootstrap) {
  Endpoint via = Network::EndpointOf(bootstrap);
  Call(i, [&](Node& n) { n.Join({via}); });
}

void SimNetwork::Leave(int i) {
  if (InRing(i)) ring_.Erase(ids_[i]);
  Call(i, [](Node& n) { n.Leave(); });
}

void SimNetwork::Lookup(int i, const NodeId& key, absl::Duration timeout,
                        Node::LookupCallback done) {
  Call(i, [&](Node& n) { n.Lookup(key, timeout, std::move(done)); });
}

std::vector<int> SimNetwork::LiveIndices() const {
  std::vector<int> out;
  out.reserve(ring_.size());
  for (int i = 0; i < size(); ++i) {
    if (net_.alive(i) && InRing(i)) out.push_back(i);
  }
  return out;
}

int SimNetwork::ClosestLiveNode(const NodeId& key) const {
  return ring_.Closest(key).value_or(-1);
}

ExpectedLeaves SimNetwork::ExpectedLeafSet(int i, int leaf_set_size) const {
  return ring_.LeafSet(ids_[i], leaf_set_size);
}

}  // namespace peter::pastry::sim

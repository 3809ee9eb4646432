// A stand-in for pastry::Node in tests of the simulator's machinery: it
// records what reaches it, sends what the test tells it to, and keeps a list
// of timer deadlines.
#ifndef PETER_TESTS_PASTRY_SIM_FAKE_HOST_H_
#define PETER_TESTS_PASTRY_SIM_FAKE_HOST_H_

#include <algorithm>
#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "pastry/sim/network.h"

namespace peter::pastry::sim {

class FakeHost final : public SimHost {
 public:
  struct Received {
    absl::Time at;
    int from;  // sender index
    uint64_t nonce;
  };

  explicit FakeHost(const HostContext& ctx) : ctx_(ctx) {}

  // Sends a Probe carrying `nonce` to host `to`.
  void Send(int to, uint64_t nonce) {
    Envelope e;
    e.sender = NodeHandle{NodeId(0, ctx_.index), ctx_.endpoint};
    e.body = Probe{.nonce = nonce};
    ctx_.env.transport->Send(Network::EndpointOf(to), e);
  }

  void HandleMessage(const Envelope& envelope) override {
    int from = static_cast<int>(envelope.sender.id.lo());
    uint64_t nonce = std::get<Probe>(envelope.body).nonce;
    received.push_back({ctx_.env.clock->Now(), from, nonce});
    if (on_message) on_message(*this, received.back());
  }
  void Tick() override {
    absl::Time now = ctx_.env.clock->Now();
    ticks.push_back(now);
    while (!deadlines.empty() && *deadlines.begin() <= now) {
      deadlines.erase(deadlines.begin());
    }
    if (on_tick) on_tick(*this);
  }
  absl::Time NextDeadline() const override {
    return deadlines.empty() ? absl::InfiniteFuture() : *deadlines.begin();
  }

  const HostContext& ctx() const { return ctx_; }
  absl::Time Now() const { return ctx_.env.clock->Now(); }

  std::vector<Received> received;
  std::vector<absl::Time> ticks;
  std::multiset<absl::Time> deadlines;
  std::function<void(FakeHost&, const Received&)> on_message;
  std::function<void(FakeHost&)> on_tick;

 private:
  HostContext ctx_;
};

// A NetworkConfig in one expression.
inline NetworkConfig Config(uint64_t seed, double loss_rate = 0,
                            absl::Duration jitter = absl::ZeroDuration(),
                            bool through_wire = false) {
  NetworkConfig config;
  config.seed = seed;
  config.loss_rate = loss_rate;
  config.jitter = jitter;
  config.through_wire = through_wire;
  return config;
}

// Adds a FakeHost to `net` and returns it (owned by the network).
inline FakeHost* AddFake(Network& net) {
  FakeHost* out = nullptr;
  net.AddHost([&](const HostContext& ctx) {
    auto host = std::make_unique<FakeHost>(ctx);
    out = host.get();
    return host;
  });
  return out;
}

}  // namespace peter::pastry::sim

#endif  // PETER_TESTS_PASTRY_SIM_FAKE_HOST_H_

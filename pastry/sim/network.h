// The simulated wire: hosts (overlay nodes, or fakes in tests) indexed
// 0..size()-1, one Transport per host, and the event loop that delivers
// their messages after a topology delay and runs their timers.
//
// Each host gets a synthetic endpoint, 127.x.y.z:4000 with x.y.z = index + 1,
// that never reaches a socket. A message is decided at Send: dropped if its
// endpoint names no host, if the destination is down, or by the loss draw;
// otherwise it arrives after Delay(from, to) plus a uniform jitter, unless
// the destination crashes meanwhile. Same seed and same calls give the same
// run, event for event.
//
// Not thread-safe: one thread drives the network and all its hosts.
#ifndef PETER_PASTRY_SIM_NETWORK_H_
#define PETER_PASTRY_SIM_NETWORK_H_

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "pastry/core/environment.h"
#include "pastry/core/messages.h"
#include "pastry/sim/event_queue.h"
#include "pastry/sim/rng.h"
#include "pastry/sim/topology.h"
#include "spdlog/logger.h"

namespace peter::pastry::sim {

// What the network drives: a pastry::Node (see SimNetwork), or a fake.
class SimHost {
 public:
  virtual ~SimHost() = default;
  virtual void HandleMessage(const Envelope& envelope) = 0;
  virtual void Tick() = 0;
  // When Tick() should next run; InfiniteFuture() if never.
  virtual absl::Time NextDeadline() const = 0;
};

// Everything a host needs from the network at construction.
struct HostContext {
  int index = 0;
  Endpoint endpoint;
  // 1 for the first run at this index, one more after each Crash: the
  // NodeHandle::incarnation a restarted node announces.
  uint64_t incarnation = 1;
  Environment env;  // transport, clock, a per-host seed, the logger
};

struct NetworkConfig {
  uint64_t seed = 1;
  // Each message is dropped independently with this probability.
  double loss_rate = 0.0;
  // Each message is delayed by an extra uniform amount in [0, jitter].
  absl::Duration jitter = absl::ZeroDuration();
  // Encode every message with wire::Encode and decode it on arrival,
  // counting bytes; frames that fail to decode are dropped and counted.
  bool through_wire = false;
  // The default topology's parameters (used when no topology is given).
  PlaneTopology::Options plane;
  // The clock's time at the start of the simulation.
  absl::Time start = absl::UnixEpoch();
  // Hosts learn round trips from the topology (Environment::proximity)
  // instead of measuring them with probes: the Pastry paper's set-up.
  bool proximity_from_topology = false;
  // Handed to every host; null: silent.
  std::shared_ptr<spdlog::logger> logger;
};

struct NetworkStats {
  uint64_t sent = 0;             // Transport::Send calls
  uint64_t delivered = 0;        // messages handed to a host
  uint64_t dropped_loss = 0;     // lost by the loss_rate draw
  uint64_t dropped_dead = 0;     // destination down at send or on arrival
  uint64_t dropped_unknown = 0;  // endpoint names no simulated host
  uint64_t dropped_decode = 0;   // through_wire: failed to decode
  uint64_t dropped_filter = 0;   // lost by the send filter (tests)
  uint64_t bytes_sent = 0;       // through_wire: encoded bytes of all sends
  uint64_t ticks = 0;            // Tick() calls
  uint64_t events = 0;           // events popped, stale wake-ups included
  std::array<uint64_t, kMessageTypeCount> sent_by_type{};
  std::array<uint64_t, kMessageTypeCount> delivered_by_type{};
  std::array<uint64_t, kMessageTypeCount> bytes_by_type{};

  uint64_t dropped() const {
    return dropped_loss + dropped_dead + dropped_unknown + dropped_decode +
           dropped_filter;
  }
};

// Seen by the delivery observer just before a message is handed to `to`.
struct Delivery {
  absl::Time at;
  int from;
  int to;
  const Envelope& envelope;
};

class Network {
 public:
  using HostFactory =
      absl::FunctionRef<std::unique_ptr<SimHost>(const HostContext&)>;

  // `topology` null: a PlaneTopology from config.plane. REQUIRES: the given
  // topology has no nodes yet.
  explicit Network(NetworkConfig config,
                   std::unique_ptr<Topology> topology = nullptr);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // Adds a host at index size() and returns that index.
  int AddHost(HostFactory make);
  // Silent failure: the host is destroyed (after the current event), queued
  // messages to it vanish, it never runs again. A no-op if already down.
  void Crash(int i);
  // Brings a crashed host back as a new object at the same index and
  // endpoint. Messages sent to the previous incarnation are not delivered.
  // REQUIRES: !alive(i).
  void Restart(int i, HostFactory make);

  int size() const { return static_cast<int>(hosts_.size()); }
  bool alive(int i) const { return hosts_[i] != nullptr; }
  // REQUIRES: alive(i).
  SimHost& host(int i) { return *hosts_[i]; }
  const SimHost& host(int i) const { return *hosts_[i]; }

  static Endpoint EndpointOf(int i);
  // The index of the host at `endpoint`, or -1.
  int IndexOf(const Endpoint& endpoint) const;

  // Reads host i's NextDeadline() and schedules its wake-up if earlier than
  // the one already scheduled. Call after any call into the host made from
  // outside the network's own delivery and timer events.
  void Reschedule(int i);

  // Runs `fn` at time `at` (no earlier than now), in order with the other
  // events of that instant.
  void Schedule(absl::Time at, std::function<void()> fn);

  // Runs every event due at or before `t`, then sets the clock to `t` (if
  // later than now).
  void RunUntil(absl::Time t);
  void RunFor(absl::Duration d) { RunUntil(Now() + d); }
  // Runs until `pred` holds, checking it first, then after every event once
  // simulated time has moved `check_every` past the last check (after every
  // event if check_every <= 0), and at the end; gives up after `max`.
  // Returns whether `pred` held.
  bool RunUntil(const std::function<bool()>& pred, absl::Duration max,
                absl::Duration check_every);
  // Runs the next event, if any is due at or before `limit`.
  bool Step(SimTime limit = kNever);

  absl::Time Now() const { return clock_.Now(); }
  const VirtualClock& clock() const { return clock_; }
  absl::Duration Delay(int from, int to) const {
    return topology_->Delay(from, to);
  }
  const Topology& topology() const { return *topology_; }
  const NetworkStats& stats() const { return stats_; }
  const NetworkConfig& config() const { return config_; }
  size_t pending_events() const { return queue_.size(); }

  // A digest of every delivery so far (time, from, to, message type); equal
  // digests mean, with overwhelming probability, identical runs.
  uint64_t trace_digest() const { return trace_digest_; }
  // Called just before each delivery; empty to disable.
  void set_delivery_observer(std::function<void(const Delivery&)> observer) {
    observer_ = std::move(observer);
  }
  // Asked at each Send, before the loss draw: true loses the message. Lets
  // a test cut a node off, or lose the last sends of a node that crashes
  // (still in its socket buffers). Empty to disable.
  using SendFilter = std::function<bool(int from, int to, const Envelope&)>;
  void set_send_filter(SendFilter filter) { filter_ = std::move(filter); }
  // Asked at each Send after the send filter: true holds the message until
  // ReleaseHeld, as a TCP connection across a network partition buffers
  // what is sent until the partition heals (messages are lost only with
  // a filter). Empty to disable.
  void set_hold_filter(SendFilter hold) { hold_ = std::move(hold); }
  // Sends every held message whose sender and receiver are still the runs
  // they were, in the order they were sent, each with a fresh delay from
  // now; the messages the hold filter still holds (a pair still cut by an
  // overlapping partition) stay held, in order. Clear or change the hold
  // filter first, or they are held again.
  void ReleaseHeld();
  // Host i's thread is blocked until `until` (a long garbage-collection
  // pause, a sanitized build on a loaded machine): what arrives meanwhile
  // waits, its timers do not run, so it acknowledges nothing. Then it takes
  // what waited as a thread reading its sockets after a stall: each sender's
  // messages in the order sent (one TCP connection each), the senders
  // interleaved at random (the order sockets are read in).
  void Stall(int i, absl::Time until);
  // Host i's thread is slow until `until`: it spends `per_message` on each
  // message it receives, so what arrives queues, and it reads the queue as
  // above (per sender in order, senders at random). Its timers run.
  void Slow(int i, absl::Duration per_message, absl::Time until);

 private:
  // Host i's Transport: forwards to Network::Send with the sender's index.
  class HostTransport final : public Transport {
   public:
    HostTransport(Network* network, int index)
        : network_(network), index_(index) {}
    void Send(const Endpoint& to, const Envelope& envelope) override {
      network_->Send(index_, to, envelope);
    }

   private:
    Network* network_;
    int index_;
  };
  // Round trips from the topology, for hosts' Environment::proximity.
  class TopologyProximity final : public Proximity {
   public:
    explicit TopologyProximity(const Network* network) : network_(network) {}
    int32_t RoundTripUs(const Endpoint& a, const Endpoint& b) const override;

   private:
    const Network* network_;
  };
  // A message on its way: the envelope, or its frame when through_wire.
  struct InFlight {
    Envelope envelope;
    std::string frame;
    int32_t from = 0;
    uint32_t incarnation = 0;  // the destination's, at send time
  };

  void Send(int from, const Endpoint& to, const Envelope& envelope);
  // The rest of Send, once the message is neither filtered nor held.
  void Transmit(int from, int dst, const Envelope& envelope);
  SimTime SampleDelay(int from, int to);
  uint32_t StoreMessage(int from, int to, const Envelope& envelope);
  void Deliver(const Event& e);
  void HandTo(int to, int from, const Envelope& envelope);
  void Wake(const Event& e);
  void RunCallback(const Event& e);
  void ScheduleWake(int i, SimTime at);
  void DeliverSlot(int to, uint32_t slot);
  void ScheduleServe(int i);
  void Serve(int i);
  HostContext ContextFor(int i);

  NetworkConfig config_;
  Endpoint endpoint_prefix_;  // EndpointOf(0), to recognise our endpoints
  std::unique_ptr<Topology> topology_;
  VirtualClock clock_;
  EventQueue queue_;
  Rng rng_;
  TopologyProximity proximity_{this};

  // Per host, indexed by host index.
  std::vector<std::unique_ptr<SimHost>> hosts_;
  std::deque<HostTransport> transports_;  // deque: stable addresses
  std::vector<SimTime> wake_at_;          // the pending wake-up, or kNever
  std::vector<uint32_t> incarnation_;     // bumped by Crash
  // Stall and Slow, per host: until when, the time per message, when the
  // next message can be taken, the messages waiting (slots, in arrival
  // order), and whether a Serve is scheduled.
  struct Backlog {
    SimTime stalled_until = 0;
    SimTime slow_until = 0;
    SimTime per_message = 0;
    SimTime busy_until = 0;
    std::vector<uint32_t> slots;
    bool serving = false;
  };
  std::vector<Backlog> backlog_;

  // Message bodies of in-flight messages, by slot, with a free list. A deque
  // so that a message can be handed to its host in place while the host
  // sends more. Freed slots keep their buffers for reuse.
  std::deque<InFlight> messages_;
  std::vector<uint32_t> free_messages_;
  std::vector<std::function<void()>> callbacks_;
  std::vector<uint32_t> free_callbacks_;
  // Crashed hosts, destroyed after the current event.
  std::vector<std::unique_ptr<SimHost>> graveyard_;

  NetworkStats stats_;
  uint64_t trace_digest_ = 0;
  std::function<void(const Delivery&)> observer_;
  SendFilter filter_;
  SendFilter hold_;
  struct Held {
    int from = 0;
    uint32_t incarnation = 0;  // the sender's, at send time
    int to = 0;
    uint32_t to_incarnation = 0;
    Envelope envelope;
  };
  std::vector<Held> held_;
};

}  // namespace peter::pastry::sim

#endif  // PETER_PASTRY_SIM_NETWORK_H_

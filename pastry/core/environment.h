// What the overlay core needs from the world, injected at construction so the
// same code runs under the Asio runtime and in the simulator.
#ifndef PETER_PASTRY_CORE_ENVIRONMENT_H_
#define PETER_PASTRY_CORE_ENVIRONMENT_H_

#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "pastry/core/messages.h"
#include "spdlog/logger.h"

namespace peter::pastry {

// Sends messages to other nodes. Delivery is best effort: a message may be
// lost, and the core recovers (acknowledgements, probes). Called only on the
// node's thread; must not call back into the node synchronously.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual void Send(const Endpoint& to, const Envelope& envelope) = 0;
};

// The time as the core sees it. The core never sleeps: its owner calls
// Node::Tick() at or after Node::NextDeadline().
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// Proximity known without measuring it: the simulator's topology, as in the
// Pastry paper's emulation (nodes in a plane, distances computed). Optional.
class Proximity {
 public:
  virtual ~Proximity() = default;
  // The round trip between two endpoints in microseconds; -1 if unknown.
  virtual int32_t RoundTripUs(const Endpoint& a, const Endpoint& b) const = 0;
};

struct Environment {
  Transport* transport = nullptr;  // not owned; must outlive the node
  const Clock* clock = nullptr;    // not owned; must outlive the node
  uint64_t seed = 0;               // seeds the node's random generator
  std::shared_ptr<spdlog::logger> logger;  // null: a silent logger
  // Not owned; null: round trips are measured by probes. When set,
  // proximity neighbour selection compares candidates by it and sends no
  // proximity probes.
  const Proximity* proximity = nullptr;
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_CORE_ENVIRONMENT_H_

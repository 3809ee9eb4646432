// Helpers for tests that drive one pastry::Node by hand: a transport that
// records what the node sends, and a clock that moves only when told.
#ifndef PETER_TESTS_PASTRY_CORE_RECORDING_TRANSPORT_H_
#define PETER_TESTS_PASTRY_CORE_RECORDING_TRANSPORT_H_

#include <vector>

#include "pastry/core/node.h"

namespace peter::pastry::testing {

struct Sent {
  Endpoint to;
  Envelope envelope;
};

class RecordingTransport : public Transport {
 public:
  void Send(const Endpoint& to, const Envelope& envelope) override {
    sent.push_back({to, envelope});
  }
  std::vector<Sent> sent;
};

class ManualClock : public Clock {
 public:
  absl::Time Now() const override { return now; }
  absl::Time now = absl::UnixEpoch() + absl::Seconds(100);
};

}  // namespace peter::pastry::testing

#endif  // PETER_TESTS_PASTRY_CORE_RECORDING_TRANSPORT_H_

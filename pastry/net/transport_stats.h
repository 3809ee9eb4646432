// Counters of the TCP transport, kept on the node's thread.
#ifndef PETER_PASTRY_NET_TRANSPORT_STATS_H_
#define PETER_PASTRY_NET_TRANSPORT_STATS_H_

#include <array>
#include <cstdint>

#include "pastry/core/messages.h"

namespace peter::pastry::net {

struct TransportStats {
  uint64_t connections_opened = 0;    // outgoing connects that succeeded
  uint64_t connections_accepted = 0;  // incoming
  uint64_t connections_closed = 0;
  uint64_t connect_failures = 0;
  uint64_t connections_open = 0;      // gauge
  std::array<uint64_t, kMessageTypeCount> frames_sent{};
  std::array<uint64_t, kMessageTypeCount> bytes_sent{};
  std::array<uint64_t, kMessageTypeCount> frames_received{};
  std::array<uint64_t, kMessageTypeCount> bytes_received{};
  uint64_t frames_dropped_decode = 0;     // failed to decode: dropped
  uint64_t frames_dropped_oversize = 0;   // over max_frame_bytes: conn closed
  uint64_t frames_dropped_unknown_type = 0;  // a newer peer's message type
  uint64_t frames_dropped_old_version = 0;
  uint64_t queue_overflows = 0;       // messages dropped: send queue full
  uint64_t dropped_backoff = 0;       // messages dropped: peer backing off
};

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_TRANSPORT_STATS_H_

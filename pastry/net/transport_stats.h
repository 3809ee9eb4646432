// Counters of the TCP transport, kept on the node's thread.
#ifndef PETER_PASTRY_NET_TRANSPORT_STATS_H_
#define PETER_PASTRY_NET_TRANSPORT_STATS_H_

#include <array>
#include <cstdint>

#include "pastry/core/messages.h"
#include "pastry/net/peer_auth.h"

namespace peter::pastry::net {

struct TransportStats {
  uint64_t connections_opened = 0;    // outgoing connects that succeeded
  uint64_t connections_accepted = 0;  // incoming
  uint64_t connections_closed = 0;
  uint64_t connect_failures = 0;
  uint64_t connections_open = 0;      // gauge
  // Sent: queued on a connection (refused frames are counted as drops).
  std::array<uint64_t, kMessageTypeCount> frames_sent{};
  std::array<uint64_t, kMessageTypeCount> bytes_sent{};
  std::array<uint64_t, kMessageTypeCount> frames_received{};
  std::array<uint64_t, kMessageTypeCount> bytes_received{};
  // Failed to decode (malformed), or cut short by the peer closing the
  // connection in the middle of a frame: dropped.
  uint64_t frames_dropped_decode = 0;
  // Over max_frame_bytes, or a bad segment table (framing lost): the
  // connection is closed.
  uint64_t frames_dropped_oversize = 0;
  uint64_t frames_dropped_unknown_type = 0;  // a newer peer's message type
  uint64_t frames_dropped_old_version = 0;
  uint64_t queue_overflows = 0;       // messages dropped: send queue full
  // Messages dropped: all connections' queues together at
  // max_total_send_queue_bytes.
  uint64_t global_queue_overflows = 0;
  // Connections closed because the partial frames of all connections
  // passed max_total_receive_bytes.
  uint64_t receive_overflows = 0;
  // Messages dropped because the peer is unreachable: sent while its
  // endpoint is backing off after a failed connect, or queued on the connect
  // attempt that failed.
  uint64_t dropped_backoff = 0;
  uint64_t connections_rejected = 0;  // incoming beyond max_connections
  // At max_connections, a new outgoing connection: the least recently used
  // idle connection was closed to make room (evicted), or, with none idle,
  // the connection was not opened and the message dropped (refused).
  uint64_t connections_evicted = 0;
  uint64_t outgoing_refused = 0;
  // Connections closed because the peer took none of the frames queued
  // for it within send_stall_timeout (those frames dropped with it).
  uint64_t send_stalls = 0;
  // Incoming connections closed before they sent a frame that decodes: the
  // oldest, at max_pending_incoming, for a new one (evicted), or after
  // pending_timeout (timeouts).
  uint64_t pending_evicted = 0;
  uint64_t pending_timeouts = 0;
  // Peers refused by authentication (secured nodes), by AuthFailure.
  std::array<uint64_t, kAuthFailureCount> auth_failures{};
  uint64_t send_queue_bytes = 0;      // gauge: bytes queued on all connections
  // Gathered writes of queued frames (one sendmsg each unless the socket
  // takes part of it): frames_sent over this is frames per write.
  uint64_t frame_writes = 0;
  // Reads from peers' connections that returned bytes (one recvfrom each):
  // frames_received over this is frames per read.
  uint64_t frame_reads = 0;
};

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_TRANSPORT_STATS_H_

// Private to pastry/net: the TCP transport behind pastry::Transport.
//
// Connections. One connection per peer endpoint is used for sending
// (by_peer_), opened lazily on the first Send() and reused. An accepted
// connection learns the peer's listen endpoint from the `sender` of its first
// decoded frame and is then used for sending to that endpoint too, so two
// nodes normally share one TCP connection.
//
// Duplicates. If both nodes connect to each other at once, each ends up with
// its own outgoing connection plus the one it accepted. Rule: the connection
// initiated by the smaller endpoint (Endpoint's ordering) wins. A node that
// accepts a connection from a smaller endpoint while it has its own outgoing
// one sends on the accepted one from then on and retires its own (writes
// what is queued, then shuts down its sending side; the peer closes on end of
// stream). A node that accepts from a larger endpoint keeps sending on its
// own connection and only reads from the accepted one until the peer retires
// it. Both sides converge on the same connection without a handshake, and no
// queued message is lost. Messages may be reordered across the switch; the
// core does not depend on order.
//
// Failures. A failed connect (refused, unreachable, or no answer within
// connect_timeout) puts the endpoint in backoff: no new connect before
// reconnect_backoff_min, doubling per consecutive failure up to
// reconnect_backoff_max (a refused connect does not double: nobody listens
// there now, and a restarted process must be reachable at once); messages
// to it meanwhile are dropped and counted
// (dropped_backoff), as are those queued on the failed attempt. A successful
// connect resets the backoff. The core's probes and per-hop acks recover.
//
// Queues. Each connection's send queue is bounded in bytes
// (max_send_queue_bytes); see Connection::Enqueue for the policy (drop the
// newest, count queue_overflows). The bytes queued on all connections
// together are bounded too (max_total_send_queue_bytes), so many slow peers
// cannot add up to unbounded memory: a frame that would take the total past
// it is dropped (global_queue_overflows), to whichever peer it was going.
// Likewise the bytes of frames still arriving, across all connections
// (max_total_receive_bytes): the connection whose read passes the bound is
// closed (receive_overflows), as a frame over max_frame_bytes would be.
//
// Hostile input. Frames that fail to decode are dropped and counted by cause;
// a frame over max_frame_bytes (or a bad segment table) loses the stream's
// framing, so that connection is closed and counted.
//
// Connections. max_connections bounds the connections open in both
// directions together. An incoming one beyond it, or beyond the slots not
// reserved for outgoing ones (reserved_outgoing_connections), is closed at
// once (connections_rejected). A new outgoing one at the bound closes the least
// recently used idle connection (open, nothing queued) to make room
// (connections_evicted): a node must reach its leaf set and tree even when
// its slots are taken by idle peers. With no idle connection, the outgoing
// one is not opened and the message is dropped (outgoing_refused); the
// core's acknowledgements and probes retry. A busy connection whose peer
// reads nothing for send_stall_timeout is closed (send_stalls), so busy
// slots are held by peers that are making progress. Incoming connections
// that have sent no frame yet are bounded in number and time
// (max_pending_incoming, pending_timeout): see TransportConfig.
//
// Authentication. With a PeerSecurity (TransportConfig::security), every
// connection is TLS and/or opens with the handshake of peer_auth.h; a peer
// that fails it is refused: the connection closes, the failure is counted by
// reason (auth_failures) and logged (rate-limited), and a failed outgoing
// connection backs off like a failed connect. Each frame's sender id must be
// the id the connection authenticated; a frame claiming another id closes
// the connection (kSenderId). Messages queued while a connection
// handshakes wait for it.
//
// Not thread-safe: everything runs on the io_context's thread, except
// Listen(), which runs before the loop starts.
#ifndef PETER_PASTRY_NET_TRANSPORT_H_
#define PETER_PASTRY_NET_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "pastry/core/environment.h"
#include "pastry/core/log_limit.h"
#include "pastry/net/connection.h"
#include "pastry/net/security.h"
#include "pastry/net/transport_stats.h"
#include "pastry/wire/codec.h"
#include "spdlog/logger.h"

namespace peter::pastry::net {

struct TransportConfig {
  size_t max_frame_bytes = 4 << 20;
  size_t max_send_queue_bytes = 8 << 20;
  size_t max_total_send_queue_bytes = 256 << 20;
  // Bytes of partial frames (received, not yet whole) across all
  // connections; the connection whose read passes it is closed.
  size_t max_total_receive_bytes = 256 << 20;
  size_t max_connections = 4096;
  // Of max_connections, slots only outgoing connections may take: incoming
  // ones are refused (connections_rejected) once max_connections minus
  // this many are incoming, so a flood of incoming connections cannot stop
  // the node from reaching its leaf set and tree. At most half of
  // max_connections takes effect.
  size_t reserved_outgoing_connections = 64;
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration reconnect_backoff_min = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(5);
  absl::Duration idle_timeout = absl::Minutes(5);
  // A connection with frames queued whose peer has taken none of them for
  // this long is closed (send_stalls): a peer that stops reading (stuck,
  // paused, hostile) would otherwise hold its slot of max_connections and
  // its queue for good, since a busy connection is neither idle nor
  // evictable and TCP keeps a zero window open indefinitely.
  absl::Duration send_stall_timeout = absl::Seconds(60);
  // Incoming connections that have not yet sent a frame that decodes (on a
  // secured node: that includes the handshake): at most this many at once
  // (at the bound, the oldest is closed for a new one: pending_evicted),
  // each for at most pending_timeout (then closed: pending_timeouts). A
  // peer connects to send, so a real one leaves the pending set within a
  // round trip; connections that say nothing cannot hold incoming slots
  // for idle_timeout, nor keep a real peer out.
  size_t max_pending_incoming = 256;
  absl::Duration pending_timeout = absl::Seconds(10);
  // Null: plain TCP, no authentication.
  std::shared_ptr<const PeerSecurity> security;
};

class TcpTransport : public Transport, private ConnectionOwner {
 public:
  using EnvelopeHandler = std::function<void(const Envelope&)>;
  // Told of every connect attempt's outcome: (endpoint, ok, error text).
  using ConnectObserver = std::function<void(const Endpoint&, bool, const std::string&)>;

  TcpTransport(asio::io_context& io, const TransportConfig& config,
               std::shared_ptr<spdlog::logger> logger);
  ~TcpTransport() override;

  // Binds (SO_REUSEADDR) and listens. Call before Start().
  absl::Status Listen(const Endpoint& endpoint);
  Endpoint listen_endpoint() const { return listen_endpoint_; }
  // Our own advertised endpoint: messages to it are dropped, and peers
  // claiming it are not adopted.
  void set_self(const Endpoint& self) { self_ = self; }
  void set_handler(EnvelopeHandler handler) { handler_ = std::move(handler); }
  void set_connect_observer(ConnectObserver observer) { observer_ = std::move(observer); }
  // Keeps the reconnect backoff to `endpoint` at most `cap` (0: no cap
  // beyond reconnect_backoff_max). Used for bootstrap nodes while joining, so
  // that each of the core's join retries gets a real connect attempt.
  void CapBackoff(const Endpoint& endpoint, absl::Duration cap) {
    if (cap > absl::ZeroDuration()) {
      backoff_cap_[endpoint] = cap;
    } else {
      backoff_cap_.erase(endpoint);
    }
  }

  // Starts accepting and the idle sweep. On the io thread.
  void Start();
  // Closes the listener and every connection; later Sends are ignored.
  void Shutdown();

  void Send(const Endpoint& to, const Envelope& envelope) override;

  size_t queued_bytes() const;
  // Runs `fn` once nothing is queued for sending any more: at once if
  // nothing is, else when the last queued byte is written or dropped with
  // its connection. On the io thread; `fn` runs there, inside the write or
  // close that emptied the queue, so it must not call the transport. Those
  // still waiting when the transport is destroyed are dropped unrun.
  void WhenDrained(absl::AnyInvocable<void() &&> fn);
  TransportStats stats() const;

 private:
  struct Backoff {
    absl::Duration delay;
    SteadyTime retry_at;
  };

  void Accept();
  void OnAccept(const std::error_code& ec, asio::ip::tcp::socket socket);
  void Sweep();
  std::shared_ptr<Connection> NewConnection();
  std::shared_ptr<Connection> ConnectionFor(const Endpoint& to);
  // At max_connections: closes the least recently used idle connection for
  // one to `to`; false (counted, logged) if none is idle.
  bool MakeRoomFor(const Endpoint& to);
  void Adopt(Connection& conn, const Endpoint& peer);
  void UseAnotherConnection(const Endpoint& peer);

  // ConnectionOwner.
  void OnConnected(Connection& conn) override;
  void OnConnectFailed(Connection& conn, const std::error_code& ec) override;
  void OnHandshakeFailed(Connection& conn, std::optional<AuthFailure> why,
                         const std::string& detail) override;
  void OnPeerRefused(Connection& conn, AuthFailure why, const std::string& detail) override {
    Refused(conn, why, detail);
  }
  // Counts a refused peer and logs it (rate-limited).
  void Refused(Connection& conn, AuthFailure why, const std::string& detail);
  // An outgoing connection failed: back off from its endpoint.
  // `refused`: the connect was refused (nobody listening), which backs off
  // by reconnect_backoff_min without doubling.
  void BackOff(Connection& conn, const std::string& error, bool refused = false);
  void OnFrame(Connection& conn, std::string_view frame) override;
  void OnFramingError(Connection& conn, const absl::Status& status) override;
  void OnReceiveLimit(Connection& conn, size_t buffered_bytes) override;
  void OnTruncated(Connection& conn, size_t buffered_bytes) override;
  void OnClosed(Connection& conn, bool was_open, const std::string& why) override;

  asio::io_context& io_;
  const TransportConfig config_;
  std::shared_ptr<spdlog::logger> log_;
  wire::DecodeLimits decode_limits_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_timer_;
  asio::steady_timer sweep_timer_;
  Endpoint listen_endpoint_;
  Endpoint self_;
  bool stopped_ = false;
  uint64_t next_connection_id_ = 1;
  EnvelopeHandler handler_;
  ConnectObserver observer_;

  absl::flat_hash_map<uint64_t, std::shared_ptr<Connection>> all_;
  absl::flat_hash_map<Endpoint, std::shared_ptr<Connection>> by_peer_;
  absl::flat_hash_map<Endpoint, Backoff> backoff_;
  absl::flat_hash_map<Endpoint, absl::Duration> backoff_cap_;
  TransportStats stats_;
  size_t incoming_open_ = 0;  // accepted connections in all_
  // Accepted connections that have sent no frame that decodes yet, with
  // when they were accepted (at most max_pending_incoming).
  absl::flat_hash_map<uint64_t, SteadyTime> pending_;
  // Closes the pending connection accepted first, for a new one.
  void EvictOldestPending();
  ConnectionTotals totals_;  // over all connections (Connection keeps it)
  // Warnings peers can trigger: one per second each.
  LogLimit decode_warn_, overflow_warn_, auth_warn_, global_overflow_warn_, reject_warn_,
      receive_warn_, outgoing_limit_warn_, stall_warn_, pending_warn_;
};

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_TRANSPORT_H_

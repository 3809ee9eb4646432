// Private to pastry/net: one TCP connection to a peer, outgoing (we
// connected) or incoming (we accepted). It cuts the byte stream into frames
// (wire::FrameAssembler) and writes queued frames in order.
//
// On a secured node (PeerSecurity) the stream is TLS, and/or starts with the
// handshake of peer_auth.h; frames are read and written only after it, and
// the peer's authenticated id is kept (peer_id()).
//
// Lifecycle: kConnecting (outgoing only) -> kHandshaking (secured only) ->
// kOpen -> kClosed. Every
// asynchronous operation holds a shared_ptr to the connection, so it lives
// until its last handler has run; the Owner (TcpTransport) must outlive every
// handler invocation, i.e. the io_context must not run after the owner is
// gone. Close() is idempotent and tells the owner exactly once.
//
// Not thread-safe: used only on the io_context's thread.
#ifndef PETER_PASTRY_NET_CONNECTION_H_
#define PETER_PASTRY_NET_CONNECTION_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "pastry/net/asio_util.h"
#include "pastry/net/peer_auth.h"
#include "pastry/net/security.h"
#include "pastry/wire/frame.h"

namespace peter::pastry::net {

class Connection;
// Bytes held by all of a transport's connections together, kept by the
// connections themselves: queued for sending, and received but not yet a
// whole frame. Reading stops (the connection is closed) when the received
// bytes pass max_received_bytes.
struct ConnectionTotals {
  size_t queued_bytes = 0;
  size_t received_bytes = 0;
  size_t max_received_bytes = SIZE_MAX;
  uint64_t writes = 0;  // gathered writes of frames started
  // Run once, when queued_bytes next falls to 0 (written, or dropped by a
  // close): TcpTransport::WhenDrained.
  std::vector<absl::AnyInvocable<void() &&>> on_drained;
  uint64_t reads = 0;   // reads that returned bytes (frames or handshake)
};
using SteadyTime = std::chrono::steady_clock::time_point;

class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  // Outgoing: connected (and authenticated, on a secured node).
  virtual void OnConnected(Connection& conn) = 0;
  virtual void OnConnectFailed(Connection& conn, const std::error_code& ec) = 0;
  // The handshake failed: `why` says how the peer failed to authenticate, or
  // is empty when the stream broke first. The connection closes after this.
  virtual void OnHandshakeFailed(Connection& conn, std::optional<AuthFailure> why,
                                 const std::string& detail) = 0;
  // One complete frame. The connection may be closed by the callee.
  virtual void OnFrame(Connection& conn, std::string_view frame) = 0;
  // An open connection's peer broke the rules (a frame's tag was wrong);
  // the connection closes after this.
  virtual void OnPeerRefused(Connection& conn, AuthFailure why, const std::string& detail) = 0;
  // The stream declared a frame beyond the limits; the connection closes.
  virtual void OnFramingError(Connection& conn, const absl::Status& status) = 0;
  // The partial frames of all connections passed
  // ConnectionTotals::max_received_bytes after `conn` read `buffered_bytes`
  // of one; the connection closes.
  virtual void OnReceiveLimit(Connection& conn, size_t buffered_bytes) = 0;
  // The peer closed the stream in the middle of a frame.
  virtual void OnTruncated(Connection& conn, size_t buffered_bytes) = 0;
  // After this the connection is dead; `was_open`: it had been established.
  virtual void OnClosed(Connection& conn, bool was_open, const std::string& why) = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { kConnecting, kHandshaking, kOpen, kClosed };

  // `security` null: plain TCP, no handshake. Else it must outlive this.
  // `totals`, if not null, is shared by all of a transport's connections
  // (the cross-connection bounds); it must outlive the connection's
  // handlers, as the owner does.
  Connection(asio::io_context& io, ConnectionOwner& owner, uint64_t id,
             const wire::FrameLimits& limits, const PeerSecurity* security,
             ConnectionTotals* totals = nullptr);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Outgoing: connects to `peer`, giving up after `timeout`.
  void Connect(const Endpoint& peer, std::chrono::steady_clock::duration timeout);
  // Incoming: takes over an accepted socket and starts reading.
  void Accept(asio::ip::tcp::socket socket);

  // Queues `frame` for writing: written when the loop has run the
  // handlers ready now, with the frames they queue too. Refuses it (returns false) when the queue
  // already holds frames and adding this one would exceed `max_queue_bytes`:
  // the newest message is the one dropped, so what is queued goes out intact
  // and in order, and the queue never holds more than the bound plus one
  // frame. Also refuses when closed or retiring.
  bool Enqueue(std::string&& frame, size_t max_queue_bytes);
  // Takes no new frames; once the queue is written, shuts down our sending
  // side (the peer sees end of stream and closes; we close on its EOF).
  void Retire();
  void Close(const std::string& why);

  uint64_t id() const { return id_; }
  State state() const { return state_; }
  bool outgoing() const { return outgoing_; }
  bool retiring() const { return retiring_; }
  // The peer's listen endpoint: the dialled one for outgoing connections,
  // learnt from the first frame for incoming ones.
  const std::optional<Endpoint>& peer() const { return peer_; }
  void set_peer(const Endpoint& peer) { peer_ = peer; }
  // On a secured node, once open: the id the peer authenticated as.
  const std::optional<NodeId>& peer_id() const { return peer_id_; }
  const std::string& remote() const { return remote_; }  // for logs
  // The owner's mark, false until it calls set_heard(): TcpTransport sets it
  // on the first frame it takes from the connection (the connection then
  // leaves its set of incoming ones that have sent nothing yet).
  bool heard() const { return heard_; }
  void set_heard() { heard_ = true; }
  size_t queued_bytes() const { return queued_bytes_; }
  size_t queued_frames() const { return queue_.size(); }
  SteadyTime last_activity() const { return last_activity_; }
  // When the peer last took queued bytes (a write completed), or when
  // frames were queued after none: with frames queued, how long it has
  // read nothing of them.
  SteadyTime write_progress() const { return write_progress_; }

 private:
  void OnConnect(const std::error_code& ec);
  using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;
  asio::ip::tcp::socket& tcp() { return tls_ != nullptr ? tls_->next_layer() : socket_; }
  // Runs `f` on the stream frames travel on: TLS or the TCP socket.
  template <typename F>
  void WithStream(F&& f) {
    if (tls_ != nullptr) {
      f(*tls_);
    } else {
      f(socket_);
    }
  }
  void Opened();
  void OnTlsHandshake(const std::error_code& ec);
  void StartAuth();
  // Feeds handshake bytes; true once the connection is open for frames.
  bool OnHandshakeBytes(std::string_view data);
  // Tells the owner, then closes; if handshake bytes are still to be
  // written (our proof), closes after writing them, so that the peer can
  // tell a wrong key from a dropped connection.
  void HandshakeFailed(std::optional<AuthFailure> why, const std::string& detail);
  void Established();
  void Read();
  void OnRead(const std::error_code& ec, size_t n);
  void Write();
  void OnWrite(const std::error_code& ec, size_t frames, size_t bytes);
  void OnHandshakeWrite(const std::error_code& ec);
  void Touch() { last_activity_ = std::chrono::steady_clock::now(); }
  // Change queued_bytes_ / received_bytes_ and the shared totals together.
  void AddQueued(size_t bytes);
  void RemoveQueued(size_t bytes);
  void SetReceived(size_t bytes);

  asio::ip::tcp::socket socket_;     // plain TCP (unused with TLS)
  std::unique_ptr<TlsStream> tls_;   // with TLS: owns the TCP socket
  asio::steady_timer connect_timer_; // connect, then handshake deadline
  const PeerSecurity* security_;
  std::optional<AuthHandshake> auth_;
  std::optional<NodeId> certified_id_;  // the peer certificate's id (TLS)
  std::optional<NodeId> peer_id_;
  std::string handshake_out_;      // handshake bytes waiting to be written
  std::string handshake_writing_;  // ... and those being written
  // The handshake failed: close once our last handshake bytes are written.
  std::optional<std::string> close_after_write_;
  // A cluster key without TLS: frames carry tags (FrameMac), one per
  // direction; write_tags_ holds the tags of the write in flight.
  std::optional<FrameMac> send_mac_;
  std::optional<FrameMac> recv_mac_;
  std::vector<std::array<char, FrameMac::kTagBytes>> write_tags_;
  ConnectionOwner& owner_;
  const uint64_t id_;
  wire::FrameAssembler assembler_;
  State state_ = State::kConnecting;
  bool outgoing_ = false;
  bool retiring_ = false;
  bool writing_ = false;
  bool write_posted_ = false;  // Enqueue posted a Write() not run yet
  bool heard_ = false;
  std::optional<Endpoint> peer_;
  std::string remote_;
  // Frames to write; a deque, so that the write in flight's buffers stay
  // put while frames are queued behind them.
  std::deque<std::string> queue_;
  // The buffers of the write in flight (kept: no allocation per write).
  std::vector<asio::const_buffer> write_buffers_;
  size_t queued_bytes_ = 0;
  size_t received_bytes_ = 0;  // partial frames, as last added to totals_
  ConnectionTotals* totals_;
  SteadyTime last_activity_;
  SteadyTime write_progress_;
  // 16 KiB per connection: at max_connections (4096) that is 64 MiB.
  // Frames are decoded in place in it (Cap'n Proto reads aligned words).
  alignas(8) std::array<char, 16 * 1024> read_buffer_;
  size_t read_offset_ = 0;  // where the read in flight writes in read_buffer_
};

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_CONNECTION_H_

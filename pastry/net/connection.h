// Private to pastry/net: one TCP connection to a peer, outgoing (we
// connected) or incoming (we accepted). It cuts the byte stream into frames
// (wire::FrameAssembler) and writes queued frames in order.
//
// Lifecycle: kConnecting (outgoing only) -> kOpen -> kClosed. Every
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

#include "absl/status/status.h"
#include "pastry/net/asio_util.h"
#include "pastry/wire/frame.h"

namespace peter::pastry::net {

class Connection;
using Frame = std::shared_ptr<const std::string>;
using SteadyTime = std::chrono::steady_clock::time_point;

class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  virtual void OnConnected(Connection& conn) = 0;
  virtual void OnConnectFailed(Connection& conn, const std::error_code& ec) = 0;
  // One complete frame. The connection may be closed by the callee.
  virtual void OnFrame(Connection& conn, std::string_view frame) = 0;
  // The stream declared a frame beyond the limits; the connection closes.
  virtual void OnFramingError(Connection& conn, const absl::Status& status) = 0;
  // The peer closed the stream in the middle of a frame.
  virtual void OnTruncated(Connection& conn, size_t buffered_bytes) = 0;
  // After this the connection is dead; `was_open`: it had been established.
  virtual void OnClosed(Connection& conn, bool was_open, const std::string& why) = 0;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { kConnecting, kOpen, kClosed };

  Connection(asio::io_context& io, ConnectionOwner& owner, uint64_t id,
             const wire::FrameLimits& limits);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Outgoing: connects to `peer`, giving up after `timeout`.
  void Connect(const Endpoint& peer, std::chrono::steady_clock::duration timeout);
  // Incoming: takes over an accepted socket and starts reading.
  void Accept(asio::ip::tcp::socket socket);

  // Queues `frame` for writing. Refuses it (returns false) when the queue
  // already holds frames and adding this one would exceed `max_queue_bytes`:
  // the newest message is the one dropped, so what is queued goes out intact
  // and in order, and the queue never holds more than the bound plus one
  // frame. Also refuses when closed or retiring.
  bool Enqueue(Frame frame, size_t max_queue_bytes);
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
  const std::string& remote() const { return remote_; }  // for logs
  size_t queued_bytes() const { return queued_bytes_; }
  size_t queued_frames() const { return queue_.size(); }
  SteadyTime last_activity() const { return last_activity_; }

 private:
  void OnConnect(const std::error_code& ec);
  void Opened();
  void Read();
  void OnRead(const std::error_code& ec, size_t n);
  void Write();
  void OnWrite(const std::error_code& ec, size_t frames, size_t bytes);
  void Touch() { last_activity_ = std::chrono::steady_clock::now(); }

  asio::ip::tcp::socket socket_;
  asio::steady_timer connect_timer_;
  ConnectionOwner& owner_;
  const uint64_t id_;
  wire::FrameAssembler assembler_;
  State state_ = State::kConnecting;
  bool outgoing_ = false;
  bool retiring_ = false;
  bool writing_ = false;
  std::optional<Endpoint> peer_;
  std::string remote_;
  std::deque<Frame> queue_;
  size_t queued_bytes_ = 0;
  SteadyTime last_activity_;
  // 16 KiB per connection: at max_connections (4096) that is 64 MiB.
  std::array<char, 16 * 1024> read_buffer_;
};

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_CONNECTION_H_

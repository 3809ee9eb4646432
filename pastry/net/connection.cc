#include "pastry/net/connection.h"

#include <utility>
#include <vector>

namespace peter::pastry::net {
namespace {

// One write gathers at most this many frames / bytes (fewer syscalls under
// load, bounded latency for what follows).
constexpr size_t kMaxGatherFrames = 64;
constexpr size_t kMaxGatherBytes = 1 << 20;

std::string Describe(const asio::ip::tcp::socket& socket) {
  std::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return "?";
  return FromAsio(remote).ToString();
}

}  // namespace

Connection::Connection(asio::io_context& io, ConnectionOwner& owner, uint64_t id,
                       const wire::FrameLimits& limits)
    : socket_(io),
      connect_timer_(io),
      owner_(owner),
      id_(id),
      assembler_(limits),
      last_activity_(std::chrono::steady_clock::now()) {}

void Connection::Connect(const Endpoint& peer, std::chrono::steady_clock::duration timeout) {
  outgoing_ = true;
  peer_ = peer;
  remote_ = peer.ToString();
  auto self = shared_from_this();
  connect_timer_.expires_after(timeout);
  connect_timer_.async_wait([self](const std::error_code& ec) {
    if (ec || self->state_ != State::kConnecting) return;
    std::error_code ignored;
    self->socket_.close(ignored);  // the connect handler sees the abort
    self->OnConnect(asio::error::timed_out);
  });
  socket_.async_connect(ToAsio(peer), [self](const std::error_code& ec) {
    if (self->state_ != State::kConnecting) return;  // timed out or closed
    self->OnConnect(ec);
  });
}

void Connection::OnConnect(const std::error_code& ec) {
  auto self = shared_from_this();
  connect_timer_.cancel();
  if (ec) {
    owner_.OnConnectFailed(*this, ec);
    Close("connect failed: " + ec.message());
    return;
  }
  Opened();
  owner_.OnConnected(*this);
  if (state_ != State::kOpen) return;
  Read();
  Write();
}

void Connection::Accept(asio::ip::tcp::socket socket) {
  socket_ = std::move(socket);
  remote_ = Describe(socket_);
  Opened();
  Read();
}

// TCP_NODELAY on every socket: the overlay's messages are small and its
// round-trip measurements (proximity neighbour selection) must not include
// Nagle's delay. Keep-alive helps notice half-open connections to idle peers.
void Connection::Opened() {
  state_ = State::kOpen;
  std::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  socket_.set_option(asio::socket_base::keep_alive(true), ignored);
  Touch();
}

bool Connection::Enqueue(Frame frame, size_t max_queue_bytes) {
  if (state_ == State::kClosed || retiring_) return false;
  if (!queue_.empty() && queued_bytes_ + frame->size() > max_queue_bytes) return false;
  queued_bytes_ += frame->size();
  queue_.push_back(std::move(frame));
  Write();
  return true;
}

void Connection::Retire() {
  retiring_ = true;
  Write();  // shuts down at once if there is nothing left to write
}

void Connection::Write() {
  if (state_ != State::kOpen || writing_) return;
  if (queue_.empty()) {
    if (retiring_) {
      std::error_code ignored;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    }
    return;
  }
  std::vector<asio::const_buffer> buffers;
  size_t bytes = 0;
  for (const Frame& f : queue_) {
    if (buffers.size() == kMaxGatherFrames || (bytes > 0 && bytes + f->size() > kMaxGatherBytes)) {
      break;
    }
    buffers.push_back(asio::buffer(*f));
    bytes += f->size();
  }
  writing_ = true;
  const size_t frames = buffers.size();
  // The frames stay in queue_ until the write completes, which keeps their
  // buffers alive; Close() leaves them there while a write is pending.
  asio::async_write(socket_, buffers,
                    [self = shared_from_this(), frames, bytes](const std::error_code& ec, size_t) {
                      self->OnWrite(ec, frames, bytes);
                    });
}

void Connection::OnWrite(const std::error_code& ec, size_t frames, size_t bytes) {
  writing_ = false;
  if (state_ == State::kClosed) {
    queue_.clear();
    return;
  }
  if (ec) {
    Close("write failed: " + ec.message());
    return;
  }
  for (size_t i = 0; i < frames; ++i) queue_.pop_front();
  queued_bytes_ -= bytes;
  Touch();
  Write();
}

void Connection::Read() {
  socket_.async_read_some(asio::buffer(read_buffer_),
                          [self = shared_from_this()](const std::error_code& ec, size_t n) {
                            self->OnRead(ec, n);
                          });
}

void Connection::OnRead(const std::error_code& ec, size_t n) {
  if (state_ == State::kClosed) return;
  if (ec) {
    if (ec == asio::error::eof && assembler_.buffered_bytes() > 0) {
      owner_.OnTruncated(*this, assembler_.buffered_bytes());
    }
    Close(ec == asio::error::eof ? "closed by peer" : "read failed: " + ec.message());
    return;
  }
  Touch();
  assembler_.Append(std::string_view(read_buffer_.data(), n));
  while (state_ != State::kClosed) {
    absl::StatusOr<std::optional<std::string>> next = assembler_.Next();
    if (!next.ok()) {
      owner_.OnFramingError(*this, next.status());
      Close("framing error");
      return;
    }
    if (!next->has_value()) break;
    owner_.OnFrame(*this, **next);
  }
  if (state_ != State::kClosed) Read();
}

void Connection::Close(const std::string& why) {
  if (state_ == State::kClosed) return;
  auto self = shared_from_this();  // the owner may drop its reference
  const bool was_open = state_ == State::kOpen;
  state_ = State::kClosed;
  connect_timer_.cancel();
  std::error_code ignored;
  socket_.close(ignored);
  // A pending write still references the queued frames; keep them until its
  // handler runs (it sees the closed state and returns).
  if (!writing_) queue_.clear();
  queued_bytes_ = 0;
  owner_.OnClosed(*this, was_open, why);
}

}  // namespace peter::pastry::net

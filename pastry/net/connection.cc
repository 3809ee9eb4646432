#include "pastry/net/connection.h"

#include <openssl/ssl.h>

#include <utility>
#include <vector>

namespace peter::pastry::net {
namespace {

// One write gathers at most this many frames / bytes (fewer syscalls under
// load, bounded latency for what follows).
constexpr size_t kMaxGatherFrames = 64;
constexpr size_t kMaxGatherBytes = 1 << 20;

// The gathered write's buffers, kept by the connection: asio copies the
// buffer sequence into its operation, and copying a std::vector of them
// allocated once per write.
struct BufferSpan {
  using value_type = asio::const_buffer;
  using const_iterator = const asio::const_buffer*;
  const asio::const_buffer* data;
  size_t size;
  const_iterator begin() const { return data; }
  const_iterator end() const { return data + size; }
};

std::string Describe(const asio::ip::tcp::socket& socket) {
  std::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return "?";
  return FromAsio(remote).ToString();
}

}  // namespace

Connection::Connection(asio::io_context& io, ConnectionOwner& owner, uint64_t id,
                       const wire::FrameLimits& limits, const PeerSecurity* security,
                       ConnectionTotals* totals)
    : socket_(io),
      tls_(security != nullptr && security->tls != nullptr
               ? std::make_unique<TlsStream>(io, *security->tls)
               : nullptr),
      connect_timer_(io),
      security_(security),
      owner_(owner),
      id_(id),
      assembler_(limits),
      totals_(totals),
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
    self->tcp().close(ignored);  // the connect handler sees the abort
    self->OnConnect(asio::error::timed_out);
  });
  tcp().async_connect(ToAsio(peer), [self](const std::error_code& ec) {
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
}

void Connection::Accept(asio::ip::tcp::socket socket) {
  tcp() = std::move(socket);
  remote_ = Describe(tcp());
  Opened();
}

// TCP_NODELAY on every socket: the overlay's messages are small and its
// round-trip measurements (proximity neighbour selection) must not include
// Nagle's delay. Keep-alive helps notice half-open connections to idle peers.
void Connection::Opened() {
  std::error_code ignored;
  tcp().set_option(asio::ip::tcp::no_delay(true), ignored);
  tcp().set_option(asio::socket_base::keep_alive(true), ignored);
  Touch();
  if (security_ == nullptr) {
    Established();
    if (state_ == State::kOpen) Read();
    return;
  }
  state_ = State::kHandshaking;
  // A peer that connects and stalls must not hold a connection for long.
  auto self = shared_from_this();
  connect_timer_.expires_after(ToChrono(security_->handshake_timeout));
  connect_timer_.async_wait([self](const std::error_code& ec) {
    if (ec || self->state_ != State::kHandshaking) return;
    self->HandshakeFailed(AuthFailure::kTimeout, "no complete handshake in time");
  });
  if (tls_ == nullptr) {
    StartAuth();
    return;
  }
  tls_->async_handshake(
      outgoing_ ? asio::ssl::stream_base::client : asio::ssl::stream_base::server,
      [self](const std::error_code& ec) { self->OnTlsHandshake(ec); });
}

void Connection::OnTlsHandshake(const std::error_code& ec) {
  if (state_ != State::kHandshaking) return;
  if (ec) {
    HandshakeFailed(AuthFailure::kTls, ec.message());
    return;
  }
  // Verified against the CA by OpenSSL; the certificate is there
  // (verify_fail_if_no_peer_cert).
  X509* cert = SSL_get0_peer_certificate(tls_->native_handle());
  absl::StatusOr<NodeId> id =
      cert != nullptr ? CertifiedId(cert) : absl::InvalidArgumentError("no peer certificate");
  if (!id.ok()) {
    HandshakeFailed(AuthFailure::kTls, std::string(id.status().message()));
    return;
  }
  certified_id_ = *id;
  StartAuth();
}

void Connection::StartAuth() {
  auth_.emplace(security_->self_id, security_->cluster_key, outgoing_,
                AuthHandshake::FreshNonce());
  handshake_out_ += auth_->Hello();
  Write();
  Read();
}

bool Connection::OnHandshakeBytes(std::string_view data) {
  AuthHandshake::Step step = auth_->Feed(data);
  // Our proof goes out even when the peer's, read in the same bytes, is
  // wrong: the peer then counts the wrong key too (HandshakeFailed flushes).
  handshake_out_ += step.send;
  if (step.failure.has_value()) {
    HandshakeFailed(step.failure, step.detail);
    return false;
  }
  if (!step.send.empty()) Write();
  if (!step.done) return false;
  if (certified_id_.has_value() && auth_->peer_id() != *certified_id_) {
    HandshakeFailed(AuthFailure::kCertificateId,
                    "claims id " + auth_->peer_id().ToHex() + " but its certificate certifies " +
                        certified_id_->ToHex());
    return false;
  }
  peer_id_ = auth_->peer_id();
  // Without TLS nothing else protects the frames that follow: tag them.
  if (tls_ == nullptr && !security_->cluster_key.empty()) {
    send_mac_.emplace(auth_->FrameKey(/*sending=*/true));
    recv_mac_.emplace(auth_->FrameKey(/*sending=*/false));
    assembler_.set_trailer_bytes(FrameMac::kTagBytes);
  }
  Established();
  return state_ == State::kOpen;
}

void Connection::HandshakeFailed(std::optional<AuthFailure> why, const std::string& detail) {
  if (state_ == State::kClosed) return;
  auto self = shared_from_this();
  if (close_after_write_.has_value()) {  // already failed; the timeout ends the wait
    Close(*close_after_write_);
    return;
  }
  owner_.OnHandshakeFailed(*this, why, detail);
  const std::string why_text = why.has_value()
                                   ? "refused: " + std::string(AuthFailureName(*why)) + ": " + detail
                                   : "handshake broken: " + detail;
  if (why.has_value() && (writing_ || !handshake_out_.empty())) {
    close_after_write_ = why_text;
    Write();
    return;
  }
  Close(why_text);
}

// Open for frames: queued ones go out now.
void Connection::Established() {
  state_ = State::kOpen;
  connect_timer_.cancel();
  if (outgoing_) {
    owner_.OnConnected(*this);
    if (state_ != State::kOpen) return;
  }
  Write();
}

bool Connection::Enqueue(std::string&& frame, size_t max_queue_bytes) {
  if (state_ == State::kClosed || retiring_) return false;
  if (!queue_.empty() && queued_bytes_ + frame.size() > max_queue_bytes) return false;
  if (queue_.empty()) write_progress_ = std::chrono::steady_clock::now();
  AddQueued(frame.size());
  queue_.push_back(std::move(frame));
  // Written once the loop has run what is ready now (a batch of work, the
  // other frames it queues to this peer), in one gathered write: writing at
  // once sent the first frame of a batch alone, one more sendmsg and one
  // more read and wake-up on the peer (docs/benchmarks.md).
  if (!writing_ && !write_posted_) {
    write_posted_ = true;
    asio::post(tcp().get_executor(), [self = shared_from_this()] {
      self->write_posted_ = false;
      self->Write();
    });
  }
  return true;
}

void Connection::AddQueued(size_t bytes) {
  queued_bytes_ += bytes;
  if (totals_ != nullptr) totals_->queued_bytes += bytes;
}

void Connection::RemoveQueued(size_t bytes) {
  queued_bytes_ -= bytes;
  if (totals_ == nullptr) return;
  totals_->queued_bytes -= bytes;
  if (totals_->queued_bytes == 0 && !totals_->on_drained.empty()) {
    auto waiting = std::move(totals_->on_drained);
    totals_->on_drained.clear();
    for (auto& fn : waiting) std::move(fn)();
  }
}

void Connection::SetReceived(size_t bytes) {
  if (totals_ != nullptr) totals_->received_bytes = totals_->received_bytes - received_bytes_ + bytes;
  received_bytes_ = bytes;
}

void Connection::Retire() {
  retiring_ = true;
  Write();  // shuts down at once if there is nothing left to write
}

void Connection::Write() {
  if (writing_ || state_ == State::kConnecting || state_ == State::kClosed) return;
  if (!handshake_out_.empty()) {
    writing_ = true;
    handshake_writing_ = std::move(handshake_out_);
    handshake_out_.clear();
    WithStream([&](auto& stream) {
      asio::async_write(stream, asio::buffer(handshake_writing_),
                        [self = shared_from_this()](const std::error_code& ec, size_t) {
                          self->OnHandshakeWrite(ec);
                        });
    });
    return;
  }
  if (state_ != State::kOpen) return;
  if (queue_.empty()) {
    if (retiring_) {
      // With TLS, too, a plain TCP half-close: the peer reads end of stream
      // (without close_notify, which frames do not need: they carry their
      // own lengths) and closes.
      std::error_code ignored;
      tcp().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    }
    return;
  }
  write_buffers_.clear();
  write_buffers_.reserve(2 * kMaxGatherFrames);  // once per connection: a frame and its tag
  size_t bytes = 0;
  size_t frames = 0;
  write_tags_.clear();
  write_tags_.reserve(kMaxGatherFrames);  // no reallocation: buffers point into it
  for (const std::string& f : queue_) {
    if (frames == kMaxGatherFrames || (bytes > 0 && bytes + f.size() > kMaxGatherBytes)) {
      break;
    }
    write_buffers_.push_back(asio::buffer(f));
    if (send_mac_.has_value()) {
      write_tags_.push_back(send_mac_->Tag(f));
      write_buffers_.push_back(asio::buffer(write_tags_.back()));
    }
    bytes += f.size();
    ++frames;
  }
  writing_ = true;
  if (totals_ != nullptr) ++totals_->writes;
  // The frames stay in queue_ until the write completes, which keeps their
  // buffers alive; Close() leaves them there while a write is pending.
  WithStream([&](auto& stream) {
    asio::async_write(stream, BufferSpan{write_buffers_.data(), write_buffers_.size()},
                      [self = shared_from_this(), frames, bytes](const std::error_code& ec,
                                                                 size_t) {
                        self->OnWrite(ec, frames, bytes);
                      });
  });
}

void Connection::OnHandshakeWrite(const std::error_code& ec) {
  writing_ = false;
  handshake_writing_.clear();
  if (state_ == State::kClosed) {
    queue_.clear();
    return;
  }
  if (ec) {
    if (state_ == State::kHandshaking) {
      HandshakeFailed(std::nullopt, "write failed: " + ec.message());
    } else {
      Close("write failed: " + ec.message());
    }
    return;
  }
  if (close_after_write_.has_value() && handshake_out_.empty()) {
    Close(*close_after_write_);
    return;
  }
  Write();
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
  RemoveQueued(bytes);
  Touch();
  write_progress_ = last_activity_;
  Write();
}

void Connection::Read() {
  // A frame's start left from the last read is completed from the start of
  // this one; reading at the same offset modulo 8 keeps the frames after it
  // word-aligned, so that they decode in place.
  read_offset_ = assembler_.buffered_bytes() % 8;
  WithStream([&](auto& stream) {
    stream.async_read_some(asio::buffer(read_buffer_.data() + read_offset_,
                                        read_buffer_.size() - read_offset_),
                           [self = shared_from_this()](const std::error_code& ec, size_t n) {
                             self->OnRead(ec, n);
                           });
  });
}

void Connection::OnRead(const std::error_code& ec, size_t n) {
  if (state_ == State::kClosed) return;
  if (ec) {
    // A TLS peer that half-closes (Retire) sends no close_notify.
    const bool eof = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
    if (state_ == State::kHandshaking) {
      HandshakeFailed(std::nullopt, eof ? "closed by peer" : "read failed: " + ec.message());
      return;
    }
    if (eof && assembler_.buffered_bytes() > 0) {
      owner_.OnTruncated(*this, assembler_.buffered_bytes());
    }
    Close(eof ? "closed by peer" : "read failed: " + ec.message());
    return;
  }
  Touch();
  if (totals_ != nullptr) ++totals_->reads;
  std::string_view data(read_buffer_.data() + read_offset_, n);
  std::string after_handshake;
  if (close_after_write_.has_value()) return;  // refused; only writing our last bytes
  if (state_ == State::kHandshaking) {
    if (!OnHandshakeBytes(data)) {
      if (state_ == State::kHandshaking) Read();
      return;
    }
    after_handshake = auth_->TakeLeftover();
    data = after_handshake;
  }
  // Frames that lie whole in `data` are handed on in place; the start of one
  // that the read cut off is copied by the assembler.
  assembler_.Feed(data);
  while (state_ != State::kClosed) {
    absl::StatusOr<std::optional<std::string_view>> next = assembler_.Next();
    if (!next.ok()) {
      owner_.OnFramingError(*this, next.status());
      Close("framing error");
      return;
    }
    if (!next->has_value()) break;
    std::string_view frame = **next;
    if (recv_mac_.has_value()) {
      const std::string_view tag = frame.substr(frame.size() - FrameMac::kTagBytes);
      frame.remove_suffix(FrameMac::kTagBytes);
      if (!recv_mac_->Verify(frame, tag)) {
        owner_.OnPeerRefused(*this, AuthFailure::kFrameMac,
                             "a frame's tag is wrong (altered, injected or replayed)");
        Close("refused: frame tag");
        return;
      }
    }
    owner_.OnFrame(*this, frame);
  }
  if (state_ == State::kClosed) return;
  // What is left is part of a frame still arriving. Many connections each
  // holding most of a large frame must not add up to unbounded memory.
  SetReceived(assembler_.buffered_bytes());
  if (totals_ != nullptr && received_bytes_ > 0 &&
      totals_->received_bytes > totals_->max_received_bytes) {
    owner_.OnReceiveLimit(*this, received_bytes_);
    Close("receive buffers of all connections full");
    return;
  }
  Read();
}

void Connection::Close(const std::string& why) {
  if (state_ == State::kClosed) return;
  auto self = shared_from_this();  // the owner may drop its reference
  // The owner counts an incoming connection as open from its accept, an
  // outgoing one from OnConnected.
  const bool was_open =
      state_ == State::kOpen || (!outgoing_ && state_ == State::kHandshaking);
  state_ = State::kClosed;
  connect_timer_.cancel();
  std::error_code ignored;
  tcp().close(ignored);
  // A pending write still references the queued frames; keep them until its
  // handler runs (it sees the closed state and returns).
  if (!writing_) queue_.clear();
  RemoveQueued(queued_bytes_);
  SetReceived(0);
  owner_.OnClosed(*this, was_open, why);
}

}  // namespace peter::pastry::net

#include "pastry/net/transport.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace peter::pastry::net {
namespace {

using std::chrono::steady_clock;

std::string DurationText(absl::Duration d) { return absl::FormatDuration(d); }

}  // namespace

TcpTransport::TcpTransport(asio::io_context& io, const TransportConfig& config,
                           std::shared_ptr<spdlog::logger> logger)
    : io_(io),
      config_(config),
      log_(std::move(logger)),
      acceptor_(io),
      accept_retry_timer_(io),
      sweep_timer_(io) {
  decode_limits_.max_frame_bytes = config_.max_frame_bytes;
  decode_limits_.max_payload_bytes = config_.max_frame_bytes;
  totals_.max_received_bytes = config_.max_total_receive_bytes;
}

TcpTransport::~TcpTransport() = default;

absl::Status TcpTransport::Listen(const Endpoint& endpoint) {
  const asio::ip::tcp::endpoint ep = ToAsio(endpoint);
  std::error_code ec;
  auto fail = [&](const char* step) {
    std::error_code ignored;
    acceptor_.close(ignored);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on ", endpoint.ToString(), ": ", step, ": ", ec.message()));
  };
  acceptor_.open(ep.protocol(), ec);
  if (ec) return fail("socket");
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return fail("SO_REUSEADDR");
  acceptor_.bind(ep, ec);
  if (ec) return fail("bind");
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  const asio::ip::tcp::endpoint local = acceptor_.local_endpoint(ec);
  if (ec) return fail("local address");
  listen_endpoint_ = FromAsio(local);
  return absl::OkStatus();
}

void TcpTransport::Start() {
  Accept();
  Sweep();
}

void TcpTransport::Shutdown() {
  stopped_ = true;
  std::error_code ignored;
  acceptor_.close(ignored);
  accept_retry_timer_.cancel();
  sweep_timer_.cancel();
  std::vector<std::shared_ptr<Connection>> conns;
  for (auto& [id, conn] : all_) conns.push_back(conn);
  for (auto& conn : conns) conn->Close("shutting down");
  by_peer_.clear();
  all_.clear();
}

void TcpTransport::Accept() {
  if (stopped_ || !acceptor_.is_open()) return;
  acceptor_.async_accept([this](const std::error_code& ec, asio::ip::tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void TcpTransport::OnAccept(const std::error_code& ec, asio::ip::tcp::socket socket) {
  if (stopped_ || ec == asio::error::operation_aborted) return;
  if (ec) {
    // E.g. out of file descriptors: try again shortly rather than spin.
    log_->warn("accept failed: {}", ec.message());
    accept_retry_timer_.expires_after(std::chrono::milliseconds(100));
    accept_retry_timer_.async_wait([this](const std::error_code& e) {
      if (!e) Accept();
    });
    return;
  }
  const size_t reserved =
      std::min(config_.reserved_outgoing_connections, config_.max_connections / 2);
  const bool all_full = all_.size() >= config_.max_connections;
  if (all_full || incoming_open_ >= config_.max_connections - reserved) {
    ++stats_.connections_rejected;
    if (reject_warn_.Allow(absl::Now())) {
      log_->warn("{} connections open, {} of them incoming: refusing an incoming one ({}; {} "
                 "warnings suppressed)",
                 all_.size(), incoming_open_,
                 all_full ? "max_connections"
                          : "the rest are reserved for outgoing ones, "
                            "reserved_outgoing_connections",
                 reject_warn_.suppressed());
    }
    std::error_code ignored;
    socket.close(ignored);
  } else {
    ++stats_.connections_accepted;
    ++stats_.connections_open;
    ++incoming_open_;
    if (pending_.size() >= std::max<size_t>(config_.max_pending_incoming, 1)) {
      EvictOldestPending();
    }
    std::shared_ptr<Connection> conn = NewConnection();
    pending_[conn->id()] = steady_clock::now();
    conn->Accept(std::move(socket));
    log_->debug("accepted connection from {}", conn->remote());
  }
  Accept();
}

void TcpTransport::EvictOldestPending() {
  auto oldest = pending_.end();
  for (auto it = pending_.begin(); it != pending_.end(); ++it) {
    if (oldest == pending_.end() || it->second < oldest->second) oldest = it;
  }
  if (oldest == pending_.end()) return;
  auto found = all_.find(oldest->first);
  pending_.erase(oldest);
  ++stats_.pending_evicted;
  // Held here: closing it takes it out of all_.
  std::shared_ptr<Connection> conn = found != all_.end() ? found->second : nullptr;
  if (pending_warn_.Allow(absl::Now())) {
    log_->warn("{} incoming connections have sent nothing yet (max_pending_incoming): closing "
               "the oldest{} for a new one ({} warnings suppressed)",
               config_.max_pending_incoming,
               conn != nullptr ? absl::StrCat(", from ", conn->remote()) : "",
               pending_warn_.suppressed());
  }
  if (conn != nullptr) conn->Close("pending: evicted for a newer connection");
}

// Closes connections idle for idle_timeout and forgets stale backoff state.
void TcpTransport::Sweep() {
  if (stopped_) return;
  const SteadyTime now = steady_clock::now();
  const auto idle = ToChrono(config_.idle_timeout);
  std::vector<std::shared_ptr<Connection>> expired;
  for (auto& [id, conn] : all_) {
    if (conn->state() == Connection::State::kOpen && conn->queued_bytes() == 0 &&
        now - conn->last_activity() >= idle) {
      expired.push_back(conn);
    }
  }
  for (auto& conn : expired) conn->Close("idle");
  const auto pending_for = ToChrono(config_.pending_timeout);
  std::vector<uint64_t> silent;
  for (const auto& [id, since] : pending_) {
    if (now - since >= pending_for) silent.push_back(id);
  }
  for (uint64_t id : silent) {
    pending_.erase(id);
    ++stats_.pending_timeouts;
    auto found = all_.find(id);
    if (found == all_.end()) continue;
    std::shared_ptr<Connection> conn = found->second;  // closing takes it out of all_
    if (pending_warn_.Allow(absl::Now())) {
      log_->warn("{} sent nothing in {} (pending_timeout): closing the connection ({} warnings "
                 "suppressed)",
                 conn->remote(), absl::FormatDuration(config_.pending_timeout),
                 pending_warn_.suppressed());
    }
    conn->Close("pending: sent nothing");
  }
  const auto stall = ToChrono(config_.send_stall_timeout);
  std::vector<std::shared_ptr<Connection>> stalled;
  for (auto& [id, conn] : all_) {
    if (conn->state() == Connection::State::kOpen && conn->queued_bytes() > 0 &&
        now - conn->write_progress() >= stall) {
      stalled.push_back(conn);
    }
  }
  for (auto& conn : stalled) {
    ++stats_.send_stalls;
    if (stall_warn_.Allow(absl::Now())) {
      log_->warn("{} took none of the {} bytes queued for it in {} (send_stall_timeout): "
                 "closing the connection ({} warnings suppressed)",
                 conn->remote(), conn->queued_bytes(),
                 absl::FormatDuration(config_.send_stall_timeout), stall_warn_.suppressed());
    }
    conn->Close("send stalled");
  }
  const auto forget = 2 * ToChrono(config_.reconnect_backoff_max);
  absl::erase_if(backoff_, [&](const auto& entry) { return now > entry.second.retry_at + forget; });
  const absl::Duration period =
      std::clamp(std::min({config_.idle_timeout, config_.send_stall_timeout,
                           config_.pending_timeout}) / 4,
                 absl::Milliseconds(50), absl::Seconds(5));
  sweep_timer_.expires_after(ToChrono(period));
  sweep_timer_.async_wait([this](const std::error_code& ec) {
    if (!ec) Sweep();
  });
}

void TcpTransport::Send(const Endpoint& to, const Envelope& envelope) {
  if (stopped_ || to == self_) return;
  const size_t type = envelope.body.index();
  std::shared_ptr<Connection> conn = ConnectionFor(to);
  if (conn == nullptr) return;  // counted by ConnectionFor
  std::string frame = wire::Encode(envelope);
  const size_t frame_bytes = frame.size();
  if (totals_.queued_bytes > 0 && totals_.queued_bytes + frame_bytes > config_.max_total_send_queue_bytes) {
    ++stats_.global_queue_overflows;
    if (global_overflow_warn_.Allow(absl::Now())) {
      log_->warn("send queues of all peers hold {} bytes, the limit: dropping messages ({} "
                 "warnings suppressed)",
                 totals_.queued_bytes, global_overflow_warn_.suppressed());
    }
    return;
  }
  if (!conn->Enqueue(std::move(frame), config_.max_send_queue_bytes)) {
    ++stats_.queue_overflows;
    if (overflow_warn_.Allow(absl::Now())) {
      log_->warn("send queue to {} full ({} bytes): dropping messages ({} warnings suppressed)",
                 to.ToString(), conn->queued_bytes(), overflow_warn_.suppressed());
    }
    return;
  }
  ++stats_.frames_sent[type];
  stats_.bytes_sent[type] += frame_bytes;
}

// The connection to send to `to` on, opening one if needed; null (the
// message is dropped and counted) while the endpoint is backing off, or when
// max_connections are open and none can be closed for it.
std::shared_ptr<Connection> TcpTransport::ConnectionFor(const Endpoint& to) {
  auto it = by_peer_.find(to);
  if (it != by_peer_.end()) return it->second;
  auto backoff = backoff_.find(to);
  if (backoff != backoff_.end() && steady_clock::now() < backoff->second.retry_at) {
    ++stats_.dropped_backoff;
    return nullptr;
  }
  if (all_.size() >= config_.max_connections && !MakeRoomFor(to)) return nullptr;
  std::shared_ptr<Connection> conn = NewConnection();
  by_peer_[to] = conn;
  log_->debug("connecting to {}", to.ToString());
  conn->Connect(to, ToChrono(config_.connect_timeout));
  return conn;
}

bool TcpTransport::MakeRoomFor(const Endpoint& to) {
  std::shared_ptr<Connection> oldest;
  for (const auto& [id, conn] : all_) {
    if (conn->state() == Connection::State::kOpen && conn->queued_bytes() == 0 &&
        (oldest == nullptr || conn->last_activity() < oldest->last_activity())) {
      oldest = conn;
    }
  }
  const bool room = oldest != nullptr;
  ++(room ? stats_.connections_evicted : stats_.outgoing_refused);
  if (outgoing_limit_warn_.Allow(absl::Now())) {
    log_->warn("{} connections open, the limit (max_connections): {} to connect to {} ({} "
               "warnings suppressed)",
               all_.size(), room ? "closing the least recently used idle one"
                                 : "none idle, dropping a message instead of connecting",
               to.ToString(), outgoing_limit_warn_.suppressed());
  }
  if (room) oldest->Close("least recently used, room for an outgoing connection");
  return room;
}

std::shared_ptr<Connection> TcpTransport::NewConnection() {
  auto conn = std::make_shared<Connection>(
      io_, static_cast<ConnectionOwner&>(*this), next_connection_id_++,
      wire::FrameLimits{config_.max_frame_bytes, wire::kDefaultMaxSegments},
      config_.security.get(), &totals_);
  all_[conn->id()] = conn;
  return conn;
}

void TcpTransport::OnConnected(Connection& conn) {
  ++stats_.connections_opened;
  ++stats_.connections_open;
  backoff_.erase(*conn.peer());
  log_->debug("connected to {}", conn.remote());
  if (observer_) observer_(*conn.peer(), true, "");
}

void TcpTransport::OnConnectFailed(Connection& conn, const std::error_code& ec) {
  BackOff(conn, ec.message(), /*refused=*/ec == asio::error::connection_refused);
}

void TcpTransport::OnHandshakeFailed(Connection& conn, std::optional<AuthFailure> why,
                                     const std::string& detail) {
  if (why.has_value()) Refused(conn, *why, detail);
  if (conn.outgoing()) {
    BackOff(conn, why.has_value()
                      ? absl::StrCat("authentication failed (", AuthFailureName(*why), "): ", detail)
                      : absl::StrCat("handshake failed: ", detail));
  }
}

void TcpTransport::Refused(Connection& conn, AuthFailure why, const std::string& detail) {
  ++stats_.auth_failures[static_cast<size_t>(why)];
  if (auth_warn_.Allow(absl::Now())) {
    log_->warn("refused {} connection {} {}: {}: {} ({} warnings suppressed)",
               conn.outgoing() ? "outgoing" : "incoming", conn.outgoing() ? "to" : "from",
               conn.remote(), AuthFailureName(why), detail, auth_warn_.suppressed());
  }
}

void TcpTransport::BackOff(Connection& conn, const std::string& error, bool refused) {
  ++stats_.connect_failures;
  stats_.dropped_backoff += conn.queued_frames();
  const Endpoint peer = *conn.peer();
  Backoff& b = backoff_[peer];
  // A refusal is immediate and cheap, and says only that nobody listens
  // there now: a process restarted at that endpoint should be reached at
  // once. Doubling it made a killed node unreachable for up to
  // reconnect_backoff_max after its restart once the core kept probing it
  // now and then (revival probes, docs/design.md): the join reply to it was
  // dropped and it became active only at its join timeout (3 s).
  b.delay = b.delay == absl::ZeroDuration() || refused
                ? config_.reconnect_backoff_min
                : std::min(b.delay * 2, config_.reconnect_backoff_max);
  if (auto cap = backoff_cap_.find(peer); cap != backoff_cap_.end()) {
    b.delay = std::min(b.delay, cap->second);
  }
  b.retry_at = steady_clock::now() + ToChrono(b.delay);
  log_->debug("connect to {} failed: {}; no retry for {}", peer.ToString(), error,
              DurationText(b.delay));
  if (observer_) observer_(peer, false, error);
}

void TcpTransport::OnFrame(Connection& conn, std::string_view frame) {
  absl::StatusOr<Envelope> envelope = wire::Decode(frame, decode_limits_);
  if (!envelope.ok()) {
    switch (envelope.status().code()) {
      case absl::StatusCode::kUnimplemented: ++stats_.frames_dropped_unknown_type; break;
      case absl::StatusCode::kFailedPrecondition: ++stats_.frames_dropped_old_version; break;
      default: ++stats_.frames_dropped_decode; break;
    }
    if (decode_warn_.Allow(absl::Now())) {
      log_->warn("dropped a frame from {}: {} ({} warnings suppressed)", conn.remote(),
                 envelope.status().ToString(), decode_warn_.suppressed());
    }
    return;
  }
  const NodeHandle& sender = envelope->sender;
  // A member may only speak for itself: the sender must be the id this
  // connection authenticated (and, with TLS, its certificate certifies).
  if (conn.peer_id().has_value() && sender.id != *conn.peer_id()) {
    Refused(conn, AuthFailure::kSenderId,
            absl::StrCat("a frame claims sender ", sender.id.ToHex(), " on a connection from ",
                         conn.peer_id()->ToHex()));
    conn.Close("refused: frame from another id");
    return;
  }
  // The first frame taken from an incoming connection takes it out of the
  // pending set; later frames need no lookup.
  if (!conn.heard()) {
    conn.set_heard();
    if (!conn.outgoing()) pending_.erase(conn.id());
  }
  const size_t type = envelope->body.index();
  ++stats_.frames_received[type];
  stats_.bytes_received[type] += frame.size();
  if (!conn.outgoing() && !conn.peer().has_value() && sender.valid() &&
      sender.endpoint != self_) {
    Adopt(conn, sender.endpoint);
  }
  if (handler_) handler_(*envelope);
}

// An accepted connection has told us its peer's listen endpoint.
void TcpTransport::Adopt(Connection& conn, const Endpoint& peer) {
  conn.set_peer(peer);
  std::shared_ptr<Connection> self = all_[conn.id()];
  auto it = by_peer_.find(peer);
  if (it == by_peer_.end()) {
    by_peer_[peer] = self;
    return;
  }
  std::shared_ptr<Connection> existing = it->second;
  // Our own connection wins when we are the smaller endpoint (see header);
  // an older incoming one is replaced (the peer reconnected).
  if (existing->outgoing() && self_ < peer) return;
  log_->debug("{} now reached over the connection it opened", peer.ToString());
  it->second = self;
  existing->Retire();
}

void TcpTransport::OnFramingError(Connection& conn, const absl::Status& status) {
  ++stats_.frames_dropped_oversize;
  if (decode_warn_.Allow(absl::Now())) {
    log_->warn("closing connection from {}: {} ({} warnings suppressed)", conn.remote(),
               status.ToString(), decode_warn_.suppressed());
  }
}

void TcpTransport::OnReceiveLimit(Connection& conn, size_t buffered_bytes) {
  ++stats_.receive_overflows;
  if (receive_warn_.Allow(absl::Now())) {
    log_->warn("closing connection from {}: partial frames of all connections over {} bytes "
               "(this one {} bytes) ({} warnings suppressed)",
               conn.remote(), config_.max_total_receive_bytes, buffered_bytes,
               receive_warn_.suppressed());
  }
}

void TcpTransport::OnTruncated(Connection& conn, size_t buffered_bytes) {
  ++stats_.frames_dropped_decode;
  if (decode_warn_.Allow(absl::Now())) {
    log_->warn("{} closed the connection in the middle of a frame ({} bytes dropped)",
               conn.remote(), buffered_bytes);
  }
}

void TcpTransport::OnClosed(Connection& conn, bool was_open, const std::string& why) {
  if (was_open) {
    ++stats_.connections_closed;
    --stats_.connections_open;
    log_->debug("connection {} {}: {}", conn.outgoing() ? "to" : "from", conn.remote(), why);
  }
  if (all_.erase(conn.id()) > 0 && !conn.outgoing()) --incoming_open_;
  pending_.erase(conn.id());
  if (!conn.peer().has_value()) return;
  auto it = by_peer_.find(*conn.peer());
  if (it != by_peer_.end() && it->second.get() == &conn) {
    by_peer_.erase(it);
    UseAnotherConnection(*conn.peer());
  }
}

// After the sending connection to `peer` closed: keep talking over another
// live one to the same peer, if there is one (e.g. the one it opened to us).
void TcpTransport::UseAnotherConnection(const Endpoint& peer) {
  if (stopped_) return;
  for (auto& [id, conn] : all_) {
    if (conn->state() == Connection::State::kOpen && !conn->retiring() &&
        conn->peer() == peer) {
      by_peer_[peer] = conn;
      return;
    }
  }
}

size_t TcpTransport::queued_bytes() const { return totals_.queued_bytes; }

void TcpTransport::WhenDrained(absl::AnyInvocable<void() &&> fn) {
  if (totals_.queued_bytes == 0) {
    std::move(fn)();
    return;
  }
  totals_.on_drained.push_back(std::move(fn));
}

TransportStats TcpTransport::stats() const {
  TransportStats s = stats_;
  s.send_queue_bytes = queued_bytes();
  s.frame_writes = totals_.writes;
  s.frame_reads = totals_.reads;
  return s;
}

}  // namespace peter::pastry::net

// NodeRuntime: start-up (parsing, binding, the advertised address), the
// event-loop thread, the tick timer, and shutdown.
#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "pastry/net/incarnation_file.h"
#include "pastry/net/runtime_impl.h"
#include "spdlog/spdlog.h"

namespace peter::pastry::net {
namespace {

using std::chrono::steady_clock;

absl::Status ValidateOptions(const RuntimeOptions& o) {
  const Options& p = o.pastry;
  if (p.b != 1 && p.b != 2 && p.b != 4 && p.b != 8) {
    return absl::InvalidArgumentError("pastry.b must be 1, 2, 4 or 8");
  }
  if (p.leaf_set_size < 2 || p.leaf_set_size % 2 != 0) {
    return absl::InvalidArgumentError("pastry.leaf_set_size must be even and at least 2");
  }
  if (p.max_hops_in_flight_per_peer == 0) {
    return absl::InvalidArgumentError("pastry.max_hops_in_flight_per_peer is 0");
  }
  if (o.max_frame_bytes < 1024) return absl::InvalidArgumentError("max_frame_bytes < 1024");
  if (o.max_send_queue_bytes == 0) return absl::InvalidArgumentError("max_send_queue_bytes is 0");
  if (o.max_total_send_queue_bytes < o.max_send_queue_bytes) {
    return absl::InvalidArgumentError("max_total_send_queue_bytes < max_send_queue_bytes");
  }
  if (o.max_total_receive_bytes < o.max_frame_bytes) {
    return absl::InvalidArgumentError("max_total_receive_bytes < max_frame_bytes");
  }
  if (o.reconnect_backoff_min <= absl::ZeroDuration() ||
      o.reconnect_backoff_max < o.reconnect_backoff_min) {
    return absl::InvalidArgumentError("need 0 < reconnect_backoff_min <= reconnect_backoff_max");
  }
  if (o.connect_timeout <= absl::ZeroDuration() || o.idle_timeout <= absl::ZeroDuration() ||
      o.send_stall_timeout <= absl::ZeroDuration() || o.pending_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "connect_timeout, idle_timeout, send_stall_timeout and pending_timeout must be "
        "positive");
  }
  if (o.max_pending_incoming == 0) {
    return absl::InvalidArgumentError("max_pending_incoming is 0");
  }
  return absl::OkStatus();
}

absl::StatusOr<Endpoint> ParseAddress(const char* what, const std::string& text) {
  absl::StatusOr<Endpoint> e = ResolveEndpoint(text);
  if (!e.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", e.status().message()));
  return e;
}

NodeId RandomId() {
  std::random_device rd;
  auto word = [&] { return uint64_t{rd()} << 32 | rd(); };
  return NodeId(word(), word());
}

std::string SecurityText(const SecurityOptions& s) {
  if (s.tls() && !s.cluster_key.empty()) return " (TLS 1.3 and cluster key)";
  if (s.tls()) return " (TLS 1.3, certified id)";
  if (!s.cluster_key.empty()) return " (cluster key, not encrypted)";
  return " (no peer authentication)";
}

TransportConfig ToTransportConfig(const RuntimeOptions& o,
                                  std::shared_ptr<const PeerSecurity> security) {
  TransportConfig c;
  c.security = std::move(security);
  c.max_frame_bytes = o.max_frame_bytes;
  c.max_send_queue_bytes = o.max_send_queue_bytes;
  c.max_total_send_queue_bytes = o.max_total_send_queue_bytes;
  c.max_total_receive_bytes = o.max_total_receive_bytes;
  c.max_connections = o.max_connections;
  c.reserved_outgoing_connections = o.reserved_outgoing_connections;
  c.connect_timeout = o.connect_timeout;
  c.reconnect_backoff_min = o.reconnect_backoff_min;
  c.reconnect_backoff_max = o.reconnect_backoff_max;
  c.idle_timeout = o.idle_timeout;
  c.send_stall_timeout = o.send_stall_timeout;
  c.max_pending_incoming = o.max_pending_incoming;
  c.pending_timeout = o.pending_timeout;
  return c;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeRuntime>> NodeRuntime::Start(RuntimeOptions options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  absl::StatusOr<Endpoint> listen = ParseAddress("listen address", options.listen);
  if (!listen.ok()) return listen.status();
  std::optional<Endpoint> advertise;
  if (!options.advertise.empty()) {
    absl::StatusOr<Endpoint> a = ParseAddress("advertise address", options.advertise);
    if (!a.ok()) return a.status();
    advertise = *a;
  }
  std::vector<Endpoint> bootstraps;
  for (const std::string& text : options.bootstrap) {
    absl::StatusOr<Endpoint> b = ParseAddress("bootstrap address", text);
    if (!b.ok()) return b.status();
    if (b->port == 0) return absl::InvalidArgumentError(absl::StrCat("bootstrap ", text, ": port 0"));
    bootstraps.push_back(*b);
  }
  absl::StatusOr<std::unique_ptr<PeerSecurity>> security = LoadPeerSecurity(options.security);
  if (!security.ok()) return security.status();
  if (*security != nullptr) {
    if ((*security)->certified_id.has_value()) {
      // Certified ids: no node picks its place in the ring.
      if (options.id.has_value()) {
        return absl::InvalidArgumentError(
            "an explicit node id cannot be used with TLS: the id derives from the certificate");
      }
      options.id = (*security)->certified_id;
    }
    if (!options.id.has_value()) options.id = RandomId();
    (*security)->self_id = *options.id;
    (*security)->handshake_timeout = options.connect_timeout;
  }
  auto logger = options.logger != nullptr ? options.logger : spdlog::default_logger();
  auto runtime = std::make_unique<RuntimeImpl>(std::move(options), std::move(logger),
                                               std::move(*security));
  if (absl::Status s = runtime->Init(*listen, advertise, std::move(bootstraps)); !s.ok()) return s;
  return std::unique_ptr<NodeRuntime>(std::move(runtime));
}

SteadyClock::SteadyClock() : wall_start_(absl::Now()), steady_start_(steady_clock::now()) {}

absl::Time SteadyClock::ToAbsl(SteadyTime t) const {
  return wall_start_ + absl::FromChrono(t - steady_start_);
}

SteadyTime SteadyClock::ToSteady(absl::Time t) const {
  const SteadyTime now = steady_clock::now();
  const absl::Duration ahead = t - ToAbsl(now);
  if (ahead <= absl::ZeroDuration()) return now;
  return now + ToChrono(std::min(ahead, absl::Hours(1)));
}

RuntimeImpl::RuntimeImpl(RuntimeOptions options, std::shared_ptr<spdlog::logger> logger,
                         std::shared_ptr<const PeerSecurity> security)
    : options_(std::move(options)),
      log_(std::move(logger)),
      work_(asio::make_work_guard(io_)),
      transport_(io_, ToTransportConfig(options_, std::move(security)), log_),
      tick_timer_(io_),
      bootstrap_timer_(io_) {}

absl::Status RuntimeImpl::Init(const Endpoint& listen, std::optional<Endpoint> advertise,
                               std::vector<Endpoint> bootstraps) {
  // The incarnation: microseconds since the Unix epoch at start, so a node
  // restarted with the same id (a second later, or sooner) announces a
  // larger one and its peers stop treating it as the process that died;
  // with a file, also larger than any earlier run's whatever the clock says.
  uint64_t incarnation = ClockIncarnation(absl::Now());
  if (!options_.incarnation_file.empty()) {
    absl::StatusOr<uint64_t> next = NextIncarnation(options_.incarnation_file, absl::Now());
    if (!next.ok()) return next.status();
    incarnation = *next;
  }
  if (absl::Status s = transport_.Listen(listen); !s.ok()) return s;
  listen_ = transport_.listen_endpoint();
  Endpoint advertised = listen_;
  if (advertise.has_value()) {
    advertised = *advertise;
    if (advertised.port == 0) advertised.port = listen_.port;
  } else if (IsUnspecified(listen_)) {
    advertised = LoopbackLike(listen_);
    log_->warn("listening on {} without an advertise address: advertising {}, which only "
               "nodes on this host can reach", listen_.ToString(), advertised.ToString());
  }
  self_ = NodeHandle{options_.id.value_or(RandomId()), advertised, incarnation};
  transport_.set_self(advertised);
  for (const Endpoint& b : bootstraps) {
    if (b != advertised && b != listen_) bootstraps_.push_back(b);
  }
  std::random_device rd;
  node_ = std::make_unique<Node>(self_, options_.pastry,
                                 Environment{&transport_, &clock_, uint64_t{rd()} << 32 | rd(), log_});
  transport_.set_handler([this](const Envelope& envelope) {
    if (stopping_) return;
    SteadyClock::Batch batch(clock_);
    node_->HandleMessage(envelope);
    AfterNodeCall();
  });
  transport_.set_connect_observer([this](const Endpoint& e, bool ok, const std::string& error) {
    OnConnectResult(e, ok, error);
  });
  started_ = clock_.Now();
  log_->info("node {} listening on {}{}{}", self_.id.ToHex(), listen_.ToString(),
             advertised == listen_ ? "" : absl::StrCat(" (advertised as ", advertised.ToString(), ")"),
             SecurityText(options_.security));
  asio::post(io_, [this] { Begin(); });
  thread_ = std::thread([this] { io_.run(); });
  return absl::OkStatus();
}

void RuntimeImpl::Begin() {
  SteadyClock::Batch batch(clock_);
  if (options_.on_start) options_.on_start(*node_);
  transport_.Start();
  if (bootstraps_.empty()) {
    node_->StartRing();
  } else {
    std::vector<std::string> names;
    for (const Endpoint& b : bootstraps_) names.push_back(b.ToString());
    log_->info("joining through {}", absl::StrJoin(names, ", "));
    // The core retries its join every join_timeout; keep the backoff shorter
    // so that no retry falls into it (until the node is active).
    for (const Endpoint& b : bootstraps_) transport_.CapBackoff(b, options_.pastry.join_timeout / 2);
    node_->Join(bootstraps_);
    bootstrap_timer_.expires_after(ToChrono(options_.bootstrap_retry_for));
    bootstrap_timer_.async_wait([this](const std::error_code& ec) {
      if (!ec) OnBootstrapDeadline();
    });
  }
  AfterNodeCall();
}

RuntimeImpl::~RuntimeImpl() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] { Shutdown(); });
  work_.reset();  // run() returns once the cancelled operations have finished
  thread_.join();
}

void RuntimeImpl::Shutdown() {
  stopping_ = true;
  tick_timer_.cancel();
  bootstrap_timer_.cancel();
  transport_.Shutdown();
}

// After every call into the node: its deadline may have moved, and it may
// have become active.
void RuntimeImpl::AfterNodeCall() {
  if (stopping_) return;
  ArmTimer();
  const bool active = node_->active();
  const bool departed = node_->departed();
  if (active == was_active_ && departed == was_departed_) return;
  if (active && !was_active_) {
    for (const Endpoint& b : bootstraps_) transport_.CapBackoff(b, absl::ZeroDuration());
  }
  was_active_ = active;
  was_departed_ = departed;
  std::lock_guard<std::mutex> lock(mu_);
  active_ = active;
  departed_ = departed;
  cv_.notify_all();
}

// One timer, re-armed only when the node's deadline moved earlier; a timer
// that fires early (a job was cancelled) costs one empty Tick(). Work already
// due (zero-delay jobs: an application's messages to its own node, deferred
// callbacks) is posted to the loop instead: arming the timer for it cost two
// timerfd_settime calls per job, the largest cost of a publish through a
// one-node gateway (docs/benchmarks.md).
void RuntimeImpl::ArmTimer() {
  const absl::Time deadline = node_->NextDeadline();
  if (deadline == absl::InfiniteFuture()) return;
  if (deadline <= clock_.Now()) {
    if (tick_posted_) return;
    tick_posted_ = true;
    asio::post(io_, [this] {
      tick_posted_ = false;
      if (stopping_) return;
      SteadyClock::Batch batch(clock_);
      node_->Tick(kMaxJobsPerTick);
      AfterNodeCall();
    });
    return;
  }
  // A deadline no earlier than the armed one maps to a steady time no
  // earlier either (ToSteady is monotonic in it, whatever the clock reads
  // since): that common case reads no clock.
  if (timer_armed_ && deadline >= armed_deadline_) return;
  const SteadyTime at = clock_.ToSteady(deadline);
  if (timer_armed_ && at >= armed_at_) return;
  timer_armed_ = true;
  armed_at_ = at;
  armed_deadline_ = deadline;
  tick_timer_.expires_at(at);
  tick_timer_.async_wait([this](const std::error_code& ec) {
    if (ec || stopping_) return;
    timer_armed_ = false;
    SteadyClock::Batch batch(clock_);
    node_->Tick(kMaxJobsPerTick);
    AfterNodeCall();
  });
}

void RuntimeImpl::OnConnectResult(const Endpoint& endpoint, bool ok, const std::string& error) {
  if (bootstrap_reached_) return;
  if (std::find(bootstraps_.begin(), bootstraps_.end(), endpoint) == bootstraps_.end()) return;
  if (ok) {
    bootstrap_reached_ = true;
    bootstrap_timer_.cancel();
    return;
  }
  last_bootstrap_error_ = absl::StrCat(endpoint.ToString(), ": ", error);
}

void RuntimeImpl::OnBootstrapDeadline() {
  if (bootstrap_reached_ || node_->active()) return;
  std::string why = absl::StrCat("no bootstrap node reachable within ",
                                 absl::FormatDuration(options_.bootstrap_retry_for));
  if (!last_bootstrap_error_.empty()) absl::StrAppend(&why, " (last error: ", last_bootstrap_error_, ")");
  log_->error("{}", why);
  std::lock_guard<std::mutex> lock(mu_);
  join_failure_ = absl::UnavailableError(why);
  cv_.notify_all();
}

}  // namespace peter::pastry::net

#include "pubsub/resp/server.h"

#include <chrono>
#include <condition_variable>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "pubsub/resp/client.h"
#include "pubsub/resp/command_table.h"
#include "spdlog/spdlog.h"

namespace peter::resp {

namespace {

// Server::Stop, from another thread than the backend's loop it runs on: the
// loop's part runs in a handler posted there, and Stop waits until a
// second handler, posted by the first, has run (after the handlers of what
// the first cancelled). If the loop stops first (io_context::stop, or run()
// returned), it runs no handler: Stop then does the loop's part itself.
struct LoopStop {
  enum class Phase { kQueued, kRunning, kRan, kDone };
  // Held by the handlers Stop posts, moved from the first to the second.
  // Destroyed, run or not (a loop destroyed drops its handlers), it tells
  // Stop that nothing more of its stop will run.
  struct Ticket {
    explicit Ticket(std::shared_ptr<LoopStop> s) : stop(std::move(s)) {}
    Ticket(Ticket&&) noexcept = default;  // leaves the other null
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket() {
      if (stop != nullptr) stop->Set(Phase::kDone);
    }
    std::shared_ptr<LoopStop> stop;
  };

  void Set(Phase p) {
    std::lock_guard<std::mutex> l(mu);
    phase = p;
    cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable cv;
  Phase phase = Phase::kQueued;  // guarded by mu
  bool taken = false;            // guarded by mu: Stop did the loop's part
};

}  // namespace

bool Poster::BeginDirect() {
  if (io_ == nullptr) return false;
  if (!direct_batch_) {
    direct_batch_ = true;
    before_batch_();
    auto end = [self = shared_from_this()] {
      self->direct_batch_ = false;
      if (self->io_ != nullptr) self->after_batch_();
    };
    if (at_end_of_work_ && at_end_of_work_(end)) return true;
    // From the loop's own thread: queued without a lock.
    asio::post(*io_, std::move(end));
  }
  return true;
}

void Poster::Post(std::function<void()> fn) {
  if (direct_) {
    if (BeginDirect()) fn();
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (io_ != nullptr) Push(Entry{std::move(fn), std::nullopt, {}, {}});
}

bool Poster::PostMessage(size_t limit, const std::weak_ptr<Topic>& topic,
                         std::string_view payload) {
  if (direct_) {
    if (BeginDirect()) on_message_(topic, payload);
    return true;
  }
  const size_t bytes = payload.size();
  std::lock_guard<std::mutex> lock(mu_);
  if (io_ == nullptr) return true;  // stopping: nothing is delivered any more
  if (message_bytes_ > 0 && message_bytes_ + bytes > limit) return false;
  message_bytes_ += bytes;
  Push(Entry{nullptr, std::nullopt, topic, std::string(payload)});
  return true;
}

void Poster::PostAnswer(PublishAnswer&& answer) {
  if (direct_) {
    if (BeginDirect()) on_answer_(answer);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (io_ != nullptr) Push(Entry{nullptr, std::move(answer), {}, {}});
}

namespace {

// Disabled Posters with answers still waiting: kept alive (and reachable)
// until their last answer comes, for good if it never does.
std::mutex& ParkedMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::vector<std::shared_ptr<Poster>>& Parked() {
  static auto* parked = new std::vector<std::shared_ptr<Poster>>;
  return *parked;
}

}  // namespace

Backend::PublishDoneFn Poster::AnswerCallback(PublishAnswer&& answer) {
  std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
  if (!direct_) lock.lock();
  uint32_t index;
  if (free_answer_slots_.empty()) {
    index = static_cast<uint32_t>(answer_slots_.size());
    answer_slots_.emplace_back();
  } else {
    index = free_answer_slots_.back();
    free_answer_slots_.pop_back();
  }
  AnswerSlot& slot = answer_slots_[index];
  slot.busy = true;
  slot.answer = std::move(answer);
  ++answers_waiting_;
  return AnswerDone(this, uint64_t{slot.use} << 32 | index);
}

size_t Poster::answers_waiting() {
  std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
  if (!direct_) lock.lock();
  return answers_waiting_;
}

void Poster::Answered(uint64_t key, std::optional<absl::Status> status) {
  std::shared_ptr<Poster> last;  // released after the lock: may be the last reference
  std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
  if (!direct_) lock.lock();
  const uint32_t index = static_cast<uint32_t>(key);
  if (index >= answer_slots_.size()) return;
  AnswerSlot& slot = answer_slots_[index];
  if (!slot.busy || slot.use != static_cast<uint32_t>(key >> 32)) return;
  PublishAnswer answer = std::move(slot.answer);
  slot.busy = false;
  ++slot.use;
  free_answer_slots_.push_back(index);
  --answers_waiting_;
  if (status.has_value()) {
    answer.status = *std::move(status);
  } else {
    answer.status = absl::UnavailableError("the node dropped the publish without an answer");
  }
  if (io_ != nullptr) {
    if (direct_ && !status.has_value()) {
      // Dropped, maybe inside the backend's Publish call or its teardown:
      // answered from a handler of its own (the rare case's allocation).
      asio::post(*io_, [self = shared_from_this(), answer = std::move(answer)]() mutable {
        if (self->BeginDirect()) self->on_answer_(answer);
      });
    } else if (direct_) {
      // No reference into the slots is held: the answer may publish again.
      if (BeginDirect()) on_answer_(answer);
    } else {
      Push(Entry{nullptr, std::move(answer), {}, {}});
    }
    return;
  }
  if (parked_ && answers_waiting_ == 0) {
    parked_ = false;
    std::lock_guard<std::mutex> parked_lock(ParkedMutex());
    auto& parked = Parked();
    for (auto& p : parked) {
      if (p.get() != this) continue;
      last = std::move(p);
      p = std::move(parked.back());
      parked.pop_back();
      break;
    }
  }
}

void Poster::Push(Entry entry) {
  queue_.push_back(std::move(entry));
  if (queue_.size() == 1) asio::post(*io_, [self = shared_from_this()] { self->RunBatch(); });
}

void Poster::RunBatch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (io_ == nullptr) return;
    running_.swap(queue_);
  }
  before_batch_();
  size_t ran_bytes = 0;
  for (auto& e : running_) {
    if (e.fn) {
      e.fn();
    } else if (e.answer.has_value()) {
      on_answer_(*e.answer);
    } else {
      on_message_(e.topic, e.payload);
      ran_bytes += e.payload.size();
    }
  }
  running_.clear();
  {
    // Given back only now: the batch's messages were in memory until here,
    // so counting them while it ran keeps queued + running within the limit.
    std::lock_guard<std::mutex> lock(mu_);
    message_bytes_ -= ran_bytes;
  }
  after_batch_();
}

void Poster::Disable() {
  std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
  if (!direct_) lock.lock();
  io_ = nullptr;
  // The backend may still call AnswerCallback's callbacks, which hold this
  // Poster's address only.
  if (answers_waiting_ > 0 && !parked_) {
    parked_ = true;
    std::lock_guard<std::mutex> parked_lock(ParkedMutex());
    Parked().push_back(shared_from_this());
  }
}

absl::Status SetListenAddress(std::string_view host_port, GatewayOptions* options) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected HOST:PORT, got '", std::string(host_port), "'"));
  }
  std::string host(host_port.substr(0, colon));
  std::string port(host_port.substr(colon + 1));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "127.0.0.1";
  long long value = 0;
  if (!ParseRedisInteger(port, &value) || value < 0 || value > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port '", port, "'"));
  }
  std::error_code ec;
  if (host != "localhost") asio::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad listen address '", host, "' (a numeric address or localhost)"));
  }
  options->listen_host = host;
  options->listen_port = static_cast<uint16_t>(value);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(Backend& backend,
                                                        GatewayOptions options) {
  auto server = std::make_unique<Server>(backend, std::move(options));
  if (absl::Status s = server->Listen(); !s.ok()) return s;
  server->Run();
  return std::unique_ptr<Gateway>(std::move(server));
}

Server::Server(Backend& backend, GatewayOptions options)
    : backend_(backend),
      options_(std::move(options)),
      own_io_(backend.loop() != nullptr && !options_.own_thread
                  ? nullptr
                  : std::make_unique<asio::io_context>(1)),
      io_(own_io_ != nullptr ? *own_io_ : *backend.loop()),
      acceptor_(io_),
      housekeeping_(io_),
      poster_(std::make_shared<Poster>(
          &io_, !own_thread(), [this] { in_callback_batch_ = true; },
          [this] {
            in_callback_batch_ = false;
            // The clients' writes wait for the loop's round to end: the
            // handlers already queued (other clients' reads, each a batch of
            // its own) run first, and a subscriber gets one write for all
            // of them, as Redis writes once per round (beforeSleep).
            if (deferred_flushes_.empty() || flush_posted_) return;
            flush_posted_ = true;
            asio::post(io_, [this, alive = std::weak_ptr<char>(alive_)] {
              if (alive.expired()) return;  // the server is gone
              flush_posted_ = false;
              FlushDeferredClients();
            });
          },
          [this](const std::weak_ptr<Topic>& topic, std::string_view payload) {
            OnTopicMessage(topic, payload);
          },
          [this](PublishAnswer& answer) { OnPublishAnswer(answer); },
          [&backend](absl::AnyInvocable<void()> fn) { return backend.AtEndOfWork(std::move(fn)); })),
      started_(absl::Now()) {
  std::random_device rd;
  node_nonce_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  log_ = options_.logger != nullptr ? options_.logger : spdlog::default_logger();
  directory_.set_limit(options_.max_cluster_patterns);
  directory_.set_max_ttl(options_.max_pattern_ttl);
}

void Server::WarnBound(std::string_view what) {
  if (!bound_warn_.Allow(absl::Now())) return;
  log_->warn("resp gateway: {} ({} warnings suppressed)", std::string(what),
             bound_warn_.suppressed());
}

Server::~Server() { Stop(); }

absl::Status Server::Listen() {
  std::string host = options_.listen_host == "localhost" ? "127.0.0.1" : options_.listen_host;
  std::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad listen address '", host, "'"));
  asio::ip::tcp::endpoint endpoint(address, options_.listen_port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", options_.listen_port, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  return absl::OkStatus();
}

void Server::Run() {
  asio::post(io_, [this] {
    StartPatternDirectory();
    Accept();
    Housekeeping();
  });
  if (own_thread()) thread_ = std::thread([this] { io_.run(); });
}

void Server::StopOnLoop() {
  stopping_ = true;
  std::error_code ec;
  acceptor_.close(ec);
  housekeeping_.cancel();
  auto clients = clients_;
  for (auto& [id, client] : clients) client->Close("gateway stopping");
  clients_.clear();
  topic_index_.clear();
  topics_.clear();  // destroys the backend subscriptions
  pattern_topics_ = 0;
  patterns_subscription_.reset();
}

void Server::Stop() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (own_thread()) {
    if (thread_.joinable()) {
      asio::post(io_, [this] {
        StopOnLoop();
        io_.stop();
      });
      thread_.join();
    }
    poster_->Disable();
    return;
  }
  // On the backend's loop, which goes on: the handlers of what StopOnLoop
  // cancelled are queued by then, and the second post runs after them, so
  // none touches the server once this returns.
  if (io_.get_executor().running_in_this_thread()) {
    // Called from the loop itself: handlers still queued see stopping_ or
    // their closed client.
    StopOnLoop();
    poster_->Disable();
    return;
  }
  auto stop = std::make_shared<LoopStop>();
  asio::post(io_, [this, ticket = LoopStop::Ticket(stop)]() mutable {
    {
      std::lock_guard<std::mutex> l(ticket.stop->mu);
      if (ticket.stop->taken) return;  // Stop did it: the server may be gone
      ticket.stop->phase = LoopStop::Phase::kRunning;
    }
    StopOnLoop();
    poster_->Disable();
    ticket.stop->Set(LoopStop::Phase::kRan);
    asio::post(io_, [ticket = std::move(ticket)] {});
  });
  std::unique_lock<std::mutex> wait(stop->mu);
  while (stop->phase != LoopStop::Phase::kDone) {
    // A ticket is alive, so the loop is too (it destroys the ticket's
    // handler before it goes, and that waits for `wait`).
    if (io_.stopped()) {
      if (stop->phase == LoopStop::Phase::kQueued) {
        stop->taken = true;
        break;
      }
      // It ran; what it cancelled waits in the stopped loop, and must not
      // run after the server is gone (gateway.h).
      if (stop->phase == LoopStop::Phase::kRan) return;
    }
    // No one tells us the loop stopped: look again now and then.
    stop->cv.wait_for(wait, std::chrono::milliseconds(10));
  }
  if (!stop->taken) return;
  wait.unlock();
  // The loop was stopped before our handler ran, so it runs nothing: its
  // part is done here.
  StopOnLoop();
  poster_->Disable();
}

GatewayStats Server::stats() const {
  GatewayStats s;
#define PETER_RESP_COPY(name) s.name = counters_.name.load();
  PETER_RESP_COPY(clients_accepted)
  PETER_RESP_COPY(clients_refused)
  PETER_RESP_COPY(clients_connected)
  PETER_RESP_COPY(commands)
  PETER_RESP_COPY(protocol_errors)
  PETER_RESP_COPY(unknown_commands)
  PETER_RESP_COPY(wrong_arity)
  PETER_RESP_COPY(auth_failures)
  PETER_RESP_COPY(noauth_rejections)
  PETER_RESP_COPY(context_rejections)
  PETER_RESP_COPY(slow_client_disconnects)
  PETER_RESP_COPY(subscribe_timeouts)
  PETER_RESP_COPY(backend_errors)
  PETER_RESP_COPY(published)
  PETER_RESP_COPY(pattern_publishes)
  PETER_RESP_COPY(messages_delivered)
  PETER_RESP_COPY(messages_encoded)
  PETER_RESP_COPY(bad_announcements)
  PETER_RESP_COPY(known_patterns)
  PETER_RESP_COPY(output_high_water)
  PETER_RESP_COPY(output_async_writes)
  PETER_RESP_COPY(reserved_rejections)
  PETER_RESP_COPY(publish_limit_waits)
  PETER_RESP_COPY(messages_dropped)
  PETER_RESP_COPY(subscription_limit_rejections)
  PETER_RESP_COPY(requests_too_big)
  PETER_RESP_COPY(pattern_directory_overflows)
  PETER_RESP_COPY(pattern_ttls_clipped)
  PETER_RESP_COPY(input_limit_pauses)
  PETER_RESP_COPY(input_bytes)
  PETER_RESP_COPY(input_high_water)
  PETER_RESP_COPY(evicted_clients)
  PETER_RESP_COPY(output_bytes)
#undef PETER_RESP_COPY
  return s;
}

void Server::Accept() {
  acceptor_.async_accept([this](const std::error_code& ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopping_ || !acceptor_.is_open()) return;
    if (!ec) {
      if (clients_.size() >= options_.max_clients) {
        counters_.clients_refused++;
        std::error_code ignored;
        // Never blocks the loop: what does not fit the socket's buffer at
        // once is not sent.
        socket.non_blocking(true, ignored);
        static constexpr std::string_view kFull = "-ERR max number of clients reached\r\n";
        asio::write(socket, asio::buffer(kFull.data(), kFull.size()), ignored);
        socket.close(ignored);
      } else {
        counters_.clients_accepted++;
        counters_.clients_connected++;
        auto client = std::make_shared<Client>(*this, std::move(socket), next_client_id_++);
        clients_[client->id()] = client;
        client->Start();
      }
    }
    Accept();
  });
}

void Server::Housekeeping() {
  absl::Time now = absl::Now();
  directory_.Expire(now);
  counters_.known_patterns = directory_.size();
  if (now - last_announce_ >= options_.pattern_refresh) Announce();
  CheckInputTurn();
  std::vector<std::shared_ptr<Client>> over_soft;
  for (const auto& [id, c] : clients_) {
    if (c->over_soft_limit()) over_soft.push_back(c);
  }
  for (const auto& c : over_soft) c->CheckSoftLimit();  // may close it
  absl::Duration tick = std::min(options_.pattern_refresh / 2, absl::Seconds(1));
  housekeeping_.expires_after(absl::ToChronoNanoseconds(tick));
  housekeeping_.async_wait([this](const std::error_code& ec) {
    if (!ec && !stopping_) Housekeeping();
  });
}

void Server::AddPublishInFlight(long delta) {
  publishes_in_flight_ += delta;
  if (delta >= 0 || publish_waiters_.empty() ||
      publishes_in_flight_ >= options_.max_publishes_in_flight) {
    return;
  }
  std::vector<std::weak_ptr<Client>> waiters;
  waiters.swap(publish_waiters_);
  for (auto& weak : waiters) {
    if (auto client = weak.lock()) client->PublishesFinished();
  }
}

void Server::WaitForPublishes(Client& client) {
  publish_waiters_.push_back(client.weak_from_this());
}

void Server::InputChanged(size_t before, size_t after) {
  input_bytes_ = input_bytes_ - before + after;
  counters_.input_bytes = input_bytes_;
  if (input_bytes_ > counters_.input_high_water) counters_.input_high_water = input_bytes_;
  if (after < before && input_bytes_ < options_.max_total_input_bytes &&
      !input_waiters_.empty() && !input_resume_posted_) {
    // Posted: this runs inside a client's read or command processing.
    input_resume_posted_ = true;
    asio::post(io_, [this] {
      if (!stopping_) ResumeInput();
    });
  }
}

void Server::OutputChanged(size_t before, size_t after) {
  output_bytes_ = output_bytes_ - before + after;
  counters_.output_bytes = output_bytes_;
  if (after > before && options_.max_total_output_bytes != 0 &&
      output_bytes_ > options_.max_total_output_bytes && !eviction_posted_) {
    // Posted, not done here: within a batch of messages every subscriber's
    // output grows (writes wait for the batch's end), and the writes the
    // batch starts complete (at once, for a client that reads) before a
    // handler posted now runs. So the clients evicted are those whose
    // output stays, not fast readers caught in the middle of a burst.
    eviction_posted_ = true;
    asio::post(io_, [this] {
      eviction_posted_ = false;
      if (stopping_) return;
      // The writes of the round come first (the flush is posted only at the
      // batch's end, after this): what a client that reads takes is not
      // counted against it.
      FlushDeferredClients();
      EvictForOutput();
    });
  }
}

// As Redis's client eviction (maxmemory-clients): the client holding most
// goes first, until the total is within the bound. A scan of the clients
// per eviction: evictions are rare, the check per change is not a scan.
void Server::EvictForOutput() {
  if (evicting_ || options_.max_total_output_bytes == 0) return;
  evicting_ = true;
  while (output_bytes_ > options_.max_total_output_bytes) {
    std::shared_ptr<Client> largest;
    for (const auto& [id, c] : clients_) {
      if (!c->closed() && (largest == nullptr || c->output_bytes() > largest->output_bytes())) {
        largest = c;
      }
    }
    if (largest == nullptr || largest->output_bytes() == 0) break;
    counters_.evicted_clients++;
    const size_t bytes = largest->output_bytes();
    WarnBound(absl::StrCat("closing client ", largest->peer(), " holding ", bytes,
                           " bytes of unsent output: all clients' output passed ",
                           options_.max_total_output_bytes, " bytes (max_total_output_bytes)"));
    largest->Close(absl::StrCat("evicted: all clients' output over max_total_output_bytes (",
                                bytes, " bytes its own)"));
  }
  evicting_ = false;
}

bool Server::MayRead(Client& client) {
  if (input_bytes_ < options_.max_total_input_bytes || input_turn_ == client.id()) return true;
  if (input_turn_ == 0 && client.finishing()) {
    input_turn_ = client.id();
    input_turn_progress_ = client.bytes_read();
    return true;
  }
  if (!client.input_waiting_) {
    client.input_waiting_ = true;
    input_waiters_.push_back(client.weak_from_this());
    counters_.input_limit_pauses++;
  }
  if (!input_paused_) {
    // Once per episode: until the total is below the bound again.
    input_paused_ = true;
    log_->warn("resp gateway: clients' buffered requests reached {} bytes "
               "(max_total_input_bytes): pausing reads until they drop",
               options_.max_total_input_bytes);
  }
  return false;
}

void Server::ResumeInput() {
  input_resume_posted_ = false;
  if (input_bytes_ >= options_.max_total_input_bytes) return;  // a later drop posts again
  std::vector<std::weak_ptr<Client>> waiters;
  waiters.swap(input_waiters_);
  for (auto& weak : waiters) {
    auto client = weak.lock();
    if (!client) continue;
    client->input_waiting_ = false;
    client->ResumeReading();
  }
  if (input_waiters_.empty() && input_paused_) {
    input_paused_ = false;
    log_->info("resp gateway: clients' buffered requests below max_total_input_bytes ({} bytes): "
               "reads resumed",
               input_bytes_);
  }
}

void Server::InputTurnOver(Client& client) {
  if (input_turn_ != client.id()) return;
  input_turn_ = 0;
  // The waiting client holding most gets the turn: finishing its request
  // frees the most.
  std::shared_ptr<Client> next;
  for (auto& weak : input_waiters_) {
    auto c = weak.lock();
    if (c && c.get() != &client && c->finishing() &&
        (next == nullptr || c->query_held() > next->query_held())) {
      next = c;
    }
  }
  if (next == nullptr) return;
  std::erase_if(input_waiters_, [&](const std::weak_ptr<Client>& w) {
    return w.lock() == next;
  });
  next->input_waiting_ = false;
  input_turn_ = next->id();
  input_turn_progress_ = next->bytes_read();
  next->ResumeReading();
}

// From housekeeping: a client that has the turn but sent nothing since the
// last tick passes it on, so a client that stops half-way through a
// request cannot hold every other one paused.
void Server::CheckInputTurn() {
  if (input_turn_ == 0) return;
  auto client = FindClient(input_turn_);
  if (client == nullptr) {
    input_turn_ = 0;
    return;
  }
  if (client->bytes_read() != input_turn_progress_) {
    input_turn_progress_ = client->bytes_read();
    return;
  }
  InputTurnOver(*client);
}

void Server::FlushDeferredClients() {
  flushing_.swap(deferred_flushes_);
  for (auto& client : flushing_) client->FlushDeferred();
  flushing_.clear();
}

void Server::DeferFlush(std::shared_ptr<Client> client) {
  deferred_flushes_.push_back(std::move(client));
}

std::shared_ptr<Client> Server::FindClient(uint64_t id) {
  auto it = clients_.find(id);
  return it == clients_.end() ? nullptr : it->second;
}

void Server::OnClientClosed(Client& client) {
  auto self = FindClient(client.id());  // keeps it alive while we clean up
  if (!self) return;
  counters_.clients_connected--;
  if (client.pending_subscribe_) FailPendingSubscribe(client, "");
  UnsubscribeAll(client, Kind::kChannel, false);
  UnsubscribeAll(client, Kind::kPattern, false);
  UnsubscribeAll(client, Kind::kShard, false);
  clients_.erase(client.id());
}

namespace {

// Redis's wording, including its truncation of long names and arguments
// and its replacement of CR/LF by blanks.
std::string UnknownCommandError(const Args& args) {
  std::string list;
  for (size_t i = 1; i < args.size() && list.size() < 128; ++i) {
    absl::StrAppend(&list, "'", args[i].substr(0, 128 - list.size()), "' ");
  }
  std::string error = absl::StrCat("ERR unknown command '", args[0].substr(0, 128),
                                   "', with args beginning with: ", list);
  for (char& c : error) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return error;
}

}  // namespace

void Server::Execute(Client& c, Args& args) {
  counters_.commands++;
  const CommandSpec* spec = FindCommand(args[0]);  // folds the case itself
  // The lower-case name, for errors and for Redis's other commands: the
  // table's own if served, else a folded copy (made only for those).
  std::string folded;
  std::string_view name = spec ? spec->name : (folded = absl::AsciiStrToLower(args[0]));
  // As Redis: the (sub)command is looked up, then its arity checked, then
  // authentication, then the RESP2 subscribed state. Redis commands the
  // gateway does not serve pass the same checks before "unknown command".
  // The name with its subcommand ("client|list") is made only for an error.
  std::string sub;
  auto full = [&] {
    std::string full_name(name);
    if (!sub.empty()) absl::StrAppend(&full_name, "|", sub);
    return full_name;
  };
  std::optional<int> arity;
  if (spec != nullptr && !spec->subcommands.empty() && args.size() >= 2) {
    sub = absl::AsciiStrToLower(args[1]);
    for (const auto& [sub_name, sub_arity] : spec->subcommands) {
      if (sub_name == sub) arity = sub_arity;
    }
    if (!arity) {
      counters_.unknown_commands++;
      std::string upper(name);
      absl::AsciiStrToUpper(&upper);
      return c.writer().Error(absl::StrCat("ERR unknown subcommand '", args[1].substr(0, 128),
                                           "'. Try ", upper, " HELP."));
    }
  } else {
    arity = spec ? std::optional<int>(spec->arity) : RedisCommandArity(name);
  }
  if (!arity) {
    counters_.unknown_commands++;
    return c.writer().Error(UnknownCommandError(args));
  }
  int n = static_cast<int>(args.size());
  if ((*arity > 0 && n != *arity) || (*arity < 0 && n < -*arity)) {
    counters_.wrong_arity++;
    return c.writer().Error(absl::StrCat("ERR wrong number of arguments for '", full(),
                                         "' command"));
  }
  unsigned flags = spec ? spec->flags : 0;
  if (!c.authenticated_ && !(flags & kNoAuth)) {
    counters_.noauth_rejections++;
    return c.writer().Error("NOAUTH Authentication required.");
  }
  if (c.protocol_ == 2 && c.in_pubsub_mode() && !(flags & kPubSubContext)) {
    counters_.context_rejections++;
    return c.writer().Error(absl::StrCat(
        "ERR Can't execute '", full(),
        "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
        "context"));
  }
  if (spec == nullptr) {
    counters_.unknown_commands++;
    return c.writer().Error(UnknownCommandError(args));
  }
  switch (spec->id) {
    case CommandId::kPing: return Ping(c, args);
    case CommandId::kEcho: return Echo(c, args);
    case CommandId::kQuit: return Quit(c, args);
    case CommandId::kReset: return Reset(c, args);
    case CommandId::kAuth: return Auth(c, args);
    case CommandId::kHello: return Hello(c, args);
    case CommandId::kClient: return ClientCmd(c, args);
    case CommandId::kSelect: return Select(c, args);
    case CommandId::kCommand: return CommandCmd(c, args);
    case CommandId::kInfo: return Info(c, args);
    case CommandId::kSubscribe: return Subscribe(c, args, Kind::kChannel);
    case CommandId::kPsubscribe: return Subscribe(c, args, Kind::kPattern);
    case CommandId::kSsubscribe: return Subscribe(c, args, Kind::kShard);
    case CommandId::kUnsubscribe: return Unsubscribe(c, args, Kind::kChannel);
    case CommandId::kPunsubscribe: return Unsubscribe(c, args, Kind::kPattern);
    case CommandId::kSunsubscribe: return Unsubscribe(c, args, Kind::kShard);
    case CommandId::kPublish: return Publish(c, args, Kind::kChannel);
    case CommandId::kSpublish: return Publish(c, args, Kind::kShard);
    case CommandId::kPubsub: return PubsubCmd(c, args);
  }
}

}  // namespace peter::resp

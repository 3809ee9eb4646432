#include "pubsub/resp/client.h"

#include <cassert>

#include "absl/strings/str_cat.h"
#include "pubsub/resp/command_table.h"

namespace peter::resp {
namespace {

std::string EndpointText(const asio::ip::tcp::endpoint& e) {
  if (e.address().is_v6()) return absl::StrCat("[", e.address().to_string(), "]:", e.port());
  return absl::StrCat(e.address().to_string(), ":", e.port());
}

}  // namespace

Client::Client(Server& server, asio::ip::tcp::socket socket, uint64_t id)
    : pending_timer_(server.io()),
      server_(server),
      socket_(std::move(socket)),
      id_(id),
      parser_(server.options().parser),
      created_(absl::Now()) {
  std::error_code ec;
  auto remote = socket_.remote_endpoint(ec);
  if (!ec) peer_ = EndpointText(remote);
  auto local = socket_.local_endpoint(ec);
  if (!ec) local_ = EndpointText(local);
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  // Write() tries the socket at once; asynchronous operations are unchanged.
  socket_.non_blocking(true, ec);
  set_authenticated(server.options().requirepass.empty());
  parser_.set_lend_rule(&LendsMessage);
  last_command_ = created_;
}

void Client::Start() { Read(); }

void Client::Read() {
  if (reading_ || closed_ || closing_) return;
  // While a command waits or output is backed up, requests are not run, but
  // a little more is read, so a client that goes away is noticed (and its
  // subscriptions dropped) at once.
  if (throttled() && parser_.buffered() >= kThrottledReadLimit) return;
  if (!server_.MayRead(*this)) return;
  reading_ = true;
  // Waits for the socket, then reads (OnReadable) into the server's shared
  // buffer: no client keeps a read buffer of its own.
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this()](const std::error_code& ec) {
                       self->OnReadable(ec);
                     });
}

void Client::OnReadable(std::error_code ec) {
  reading_ = false;
  if (closed_) return;
  char* buffer = server_.read_buffer();
  size_t n = 0;
  if (!ec) n = socket_.read_some(asio::buffer(buffer, Server::kReadBytes), ec);
  // Readable, then nothing there (the non-blocking socket says so): wait again.
  if (ec == asio::error::would_block || ec == asio::error::try_again) return Read();
  if (ec) return Close(ec == asio::error::eof ? "closed by client" : ec.message());
  bytes_read_ += n;
  parser_.Feed(std::string_view(buffer, n));
  CountInput();
  Server& server = server_;
  server.BeginPublishes();
  ProcessInput();
  server.EndPublishes();
}

bool Client::throttled() const {
  return blocked_ || pending_publish_ || output_bytes() >= server_.options().output_pause_bytes;
}

void Client::CountInput() {
  const size_t held = parser_.held();
  if (held == input_counted_) return;
  server_.InputChanged(input_counted_, held);
  input_counted_ = held;
}

void Client::ProcessInput() {
  // A closed client's handlers touch the server no more: it may be gone.
  if (closed_) return;
  // The clock is read once per batch of commands (CLIENT INFO's idle time
  // needs no more), not per command.
  bool stamped = false;
  while (!closed_ && !closing_ && !throttled()) {
    RequestParser::Result r = parser_.Next(&args_);
    if (r == RequestParser::Result::kNeedMore) break;
    if (r == RequestParser::Result::kError) {
      CountInput();
      server_.counters().protocol_errors++;
      if (parser_.request_too_big()) {
        server_.counters().requests_too_big++;
        server_.WarnBound(absl::StrCat("closing a client whose request is over ",
                                       server_.options().parser.max_request_bytes,
                                       " bytes (max_request_bytes)"));
      }
      writer().Error(absl::StrCat("ERR ", parser_.error()));
      CloseAfterReply();
      return;
    }
    if (!stamped) {
      last_command_ = absl::Now();
      stamped = true;
    }
    server_.Execute(*this, args_);
  }
  CountInput();
  // A turn at the input bound lasts one request (stamped: a command ran):
  // then the next client's.
  if (stamped || !finishing()) server_.InputTurnOver(*this);
  Flush();
  Read();
}

void Client::Resume() {
  blocked_ = false;
  ScheduleProcessInput();
}

void Client::ScheduleProcessInput() {
  if (closed_) return;
  // Deferred: this may be called from inside a command's completion.
  asio::post(server_.io(), [self = shared_from_this()] { self->ProcessInput(); });
}

void Client::PublishesFinished() {
  if (!pending_publish_ || closed_ || !TakePublishes(pending_publish_->sends.size())) return;
  PendingPublish publish = std::move(*pending_publish_);
  pending_publish_.reset();
  server_.SendPublish(*this, std::move(publish));
  ScheduleProcessInput();
}

bool Client::TakePublishes(size_t n) {
  const GatewayOptions& o = server_.options();
  const size_t all = server_.publishes_in_flight();
  const bool own_fits =
      node_publishes_ == 0 || node_publishes_ + n <= o.max_client_publishes_in_flight;
  if (own_fits && (all == 0 || all + n <= o.max_publishes_in_flight)) {
    node_publishes_ += n;
    server_.AddPublishInFlight(static_cast<long>(n));
    return true;
  }
  // Over its own limit, its own answers wake it (CompleteReply); at the
  // gateway-wide one, other clients' answers.
  if (own_fits) server_.WaitForPublishes(*this);
  return false;
}

void Client::Send(std::string_view bytes) {
  if (closed_) return;
  OutputTarget()->append(bytes);
  Flush();
}

// After QUIT (or a protocol error) its reply is the last thing the client
// gets, as in Redis (prepareClientToWrite refuses a client marked
// CLIENT_CLOSE_AFTER_REPLY): later output, a message pushed to a subscriber
// above all, is discarded. Replies reserved before it (a PUBLISH's) are
// still filled by CompleteReply and sent ahead of it.
std::string* Client::OutputTarget() {
  if (closing_) {
    discarded_.clear();
    return &discarded_;
  }
  if (replies_.empty()) return &out_;
  if (!replies_.back().done) PushSlot(true);
  return &replies_.back().bytes;
}

// A RESP3 push is typed, so the client tells it from replies wherever it
// comes, as Redis clients expect: Redis writes every reply at once, and a
// message never waits for one. So it waits neither for a PUBLISH's reply,
// unless something it must follow waits there: a fence, or an earlier push
// (messages keep their order).
std::string* Client::PushTarget() {
  if (closing_) return OutputTarget();
  if (protocol_ == 3 && replies_base_ >= push_fence_) return &out_;
  std::string* target = OutputTarget();
  push_fence_ = replies_base_ + replies_.size();
  return target;
}

void Client::FencePushes() {
  if (replies_.empty()) return;
  OutputTarget();
  push_fence_ = replies_base_ + replies_.size();
}

// Only the tail slot grows (OutputTarget): the others are summed as they
// close, so this is not a walk of the queue per command.
size_t Client::QueuedBytes() const {
  return replies_.empty() ? 0 : queued_closed_ + replies_.back().bytes.size();
}

void Client::PushSlot(bool done) {
  if (!replies_.empty()) queued_closed_ += replies_.back().bytes.size();
  replies_.push_back(done);
}

uint64_t Client::ReserveReply() {
  PushSlot(false);
  ++unfinished_;
  return replies_base_ + replies_.size() - 1;
}

std::string* Client::ReplyPlace(uint64_t ticket) {
  if (closed_ || ticket < replies_base_ || ticket - replies_base_ >= replies_.size()) {
    return nullptr;
  }
  ReplySlot& slot = replies_[ticket - replies_base_];
  if (slot.done) return nullptr;
  return ticket == replies_base_ ? &out_ : &slot.bytes;
}

void Client::CompleteReply(uint64_t ticket) {
  assert(ticket >= replies_base_ && ticket - replies_base_ < replies_.size() &&
         "CompleteReply: a place not held (ReplyPlace returned null)");
  ReplySlot& slot = replies_[ticket - replies_base_];
  assert(!slot.done && "CompleteReply: a place filled already");
  slot.done = true;
  if (&slot != &replies_.back()) queued_closed_ += slot.bytes.size();
  --unfinished_;
  while (!replies_.empty() && replies_.front().done) {
    if (!replies_.front().bytes.empty()) out_.append(replies_.front().bytes);
    if (replies_.size() > 1) queued_closed_ -= replies_.front().bytes.size();
    replies_.pop_front();
    ++replies_base_;
  }
  if (replies_.empty()) queued_closed_ = 0;
  Flush();
  PublishesFinished();
}

void Client::Flush() {
  if (closed_) return;
  CheckOutputLimits();
  if (closed_) return;
  if (server_.in_callback_batch()) {
    // One write per client for the whole batch, after it.
    if (!flush_deferred_) {
      flush_deferred_ = true;
      server_.DeferFlush(shared_from_this());
    }
    return;
  }
  Write();
}

void Client::FlushDeferred() {
  flush_deferred_ = false;
  if (!closed_) Write();
}

void Client::CountOutput() {
  const size_t bytes = closed_ ? 0 : output_bytes();
  if (bytes == output_counted_) return;
  const size_t before = output_counted_;
  output_counted_ = bytes;
  server_.OutputChanged(before, bytes);
}

void Client::CheckOutputLimits() {
  const GatewayOptions& o = server_.options();
  size_t bytes = output_bytes();
  if (bytes > server_.counters().output_high_water) server_.counters().output_high_water = bytes;
  bool over = bytes > o.output_hard_limit;
  if (bytes > o.output_soft_limit) {
    auto now = std::chrono::steady_clock::now();
    if (!soft_since_) soft_since_ = now;
    if (now - *soft_since_ >= absl::ToChronoNanoseconds(o.output_soft_limit_time)) over = true;
  } else {
    soft_since_.reset();
  }
  if (over) {
    server_.counters().slow_client_disconnects++;
    server_.WarnBound(absl::StrCat("closing client ", peer_, ": ", bytes,
                                   " bytes of output unsent (output buffer limits)"));
    Close(absl::StrCat("output buffer over its limit (", bytes, " bytes)"));
    return;
  }
  CountOutput();  // the gateway-wide bound
}

// Writes at once what the socket takes (it is non-blocking): a reply or a
// message usually leaves here, with no completion handler to run later.
// Only what the socket does not take waits for an asynchronous write.
void Client::Write() {
  if (closed_ || !writing_.empty()) return;
  if (out_.empty()) {
    if (closing_ && replies_.empty()) Close("closed after reply");
    return;
  }
  const bool was_paused = output_bytes() >= server_.options().output_pause_bytes;
  std::error_code ec;
  size_t n = socket_.write_some(asio::buffer(out_), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    n = 0;
    ec.clear();
  }
  if (ec) return Close(ec.message());
  if (n == out_.size()) {
    out_.clear();
    AfterWrite();
    if (closed_) return;
    if (closing_ && replies_.empty()) return Close("closed after reply");
    // Reads paused for this output resume (not from here: a command may be
    // running).
    if (was_paused && output_bytes() < server_.options().output_pause_bytes) {
      ScheduleProcessInput();
    }
    return;
  }
  out_.erase(0, n);
  writing_.swap(out_);
  CountOutput();  // less what the kernel took
  server_.counters().output_async_writes++;
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this()](const std::error_code& ec, size_t) {
                      if (self->closed_) return;
                      self->writing_.clear();
                      if (ec) return self->Close(ec.message());
                      self->AfterWrite();
                      self->Write();
                      self->ProcessInput();
                    });
}

void Client::AfterWrite() {
  CountOutput();
  if (output_bytes() < server_.options().output_soft_limit) soft_since_.reset();
}

void Client::CloseAfterReply() {
  closing_ = true;
  Flush();
}

void Client::Close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  std::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  pending_timer_.cancel();
  out_.clear();
  server_.InputChanged(input_counted_, 0);
  input_counted_ = 0;
  server_.InputTurnOver(*this);
  // The gateway-wide count is given back as the node answers each PUBLISH,
  // not here: the node still holds them until then.
  unfinished_ = 0;
  node_publishes_ = 0;
  pending_publish_.reset();
  replies_.clear();
  queued_closed_ = 0;
  CountOutput();
  server_.OnClientClosed(*this);
}

}  // namespace peter::resp

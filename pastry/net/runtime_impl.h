// Private to pastry/net: the NodeRuntime implementation.
//
// Everything below the public API runs on one thread, which runs io_: the
// node, the transport and its connections, the tick timer. Public methods
// post to it; the blocking ones wait on a future. The only state shared with
// other threads is the activation status (mu_) and members fixed before the
// thread starts (self_, listen_).
#ifndef PETER_PASTRY_NET_RUNTIME_IMPL_H_
#define PETER_PASTRY_NET_RUNTIME_IMPL_H_

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pastry/net/asio_util.h"
#include "pastry/net/loop_call.h"
#include "pastry/net/node_runtime.h"
#include "pastry/net/transport.h"

namespace peter::pastry::net {

// The core's clock: absl::Time advancing with the steady clock from the
// runtime's start (immune to wall-clock steps), starting at the wall-clock
// time then.
//
// Read once per batch of work: while a Batch is open (one per handler the
// loop runs into the node: a received message, a tick, a posted function),
// Now() is the time read when it opened, not a fresh clock_gettime per timer
// and deadline (14% of a one-node publish's CPU, docs/benchmarks.md). Outside
// a batch it reads the clock. Loop thread only.
class SteadyClock : public Clock {
 public:
  SteadyClock();
  absl::Time Now() const override {
    return batch_now_.has_value() ? *batch_now_ : ToAbsl(std::chrono::steady_clock::now());
  }
  absl::Time ToAbsl(SteadyTime t) const;
  // Whether a Batch is open: the loop is inside a call into the node.
  bool in_batch() const { return batch_now_.has_value(); }

  // Opens a batch unless one is open already (then it keeps the outer one's
  // time: a nested handler is part of the same batch).
  class Batch {
   public:
    explicit Batch(SteadyClock& clock) : clock_(clock), outer_(clock.batch_now_.has_value()) {
      if (!outer_) clock_.batch_now_ = clock_.ToAbsl(std::chrono::steady_clock::now());
    }
    ~Batch() {
      if (!outer_) clock_.batch_now_.reset();
    }
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

   private:
    SteadyClock& clock_;
    bool outer_;
  };
  // Clamped to at most an hour from now (deadlines may be InfiniteFuture).
  SteadyTime ToSteady(absl::Time t) const;

 private:
  absl::Time wall_start_;
  SteadyTime steady_start_;
  std::optional<absl::Time> batch_now_;
};

class RuntimeImpl final : public NodeRuntime {
 public:
  // `security` null: plain TCP.
  RuntimeImpl(RuntimeOptions options, std::shared_ptr<spdlog::logger> logger,
              std::shared_ptr<const PeerSecurity> security);
  ~RuntimeImpl() override;

  // Binds, creates the node and starts the thread. Called once, by Start().
  absl::Status Init(const Endpoint& listen, std::optional<Endpoint> advertise,
                    std::vector<Endpoint> bootstraps);

  void Leave(absl::Duration timeout) override;
  absl::Status WaitUntilActive(absl::Duration timeout) override;
  NodeHandle self() const override { return self_; }
  Endpoint listen_endpoint() const override { return listen_; }
  void Post(std::function<void(Node&)> fn) override;
  asio::io_context& io_context() override { return io_; }
  bool OnNodeThread() const override { return OnLoopThread(); }
  bool RunHere(absl::FunctionRef<void(Node&)> fn) override;
  bool AtEndOfCall(absl::AnyInvocable<void()> fn) override;
  bool RunAsCall(absl::FunctionRef<void(Node&)> fn) override;
  absl::StatusOr<Node::LookupResult> Lookup(const NodeId& key, absl::Duration timeout) override;
  NodeSnapshot Snapshot() override;

 private:
  bool OnLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }
  // Runs `fn` on the loop thread and returns its result; `on_stop` if the
  // loop was stopped (io_context::stop) before `fn` started, or destroyed:
  // then `fn` never runs (CallOnLoop). REQUIRES: not on the loop thread.
  template <typename F>
  auto Call(F fn, decltype(fn()) on_stop) -> decltype(fn());

  // Jobs the node runs in one handler of the loop (Node::Tick): what is
  // left runs in a Tick posted behind the loop's other handlers (socket
  // reads, posted calls), so that a timer scheduling itself again at no
  // delay cannot keep them waiting. Large enough that the work a call or a
  // burst of messages makes due at once still runs in the same handler.
  static constexpr size_t kMaxJobsPerTick = 1024;

  // On the loop thread.
  void Begin();
  void Shutdown();
  void AfterNodeCall();
  // A call of Post()'s or RunAsCall()'s: `fn`, the work it made due, then
  // the end-of-call functions.
  void RunCall(absl::FunctionRef<void(Node&)> fn);
  // Runs the node's work that is due now, once (only where no caller's
  // frame is on the stack: a posted call).
  void RunDueWork();
  void ArmTimer();
  void OnConnectResult(const Endpoint& endpoint, bool ok, const std::string& error);
  void OnBootstrapDeadline();
  NodeSnapshot TakeSnapshot() const;

  RuntimeOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  // Run by one thread only (concurrency hint 1): Asio then queues what a
  // handler posts to its own loop without taking the scheduler's mutex.
  // Other threads still post through the mutex.
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  SteadyClock clock_;
  TcpTransport transport_;
  asio::steady_timer tick_timer_;
  asio::steady_timer bootstrap_timer_;
  std::unique_ptr<Node> node_;  // after transport_: destroyed before it
  NodeHandle self_;
  Endpoint listen_;
  absl::Time started_;

  // Loop thread only.
  std::vector<Endpoint> bootstraps_;
  bool bootstrap_reached_ = false;
  std::string last_bootstrap_error_;
  bool timer_armed_ = false;
  bool tick_posted_ = false;  // a Tick() for work already due is queued
  SteadyTime armed_at_{};
  absl::Time armed_deadline_;  // the node's deadline armed_at_ was for
  bool stopping_ = false;
  bool was_active_ = false;
  bool was_departed_ = false;
  // Where RunCall is: running the call (AtEndOfCall queues), then its
  // end-of-call functions (RunAsCall refuses: it would run them again).
  enum class CallPhase { kNone, kCall, kEndOfCall };
  CallPhase call_phase_ = CallPhase::kNone;
  std::vector<absl::AnyInvocable<void()>> end_of_call_;  // its capacity kept

  std::mutex mu_;
  std::condition_variable cv_;
  bool active_ = false;       // guarded by mu_
  absl::Status join_failure_; // guarded by mu_
  bool departed_ = false;     // guarded by mu_

  std::thread thread_;
};

template <typename F>
auto RuntimeImpl::Call(F fn, decltype(fn()) on_stop) -> decltype(fn()) {
  return CallOnLoop(
      [this](auto handler) { asio::post(io_, std::move(handler)); },
      [this] { return io_.stopped(); }, std::move(fn), std::move(on_stop));
}

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_RUNTIME_IMPL_H_

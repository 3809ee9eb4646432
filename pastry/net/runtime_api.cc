// NodeRuntime's thread-safe API: each call posts to the loop thread.
#include <algorithm>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pastry/net/runtime_impl.h"

namespace peter::pastry::net {

void RuntimeImpl::Post(std::function<void(Node&)> fn) {
  asio::post(io_, [this, fn = std::move(fn)] {
    if (stopping_) return;
    RunCall(fn);
  });
}

bool RuntimeImpl::RunAsCall(absl::FunctionRef<void(Node&)> fn) {
  // Not from an end-of-call function either: RunCall would run the ones
  // before it again.
  if (stopping_ || clock_.in_batch() || call_phase_ == CallPhase::kEndOfCall) return false;
  RunCall(fn);
  return true;
}

void RuntimeImpl::RunCall(absl::FunctionRef<void(Node&)> fn) {
  {
    SteadyClock::Batch batch(clock_);
    call_phase_ = CallPhase::kCall;
    fn(*node_);
    RunDueWork();
    AfterNodeCall();
  }
  // Outside the call: what these run is not the node's work (and what
  // they ask AtEndOfCall for they post themselves).
  call_phase_ = CallPhase::kEndOfCall;
  for (size_t i = 0; i < end_of_call_.size(); ++i) end_of_call_[i]();
  end_of_call_.clear();
  call_phase_ = CallPhase::kNone;
}

bool RuntimeImpl::AtEndOfCall(absl::AnyInvocable<void()> fn) {
  if (call_phase_ != CallPhase::kCall) return false;
  end_of_call_.push_back(std::move(fn));
  return true;
}

// A posted call is a handler of its own, with nothing of the caller's on
// the stack: the work it made due at once (Scribe's messages to its own
// node, deferred callbacks) runs here rather than in a Tick() posted after
// it, which cost a round through the loop's queue (and its lock) per
// publish of a one-node gateway (docs/benchmarks.md). One Tick(), as the
// posted one was: what it leaves due goes through the loop as before.
void RuntimeImpl::RunDueWork() {
  if (stopping_ || node_->NextDeadline() > clock_.Now()) return;
  node_->Tick(kMaxJobsPerTick);
}

bool RuntimeImpl::RunHere(absl::FunctionRef<void(Node&)> fn) {
  if (stopping_ || clock_.in_batch()) return false;
  SteadyClock::Batch batch(clock_);
  fn(*node_);
  AfterNodeCall();
  return true;
}

absl::Status RuntimeImpl::WaitUntilActive(absl::Duration timeout) {
  if (OnLoopThread()) return absl::FailedPreconditionError("WaitUntilActive on the node's thread");
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, ToChrono(timeout), [&] { return active_ || departed_ || !join_failure_.ok(); });
  if (active_) return absl::OkStatus();
  if (departed_) return absl::FailedPreconditionError("the node has left the ring");
  if (!join_failure_.ok()) return join_failure_;
  return absl::DeadlineExceededError(
      absl::StrCat("node not active after ", absl::FormatDuration(timeout)));
}

absl::StatusOr<Node::LookupResult> RuntimeImpl::Lookup(const NodeId& key,
                                                       absl::Duration timeout) {
  if (OnLoopThread()) return absl::FailedPreconditionError("Lookup on the node's thread");
  using Result = absl::StatusOr<Node::LookupResult>;
  auto promise = std::make_shared<std::promise<Result>>();
  std::future<Result> result = promise->get_future();
  asio::post(io_, [this, key, timeout, promise] {
    if (stopping_ || node_->departed()) {
      promise->set_value(absl::CancelledError("node stopped or left"));
      return;
    }
    SteadyClock::Batch batch(clock_);
    node_->Lookup(key, timeout, [promise](Result r) { promise->set_value(std::move(r)); });
    AfterNodeCall();
  });
  // The node answers within `timeout` (DeadlineExceeded); the margin covers
  // a busy loop.
  if (result.wait_for(ToChrono(timeout + absl::Seconds(1))) != std::future_status::ready) {
    return absl::DeadlineExceededError("lookup: no answer from the node's thread");
  }
  try {
    return result.get();
  } catch (const std::future_error&) {  // the node was destroyed meanwhile
    return absl::CancelledError("node stopped");
  }
}

NodeSnapshot RuntimeImpl::TakeSnapshot() const {
  NodeSnapshot s;
  s.self = self_;
  s.active = node_->active();
  const LeafSet& leaves = node_->leaf_set();
  for (const auto* half : {&leaves.left(), &leaves.right()}) {
    for (const NodeHandle& n : *half) {
      bool seen = false;
      for (const NodeHandle& m : s.leaf_set) seen = seen || m.id == n.id;
      if (!seen) s.leaf_set.push_back(n);
    }
  }
  node_->routing_table().ForEach([&](int row, int col, const RoutingTable::Entry& e) {
    s.routing_table.push_back(NodeSnapshot::TableEntry{row, col, e.node, e.rtt_us});
  });
  s.stats = node_->stats();
  s.transport = transport_.stats();
  s.uptime = clock_.Now() - started_;
  return s;
}

NodeSnapshot RuntimeImpl::Snapshot() {
  if (OnLoopThread()) return TakeSnapshot();  // already on the thread: no need to post
  // A stopped loop: what is known without it.
  NodeSnapshot stopped;
  stopped.self = self_;
  return Call([this] { return TakeSnapshot(); }, std::move(stopped));
}

void RuntimeImpl::Leave(absl::Duration timeout) {
  Post([](Node& node) { node.Leave(); });
  if (OnLoopThread()) return;
  // Wait until what Leave() queued has been written to the sockets or
  // dropped with its connection (TcpTransport::WhenDrained), asked on the
  // loop behind the Leave. A loop stopped before it was asked answers at
  // once; one stopped while waiting is seen within 10 ms, as in Call.
  auto drained = std::make_shared<std::promise<void>>();
  std::future<void> done = drained->get_future();
  const bool asked = Call(
      [this, drained] {
        transport_.WhenDrained([drained] { drained->set_value(); });
        return true;
      },
      false);
  if (!asked) return;
  const auto deadline = std::chrono::steady_clock::now() + ToChrono(timeout);
  while (done.wait_until(std::min(deadline, std::chrono::steady_clock::now() +
                                                std::chrono::milliseconds(10))) !=
             std::future_status::ready &&
         !io_.stopped() && std::chrono::steady_clock::now() < deadline) {
  }
}

}  // namespace peter::pastry::net

// Private to the runtime and its embedding (pastry/net, pubsub/node): a
// blocking call into a loop thread that may have been stopped. Not a public
// header; needs no Asio (how to post and how to tell a stopped loop are
// given by the caller).
#ifndef PETER_PASTRY_NET_LOOP_CALL_H_
#define PETER_PASTRY_NET_LOOP_CALL_H_

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <utility>

namespace peter::pastry::net {

// Runs `fn` on a loop thread and returns its result, or `on_stop` if the
// loop will not run it:
//   - `post(handler)` hands the loop a `void()` handler (copyable) to run
//     once. A loop that destroys the handler unrun (it stopped for good)
//     makes the call return `on_stop`.
//   - `stopped()` tells, from the calling thread, whether the loop was
//     stopped (io_context::stop) without being destroyed: such a loop
//     neither runs nor drops the handler, and no one says so, so it is asked
//     now and then (every 10 ms) while the call waits. If the handler had
//     not started then, the call returns `on_stop` and `fn` never runs, even
//     if the loop runs the handler later; if it had, the call waits for
//     `fn`'s result.
// So `fn` may borrow the caller's frame: it runs only while the call waits.
// REQUIRES: not on the loop thread (the call would wait for itself).
template <typename T, typename Post, typename Stopped, typename F>
T CallOnLoop(Post&& post, Stopped&& stopped, F fn, T on_stop) {
  struct Ticket {
    std::mutex mu;
    bool started = false;  // guarded by mu
    bool taken = false;    // guarded by mu: the call returned on_stop
  };
  auto ticket = std::make_shared<Ticket>();
  // Owned by the handler (and its copies) alone: a handler destroyed unrun
  // breaks it.
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> result = promise->get_future();
  post([ticket, promise = std::move(promise), fn = std::move(fn)]() mutable {
    {
      std::lock_guard<std::mutex> lock(ticket->mu);
      if (ticket->taken) return;
      ticket->started = true;
    }
    promise->set_value(fn());
  });
  while (result.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) {
    if (!stopped()) continue;
    std::lock_guard<std::mutex> lock(ticket->mu);
    if (!ticket->started) {
      ticket->taken = true;
      return on_stop;
    }
    // Started before the loop stopped: it finishes.
  }
  try {
    return result.get();
  } catch (const std::future_error&) {  // dropped unrun
    return on_stop;
  }
}

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_LOOP_CALL_H_

// For the tests of blocking calls into a loop that was stopped
// (io_context::stop) but not destroyed: runs such a call on a thread of its
// own, so that a hang fails the test instead of hanging it.
#ifndef PETER_TESTS_PASTRY_NET_STOPPED_LOOP_CALL_H_
#define PETER_TESTS_PASTRY_NET_STOPPED_LOOP_CALL_H_

#include <chrono>
#include <future>
#include <optional>
#include <thread>

#include "asio/io_context.hpp"

namespace peter::pastry::net::testing {

// Runs `call` on a thread of its own and returns its result once it has
// returned, within 20 s. If it still waits then (for the stopped `loop`),
// runs the loop again on another thread until the call has returned, and
// returns nullopt: the caller fails the test.
template <typename T, typename F>
std::optional<T> CallBesideStoppedLoop(asio::io_context& loop, F call) {
  std::promise<T> done;
  std::thread caller([&] { done.set_value(call()); });
  std::future<T> result = done.get_future();
  if (result.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    loop.restart();
    std::thread runner([&] { loop.run(); });
    result.wait();
    loop.stop();
    runner.join();
    caller.join();
    return std::nullopt;
  }
  caller.join();
  return result.get();
}

}  // namespace peter::pastry::net::testing

#endif  // PETER_TESTS_PASTRY_NET_STOPPED_LOOP_CALL_H_

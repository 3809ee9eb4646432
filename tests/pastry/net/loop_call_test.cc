// CallOnLoop (pastry/net/loop_call.h), the blocking call RuntimeImpl::Call
// and NodeImpl::Call share, against a loop the test plays by hand: handlers
// are queued, run or dropped when the test says.
#include "pastry/net/loop_call.h"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace peter::pastry::net {
namespace {

// A loop that queues what is posted and is stopped when told.
struct HandLoop {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::function<void()>> queued;  // guarded by mu
  std::atomic<bool> stopped{false};
  std::atomic<int> stopped_asked{0};  // stopped() calls that answered true

  auto Post() {
    return [this](std::function<void()> handler) {
      std::lock_guard<std::mutex> lock(mu);
      queued.push_back(std::move(handler));
      cv.notify_all();
    };
  }
  auto Stopped() {
    return [this] {
      const bool s = stopped.load();
      if (s) ++stopped_asked;
      return s;
    };
  }
  // Waits for a posted handler and takes it.
  std::function<void()> Take() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !queued.empty(); });
    std::function<void()> h = std::move(queued.back());
    queued.pop_back();
    return h;
  }
};

TEST(LoopCallTest, ReturnsTheResultOfTheFunctionTheLoopRan) {
  HandLoop loop;
  std::thread runner([&] { loop.Take()(); });
  EXPECT_EQ(CallOnLoop(loop.Post(), loop.Stopped(), [] { return 7; }, -1), 7);
  runner.join();
}

TEST(LoopCallTest, AStoppedLoopGetsOnStopAndTheFunctionNeverRunsLater) {
  HandLoop loop;
  loop.stopped = true;
  bool ran = false;
  // Returns without anyone running the loop.
  EXPECT_EQ(CallOnLoop(loop.Post(), loop.Stopped(), [&] { ran = true; return 7; }, -1), -1);
  // The loop restarted (io_context::restart) runs the handler: `fn` must not
  // run, since it borrows a frame that is gone.
  std::function<void()> handler;
  {
    std::lock_guard<std::mutex> lock(loop.mu);
    ASSERT_EQ(loop.queued.size(), 1u);
    handler = std::move(loop.queued.front());
    loop.queued.clear();
  }
  handler();
  EXPECT_FALSE(ran);
}

TEST(LoopCallTest, AHandlerDroppedUnrunGetsOnStop) {
  HandLoop loop;
  // The loop destroys what it was given (a stopping runtime drops posts).
  // Waited for good before CallOnLoop gave the promise to the handler alone
  // (the caller kept a reference, so dropping the handler broke nothing).
  auto post = [](std::function<void()> handler) { handler = nullptr; };
  EXPECT_EQ(CallOnLoop(post, loop.Stopped(), [] { return 7; }, -1), -1);
}

TEST(LoopCallTest, AFunctionStartedBeforeTheLoopStoppedIsWaitedFor) {
  HandLoop loop;
  // `fn` stops the loop and finishes only once the caller has seen it
  // stopped: the caller must still return its result.
  std::thread runner([&] { loop.Take()(); });
  const int got = CallOnLoop(
      loop.Post(), loop.Stopped(),
      [&] {
        loop.stopped = true;
        while (loop.stopped_asked.load() == 0) std::this_thread::yield();
        return 7;
      },
      -1);
  runner.join();
  EXPECT_EQ(got, 7);
}

}  // namespace
}  // namespace peter::pastry::net

#include "pubsub/node/delivery_thread.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "gtest/gtest.h"

namespace peter::node_internal {
namespace {

// A latch the test opens; tasks block on it.
class Gate {
 public:
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

TEST(DeliveryThread, RunsTasksInOrderOffTheCallingThread) {
  DeliveryThread thread;
  std::vector<int> order;
  Gate done;
  for (int i = 0; i < 100; ++i) {
    thread.Post([&, i] {
      EXPECT_TRUE(thread.OnThread());
      order.push_back(i);
      if (i == 99) done.Open();
    });
  }
  done.Wait();
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
  EXPECT_FALSE(thread.OnThread());
}

TEST(DeliveryThread, CancelDropsQueuedTasksAndWaitsForTheRunningOne) {
  DeliveryThread thread;
  DeliveryThread::Owner owner;
  Gate started, release;
  std::atomic<int> ran{0};
  std::atomic<bool> finished{false};
  thread.Post([&] {
    started.Open();
    release.Wait();
    ran++;
    finished = true;
  }, &owner);
  for (int i = 0; i < 10; ++i) thread.Post([&] { ran++; }, &owner);
  started.Wait();
  std::thread canceller([&] {
    thread.Cancel(&owner);
    // Cancel returned: the running task has finished, no other starts.
    EXPECT_TRUE(finished.load());
  });
  // Posting for the owner fails once Cancel() has marked it; only then
  // let the running task finish.
  while (thread.Post([] {}, &owner)) {
  }
  release.Open();
  canceller.join();
  Gate flushed;
  thread.Post([&] { flushed.Open(); });
  flushed.Wait();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_FALSE(thread.Post([&] { ran++; }, &owner));  // dropped: cancelled
  Gate flushed2;
  thread.Post([&] { flushed2.Open(); });
  flushed2.Wait();
  EXPECT_EQ(ran.load(), 1);
}

TEST(DeliveryThread, CancelFromItsOwnTaskDoesNotDeadlock) {
  DeliveryThread thread;
  DeliveryThread::Owner owner;
  Gate done;
  int after = 0;
  thread.Post([&] { thread.Cancel(&owner); }, &owner);
  thread.Post([&] { ++after; }, &owner);
  thread.Post([&] { done.Open(); });
  done.Wait();
  EXPECT_EQ(after, 0);
}

TEST(DeliveryThread, StopDropsQueuedTasks) {
  auto thread = std::make_unique<DeliveryThread>();
  Gate started, release;
  int ran = 0;
  thread->Post([&] {
    started.Open();
    release.Wait();
    ++ran;
  });
  for (int i = 0; i < 5; ++i) thread->Post([&] { ++ran; });
  started.Wait();
  std::thread stopper([&] { thread->Stop(); });
  // Post fails once Stop() has dropped the queue; only then release.
  while (thread->Post([] {})) {
  }
  release.Open();
  stopper.join();
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(thread->Post([&] { ++ran; }));  // after Stop: dropped
  thread.reset();
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace peter::node_internal

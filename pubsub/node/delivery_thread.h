// The embedded node's delivery thread: runs user callbacks one at a time,
// in the order they were posted, off the network thread.
//
// Tasks may belong to an Owner (a subscription). Cancel(owner) guarantees
// that once it returns no task of that owner starts, and none is running
// (unless Cancel is called from a task, whose own run then finishes).
#ifndef PETER_PUBSUB_NODE_DELIVERY_THREAD_H_
#define PETER_PUBSUB_NODE_DELIVERY_THREAD_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace peter::node_internal {

class DeliveryThread {
 public:
  // Embedded in whatever owns tasks; its flag is guarded by the thread's mutex.
  struct Owner {
    bool cancelled = false;
  };

  DeliveryThread();
  // Stop()s.
  ~DeliveryThread();
  DeliveryThread(const DeliveryThread&) = delete;
  DeliveryThread& operator=(const DeliveryThread&) = delete;

  // Queues `fn`; false if it was dropped: after Stop(), or when `owner` is
  // cancelled. The owner must outlive the task (capture a shared_ptr to it
  // in `fn`).
  bool Post(std::function<void()> fn, Owner* owner = nullptr);
  void Cancel(Owner* owner);
  // Drops queued tasks, waits for the running one, joins the thread.
  // REQUIRES: not called from a task.
  void Stop();
  bool OnThread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct Task {
    std::function<void()> fn;
    Owner* owner;
  };
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;       // a task was posted, or stop
  std::condition_variable idle_cv_;  // the running task finished
  std::deque<Task> tasks_;           // guarded by mu_
  Owner* running_ = nullptr;         // guarded by mu_
  bool stopping_ = false;            // guarded by mu_
  std::thread thread_;
};

}  // namespace peter::node_internal

#endif  // PETER_PUBSUB_NODE_DELIVERY_THREAD_H_

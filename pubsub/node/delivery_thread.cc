#include "pubsub/node/delivery_thread.h"

#include <utility>

namespace peter::node_internal {

DeliveryThread::DeliveryThread() : thread_([this] { Run(); }) {}

DeliveryThread::~DeliveryThread() { Stop(); }

bool DeliveryThread::Post(std::function<void()> fn, Owner* owner) {
  std::lock_guard lock(mu_);
  if (stopping_ || (owner != nullptr && owner->cancelled)) return false;
  tasks_.push_back(Task{std::move(fn), owner});
  cv_.notify_one();
  return true;
}

void DeliveryThread::Cancel(Owner* owner) {
  std::unique_lock lock(mu_);
  owner->cancelled = true;
  if (OnThread()) return;
  idle_cv_.wait(lock, [&] { return running_ != owner; });
}

void DeliveryThread::Stop() {
  std::deque<Task> dropped;  // destroyed outside the lock
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(tasks_);
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void DeliveryThread::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
    if (stopping_) return;
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    if (task.owner != nullptr && task.owner->cancelled) continue;
    running_ = task.owner;
    lock.unlock();
    task.fn();
    task.fn = nullptr;  // release captures outside the lock's scope
    lock.lock();
    running_ = nullptr;
    idle_cv_.notify_all();
  }
}

}  // namespace peter::node_internal

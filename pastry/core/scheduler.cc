#include "pastry/core/scheduler.h"

#include <algorithm>

namespace peter::pastry {

Scheduler::JobId Scheduler::Schedule(absl::Time at, std::function<void()> job) {
  JobId id = next_id_++;
  heap_.emplace_back(at, id);
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  jobs_.emplace(id, std::move(job));
  return id;
}

void Scheduler::Cancel(JobId id) { jobs_.erase(id); }

void Scheduler::DropCancelledTop() const {
  while (!heap_.empty() && !jobs_.contains(heap_.front().second)) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
  }
}

void Scheduler::RunDue(absl::Time now) {
  for (DropCancelledTop(); !heap_.empty() && heap_.front().first <= now;
       DropCancelledTop()) {
    JobId id = heap_.front().second;
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
    auto it = jobs_.find(id);
    std::function<void()> fn = std::move(it->second);
    jobs_.erase(it);
    fn();
  }
}

absl::Time Scheduler::NextDeadline() const {
  DropCancelledTop();
  return heap_.empty() ? absl::InfiniteFuture() : heap_.front().first;
}

}  // namespace peter::pastry

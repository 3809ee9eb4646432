#include "pastry/core/scheduler.h"

namespace peter::pastry {

Scheduler::JobId Scheduler::Schedule(absl::Time at, std::function<void()> job) {
  JobId id = next_id_++;
  order_.emplace(at, id);
  jobs_.emplace(id, Job{at, std::move(job)});
  return id;
}

void Scheduler::Cancel(JobId id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  order_.erase({it->second.at, id});
  jobs_.erase(it);
}

void Scheduler::RunDue(absl::Time now) {
  while (!order_.empty() && order_.begin()->first <= now) {
    JobId id = order_.begin()->second;
    order_.erase(order_.begin());
    auto it = jobs_.find(id);
    std::function<void()> fn = std::move(it->second.fn);
    jobs_.erase(it);
    fn();
  }
}

absl::Time Scheduler::NextDeadline() const {
  return order_.empty() ? absl::InfiniteFuture() : order_.begin()->first;
}

}  // namespace peter::pastry

#include "pastry/core/scheduler.h"

#include <algorithm>

namespace peter::pastry {

Scheduler::JobId Scheduler::Schedule(absl::Time at, std::function<void()> job) {
  JobId id = next_id_++;
  heap_.emplace_back(at, id);
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  jobs_.emplace(id, std::move(job));
  next_ = heap_.front().first;
  return id;
}

void Scheduler::Cancel(JobId id) {
  if (jobs_.erase(id) == 0) return;
  if (heap_.front().second == id) DropCancelledTop();
}

void Scheduler::DropCancelledTop() {
  while (!heap_.empty() && !jobs_.contains(heap_.front().second)) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
  }
  next_ = heap_.empty() ? absl::InfiniteFuture() : heap_.front().first;
}

void Scheduler::RunDue(absl::Time now) {
  while (!heap_.empty() && heap_.front().first <= now) {
    JobId id = heap_.front().second;
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
    auto it = jobs_.find(id);
    std::function<void()> fn = std::move(it->second);
    jobs_.erase(it);
    DropCancelledTop();
    fn();
  }
}

void Scheduler::Compact() {
  if (heap_.size() > 2 * jobs_.size() + 16) {
    std::erase_if(heap_, [&](const Entry& e) { return !jobs_.contains(e.second); });
    std::make_heap(heap_.begin(), heap_.end(), std::greater<>());
  }
  if (heap_.capacity() > 32 && heap_.size() * 4 < heap_.capacity()) heap_.shrink_to_fit();
  if (jobs_.capacity() > 32 && jobs_.size() * 4 < jobs_.capacity()) jobs_.rehash(0);
}

}  // namespace peter::pastry

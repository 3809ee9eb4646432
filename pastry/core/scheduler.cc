#include "pastry/core/scheduler.h"

#include <algorithm>

namespace peter::pastry {

Scheduler::JobId Scheduler::Schedule(absl::Time at, std::function<void()> job) {
  JobId id = next_id_++;
  heap_.emplace_back(at, id);
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  jobs_.emplace(id, std::move(job));
  UpdateNext();
  return id;
}

Scheduler::JobId Scheduler::ScheduleNow(absl::Time now, std::function<void()> job) {
  // A caller whose time went back (it should not) goes to the heap: the
  // queue must stay in time order.
  if (!queue_.empty() && now < queue_.back().at) return Schedule(now, std::move(job));
  JobId id = next_id_++;
  queue_.push_back(Queued{now, id, std::move(job)});
  ++queued_live_;
  UpdateNext();
  return id;
}

void Scheduler::Cancel(JobId id) {
  if (jobs_.erase(id) != 0) {
    if (heap_.front().second == id) DropCancelledTop();
    return;
  }
  // Queued ids increase from front to back.
  auto it = std::lower_bound(queue_.begin(), queue_.end(), id,
                             [](const Queued& q, JobId v) { return q.id < v; });
  if (it == queue_.end() || it->id != id || !it->fn) return;
  it->fn = nullptr;
  --queued_live_;
  DropCancelledQueued();
}

void Scheduler::UpdateNext() {
  next_ = heap_.empty() ? absl::InfiniteFuture() : heap_.front().first;
  if (!queue_.empty()) next_ = std::min(next_, queue_.front().at);
}

void Scheduler::DropCancelledTop() {
  while (!heap_.empty() && !jobs_.contains(heap_.front().second)) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
  }
  UpdateNext();
}

void Scheduler::DropCancelledQueued() {
  while (!queue_.empty() && !queue_.front().fn) queue_.pop_front();
  UpdateNext();
}

void Scheduler::RunDue(absl::Time now, size_t max_jobs) {
  size_t ran = 0;
  while ((!heap_.empty() || !queue_.empty()) && next_ <= now && ran < max_jobs) {
    ++ran;
    // The earlier of the two fronts by (time, id); both are live.
    const bool from_queue =
        !queue_.empty() &&
        (heap_.empty() || Entry(queue_.front().at, queue_.front().id) < heap_.front());
    std::function<void()> fn;
    if (from_queue) {
      fn = std::move(queue_.front().fn);
      queue_.pop_front();
      --queued_live_;
      DropCancelledQueued();
    } else {
      JobId id = heap_.front().second;
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
      heap_.pop_back();
      auto it = jobs_.find(id);
      fn = std::move(it->second);
      jobs_.erase(it);
      DropCancelledTop();
    }
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
  if (queue_.empty()) queue_.shrink_to_fit();
}

}  // namespace peter::pastry

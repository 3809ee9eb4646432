// Timers for a core that never sleeps: jobs run when the owner calls RunDue()
// with a time at or past their deadline (OpenDHT's scheduler, KJ's Timer).
#ifndef PETER_PASTRY_CORE_SCHEDULER_H_
#define PETER_PASTRY_CORE_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace peter::pastry {

class Scheduler {
 public:
  using JobId = uint64_t;

  // Schedules `job` to run at `at`; jobs due at the same time run in the
  // order they were scheduled.
  JobId Schedule(absl::Time at, std::function<void()> job);
  // Schedule(now, job) for work due at once (an application's message to
  // its own node, a deferred callback), where `now` is the caller's current
  // time: the same order as Schedule, but the job waits in a FIFO queue
  // instead of the heap and the job map (on one node every publish makes
  // two such jobs; the heap and map were 12% of its CPU).
  JobId ScheduleNow(absl::Time now, std::function<void()> job);
  // Cancels a job that has not run yet; a no-op otherwise.
  void Cancel(JobId id);
  // Runs every job due at or before `now`, including jobs that those jobs
  // schedule for no later than `now`, but at most `max_jobs` of them: an
  // owner with other work to serve (a socket loop) bounds its pass, since
  // a job that schedules itself again at no delay would otherwise keep
  // RunDue from returning, and calls again for the rest (NextDeadline()
  // stays at or before `now`).
  void RunDue(absl::Time now, size_t max_jobs = std::numeric_limits<size_t>::max());
  // Constant time, no memory touched beyond the scheduler itself: the owner
  // asks after every message.
  absl::Time NextDeadline() const { return next_; }
  size_t size() const { return jobs_.size() + queued_live_; }
  // Drops cancelled jobs' heap entries and gives back unused capacity.
  void Compact();

 private:
  // A binary min-heap of (deadline, id): the same order as before. Cancel
  // only forgets the job; its heap entry is dropped when it reaches the top
  // (or by Compact). Invariant: the top entry, if any, is a live job, and
  // next_ is its deadline. (With a std::set, erasing by key cost about 30%
  // of the CPU of a 100,000-node simulation in tree searches; checking the
  // top on every NextDeadline() call cost another 13% at 10,000 nodes.)
  //
  // Jobs from ScheduleNow wait in queue_ instead, in id order and with
  // non-decreasing times, so RunDue merges the two by (time, id): the order
  // is the same as if every job were in the heap. A cancelled queued job
  // keeps its entry (without a function) until it reaches the front.
  // Invariant: the front of queue_, if any, is live; next_ is the earlier of
  // the two fronts.
  using Entry = std::pair<absl::Time, JobId>;
  struct Queued {
    absl::Time at;
    JobId id;
    std::function<void()> fn;  // empty once cancelled
  };
  void DropCancelledTop();
  void DropCancelledQueued();
  void UpdateNext();

  JobId next_id_ = 1;
  absl::Time next_ = absl::InfiniteFuture();
  std::vector<Entry> heap_;  // std::greater order: earliest on top
  absl::flat_hash_map<JobId, std::function<void()>> jobs_;
  std::deque<Queued> queue_;
  size_t queued_live_ = 0;  // entries of queue_ not cancelled
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_CORE_SCHEDULER_H_

// Tests of Scheduler against pastry/core/scheduler.h: jobs run only when
// RunDue() is told a time at or past their deadline, by time then by
// insertion order; cancelled jobs never run; jobs may schedule and cancel.
#include "pastry/core/scheduler.h"

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace peter::pastry {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);
absl::Time At(int ms) { return kT0 + absl::Milliseconds(ms); }

TEST(SchedulerTest, EmptySchedulerHasNoDeadline) {
  Scheduler s;
  EXPECT_EQ(s.NextDeadline(), absl::InfiniteFuture());
  EXPECT_EQ(s.size(), 0u);
  s.RunDue(absl::InfiniteFuture());
  EXPECT_EQ(s.size(), 0u);
}

TEST(SchedulerTest, RunsByTimeThenInsertionOrder) {
  Scheduler s;
  std::vector<std::string> ran;
  s.Schedule(At(30), [&] { ran.push_back("c"); });
  s.Schedule(At(10), [&] { ran.push_back("a1"); });
  s.Schedule(At(20), [&] { ran.push_back("b"); });
  s.Schedule(At(10), [&] { ran.push_back("a2"); });
  s.Schedule(At(10), [&] { ran.push_back("a3"); });
  EXPECT_EQ(s.size(), 5u);
  EXPECT_EQ(s.NextDeadline(), At(10));
  s.RunDue(At(100));
  EXPECT_EQ(ran, (std::vector<std::string>{"a1", "a2", "a3", "b", "c"}));
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.NextDeadline(), absl::InfiniteFuture());
}

TEST(SchedulerTest, RunsOnlyWhatIsDue) {
  Scheduler s;
  std::vector<int> ran;
  s.Schedule(At(10), [&] { ran.push_back(10); });
  s.Schedule(At(20), [&] { ran.push_back(20); });
  s.RunDue(At(9));
  EXPECT_TRUE(ran.empty());
  EXPECT_EQ(s.NextDeadline(), At(10));
  s.RunDue(At(10));  // "at or before now": the boundary counts
  EXPECT_EQ(ran, std::vector<int>{10});
  EXPECT_EQ(s.NextDeadline(), At(20));
  EXPECT_EQ(s.size(), 1u);
  s.RunDue(At(19));
  EXPECT_EQ(ran, std::vector<int>{10});
  s.RunDue(At(25));
  EXPECT_EQ(ran, (std::vector<int>{10, 20}));
  s.RunDue(At(25));  // a job runs once
  EXPECT_EQ(ran, (std::vector<int>{10, 20}));
}

TEST(SchedulerTest, IdsAreDistinct) {
  Scheduler s;
  auto a = s.Schedule(At(1), [] {});
  auto b = s.Schedule(At(1), [] {});
  auto c = s.Schedule(At(0), [] {});
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
}

TEST(SchedulerTest, CancelledJobNeverRuns) {
  Scheduler s;
  std::vector<int> ran;
  auto a = s.Schedule(At(10), [&] { ran.push_back(1); });
  s.Schedule(At(20), [&] { ran.push_back(2); });
  s.Cancel(a);
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.NextDeadline(), At(20));
  s.Cancel(a);      // twice: no-op
  s.Cancel(12345);  // unknown: no-op
  s.RunDue(At(100));
  EXPECT_EQ(ran, std::vector<int>{2});
}

TEST(SchedulerTest, CancelAfterRunIsNoOp) {
  Scheduler s;
  int runs = 0;
  auto a = s.Schedule(At(10), [&] { ++runs; });
  s.RunDue(At(10));
  auto b = s.Schedule(At(20), [&] { ++runs; });
  s.Cancel(a);  // must not disturb b
  EXPECT_EQ(s.size(), 1u);
  s.RunDue(At(20));
  EXPECT_EQ(runs, 2);
  (void)b;
}

TEST(SchedulerTest, JobsScheduledByJobsRunIfDue) {
  Scheduler s;
  std::vector<std::string> ran;
  s.Schedule(At(10), [&] {
    ran.push_back("a");
    s.Schedule(At(10), [&] { ran.push_back("same-time"); });
    s.Schedule(At(5), [&] { ran.push_back("past"); });
    s.Schedule(At(50), [&] { ran.push_back("later"); });
  });
  s.Schedule(At(20), [&] { ran.push_back("b"); });
  s.RunDue(At(20));
  // "past" (t=5) and "same-time" (t=10) are earlier than b (t=20).
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "past", "same-time", "b"}));
  EXPECT_EQ(s.NextDeadline(), At(50));
  EXPECT_EQ(s.size(), 1u);
}

TEST(SchedulerTest, SameTimeJobScheduledDuringRunGoesLast) {
  Scheduler s;
  std::vector<std::string> ran;
  s.Schedule(At(10), [&] {
    ran.push_back("a");
    s.Schedule(At(10), [&] { ran.push_back("c"); });
  });
  s.Schedule(At(10), [&] { ran.push_back("b"); });
  s.RunDue(At(10));
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(SchedulerTest, PeriodicJobRunsOncePerRunDueStep) {
  // A job that reschedules itself into the future must not spin.
  Scheduler s;
  int runs = 0;
  std::function<void()> tick = [&] {
    ++runs;
    s.Schedule(At(runs * 10), tick);
  };
  s.Schedule(At(0), tick);
  s.RunDue(At(0));
  EXPECT_EQ(runs, 1);
  s.RunDue(At(35));  // runs at 10, 20, 30
  EXPECT_EQ(runs, 4);
  EXPECT_EQ(s.NextDeadline(), At(40));
}

TEST(SchedulerTest, JobMayCancelAnotherDueJob) {
  Scheduler s;
  std::vector<int> ran;
  Scheduler::JobId victim = 0;
  s.Schedule(At(10), [&] {
    ran.push_back(1);
    s.Cancel(victim);
  });
  victim = s.Schedule(At(10), [&] { ran.push_back(2); });
  s.Schedule(At(10), [&] { ran.push_back(3); });
  s.RunDue(At(10));
  EXPECT_EQ(ran, (std::vector<int>{1, 3}));
  EXPECT_EQ(s.size(), 0u);
}

TEST(SchedulerTest, JobMayCancelItselfHarmlessly) {
  Scheduler s;
  int runs = 0;
  Scheduler::JobId self = 0;
  self = s.Schedule(At(1), [&] {
    ++runs;
    s.Cancel(self);
  });
  s.Schedule(At(2), [&] { ++runs; });
  s.RunDue(At(5));
  EXPECT_EQ(runs, 2);
}

TEST(SchedulerTest, InfiniteNowRunsEverything) {
  Scheduler s;
  int runs = 0;
  for (int i = 0; i < 100; ++i) s.Schedule(At(i * 1000), [&] { ++runs; });
  s.RunDue(absl::InfiniteFuture());
  EXPECT_EQ(runs, 100);
}

// ScheduleNow's jobs wait in a queue of their own; the order is still by
// time, then by the order of scheduling, across both kinds.
TEST(SchedulerTest, ScheduleNowKeepsTheOrderOfSchedule) {
  Scheduler s;
  std::vector<std::string> ran;
  s.Schedule(At(20), [&] { ran.push_back("heap20"); });
  s.ScheduleNow(At(10), [&] { ran.push_back("now10a"); });
  s.Schedule(At(10), [&] { ran.push_back("heap10"); });
  s.ScheduleNow(At(10), [&] { ran.push_back("now10b"); });
  s.ScheduleNow(At(30), [&] { ran.push_back("now30"); });
  s.Schedule(At(5), [&] { ran.push_back("heap5"); });
  EXPECT_EQ(s.size(), 6u);
  EXPECT_EQ(s.NextDeadline(), At(5));
  s.RunDue(At(10));
  EXPECT_EQ(ran, (std::vector<std::string>{"heap5", "now10a", "heap10", "now10b"}));
  EXPECT_EQ(s.NextDeadline(), At(20));
  s.RunDue(At(30));
  EXPECT_EQ(ran, (std::vector<std::string>{"heap5", "now10a", "heap10", "now10b", "heap20",
                                           "now30"}));
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.NextDeadline(), absl::InfiniteFuture());
}

TEST(SchedulerTest, ScheduleNowJobsScheduledByJobsRunInTheSameStep) {
  // On one node a publish to itself and its acknowledgement are such jobs:
  // a chain of them runs in one RunDue, after what was due before them.
  Scheduler s;
  std::vector<std::string> ran;
  s.ScheduleNow(At(10), [&] {
    ran.push_back("publish");
    s.ScheduleNow(At(10), [&] {
      ran.push_back("ack");
      s.ScheduleNow(At(10), [&] { ran.push_back("done"); });
    });
  });
  s.Schedule(At(10), [&] { ran.push_back("timer"); });
  s.RunDue(At(10));
  EXPECT_EQ(ran, (std::vector<std::string>{"publish", "timer", "ack", "done"}));
  EXPECT_EQ(s.size(), 0u);
}

TEST(SchedulerTest, CancelledScheduleNowJobNeverRuns) {
  Scheduler s;
  std::vector<int> ran;
  Scheduler::JobId a = s.ScheduleNow(At(10), [&] { ran.push_back(1); });
  Scheduler::JobId b = s.ScheduleNow(At(10), [&] { ran.push_back(2); });
  s.ScheduleNow(At(10), [&] { ran.push_back(3); });
  s.Cancel(b);  // in the middle of the queue
  EXPECT_EQ(s.size(), 2u);
  s.Cancel(b);  // twice: a no-op
  EXPECT_EQ(s.size(), 2u);
  s.Cancel(a);  // the front: the deadline is the next live job's
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.NextDeadline(), At(10));
  s.RunDue(At(10));
  EXPECT_EQ(ran, std::vector<int>{3});
  s.Cancel(a);  // after the run: a no-op
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.NextDeadline(), absl::InfiniteFuture());
}

TEST(SchedulerTest, ScheduleNowWithAnEarlierTimeStillRunsInTimeOrder) {
  // A time earlier than the queue's last one goes to the heap.
  Scheduler s;
  std::vector<int> ran;
  s.ScheduleNow(At(20), [&] { ran.push_back(20); });
  s.ScheduleNow(At(10), [&] { ran.push_back(10); });
  EXPECT_EQ(s.NextDeadline(), At(10));
  s.RunDue(At(15));
  EXPECT_EQ(ran, std::vector<int>{10});
  s.RunDue(At(20));
  EXPECT_EQ(ran, (std::vector<int>{10, 20}));
}

TEST(SchedulerTest, MaxJobsBoundsAPassAndTheRestStaysDue) {
  // A job that schedules itself again at no delay: without a bound RunDue
  // would never return. With one, each pass runs that many jobs, in the
  // same order as one unbounded pass, and the rest stays due.
  Scheduler s;
  std::vector<int> ran;
  int n = 0;
  std::function<void()> again = [&] {
    ran.push_back(n++);
    if (n < 10) s.ScheduleNow(At(10), again);
  };
  s.ScheduleNow(At(10), again);
  s.Schedule(At(5), [&] { ran.push_back(-1); });
  s.RunDue(At(10), 4);
  EXPECT_EQ(ran, (std::vector<int>{-1, 0, 1, 2}));
  EXPECT_EQ(s.NextDeadline(), At(10));
  s.RunDue(At(10), 4);
  EXPECT_EQ(ran, (std::vector<int>{-1, 0, 1, 2, 3, 4, 5, 6}));
  s.RunDue(At(10));
  EXPECT_EQ(ran, (std::vector<int>{-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(s.NextDeadline(), absl::InfiniteFuture());
  s.RunDue(At(10), 0);  // runs nothing, harmlessly
}

}  // namespace
}  // namespace peter::pastry

// The runtime's clock (pastry/net/runtime_impl.h): within a batch of work
// the core sees one time, read when the batch opened; outside one, the
// clock as it is.
#include <chrono>

#include "gtest/gtest.h"
#include "pastry/net/runtime_impl.h"

namespace peter::pastry::net {
namespace {

// Waits (without sleeping) until the steady clock has moved by `d`.
void SpinFor(std::chrono::microseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

TEST(SteadyClockTest, ABatchSeesOneTime) {
  SteadyClock clock;
  absl::Time opened;
  {
    SteadyClock::Batch batch(clock);
    opened = clock.Now();
    SpinFor(std::chrono::microseconds(200));
    EXPECT_EQ(clock.Now(), opened);
    {
      // A nested batch (a handler inside another) is part of the outer one.
      SteadyClock::Batch inner(clock);
      EXPECT_EQ(clock.Now(), opened);
    }
    EXPECT_EQ(clock.Now(), opened);  // the inner one did not close the outer
  }
  // Closed: the clock reads the time again.
  EXPECT_GE(clock.Now() - opened, absl::Microseconds(200));
}

TEST(SteadyClockTest, EachBatchReadsTheClockAgain) {
  SteadyClock clock;
  absl::Time first;
  {
    SteadyClock::Batch batch(clock);
    first = clock.Now();
  }
  SpinFor(std::chrono::microseconds(200));
  SteadyClock::Batch batch(clock);
  EXPECT_GE(clock.Now() - first, absl::Microseconds(200));
}

}  // namespace
}  // namespace peter::pastry::net

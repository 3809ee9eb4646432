// Rate limit for warnings that peers or clients can trigger at will (a bound
// reached, bad input): at most one per interval is logged; the others are
// only counted, and the next logged one says how many were suppressed. The
// events themselves are counted separately, in the component's stats.
//
// Header-only and I/O-free: the caller passes the time (the core's injected
// clock, or absl::Now() on real sockets), so the overlay core, the transport,
// Scribe and the Redis gateway share it. Not thread-safe.
#ifndef PETER_PASTRY_CORE_LOG_LIMIT_H_
#define PETER_PASTRY_CORE_LOG_LIMIT_H_

#include <cstdint>

#include "absl/time/time.h"

namespace peter {

class LogLimit {
 public:
  explicit LogLimit(absl::Duration interval = absl::Seconds(1)) : interval_(interval) {}

  // True if a warning may be logged at `now`; false (and counted as
  // suppressed) within `interval` of the last one allowed.
  bool Allow(absl::Time now) {
    if (now < next_) {
      ++pending_;
      return false;
    }
    next_ = now + interval_;
    suppressed_ = pending_;
    pending_ = 0;
    return true;
  }
  // After Allow() returned true: warnings suppressed before this one.
  uint64_t suppressed() const { return suppressed_; }

 private:
  absl::Duration interval_;
  absl::Time next_ = absl::InfinitePast();
  uint64_t pending_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace peter

#endif  // PETER_PASTRY_CORE_LOG_LIMIT_H_

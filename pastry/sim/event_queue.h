// The simulator's only source of time: a virtual clock and a queue of events
// ordered by (time, sequence number), so events due at the same instant run
// in the order they were pushed.
//
// Events are 24-byte PODs in a 4-ary heap; what an event carries (a message,
// a callback) lives elsewhere and is named by `slot`, so sifting the heap
// never moves a large object.
#ifndef PETER_PASTRY_SIM_EVENT_QUEUE_H_
#define PETER_PASTRY_SIM_EVENT_QUEUE_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/time/time.h"
#include "pastry/core/environment.h"

namespace peter::pastry::sim {

// Simulated time in nanoseconds since the simulation's start.
using SimTime = int64_t;
inline constexpr SimTime kNever = std::numeric_limits<SimTime>::max();

// A Clock whose time moves only when its owner says so.
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(absl::Time start) : start_(start), now_(start) {}

  absl::Time Now() const override { return now_; }
  SimTime now_ns() const { return now_ns_; }
  absl::Time start() const { return start_; }

  // REQUIRES: t >= now_ns().
  void Set(SimTime t) {
    now_ns_ = t;
    now_ = start_ + absl::Nanoseconds(t);
  }

  // Conversions between absl::Time and SimTime. Times before the start map to
  // 0; InfiniteFuture (and anything beyond ~292 years) maps to kNever.
  SimTime ToSim(absl::Time t) const;
  absl::Time ToTime(SimTime t) const {
    return t == kNever ? absl::InfiniteFuture() : start_ + absl::Nanoseconds(t);
  }

 private:
  absl::Time start_;
  absl::Time now_;
  SimTime now_ns_ = 0;
};

enum class EventKind : uint8_t { kMessage = 0, kWake = 1, kCallback = 2 };

struct Event {
  SimTime at;
  uint64_t order;   // sequence number << 8 | kind; unique, so a total order
  uint32_t target;  // node index (kMessage, kWake)
  uint32_t slot;    // payload slot (kMessage, kCallback)

  EventKind kind() const { return static_cast<EventKind>(order & 0xff); }
  uint64_t seq() const { return order >> 8; }
};
static_assert(sizeof(Event) == 24);

class EventQueue {
 public:
  void Push(SimTime at, EventKind kind, uint32_t target, uint32_t slot);
  // REQUIRES: !empty().
  Event Pop();
  const Event& Top() const { return heap_.front(); }
  // Time of the earliest event; kNever when empty.
  SimTime NextTime() const { return heap_.empty() ? kNever : heap_[0].at; }
  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  uint64_t pushed() const { return next_seq_; }

 private:
  std::vector<Event> heap_;
  uint64_t next_seq_ = 0;
};

}  // namespace peter::pastry::sim

#endif  // PETER_PASTRY_SIM_EVENT_QUEUE_H_

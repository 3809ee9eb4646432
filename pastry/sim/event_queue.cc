#include "pastry/sim/event_queue.h"

#include <algorithm>

namespace peter::pastry::sim {
namespace {

// A 4-ary min-heap: half the depth of a binary heap, and the four children
// of a node share a cache line or two, so sifting touches less memory.
constexpr size_t kArity = 4;

bool Before(const Event& a, const Event& b) {
  if (a.at != b.at) return a.at < b.at;
  return a.order < b.order;
}

}  // namespace

SimTime VirtualClock::ToSim(absl::Time t) const {
  if (t == absl::InfiniteFuture()) return kNever;
  if (t <= start_) return 0;
  absl::Duration d = t - start_;
  if (d >= absl::Nanoseconds(kNever)) return kNever;
  return absl::ToInt64Nanoseconds(d);
}

void EventQueue::Push(SimTime at, EventKind kind, uint32_t target,
                      uint32_t slot) {
  uint64_t order = (next_seq_++ << 8) | static_cast<uint64_t>(kind);
  Event e{at, order, target, slot};
  size_t hole = heap_.size();
  heap_.push_back(e);
  while (hole > 0) {
    size_t parent = (hole - 1) / kArity;
    if (!Before(e, heap_[parent])) break;
    heap_[hole] = heap_[parent];
    hole = parent;
  }
  heap_[hole] = e;
}

Event EventQueue::Pop() {
  Event top = heap_.front();
  Event last = heap_.back();
  heap_.pop_back();
  size_t n = heap_.size();
  if (n == 0) return top;
  size_t hole = 0;
  while (true) {
    size_t first = hole * kArity + 1;
    if (first >= n) break;
    size_t best = first;
    size_t end = std::min(first + kArity, n);
    for (size_t c = first + 1; c < end; ++c) {
      if (Before(heap_[c], heap_[best])) best = c;
    }
    if (!Before(heap_[best], last)) break;
    heap_[hole] = heap_[best];
    hole = best;
  }
  heap_[hole] = last;
  return top;
}

}  // namespace peter::pastry::sim

// The chaos soak's checks over what the workload recorded and the faults
// injected, and the summary it prints.
//
// Repair window of a fault: from `window_margin` before it started (a
// message sent just before a fault may still have been on its way down the
// tree) until it was repaired: after the fault ended (restart, SIGCONT,
// reconnection), every live daemon is active with the leaf set the ground
// truth gives, and every subscription is on its tree and has been delivered
// a message published after the fault ended.
#ifndef PETER_TESTS_CHAOS_VERDICT_H_
#define PETER_TESTS_CHAOS_VERDICT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "tests/chaos/faults.h"
#include "tests/chaos/workload.h"

namespace peter::chaos {

struct ModeCounts {
  int64_t subscriptions = 0;
  int64_t expected = 0;     // confirmed publishes x subscriptions of the topic
  int64_t delivered = 0;    // deliveries, duplicates included
  int64_t duplicates = 0;   // a payload delivered again to one subscription
  int64_t out_of_order = 0; // a sequence number not above the previous one
  int64_t gaps = 0;         // a sequence number more than one above (reliable only)
  int64_t seq_mismatch = 0; // delivered under another number than the root confirmed
  int64_t unknown = 0;      // a payload nobody published
  int64_t lost = 0;         // confirmed, never delivered
  int64_t lost_in_window = 0;
  int64_t lost_outside = 0;
};

struct Verdict {
  int64_t published = 0;
  int64_t confirmed = 0;
  int64_t unconfirmed = 0;  // DeadlineExceeded: may or may not be out
  // Two different publishes confirmed under the same (topic, number): two
  // roots gave one number to two messages (a violation; every subscriber
  // can have at most one of them).
  int64_t confirmed_twice = 0;
  ModeCounts reliable;
  ModeCounts best_effort;
  std::vector<std::string> problems;  // every violation, one line each (first few kept)
  int64_t violations = 0;
  std::map<int, int64_t> violations_by_topic;  // topic index -> count
  double latency_p50_ms = 0, latency_p99_ms = 0, latency_max_ms = 0;
};

Verdict Judge(const absl::flat_hash_map<std::string, PublishRecord>& publishes,
              const std::vector<SubscriberLog>& logs, const std::vector<Fault>& faults,
              absl::Duration window_margin);

// Percentile `p` (0..1) of `values`, which it sorts; 0 if empty.
double Percentile(std::vector<double>& values, double p);

}  // namespace peter::chaos

#endif  // PETER_TESTS_CHAOS_VERDICT_H_

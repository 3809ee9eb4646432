// The Scribe experiment of `peter sim scribe` (docs/results.md): N Pastry
// nodes joined through the protocol (pastry/sim/route_experiment.h), one
// Scribe per node, T topics with random member sets (fixed size, or the
// Scribe paper's Zipf-like sizes), then messages: first one per topic
// published at the topic's root (delay penalty, node stress, link stress, as
// in the Scribe paper's section 4), then a stream from random nodes, during
// which a fraction of the nodes (topic roots first) may fail silently.
//
// Uses Scribe only through its public methods. Everything is seeded; the
// same setup gives the same result, field for field.
#ifndef PETER_TOOLS_SCRIBE_EXPERIMENT_H_
#define PETER_TOOLS_SCRIBE_EXPERIMENT_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pastry/sim/route_experiment.h"

namespace peter::tools {

struct ScribeSetup {
  pastry::sim::OverlaySetup overlay;
  int topics = 100;
  // Messages published to each topic (the first one at its root).
  int messages = 10;
  // Members per topic, or the Scribe paper's sizes: rank r (1-based) has
  // floor(N * r^-1.25 + 0.5) members.
  int group_size = 20;
  bool zipf = false;
  bool reliable = false;
  // Publish with completion (Scribe::Publish with a callback: the root
  // acknowledges, the publisher resends until it does, the root numbers a
  // resend once); false: fire and forget.
  bool acked_publish = true;
  // Share of the nodes that fail (roots of the largest topics first), a
  // quarter of the way into the stream.
  double fail_fraction = 0;
  // Messages 2..M of every topic are spread over this much simulated time.
  absl::Duration stream = absl::Seconds(20);
  // Best-effort subscribers are promised the messages published this long
  // after the failure.
  absl::Duration repair_window = absl::Seconds(10);
};

// Members per topic of rank 1..topics under the Scribe paper's distribution.
std::vector<int> ZipfGroupSizes(int nodes, int topics);

struct ScribeResult {
  bool all_joined = false;
  int topics_nonempty = 0;
  int64_t memberships = 0;
  double attached_fraction = 0;  // memberships on their tree before publishing
  int failed = 0;

  // Delivery, over memberships of nodes alive at the end. `expected`: every
  // message for reliable members; without failure every message, with one
  // the messages published after the repair window, for best-effort ones.
  int64_t expected = 0;
  int64_t delivered = 0;             // expected and delivered
  int64_t delivered_unpromised = 0;  // delivered but not expected
  int64_t duplicates = 0;            // a message handed to a member again
  int64_t order_violations = 0;      // a member's seq not increasing
  // A message delivered under another sequence number than it had at the
  // topic's first member to get it: one publish stamped twice, seen by a
  // member that missed the first copy.
  int64_t numbering_conflicts = 0;

  // Delay penalty of the first message of each topic (published at the
  // root), per topic over members other than the root; means over topics.
  double rad_mean = 0;  // mean tree delay / mean unicast delay root->member
  double rmd_mean = 0;  // max tree delay / max unicast delay
  double tree_delay_ms_mean = 0;
  double unicast_delay_ms_mean = 0;
  static constexpr double kRatioBin = 0.1;
  static constexpr int kRatioBins = 100;  // the last bin holds the rest
  std::vector<int64_t> rad_histogram;
  std::vector<int64_t> rmd_histogram;

  // Node stress once the trees are built: topics with a non-empty children
  // table, and children entries, over nodes with at least one such table.
  int64_t nodes_with_children = 0;
  double tables_mean = 0;
  int64_t tables_max = 0;
  double entries_mean = 0;
  int64_t entries_max = 0;
  std::vector<int64_t> tables_histogram;   // index: tables
  std::vector<int64_t> entries_histogram;  // index: entries
  double topic_state_mean = 0;             // topic_count() over nodes with any

  // Link stress (transit-stub only): copies of the first message of every
  // topic crossing each physical link (access links included), over links
  // crossed at least once; and the same for IP multicast (each topic's
  // shortest-path tree from its root crosses a link once).
  std::optional<double> link_stress_mean;
  std::optional<int64_t> link_stress_max;
  std::optional<int64_t> link_stress_per_message_max;
  std::optional<int64_t> links_used;
  std::optional<double> ip_link_stress_mean;
  std::optional<int64_t> ip_link_stress_max;
  // Links by stress (index: copies; the last bin holds the rest).
  static constexpr int kLinkStressBins = 4096;
  std::vector<int64_t> link_stress_histogram;
  std::vector<int64_t> ip_link_stress_histogram;

  // Scribe control messages (everything but data and publishes), and the
  // overlay's own messages, per live node per simulated second of the stream.
  double control_msgs_per_node_s = 0;
  double overlay_msgs_per_node_s = 0;

  // Sums of the Scribe counters of live nodes.
  uint64_t parent_failures = 0;
  uint64_t repairs_served = 0;
  uint64_t skipped = 0;
  uint64_t roots_taken = 0;
  uint64_t publish_resends = 0;
  uint64_t publishes_deduplicated = 0;
  uint64_t pushdowns = 0;  // bottleneck remover
  // Acknowledged publishes whose completion reported an error, or never ran.
  int64_t publishes_unconfirmed = 0;
  // Promised deliveries missing whose publish the root never confirmed (its
  // publisher failed first, or the acknowledgement was still due).
  int64_t missing_unconfirmed = 0;
  double sim_time_s = 0;

  // Memory (not deterministic; printed with the timing fields), MB: the
  // resident set size once the overlay is built, before any Scribe exists
  // (the peak is usually reached there, by the joins); heap in use then,
  // once every subscription is on its tree, and after the stream (the
  // differences are Scribe's state plus the experiment's bookkeeping).
  double rss_overlay_mb = 0;
  double heap_overlay_mb = 0;
  double heap_subscribed_mb = 0;
  double heap_streamed_mb = 0;
};

absl::StatusOr<ScribeResult> RunScribeExperiment(const ScribeSetup& setup);

}  // namespace peter::tools

#endif  // PETER_TOOLS_SCRIBE_EXPERIMENT_H_

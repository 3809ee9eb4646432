// Synthetic churn (as in MSPastry and Bamboo): Poisson arrivals and
// exponentially distributed session times over an overlay of about N nodes,
// with lookups from random live nodes meanwhile. Departures are silent
// crashes; arrivals join through an active node picked as the initial
// overlay's joiners are (OverlaySetup::bootstrap).
#ifndef PETER_PASTRY_SIM_CHURN_H_
#define PETER_PASTRY_SIM_CHURN_H_

#include <array>
#include <cstdint>

#include "absl/time/time.h"
#include "pastry/core/messages.h"
#include "pastry/sim/route_experiment.h"

namespace peter::pastry::sim {

struct ChurnSetup {
  OverlaySetup overlay;  // the initial overlay (nodes = the target size N)
  absl::Duration duration = absl::Minutes(10);
  // Median session time; sessions are exponential with mean median / ln 2,
  // and arrivals Poisson with rate N / mean, so the size stays about N.
  absl::Duration session_median = absl::Minutes(10);
  double lookup_rate = 100;  // lookups per simulated second, whole overlay
  absl::Duration lookup_timeout = absl::Seconds(30);
};

struct ChurnResult {
  int64_t arrivals = 0;
  int64_t departures = 0;
  double avg_live_nodes = 0;
  int64_t lookups = 0;  // sent from a source that stayed alive until answered
  int64_t lost = 0;
  int64_t incorrect = 0;  // answered by a node that was not the root then
  double avg_hops = 0;
  double delay_stretch = 0;  // mean of measured lookup delay / direct delay
  // Everything but lookups, their per-hop acks and answers; per live node
  // per second. Bytes are Cap'n Proto frame sizes (NetworkConfig::
  // through_wire), without TCP/IP headers.
  double maintenance_msgs_per_node_s = 0;
  double maintenance_bytes_per_node_s = 0;
  // All messages (lookup traffic included) per live node per second, by
  // type (index: MessageBody::index()).
  std::array<double, kMessageTypeCount> msgs_per_node_s_by_type{};
};

ChurnResult RunChurn(const ChurnSetup& setup);

}  // namespace peter::pastry::sim

#endif  // PETER_PASTRY_SIM_CHURN_H_

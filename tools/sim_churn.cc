// `peter sim churn`: Poisson arrivals and exponential sessions (silent
// crashes) while lookups run; loss, incorrect deliveries, stretch, and the
// cost of maintenance.
#include <chrono>
#include <cstdio>
#include <memory>

#include "pastry/sim/churn.h"
#include "tools/sim_common.h"

namespace peter::tools {
namespace {

struct ChurnFlags {
  SimCommonFlags common;
  int nodes = 1000;
  double duration_s = 600;
  double session_median_s = 600;
  double lookup_rate = 100;
  double probe_interval_s = 1;
  double pns_probes_per_s = -1;
};

void RunChurnCommand(const ChurnFlags& f) {
  const auto wall_start = std::chrono::steady_clock::now();
  pastry::sim::ChurnSetup setup;
  setup.overlay.nodes = f.nodes;
  ApplyCommonSimFlags(f.common, setup.overlay);
  setup.overlay.leaf_probe_interval = absl::Seconds(f.probe_interval_s);
  setup.overlay.pns_probes_per_s = f.pns_probes_per_s;
  setup.duration = absl::Seconds(f.duration_s);
  setup.session_median = absl::Seconds(f.session_median_s);
  setup.lookup_rate = f.lookup_rate;
  const pastry::sim::ChurnResult r = pastry::sim::RunChurn(setup);
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  nlohmann::ordered_json out;
  out["nodes"] = f.nodes;
  out["duration_s"] = f.duration_s;
  out["session_median_s"] = f.session_median_s;
  out["lookup_rate"] = f.lookup_rate;
  out["seed"] = f.common.seed;
  out["loss"] = f.common.loss;
  out["probe_interval_s"] = f.probe_interval_s;
  out["pns_probes_per_s"] = f.pns_probes_per_s;
  out["arrivals"] = r.arrivals;
  out["departures"] = r.departures;
  out["avg_live_nodes"] = r.avg_live_nodes;
  out["lookups"] = r.lookups;
  out["lost"] = r.lost;
  out["incorrect"] = r.incorrect;
  out["lookup_loss_rate"] = r.lookups ? static_cast<double>(r.lost) / r.lookups : 0.0;
  out["incorrect_delivery_rate"] = r.lookups ? static_cast<double>(r.incorrect) / r.lookups : 0.0;
  out["avg_hops"] = r.avg_hops;
  out["delay_stretch"] = r.delay_stretch;
  out["maintenance_msgs_per_node_s"] = r.maintenance_msgs_per_node_s;
  out["maintenance_bytes_per_node_s"] = r.maintenance_bytes_per_node_s;
  nlohmann::ordered_json by_type;
  for (size_t t = 0; t < r.msgs_per_node_s_by_type.size(); ++t) {
    by_type[std::string(pastry::MessageTypeName(t))] = r.msgs_per_node_s_by_type[t];
  }
  out["msgs_per_node_s_by_type"] = std::move(by_type);
  out["maintenance_bytes_source"] = "Cap'n Proto frame sizes (through_wire), no TCP/IP headers";
  PrintResult(std::move(out), f.common, wall_s);
}

}  // namespace

void RegisterSimChurn(CLI::App* sim) {
  auto f = std::make_shared<ChurnFlags>();
  CLI::App* cmd = sim->add_subcommand(
      "churn", "Poisson arrivals, exponential sessions (crashes) and lookups; dependability");
  cmd->add_option("--nodes", f->nodes, "Target number of nodes N")
      ->check(CLI::Range(10, 1 << 20))->capture_default_str();
  cmd->add_option("--duration", f->duration_s, "Simulated seconds of churn")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--session-median", f->session_median_s, "Median session time, s")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--lookup-rate", f->lookup_rate, "Lookups per simulated second (all nodes)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--probe-interval", f->probe_interval_s, "Leaf-set probe interval, s")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--pns-probes", f->pns_probes_per_s,
                  "Proximity probes per node per second (negative: the product's 8)")
      ->capture_default_str();
  AddCommonSimFlags(cmd, f->common);
  cmd->callback([f] { RunChurnCommand(*f); });
}

}  // namespace peter::tools

// `peter sim route`: N nodes join through the protocol, then M lookups between
// random (source, key) pairs; hops, correctness, delay stretch and state size.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "pastry/sim/route_experiment.h"
#include "tools/sim_common.h"

namespace peter::tools {
namespace {

using pastry::sim::OverlaySetup;

struct RouteFlags {
  SimCommonFlags common;
  int nodes = 1000;
  int64_t lookups = 10000;
  int b = 4;
  int leaf_set = 16;
  std::string topology = "plane";
  std::string pns = "on";
  std::string proximity = "topology";
  double probe_interval_s = 10;
  double settle_s = 40;
  double rate = 0;  // lookups per simulated second; 0: max(N, 1000)
  double timeout_ms = 0;
  double pns_probes_per_s = -1;
  int64_t perfect_lookups = 0;
};

// Fields of an OverlaySetup from the flags.
OverlaySetup SetupFrom(const RouteFlags& f) {
  OverlaySetup s;
  s.nodes = f.nodes;
  ApplyCommonSimFlags(f.common, s);
  s.b = f.b;
  s.leaf_set_size = f.leaf_set;
  s.pns = f.pns == "on";
  s.topology = f.topology;
  s.leaf_probe_interval = absl::Seconds(f.probe_interval_s);
  s.settle = absl::Seconds(f.settle_s);
  s.timeout = absl::Milliseconds(f.timeout_ms);
  s.pns_probes_per_s = f.pns_probes_per_s;
  s.proximity_from_topology = f.proximity == "topology";
  return s;
}

void RunRoute(const RouteFlags& f) {
  const auto wall_start = std::chrono::steady_clock::now();
  const OverlaySetup setup = SetupFrom(f);
  pastry::sim::JoinReport join;
  auto net = pastry::sim::BuildOverlay(setup, &join);
  if (!net.ok()) {
    std::fprintf(stderr, "peter sim route: error: %s\n",
                 std::string(net.status().message()).c_str());
    throw CLI::RuntimeError(2);
  }
  const double join_wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  const pastry::sim::StateStats state = pastry::sim::MeasureState(**net);
  pastry::sim::Rng rng(pastry::sim::Rng::Derive(f.common.seed, 7));
  const double rate = f.rate > 0 ? f.rate : std::max(f.nodes, 1000);
  const pastry::sim::LookupStats l = pastry::sim::MeasureLookups(**net, rng, f.lookups, rate);
  pastry::sim::LookupStats perfect;
  if (f.perfect_lookups > 0) {
    pastry::sim::Rng perfect_rng(pastry::sim::Rng::Derive(f.common.seed, 9));
    perfect = pastry::sim::MeasurePerfectRoutes(**net, perfect_rng, f.perfect_lookups, f.b,
                                                f.leaf_set);
  }
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  nlohmann::ordered_json out;
  out["nodes"] = f.nodes;
  out["lookups"] = f.lookups;
  out["seed"] = f.common.seed;
  out["b"] = f.b;
  out["leaf_set"] = f.leaf_set;
  out["topology"] = f.topology;
  out["pns"] = setup.pns;
  out["proximity"] = f.proximity;
  out["pns_probes_per_s"] = f.pns_probes_per_s;
  out["probe_interval_s"] = f.probe_interval_s;
  out["loss"] = f.common.loss;
  out["jitter_ms"] = f.common.jitter_ms;
  out["all_joined"] = join.all_active;
  out["join_waves"] = join.waves;
  out["answered"] = l.answered;
  out["lost"] = l.lost;
  out["avg_hops"] = l.avg_hops;
  out["max_hops"] = l.max_hops;
  out["hops_histogram"] = l.hops_histogram;
  out["correct_fraction"] = l.sent ? static_cast<double>(l.correct) / l.sent : 0.0;
  out["relative_distance"] = l.relative_distance;
  out["relative_distance_histogram_bin"] = pastry::sim::LookupStats::kRelativeDistanceBin;
  out["relative_distance_histogram"] = l.relative_distance_histogram;
  out["avg_route_delay_ms"] = l.avg_path_delay_ms;
  out["avg_direct_delay_ms"] = l.avg_direct_delay_ms;
  out["avg_last_hop_delay_ms"] = l.avg_last_hop_delay_ms;
  if (f.perfect_lookups > 0) {
    nlohmann::ordered_json p;
    p["lookups"] = perfect.sent;
    p["avg_hops"] = perfect.avg_hops;
    p["max_hops"] = perfect.max_hops;
    p["relative_distance"] = perfect.relative_distance;
    p["relative_distance_histogram"] = perfect.relative_distance_histogram;
    p["avg_route_delay_ms"] = perfect.avg_path_delay_ms;
    p["avg_direct_delay_ms"] = perfect.avg_direct_delay_ms;
    p["avg_last_hop_delay_ms"] = perfect.avg_last_hop_delay_ms;
    out["perfect_tables"] = std::move(p);
  }
  out["routing_table_entries_avg"] = state.routing_table_entries_avg;
  out["leaf_set_size"] = state.leaf_set_size_avg;
  out["join_messages_avg"] = join.messages_per_join;
  out["messages_total"] = (*net)->stats().sent;
  nlohmann::ordered_json by_type;
  for (size_t t = 0; t < (*net)->stats().sent_by_type.size(); ++t) {
    by_type[std::string(pastry::MessageTypeName(t))] = (*net)->stats().sent_by_type[t];
  }
  out["messages_by_type"] = std::move(by_type);
  if (!f.common.no_timing) out["join_wall_s"] = join_wall_s;
  out["sim_time_s"] = absl::ToDoubleSeconds((*net)->Now() - absl::UnixEpoch());
  PrintResult(std::move(out), f.common, wall_s);
}

}  // namespace

void RegisterSimRoute(CLI::App* sim) {
  auto f = std::make_shared<RouteFlags>();
  CLI::App* cmd = sim->add_subcommand(
      "route", "Join N nodes, route M lookups between random pairs, report hops and stretch");
  cmd->add_option("--nodes", f->nodes, "Nodes")->check(CLI::Range(2, 1 << 22))
      ->capture_default_str();
  cmd->add_option("--lookups", f->lookups, "Lookups")->check(CLI::Range(int64_t{1}, int64_t{1} << 32))
      ->capture_default_str();
  cmd->add_option("--b", f->b, "Bits per digit")->check(CLI::IsMember({1, 2, 4, 8}))
      ->capture_default_str();
  cmd->add_option("--leaf-set", f->leaf_set, "Leaf-set size L (even)")
      ->check(CLI::Range(2, 256))->capture_default_str();
  cmd->add_option("--topology", f->topology, "plane or transit-stub")
      ->check(CLI::IsMember({"plane", "transit-stub"}))->capture_default_str();
  cmd->add_option("--pns", f->pns, "Proximity neighbour selection: on or off")
      ->check(CLI::IsMember({"on", "off"}))->capture_default_str();
  cmd->add_option("--proximity", f->proximity,
                  "Round trips for PNS: topology (known, as in the Pastry paper) or probes "
                  "(measured, as a real node does)")
      ->check(CLI::IsMember({"topology", "probes"}))->capture_default_str();
  cmd->add_option("--probe-interval", f->probe_interval_s,
                  "Leaf-set probe interval in s (the product default is 1)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--settle", f->settle_s, "Simulated seconds between last join and lookups")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--rate", f->rate, "Lookups per simulated second (0: max(N, 1000))")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--timeout", f->timeout_ms,
                  "Probe and hop-ack timeout floor in ms (0: the defaults, 300)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--pns-probes", f->pns_probes_per_s,
                  "Proximity probes per node per second (negative: the product's 8)")
      ->capture_default_str();
  cmd->add_option("--perfect-tables", f->perfect_lookups,
                  "Also route this many lookups over perfect state (every table slot the "
                  "nearest live node with its prefix), computed from the ground truth")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  AddCommonSimFlags(cmd, f->common);
  cmd->callback([f] {
    if (f->leaf_set % 2 != 0) {
      std::fprintf(stderr, "peter sim route: error: --leaf-set must be even\n");
      throw CLI::RuntimeError(2);
    }
    RunRoute(*f);
  });
}

}  // namespace peter::tools

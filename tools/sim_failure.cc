// `peter sim failure`: the Pastry paper's failure experiment (its figure 10):
// N nodes, a fraction of them fail silently; hops before the failure, after
// it with routing-table repair frozen, and after repair.
#include <chrono>
#include <cstdio>
#include <memory>

#include "pastry/sim/route_experiment.h"
#include "tools/sim_common.h"

namespace peter::tools {
namespace {

using pastry::sim::LookupStats;
using pastry::sim::Rng;
using pastry::sim::SimNetwork;

struct FailureFlags {
  SimCommonFlags common;
  int nodes = 5000;
  int64_t lookups = 100000;
  double fraction = 0.1;
  double probe_interval_s = 1;
  double repair_s = 60;
};

nlohmann::ordered_json Phase(const LookupStats& l, const SimNetwork& net) {
  nlohmann::ordered_json j;
  j["lookups"] = l.sent;
  j["avg_hops"] = l.avg_hops;
  j["max_hops"] = l.max_hops;
  j["hops_histogram"] = l.hops_histogram;
  j["lost"] = l.lost;
  j["correct_fraction"] = l.sent ? static_cast<double>(l.correct) / l.sent : 0.0;
  j["relative_distance"] = l.relative_distance;
  j["routing_table_entries_avg"] = pastry::sim::MeasureState(net).routing_table_entries_avg;
  return j;
}

void RunFailure(const FailureFlags& f) {
  const auto wall_start = std::chrono::steady_clock::now();
  pastry::sim::OverlaySetup setup;
  setup.nodes = f.nodes;
  ApplyCommonSimFlags(f.common, setup);
  setup.leaf_probe_interval = absl::Seconds(f.probe_interval_s);
  auto built = pastry::sim::BuildOverlay(setup, nullptr);
  SimNetwork& net = **built;
  Rng rng(Rng::Derive(f.common.seed, 8));
  const double rate = std::max(f.nodes, 1000);
  const absl::Duration window = absl::Seconds(f.repair_s);

  LookupStats before = pastry::sim::MeasureLookups(net, rng, f.lookups, rate);
  nlohmann::ordered_json before_json = Phase(before, net);

  const int victims = static_cast<int>(f.nodes * f.fraction);
  for (int crashed = 0; crashed < victims;) {
    int v = static_cast<int>(rng.Below(net.size()));
    if (!net.alive(v)) continue;
    net.Crash(v);
    ++crashed;
  }
  for (int i : net.LiveIndices()) net.node(i).set_routing_table_repair(false);
  LookupStats frozen = pastry::sim::MeasureLookups(net, rng, f.lookups, rate);
  nlohmann::ordered_json frozen_json = Phase(frozen, net);

  for (int i : net.LiveIndices()) net.node(i).set_routing_table_repair(true);
  net.RunFor(window);
  LookupStats after = pastry::sim::MeasureLookups(net, rng, f.lookups, rate);
  nlohmann::ordered_json after_json = Phase(after, net);
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  nlohmann::ordered_json out;
  out["nodes"] = f.nodes;
  out["failed"] = victims;
  out["seed"] = f.common.seed;
  out["probe_interval_s"] = f.probe_interval_s;
  out["repair_window_s"] = f.repair_s;
  out["before"] = std::move(before_json);
  out["after_failure_no_table_repair"] = std::move(frozen_json);
  out["after_repair"] = std::move(after_json);
  PrintResult(std::move(out), f.common, wall_s);
}

}  // namespace

void RegisterSimFailure(CLI::App* sim) {
  auto f = std::make_shared<FailureFlags>();
  CLI::App* cmd = sim->add_subcommand(
      "failure", "Silent failure of a fraction of N nodes: hops before, without and after repair");
  cmd->add_option("--nodes", f->nodes, "Nodes")->check(CLI::Range(10, 1 << 22))
      ->capture_default_str();
  cmd->add_option("--lookups", f->lookups, "Lookups per phase")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 32))->capture_default_str();
  cmd->add_option("--fraction", f->fraction, "Fraction of nodes that fail")
      ->check(CLI::Range(0.0, 0.9))->capture_default_str();
  cmd->add_option("--probe-interval", f->probe_interval_s, "Leaf-set probe interval, s")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--repair-window", f->repair_s,
                  "Simulated seconds of repair before the last phase")
      ->check(CLI::PositiveNumber)->capture_default_str();
  AddCommonSimFlags(cmd, f->common);
  cmd->callback([f] { RunFailure(*f); });
}

}  // namespace peter::tools

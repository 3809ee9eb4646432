// `peter sim scribe`: Scribe on N simulated Pastry nodes (the Scribe paper's
// experiments): delivery and ordering, delay penalty (RAD/RMD), node and
// link stress, control traffic; optionally with failures mid-stream.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "tools/scribe_experiment.h"
#include "tools/sim_common.h"

namespace peter::tools {
namespace {

struct ScribeFlags {
  SimCommonFlags common;
  int nodes = 1000;
  int topics = 100;
  int messages = 10;
  int group_size = 20;
  bool zipf = false;
  double fail_fraction = 0;
  bool reliable = false;
  std::string publish = "acked";
  std::string topology = "transit-stub";
  double probe_interval_s = 1;
  double stream_s = 20;
  double repair_s = 10;
};

template <typename T>
nlohmann::ordered_json OrNull(const std::optional<T>& v) {
  return v.has_value() ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

void RunScribe(const ScribeFlags& f) {
  const auto wall_start = std::chrono::steady_clock::now();
  ScribeSetup setup;
  setup.overlay.nodes = f.nodes;
  ApplyCommonSimFlags(f.common, setup.overlay);
  setup.overlay.topology = f.topology;
  setup.overlay.leaf_probe_interval = absl::Seconds(f.probe_interval_s);
  setup.topics = f.topics;
  setup.messages = f.messages;
  setup.group_size = f.group_size;
  setup.zipf = f.zipf;
  setup.reliable = f.reliable;
  setup.acked_publish = f.publish == "acked";
  setup.fail_fraction = f.fail_fraction;
  setup.stream = absl::Seconds(f.stream_s);
  setup.repair_window = absl::Seconds(f.repair_s);
  absl::StatusOr<ScribeResult> result = RunScribeExperiment(setup);
  if (!result.ok()) {
    std::fprintf(stderr, "peter sim scribe: error: %s\n",
                 std::string(result.status().message()).c_str());
    throw CLI::RuntimeError(2);
  }
  const ScribeResult& r = *result;
  const double wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();

  nlohmann::ordered_json out;
  out["nodes"] = f.nodes;
  out["topics"] = f.topics;
  out["topics_nonempty"] = r.topics_nonempty;
  out["group_sizes"] =
      f.zipf ? nlohmann::ordered_json("zipf") : nlohmann::ordered_json(f.group_size);
  out["memberships"] = r.memberships;
  out["messages_per_topic"] = f.messages;
  out["seed"] = f.common.seed;
  out["topology"] = f.topology;
  out["reliable"] = f.reliable;
  out["publish"] = f.publish;
  out["loss"] = f.common.loss;
  out["probe_interval_s"] = f.probe_interval_s;
  out["fail_fraction"] = f.fail_fraction;
  out["failed"] = r.failed;
  out["all_joined"] = r.all_joined;
  out["attached_fraction"] = r.attached_fraction;
  out["expected"] = r.expected;
  out["delivered"] = r.delivered;
  out["delivered_unpromised"] = r.delivered_unpromised;
  out["duplicates"] = r.duplicates;
  out["order_violations"] = r.order_violations;
  out["numbering_conflicts"] = r.numbering_conflicts;
  out["rad_mean"] = r.rad_mean;
  out["rmd_mean"] = r.rmd_mean;
  out["tree_delay_ms_mean"] = r.tree_delay_ms_mean;
  out["unicast_delay_ms_mean"] = r.unicast_delay_ms_mean;
  out["ratio_histogram_bin"] = ScribeResult::kRatioBin;
  out["rad_histogram"] = r.rad_histogram;
  out["rmd_histogram"] = r.rmd_histogram;
  out["nodes_with_children"] = r.nodes_with_children;
  out["node_stress_tables_mean"] = r.tables_mean;
  out["node_stress_tables_max"] = r.tables_max;
  out["node_stress_entries_mean"] = r.entries_mean;
  out["node_stress_entries_max"] = r.entries_max;
  out["node_stress_tables_histogram"] = r.tables_histogram;
  out["node_stress_entries_histogram"] = r.entries_histogram;
  out["topic_state_per_node_mean"] = r.topic_state_mean;
  out["link_stress_mean"] = OrNull(r.link_stress_mean);
  out["link_stress_max"] = OrNull(r.link_stress_max);
  out["link_stress_per_message_max"] = OrNull(r.link_stress_per_message_max);
  out["links_used"] = OrNull(r.links_used);
  out["ip_multicast_link_stress_mean"] = OrNull(r.ip_link_stress_mean);
  out["ip_multicast_link_stress_max"] = OrNull(r.ip_link_stress_max);
  out["link_stress_histogram"] = r.link_stress_histogram;
  out["ip_multicast_link_stress_histogram"] = r.ip_link_stress_histogram;
  out["control_msgs_per_node_s"] = r.control_msgs_per_node_s;
  out["overlay_msgs_per_node_s"] = r.overlay_msgs_per_node_s;
  out["parent_failures"] = r.parent_failures;
  out["repairs_served"] = r.repairs_served;
  out["skipped"] = r.skipped;
  out["roots_taken"] = r.roots_taken;
  out["publish_resends"] = r.publish_resends;
  out["publishes_deduplicated"] = r.publishes_deduplicated;
  out["publishes_unconfirmed"] = r.publishes_unconfirmed;
  out["missing_of_unconfirmed_publishes"] = r.missing_unconfirmed;
  out["pushdowns"] = r.pushdowns;
  out["sim_time_s"] = r.sim_time_s;
  if (!f.common.no_timing) {
    out["rss_overlay_mb"] = r.rss_overlay_mb;
    out["heap_overlay_mb"] = r.heap_overlay_mb;
    out["heap_subscribed_mb"] = r.heap_subscribed_mb;
    out["heap_streamed_mb"] = r.heap_streamed_mb;
  }
  PrintResult(std::move(out), f.common, wall_s);
}

}  // namespace

void RegisterSimScribe(CLI::App* sim) {
  auto f = std::make_shared<ScribeFlags>();
  CLI::App* cmd = sim->add_subcommand(
      "scribe", "Scribe on N nodes: delivery, order, delay penalty, node and link stress");
  cmd->add_option("--nodes", f->nodes, "Nodes")
      ->check(CLI::Range(10, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--topics", f->topics, "Topics (groups)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--messages", f->messages, "Messages published to each topic")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  CLI::Option* size = cmd->add_option("--group-size", f->group_size, "Members per topic")
                          ->check(CLI::Range(1, 1 << 20))
                          ->capture_default_str();
  cmd->add_flag("--zipf", f->zipf,
                "Scribe paper's group sizes: rank r has floor(N r^-1.25 + 0.5) members")
      ->excludes(size);
  cmd->add_option("--fail-fraction", f->fail_fraction,
                  "Share of nodes (roots of the largest topics first) that fail mid-stream")
      ->check(CLI::Range(0.0, 0.9))
      ->capture_default_str();
  cmd->add_flag("--reliable", f->reliable, "Reliable subscriptions (gap repair)");
  cmd->add_option("--publish", f->publish,
                  "acked: the root acknowledges, the publisher resends until it does; "
                  "plain: fire and forget")
      ->check(CLI::IsMember({"acked", "plain"}))
      ->capture_default_str();
  cmd->add_option("--topology", f->topology, "plane or transit-stub")
      ->check(CLI::IsMember({"plane", "transit-stub"}))
      ->capture_default_str();
  cmd->add_option("--probe-interval", f->probe_interval_s, "Leaf-set probe interval, s")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--stream", f->stream_s,
                  "Simulated seconds over which messages 2..M of every topic are published")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--repair-window", f->repair_s,
                  "With failures: best-effort members are promised what is published this "
                  "many seconds after them")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  AddCommonSimFlags(cmd, f->common);
  cmd->callback([f] { RunScribe(*f); });
}

}  // namespace peter::tools

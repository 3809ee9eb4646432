// `peter demo`: a small Pastry ring in one process over a simulated network,
// narrated for a newcomer: the ring forms, messages find the node whose id is
// closest to their key, nodes crash and the ring repairs itself.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "pastry/sim/scenario.h"
#include "pastry/sim/sim_network.h"
#include "tools/commands.h"

namespace peter::tools {
namespace {

using pastry::NodeId;
using pastry::sim::SimNetwork;

struct DemoFlags {
  int nodes = 100;
  int crash = 10;
  int lookups = 2000;
  uint64_t seed = 7;
};

double SimSeconds(const SimNetwork& net) {
  return absl::ToDoubleSeconds(net.Now() - absl::UnixEpoch());
}

void FormRing(SimNetwork& net, pastry::sim::Rng& rng, int nodes) {
  std::printf(
      "1. The ring forms.\n"
      "   Every node gets a random 128-bit id. Node 0 starts a ring; each other node\n"
      "   joins through a random node already in it. A joining node learns its\n"
      "   neighbours and only starts serving keys once they have confirmed it.\n");
  for (int i = 0; i < nodes; ++i) net.AddNode(rng.RandomId(), pastry::Options{});
  net.StartRing(0);
  for (int i = 1; i < nodes; ++i) {
    net.Join(i, static_cast<int>(rng.Below(i)));
    net.RunUntil([&] { return net.node(i).active(); }, absl::Seconds(30),
                 absl::Milliseconds(5));
  }
  net.RunFor(absl::Seconds(45));  // let routing-table maintenance run twice
  std::vector<std::string> ring;
  for (const auto& [id, index] : net.ring().members()) ring.push_back(id.ShortHex());
  const size_t shown = std::min<size_t>(ring.size(), 32);
  std::printf("   %d nodes joined; around the ring (first 8 hex digits of each id)%s:\n",
              nodes, shown < ring.size() ? ", the first 32" : "");
  for (size_t i = 0; i < shown; i += 8) {
    std::vector<std::string> line(ring.begin() + i,
                                  ring.begin() + std::min(shown, i + 8));
    std::printf("     %s\n", absl::StrJoin(line, "  ").c_str());
  }
  std::printf("   Leaf sets that differ from the true ring: %d of %d\n\n",
              pastry::sim::CountWrongLeafSets(net), nodes);
}

void ShowRoutes(SimNetwork& net, pastry::sim::Rng& rng, int count) {
  std::printf(
      "2. Messages are routed by key.\n"
      "   A key belongs to the live node whose id is numerically closest. Each hop\n"
      "   goes to a node sharing a longer id prefix with the key, so a route takes\n"
      "   about log16(N) hops.\n");
  std::vector<int> live = net.LiveIndices();
  for (int n = 0; n < count; ++n) {
    int source = live[rng.Below(live.size())];
    NodeId key = rng.RandomId();
    net.Lookup(source, key, absl::Seconds(10),
               [&net, key](absl::StatusOr<pastry::Node::LookupResult> r) {
                 if (!r.ok()) {
                   std::printf("   key %s: %s\n", key.ShortHex().c_str(),
                               std::string(r.status().message()).c_str());
                   return;
                 }
                 std::vector<std::string> path;
                 for (const NodeId& id : r->path) path.push_back(id.ShortHex());
                 bool right = net.id(net.ClosestLiveNode(key)) == r->root.id;
                 std::printf("   key %s: %s  (%d hop%s, %s)\n", key.ShortHex().c_str(),
                             absl::StrJoin(path, " -> ").c_str(), r->hops,
                             r->hops == 1 ? "" : "s",
                             right ? "the closest node" : "NOT the closest node");
               });
    net.RunFor(absl::Seconds(1));
  }
  std::printf("\n");
}

void Report(const char* what, const pastry::sim::LookupReport& r) {
  std::printf("   %s: %d lookups, %d answered by the right node, %d lost, %.2f hops on average\n",
              what, r.sent, r.correct, r.lost, r.avg_hops);
}

void CrashAndRepair(SimNetwork& net, pastry::sim::Rng& rng, const DemoFlags& flags) {
  std::printf(
      "3. Nodes crash without warning.\n"
      "   %d nodes stop at once, as with kill -9. Their neighbours notice missing\n"
      "   probe answers, declare them dead and repair their leaf sets and routing\n"
      "   tables; routes that hit a dead node are acknowledged hop by hop, so they\n"
      "   are sent again another way.\n",
      flags.crash);
  for (int crashed = 0; crashed < flags.crash;) {
    int victim = static_cast<int>(rng.Below(net.size()));
    if (!net.alive(victim)) continue;
    std::printf("   crash %s\n", net.id(victim).ShortHex().c_str());
    net.Crash(victim);
    ++crashed;
  }
  Report("while repairing (10 s)",
         pastry::sim::RunLookups(net, rng, flags.lookups, absl::Seconds(10),
                                 absl::Seconds(30)));
  std::printf("   Leaf sets that differ from the true ring: %d of %d\n",
              pastry::sim::CountWrongLeafSets(net), net.live_count());
  Report("after repair",
         pastry::sim::RunLookups(net, rng, flags.lookups, absl::Seconds(5),
                                 absl::Seconds(30)));
}

void RunDemo(const DemoFlags& flags) {
  SimNetwork::Config config;
  config.seed = flags.seed;
  SimNetwork net(config);
  pastry::sim::Rng rng(flags.seed);
  std::printf(
      "Peter demo: a Pastry overlay of %d nodes, simulated in this one process\n"
      "(network delays of a data centre, simulated clock, seed %llu).\n\n",
      flags.nodes, static_cast<unsigned long long>(flags.seed));
  FormRing(net, rng, flags.nodes);
  ShowRoutes(net, rng, 5);
  std::printf("   Measured over many lookups:\n");
  Report("healthy ring", pastry::sim::RunLookups(net, rng, flags.lookups, absl::Seconds(5),
                                                 absl::Seconds(30)));
  std::printf("\n");
  CrashAndRepair(net, rng, flags);
  std::printf("\n%.1f s of simulated time; %llu messages crossed the simulated network.\n",
              SimSeconds(net), static_cast<unsigned long long>(net.stats().delivered));
}

}  // namespace

void RegisterDemoCommand(CLI::App& app) {
  auto flags = std::make_shared<DemoFlags>();
  CLI::App* demo = app.add_subcommand(
      "demo", "Run a small simulated Pastry ring and narrate what it does");
  demo->add_option("--nodes", flags->nodes, "Nodes in the ring")
      ->check(CLI::Range(2, 20000))
      ->capture_default_str();
  demo->add_option("--crash", flags->crash, "Nodes to crash in step 3")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  demo->add_option("--lookups", flags->lookups, "Lookups per measurement")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  demo->add_option("--seed", flags->seed, "Random seed (same seed, same run)")
      ->capture_default_str();
  demo->callback([flags] {
    if (flags->crash >= flags->nodes) {
      std::fprintf(stderr, "peter demo: error: --crash must be below --nodes\n");
      throw CLI::RuntimeError(2);
    }
    RunDemo(*flags);
  });
}

}  // namespace peter::tools

#include "pastry/sim/route_experiment.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "pastry/sim/transit_stub.h"

namespace peter::pastry::sim {
namespace {

// Streams of the experiment's seed, so each consumer draws independently.
enum Stream : uint64_t { kIds = 101, kBootstraps = 102, kTopology = 103 };

// Runs until every node in `wave` is active, checking every 100 ms.
bool RunUntilActive(SimNetwork& net, const std::vector<int>& wave, absl::Duration max) {
  size_t done = 0;
  return net.RunUntil(
      [&] {
        while (done < wave.size() &&
               (!net.alive(wave[done]) || net.node(wave[done]).active())) {
          ++done;
        }
        return done == wave.size();
      },
      max, absl::Milliseconds(100));
}

}  // namespace

Options ExperimentOptions(const OverlaySetup& setup) {
  Options o;
  o.b = setup.b;
  o.leaf_set_size = setup.leaf_set_size;
  o.leaf_probe_interval = setup.leaf_probe_interval;
  o.proximity_neighbour_selection = setup.pns;
  // PNS probes are budgeted per probe interval: keep the default's rate per
  // second (8 per 1 s) when the interval is longer.
  const double per_s = setup.pns_probes_per_s >= 0
                           ? setup.pns_probes_per_s
                           : Options{}.pns_probes_per_tick /
                                 absl::ToDoubleSeconds(Options{}.leaf_probe_interval);
  o.pns_probes_per_tick = static_cast<int>(
      std::lround(per_s * absl::ToDoubleSeconds(setup.leaf_probe_interval)));
  if (per_s > 0) o.pns_probes_per_tick = std::max(o.pns_probes_per_tick, 1);
  if (!setup.pns) o.pns_probes_per_tick = 0;
  o.routing_table_repair = setup.table_repair;
  if (setup.timeout > absl::ZeroDuration()) {
    o.probe_timeout = setup.timeout;
    o.hop_ack_timeout = setup.timeout;
  }
  return o;
}

absl::StatusOr<std::unique_ptr<Topology>> MakeTopology(const std::string& name,
                                                       uint64_t seed) {
  uint64_t s = Rng::Derive(seed, kTopology);
  if (name == "plane") return std::make_unique<PlaneTopology>(PlaneTopology::Options{}, s);
  if (name == "transit-stub") {
    return std::make_unique<TransitStubTopology>(TransitStubTopology::Options{}, s);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown topology '", name, "'"));
}

absl::StatusOr<Bootstrap> ParseBootstrap(const std::string& name) {
  if (name == "random") return Bootstrap::kRandom;
  if (name == "nearest") return Bootstrap::kNearest;
  return absl::InvalidArgumentError(absl::StrCat("unknown bootstrap '", name, "'"));
}

int PickBootstrap(const SimNetwork& net, const OverlaySetup& setup, int joiner,
                  absl::Span<const int> candidates, Rng& rng) {
  if (candidates.empty()) return -1;
  if (setup.bootstrap == Bootstrap::kRandom) return candidates[rng.Below(candidates.size())];
  // Ties go to the first candidate seen, so the pick is deterministic.
  int best = -1;
  absl::Duration best_delay = absl::InfiniteDuration();
  auto consider = [&](int c) {
    const absl::Duration d = net.Delay(joiner, c);
    if (d < best_delay) {
      best = c;
      best_delay = d;
    }
  };
  if (setup.bootstrap_sample > 0) {
    for (int k = 0; k < setup.bootstrap_sample; ++k) {
      consider(candidates[rng.Below(candidates.size())]);
    }
  } else {
    for (int c : candidates) consider(c);
  }
  return best;
}

absl::StatusOr<std::unique_ptr<SimNetwork>> BuildOverlay(const OverlaySetup& setup,
                                                         JoinReport* report) {
  absl::StatusOr<std::unique_ptr<Topology>> topology =
      MakeTopology(setup.topology, setup.seed);
  if (!topology.ok()) return topology.status();
  SimNetwork::Config config;
  config.seed = setup.seed;
  config.loss_rate = setup.loss_rate;
  config.jitter = setup.jitter;
  config.through_wire = setup.through_wire;
  config.proximity_from_topology = setup.proximity_from_topology;
  auto net = std::make_unique<SimNetwork>(config, *std::move(topology));
  const Options options = ExperimentOptions(setup);
  Rng ids(Rng::Derive(setup.seed, kIds));
  Rng pick(Rng::Derive(setup.seed, kBootstraps));
  for (int i = 0; i < setup.nodes; ++i) net->AddNode(ids.RandomId(), options);

  const absl::Time start = net->Now();
  net->StartRing(0);
  int active = 1;
  JoinReport r;
  r.all_active = true;
  std::vector<int> candidates;  // the active nodes: 0 .. active - 1
  while (active < setup.nodes) {
    const int count = std::min(active, setup.nodes - active);
    candidates.resize(active);
    std::iota(candidates.begin(), candidates.end(), 0);
    std::vector<int> wave;
    wave.reserve(count);
    const absl::Time t0 = net->Now();
    for (int k = 0; k < count; ++k) {
      const int joiner = active + k;
      const int via = PickBootstrap(*net, setup, joiner, candidates, pick);
      wave.push_back(joiner);
      net->Schedule(t0 + absl::Seconds(1) * (static_cast<double>(k) / count),
                    [n = net.get(), joiner, via] { n->Join(joiner, via); });
    }
    net->RunFor(absl::Seconds(1));
    r.all_active &= RunUntilActive(*net, wave, absl::Seconds(120));
    active += count;
    ++r.waves;
  }
  const uint64_t join_messages = net->stats().sent;
  r.messages_per_join =
      setup.nodes > 1 ? static_cast<double>(join_messages) / (setup.nodes - 1) : 0;
  net->RunFor(setup.settle);
  r.sim_time = net->Now() - start;
  if (report != nullptr) *report = r;
  return net;
}

LookupStats MeasureLookups(SimNetwork& net, Rng& rng, int64_t count, double rate,
                           absl::Duration timeout) {
  struct State {
    LookupStats stats;
    int64_t hop_sum = 0;
    int64_t rd_count = 0;
    double rd_sum = 0;
    double path_ms = 0;
    double direct_ms = 0;
    double last_hop_ms = 0;
    absl::flat_hash_map<NodeId, int> index_of;
  };
  auto state = std::make_shared<State>();
  LookupStats& s = state->stats;
  s.relative_distance_histogram.assign(LookupStats::kRelativeDistanceBins, 0);
  for (int i = 0; i < net.size(); ++i) state->index_of[net.id(i)] = i;
  std::vector<int> live = net.LiveIndices();
  if (live.empty() || count <= 0) return s;

  auto on_answer = [&net, state](int source, NodeId key,
                                 absl::StatusOr<Node::LookupResult> r) {
    LookupStats& st = state->stats;
    if (!r.ok()) {
      ++st.lost;
      return;
    }
    ++st.answered;
    const int truth = net.ClosestLiveNode(key);
    if (truth >= 0 && net.id(truth) == r->root.id) ++st.correct;
    state->hop_sum += r->hops;
    st.max_hops = std::max(st.max_hops, r->hops);
    if (static_cast<int>(st.hops_histogram.size()) <= r->hops) {
      st.hops_histogram.resize(r->hops + 1);
    }
    ++st.hops_histogram[r->hops];
    const int root = net.IndexOf(r->root.endpoint);
    if (root < 0 || root == source || r->path.size() < 2) return;
    double path_ns = 0;
    double hop_ns = 0;
    int prev = source;
    for (size_t h = 1; h < r->path.size(); ++h) {
      auto it = state->index_of.find(r->path[h]);
      if (it == state->index_of.end()) return;
      hop_ns = absl::ToDoubleNanoseconds(net.Delay(prev, it->second));
      path_ns += hop_ns;
      prev = it->second;
    }
    const double direct_ns = absl::ToDoubleNanoseconds(net.Delay(source, root));
    if (direct_ns <= 0) return;
    const double ratio = path_ns / direct_ns;
    state->rd_sum += ratio;
    state->path_ms += path_ns / 1e6;
    state->direct_ms += direct_ns / 1e6;
    state->last_hop_ms += hop_ns / 1e6;
    ++state->rd_count;
    int bin = static_cast<int>(ratio / LookupStats::kRelativeDistanceBin);
    ++st.relative_distance_histogram[std::min(bin, LookupStats::kRelativeDistanceBins - 1)];
  };

  // Launched in chunks of simulated time, so that only one chunk of
  // scheduled callbacks exists at once.
  constexpr int64_t kChunk = 10000;
  const absl::Duration gap = absl::Seconds(1) / rate;
  for (int64_t first = 0; first < count; first += kChunk) {
    const int64_t last = std::min(count, first + kChunk);
    const absl::Time t0 = net.Now();
    for (int64_t n = first; n < last; ++n) {
      const int source = live[rng.Below(live.size())];
      const NodeId key = rng.RandomId();
      net.Schedule(t0 + gap * static_cast<double>(n - first),
                   [&net, source, key, timeout, state, on_answer] {
                     if (!net.alive(source)) return;
                     ++state->stats.sent;
                     net.Lookup(source, key, timeout,
                                [source, key, on_answer](absl::StatusOr<Node::LookupResult> r) {
                                  on_answer(source, key, std::move(r));
                                });
                   });
    }
    net.RunFor(gap * static_cast<double>(last - first));
  }
  net.RunUntil([&] { return s.answered + s.lost == s.sent; }, timeout * 2,
               absl::Milliseconds(50));
  s.avg_hops = s.answered ? static_cast<double>(state->hop_sum) / s.answered : 0;
  if (state->rd_count > 0) {
    s.relative_distance = state->rd_sum / state->rd_count;
    s.avg_path_delay_ms = state->path_ms / state->rd_count;
    s.avg_direct_delay_ms = state->direct_ms / state->rd_count;
    s.avg_last_hop_delay_ms = state->last_hop_ms / state->rd_count;
  }
  return s;
}

LookupStats MeasurePerfectRoutes(const SimNetwork& net, Rng& rng, int64_t count, int b,
                                 int leaf_set_size) {
  LookupStats s;
  s.relative_distance_histogram.assign(LookupStats::kRelativeDistanceBins, 0);
  std::vector<int> live = net.LiveIndices();
  if (live.empty() || count <= 0) return s;
  // The live ring in id order, and each node's position in it.
  std::vector<int> ring;
  absl::flat_hash_map<int, int> rank;
  for (const auto& [id, i] : net.ring().members()) {
    rank[i] = static_cast<int>(ring.size());
    ring.push_back(i);
  }
  const int n = static_cast<int>(ring.size());
  // The live nodes by id prefix: (digits, the prefix's value) -> nodes, for
  // prefixes of up to two digits more than a ring of n nodes resolves; a
  // route to a key that close to a node's id is inside a leaf set (and goes
  // to the root) long before.
  const int max_digits = std::min(
      64 / b, static_cast<int>(std::ceil(std::log2(std::max(n, 2)) / b)) + 2);
  auto prefix = [&](const NodeId& id, int digits) { return id.hi() >> (64 - digits * b); };
  absl::flat_hash_map<std::pair<int, uint64_t>, std::vector<int>> by_prefix;
  for (int i : ring) {
    for (int d = 1; d <= max_digits; ++d) by_prefix[{d, prefix(net.id(i), d)}].push_back(i);
  }
  int64_t hop_sum = 0;
  int64_t routes = 0;
  int64_t rd_count = 0;
  double rd_sum = 0;
  double path_ms = 0;
  double direct_ms = 0;
  double last_hop_ms = 0;
  for (int64_t k = 0; k < count; ++k) {
    const int source = live[rng.Below(live.size())];
    const NodeId key = rng.RandomId();
    const int root = net.ClosestLiveNode(key);
    int cur = source;
    int hops = 0;
    double path_ns = 0;
    double hop_ns = 0;
    while (cur != root) {
      int next = root;
      int apart = std::abs(rank[cur] - rank[root]);
      apart = std::min(apart, n - apart);
      const int shared = net.id(cur).SharedPrefixLength(key, b);
      if (apart > leaf_set_size / 2 && shared + 1 <= max_digits) {
        auto it = by_prefix.find({shared + 1, prefix(key, shared + 1)});
        absl::Duration best = absl::InfiniteDuration();
        if (it != by_prefix.end()) {
          for (int c : it->second) {
            const absl::Duration d = net.Delay(cur, c);
            if (d < best) {
              best = d;
              next = c;
            }
          }
        }
      }
      hop_ns = absl::ToDoubleNanoseconds(net.Delay(cur, next));
      path_ns += hop_ns;
      cur = next;
      ++hops;
    }
    ++routes;
    hop_sum += hops;
    s.max_hops = std::max(s.max_hops, hops);
    const double direct_ns = absl::ToDoubleNanoseconds(net.Delay(source, root));
    if (root == source || direct_ns <= 0) continue;
    const double ratio = path_ns / direct_ns;
    rd_sum += ratio;
    path_ms += path_ns / 1e6;
    direct_ms += direct_ns / 1e6;
    last_hop_ms += hop_ns / 1e6;
    ++rd_count;
    const int bin = static_cast<int>(ratio / LookupStats::kRelativeDistanceBin);
    ++s.relative_distance_histogram[std::min(bin, LookupStats::kRelativeDistanceBins - 1)];
  }
  s.sent = s.answered = routes;
  s.avg_hops = routes ? static_cast<double>(hop_sum) / routes : 0;
  if (rd_count > 0) {
    s.relative_distance = rd_sum / rd_count;
    s.avg_path_delay_ms = path_ms / rd_count;
    s.avg_direct_delay_ms = direct_ms / rd_count;
    s.avg_last_hop_delay_ms = last_hop_ms / rd_count;
  }
  return s;
}

StateStats MeasureState(const SimNetwork& net) {
  StateStats s;
  std::vector<int> live = net.LiveIndices();
  if (live.empty()) return s;
  int64_t entries = 0;
  int64_t leaves = 0;
  for (int i : live) {
    entries += static_cast<int64_t>(net.node(i).routing_table().EntryCount());
    leaves += static_cast<int64_t>(net.node(i).leaf_set().size());
  }
  s.routing_table_entries_avg = static_cast<double>(entries) / live.size();
  s.leaf_set_size_avg = static_cast<double>(leaves) / live.size();
  return s;
}

}  // namespace peter::pastry::sim

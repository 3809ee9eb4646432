#include "pastry/sim/churn.h"

#include <cmath>
#include <memory>
#include <optional>
#include <vector>

#include "pastry/core/messages.h"

namespace peter::pastry::sim {
namespace {

enum Stream : uint64_t { kChurnIds = 201, kChurnEvents = 202, kChurnLookups = 203 };

// Exponentially distributed, mean `mean`.
absl::Duration Exponential(Rng& rng, absl::Duration mean) {
  return mean * -std::log(1.0 - rng.Uniform01());
}

// The active live node numerically closest to `key`: the node that should
// answer (joining nodes hold messages until active, so they are not roots).
std::optional<int> ActiveRoot(const SimNetwork& net, const NodeId& key) {
  const auto& m = net.ring().members();
  if (m.empty()) return std::nullopt;
  auto usable = [&](int i) { return net.alive(i) && net.node(i).active(); };
  std::optional<int> best;
  auto consider = [&](int i) {
    if (!best || NodeId::CloserTo(key, net.id(i), net.id(*best))) best = i;
  };
  // Walk clockwise and counter-clockwise to the first usable member.
  auto up = m.lower_bound(key);
  for (size_t n = 0; n < m.size(); ++n, ++up) {
    if (up == m.end()) up = m.begin();
    if (usable(up->second)) {
      consider(up->second);
      break;
    }
  }
  auto down = m.lower_bound(key);
  for (size_t n = 0; n < m.size(); ++n) {
    if (down == m.begin()) down = m.end();
    --down;
    if (usable(down->second)) {
      consider(down->second);
      break;
    }
  }
  return best;
}

bool IsLookupTraffic(size_t type) {
  static const size_t kRoute = MessageBody(RouteMsg{}).index();
  static const size_t kAck = MessageBody(RouteAck{}).index();
  static const size_t kReply = MessageBody(LookupReply{}).index();
  return type == kRoute || type == kAck || type == kReply;
}

class ChurnRun {
 public:
  ChurnRun(const ChurnSetup& setup, SimNetwork& net)
      : setup_(setup),
        net_(net),
        options_(ExperimentOptions(setup.overlay)),
        ids_(Rng::Derive(setup.overlay.seed, kChurnIds)),
        events_(Rng::Derive(setup.overlay.seed, kChurnEvents)),
        lookups_(Rng::Derive(setup.overlay.seed, kChurnLookups)),
        mean_session_(setup.session_median / std::log(2.0)),
        state_(std::make_shared<LookupState>()) {}

  ChurnResult Run() {
    const absl::Time start = net_.Now();
    end_ = start + setup_.duration;
    const NetworkStats s0 = net_.stats();
    for (int i : net_.LiveIndices()) ScheduleDeparture(i);
    ScheduleArrival();
    ScheduleLookup();
    ScheduleSample();
    NetworkStats s1;
    net_.Schedule(end_, [&] { s1 = net_.stats(); });
    net_.RunUntil(end_);
    // Let lookups still in flight finish (no more churn or new lookups).
    net_.RunFor(setup_.lookup_timeout * 2);
    return Finish(s0, s1);
  }

 private:
  struct LookupState {
    int64_t sent = 0, answered = 0, lost = 0, incorrect = 0, hops = 0;
    int64_t stretch_n = 0;
    double stretch_sum = 0;
  };

  void ScheduleDeparture(int i) {
    absl::Time at = net_.Now() + Exponential(events_, mean_session_);
    if (at >= end_) return;
    net_.Schedule(at, [this, i] {
      if (!net_.alive(i)) return;
      net_.Crash(i);
      ++result_.departures;
    });
  }

  void ScheduleArrival() {
    const absl::Duration gap = Exponential(events_, mean_session_ / setup_.overlay.nodes);
    const absl::Time at = net_.Now() + gap;
    if (at >= end_) return;
    net_.Schedule(at, [this] {
      std::vector<int> live = net_.LiveIndices();
      int via = -1;
      int i = -1;
      if (setup_.overlay.bootstrap == Bootstrap::kRandom) {
        for (int tries = 0; tries < 16 && via < 0 && !live.empty(); ++tries) {
          int c = live[events_.Below(live.size())];
          if (net_.node(c).active()) via = c;
        }
        if (via >= 0) i = net_.AddNode(ids_.RandomId(), options_);
      } else {
        // The newcomer must be placed before its nearest node can be found.
        std::erase_if(live, [&](int c) { return !net_.node(c).active(); });
        if (!live.empty()) {
          i = net_.AddNode(ids_.RandomId(), options_);
          via = PickBootstrap(net_, setup_.overlay, i, live, events_);
        }
      }
      if (via >= 0) {
        net_.Join(i, via);
        ++result_.arrivals;
        ScheduleDeparture(i);
      }
      ScheduleArrival();
    });
  }

  void ScheduleLookup() {
    const absl::Time at =
        net_.Now() + Exponential(lookups_, absl::Seconds(1) / setup_.lookup_rate);
    if (at >= end_) return;
    net_.Schedule(at, [this] {
      std::vector<int> live = net_.LiveIndices();
      const int source = live[lookups_.Below(live.size())];
      const NodeId key = lookups_.RandomId();
      if (net_.node(source).active()) Launch(source, key);
      ScheduleLookup();
    });
  }

  void Launch(int source, const NodeId& key) {
    auto st = state_;
    SimNetwork* net = &net_;
    const absl::Time sent = net_.Now();
    ++st->sent;
    net_.Lookup(source, key, setup_.lookup_timeout,
                [st, net, source, key, sent](absl::StatusOr<Node::LookupResult> r) {
                  if (!r.ok()) {
                    ++st->lost;
                    return;
                  }
                  ++st->answered;
                  st->hops += r->hops;
                  std::optional<int> truth = ActiveRoot(*net, key);
                  if (!truth || net->id(*truth) != r->root.id) ++st->incorrect;
                  const int root = net->IndexOf(r->root.endpoint);
                  if (root < 0 || root == source) return;
                  const double direct = absl::ToDoubleSeconds(net->Delay(source, root));
                  // The measured delay to the root: the answer's arrival less
                  // its one-way trip back.
                  const double taken =
                      absl::ToDoubleSeconds(net->Now() - sent - net->Delay(root, source));
                  if (direct > 0) {
                    st->stretch_sum += taken / direct;
                    ++st->stretch_n;
                  }
                });
  }

  // Samples the live population once a second for the average.
  void ScheduleSample() {
    live_sum_ += net_.live_count();
    ++samples_;
    if (net_.Now() + absl::Seconds(1) < end_) {
      net_.Schedule(net_.Now() + absl::Seconds(1), [this] { ScheduleSample(); });
    }
  }

  // s0, s1: network counters at the start and end of the churn period.
  ChurnResult Finish(const NetworkStats& s0, const NetworkStats& s1) {
    uint64_t msgs = 0, bytes = 0;
    for (size_t t = 0; t < s1.sent_by_type.size(); ++t) {
      if (IsLookupTraffic(t)) continue;
      msgs += s1.sent_by_type[t] - s0.sent_by_type[t];
      bytes += s1.bytes_by_type[t] - s0.bytes_by_type[t];
    }
    ChurnResult& r = result_;
    r.avg_live_nodes = samples_ ? live_sum_ / samples_ : 0;
    const LookupState& st = *state_;
    // Lookups whose source crashed before the answer never complete.
    r.lookups = st.answered + st.lost;
    r.lost = st.lost;
    r.incorrect = st.incorrect;
    r.avg_hops = st.answered ? static_cast<double>(st.hops) / st.answered : 0;
    r.delay_stretch = st.stretch_n ? st.stretch_sum / st.stretch_n : 0;
    const double node_s = r.avg_live_nodes * absl::ToDoubleSeconds(setup_.duration);
    if (node_s > 0) {
      r.maintenance_msgs_per_node_s = msgs / node_s;
      r.maintenance_bytes_per_node_s = bytes / node_s;
      for (size_t t = 0; t < s1.sent_by_type.size(); ++t) {
        r.msgs_per_node_s_by_type[t] = (s1.sent_by_type[t] - s0.sent_by_type[t]) / node_s;
      }
    }
    return r;
  }

  const ChurnSetup& setup_;
  SimNetwork& net_;
  const Options options_;
  Rng ids_, events_, lookups_;
  const absl::Duration mean_session_;
  std::shared_ptr<LookupState> state_;
  absl::Time end_;
  ChurnResult result_;
  double live_sum_ = 0;
  int64_t samples_ = 0;
};

}  // namespace

ChurnResult RunChurn(const ChurnSetup& setup) {
  OverlaySetup overlay = setup.overlay;
  overlay.through_wire = true;
  auto net = BuildOverlay(overlay, nullptr);
  if (!net.ok()) return {};
  ChurnRun run(setup, **net);
  return run.Run();
}

}  // namespace peter::pastry::sim

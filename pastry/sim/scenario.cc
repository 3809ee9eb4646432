#include "pastry/sim/scenario.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"

namespace peter::pastry::sim {
namespace {

std::vector<NodeId> Ids(const std::vector<NodeHandle>& handles) {
  std::vector<NodeId> out;
  out.reserve(handles.size());
  for (const NodeHandle& h : handles) out.push_back(h.id);
  return out;
}

std::string Describe(const std::vector<NodeId>& ids) {
  std::string out;
  for (const NodeId& id : ids) absl::StrAppend(&out, id.ShortHex(), " ");
  return out;
}

}  // namespace

bool RunUntilAllActive(SimNetwork& net, absl::Duration max) {
  auto all_active = [&] {
    for (int i : net.LiveIndices()) {
      if (!net.node(i).active()) return false;
    }
    return true;
  };
  return net.RunUntil(all_active, max, absl::Milliseconds(100));
}

bool JoinConcurrently(SimNetwork& net, Rng& rng, int first, int last,
                      absl::Duration spacing, absl::Duration max) {
  const absl::Time start = net.Now();
  for (int i = first; i < last; ++i) {
    int bootstrap = static_cast<int>(rng.Below(i));
    net.Schedule(start + spacing * (i - first), [&net, i, bootstrap] { net.Join(i, bootstrap); });
  }
  net.RunUntil(start + spacing * (last - first));
  return RunUntilAllActive(net, max);
}

int CountWrongLeafSets(const SimNetwork& net, std::string* first) {
  int wrong = 0;
  for (int i : net.LiveIndices()) {
    const LeafSet& actual = net.node(i).leaf_set();
    ExpectedLeaves expected = net.ExpectedLeafSet(i, actual.capacity());
    std::vector<NodeId> left = Ids(actual.left());
    std::vector<NodeId> right = Ids(actual.right());
    if (left == expected.left && right == expected.right) continue;
    if (wrong++ == 0 && first != nullptr) {
      *first = absl::StrCat("node ", i, " ", net.id(i).ShortHex(), ": left [",
                            Describe(left), "] expected [", Describe(expected.left),
                            "]; right [", Describe(right), "] expected [",
                            Describe(expected.right), "]");
    }
  }
  return wrong;
}

LookupReport RunLookups(SimNetwork& net, Rng& rng, int count, absl::Duration spread,
                        absl::Duration timeout) {
  // Shared with callbacks, which may outlive this call: a lookup whose
  // source crashed is never answered.
  struct State {
    LookupReport report;
    int launched = 0;
    int64_t hop_sum = 0;
  };
  auto state = std::make_shared<State>();
  std::vector<int> live = net.LiveIndices();
  if (live.empty() || count <= 0) return state->report;
  const absl::Time start = net.Now();
  for (int n = 0; n < count; ++n) {
    int source = live[rng.Below(live.size())];
    NodeId key = rng.RandomId();
    absl::Time at = start + spread * (static_cast<double>(n) / count);
    net.Schedule(at, [&net, source, key, timeout, state] {
      ++state->launched;
      if (!net.alive(source)) return;
      ++state->report.sent;
      net.Lookup(source, key, timeout,
                 [&net, key, state](absl::StatusOr<Node::LookupResult> r) {
                   LookupReport& report = state->report;
                   if (!r.ok()) {
                     ++report.lost;
                     return;
                   }
                   ++report.answered;
                   int truth = net.ClosestLiveNode(key);
                   if (truth >= 0 && net.id(truth) == r->root.id) ++report.correct;
                   state->hop_sum += r->hops;
                   report.max_hops = std::max(report.max_hops, r->hops);
                   if (static_cast<int>(report.hops_histogram.size()) <= r->hops) {
                     report.hops_histogram.resize(r->hops + 1);
                   }
                   ++report.hops_histogram[r->hops];
                 });
    });
  }
  net.RunUntil(
      [&] {
        return state->launched == count &&
               state->report.answered + state->report.lost == state->report.sent;
      },
      spread + timeout * 2, absl::Milliseconds(50));
  LookupReport report = state->report;
  report.avg_hops =
      report.answered ? static_cast<double>(state->hop_sum) / report.answered : 0;
  return report;
}

}  // namespace peter::pastry::sim

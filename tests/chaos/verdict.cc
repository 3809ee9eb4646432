#include "tests/chaos/verdict.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace peter::chaos {
namespace {

constexpr size_t kProblemsKept = 20;

class LogJudge {
 public:
  LogJudge(const absl::flat_hash_map<std::string, PublishRecord>& publishes,
         const std::vector<Fault>& faults, absl::Duration margin, Verdict& v)
      : publishes_(publishes), v_(v) {
    for (const Fault& f : faults) windows_.push_back({f.start - margin, f.repaired});
  }

  void Log(const SubscriberLog& log, std::vector<double>& latencies_ms) {
    ModeCounts& m = log.reliable ? v_.reliable : v_.best_effort;
    topic_ = log.topic;
    const std::string who = absl::StrCat(log.reliable ? "reliable" : "best-effort",
                                         " subscriber ", log.node, " topic ", log.topic);
    ++m.subscriptions;
    absl::flat_hash_set<std::string_view> seen;
    bool first = true;
    uint64_t prev = 0;
    for (const DeliveryRecord& d : log.deliveries) {
      ++m.delivered;
      if (!seen.insert(d.payload).second) {
        Violation(m.duplicates, absl::StrCat(who, ": ", d.payload, " (seq ", d.seq,
                                             ") delivered again"));
      }
      auto it = publishes_.find(d.payload);
      if (it == publishes_.end()) {
        Violation(m.unknown, absl::StrCat(who, ": unknown payload ", d.payload));
      } else {
        if (it->second.seq && *it->second.seq != d.seq) {
          Violation(m.seq_mismatch, absl::StrCat(who, ": ", d.payload, " delivered as seq ",
                                                 d.seq, ", confirmed as ", *it->second.seq));
        }
        latencies_ms.push_back(absl::ToDoubleMilliseconds(d.at - it->second.sent));
      }
      if (!first && d.seq <= prev) {
        Violation(m.out_of_order,
                  absl::StrCat(who, ": seq ", d.seq, " after ", prev, " (", d.payload, ")"));
      } else if (!first && log.reliable && d.seq != prev + 1) {
        Violation(m.gaps, absl::StrCat(who, ": seq ", d.seq, " after ", prev, " (gap)"));
      }
      first = false;
      prev = d.seq;
    }
    for (const auto& [payload, r] : publishes_) {
      if (r.topic != log.topic || !r.seq) continue;
      ++m.expected;
      if (seen.contains(payload)) continue;
      ++m.lost;
      if (log.reliable) {
        Violation(m.lost_outside, absl::StrCat(who, ": confirmed ", payload, " (seq ",
                                               *r.seq, ") never delivered"));
      } else if (InWindow(r.sent, r.done)) {
        ++m.lost_in_window;
      } else {
        Violation(m.lost_outside,
                  absl::StrCat(who, ": ", payload, " (seq ", *r.seq,
                               ") lost outside every repair window"));
      }
    }
  }

  // One (topic, number) confirmed for two or more publishes.
  void NumberConflict(int topic, std::string what) {
    topic_ = topic;
    Violation(v_.confirmed_twice, std::move(what));
  }

 private:
  bool InWindow(absl::Time from, absl::Time to) const {
    return std::any_of(windows_.begin(), windows_.end(), [&](const auto& w) {
      return from <= w.second && to >= w.first;
    });
  }

  void Violation(int64_t& counter, std::string what) {
    ++counter;
    ++v_.violations;
    ++v_.violations_by_topic[topic_];
    if (v_.problems.size() < kProblemsKept) v_.problems.push_back(std::move(what));
  }

  const absl::flat_hash_map<std::string, PublishRecord>& publishes_;
  Verdict& v_;
  std::vector<std::pair<absl::Time, absl::Time>> windows_;
  int topic_ = 0;  // of the log being judged
};

}  // namespace

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t i = static_cast<size_t>(std::ceil(p * values.size()));
  return values[std::min(values.size() - 1, i == 0 ? 0 : i - 1)];
}

Verdict Judge(const absl::flat_hash_map<std::string, PublishRecord>& publishes,
              const std::vector<SubscriberLog>& logs, const std::vector<Fault>& faults,
              absl::Duration window_margin) {
  Verdict v;
  // (topic, number) -> every payload confirmed under it, sorted so that the
  // report does not depend on the map's order.
  std::map<std::pair<int, uint64_t>, std::vector<std::string>> by_number;
  for (const auto& [payload, r] : publishes) {
    ++v.published;
    if (r.seq) {
      ++v.confirmed;
      by_number[{r.topic, *r.seq}].push_back(payload);
    } else {
      ++v.unconfirmed;
    }
  }
  LogJudge judge(publishes, faults, window_margin, v);
  for (auto& [key, payloads] : by_number) {
    if (payloads.size() < 2) continue;
    std::sort(payloads.begin(), payloads.end());
    judge.NumberConflict(key.first, absl::StrCat("topic ", key.first, ": number ", key.second,
                                                 " confirmed for ", payloads.size(),
                                                 " publishes: ", absl::StrJoin(payloads, " ")));
  }
  std::vector<double> latencies_ms;
  for (const SubscriberLog& log : logs) judge.Log(log, latencies_ms);
  v.latency_p50_ms = Percentile(latencies_ms, 0.5);
  v.latency_p99_ms = Percentile(latencies_ms, 0.99);
  v.latency_max_ms = Percentile(latencies_ms, 1.0);
  return v;
}

}  // namespace peter::chaos

#include "tests/chaos/report.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace peter::chaos {
namespace {

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

void PrintFaults(const std::vector<Fault>& faults) {
  std::printf("\nfaults (start and durations in seconds):\n");
  std::printf("  %-9s %4s %7s %7s %9s %9s  %s\n", "kind", "node", "start", "held",
              "repair", "window", "root of");
  const absl::Time t0 = faults.empty() ? absl::Now() : faults.front().start;
  for (const Fault& f : faults) {
    const bool ok = f.problem.empty();
    std::printf("  %-9s %4d %7.1f %7.2f %9s %9s  %s%s\n", FaultName(f.kind),
                f.node, Seconds(f.start - t0), Seconds(f.end - f.start),
                ok ? absl::StrFormat("%.2f", Seconds(f.repaired - f.end)).c_str() : "-",
                ok ? absl::StrFormat("%.2f", Seconds(f.repaired - f.start)).c_str() : "-",
                f.roots.c_str(), ok ? "" : ("  " + f.problem).c_str());
  }
}

void PrintRepairTimes(const std::vector<Fault>& faults) {
  std::printf("\nrepair time after the fault ended (restart, SIGCONT, reconnection) / "
              "whole window from the fault's start, seconds:\n");
  for (int k = 0; k <= kFaultKinds; ++k) {
    std::vector<double> after, window;
    int count = 0, failed = 0, on_roots = 0;
    for (const Fault& f : faults) {
      if (k < kFaultKinds && f.kind != static_cast<FaultKind>(k)) continue;
      ++count;
      if (!f.roots.empty()) ++on_roots;
      if (!f.problem.empty()) {
        ++failed;
        continue;
      }
      after.push_back(Seconds(f.repaired - f.end));
      window.push_back(Seconds(f.repaired - f.start));
    }
    if (count == 0) continue;
    const std::string name =
        std::string(k < kFaultKinds ? FaultName(static_cast<FaultKind>(k)) : "all");
    std::printf("  %-9s %3d faults (%d on a root, %d not repaired): after p50 %.2f max %.2f;"
                " window p50 %.2f max %.2f\n",
                name.c_str(), count, on_roots, failed, Percentile(after, 0.5),
                Percentile(after, 1.0), Percentile(window, 0.5), Percentile(window, 1.0));
  }
}

void PrintMode(const char* name, const ModeCounts& m, bool reliable) {
  std::printf("  %-11s %lld subscriptions, expected %lld, delivered %lld, duplicates %lld, "
              "out of order %lld, %sseq mismatches %lld, unknown %lld, lost %lld",
              name, (long long)m.subscriptions, (long long)m.expected,
              (long long)m.delivered, (long long)m.duplicates, (long long)m.out_of_order,
              reliable ? absl::StrCat("gaps ", m.gaps, ", ").c_str() : "",
              (long long)m.seq_mismatch, (long long)m.unknown, (long long)m.lost);
  if (reliable) {
    std::printf("\n");
  } else {
    std::printf(" (%lld in repair windows, %lld outside)\n", (long long)m.lost_in_window,
                (long long)m.lost_outside);
  }
}

}  // namespace

void PrintReport(const SoakOptions& o, const SoakResult& r) {
  const Verdict& v = r.verdict;
  PrintFaults(r.faults);
  std::printf("\nchaos soak: %d daemons %s + %d embedded nodes, seed %llu, %g msg/s over "
              "%d topics, faults %s held %g-%g s, gaps %g-%g s\n",
              o.nodes, r.netns ? "in network namespaces" : "on loopback", r.embedded,
              (unsigned long long)o.seed, o.rate, o.topics,
              absl::StrJoin(o.faults, ",").c_str(), o.fault_s[0], o.fault_s[1], o.gap_s[0],
              o.gap_s[1]);
  std::printf("duration: fault phase %.1f s, whole run %.1f s\n", Seconds(r.fault_phase),
              Seconds(r.total));
  PrintRepairTimes(r.faults);
  std::printf("\npublished %lld, confirmed by a root %lld, unconfirmed (timed out) %lld, "
              "numbers confirmed for two publishes %lld\n",
              (long long)v.published, (long long)v.confirmed, (long long)v.unconfirmed,
              (long long)v.confirmed_twice);
  PrintMode("reliable", v.reliable, true);
  PrintMode("best effort", v.best_effort, false);
  std::printf("  delivery latency (publish call to handler) p50 %.1f ms, p99 %.1f ms, "
              "max %.1f ms\n",
              v.latency_p50_ms, v.latency_p99_ms, v.latency_max_ms);
  std::printf("  daemons: %s\n", r.daemon_counters.c_str());
  if (r.reliable_missing_at_end > 0) {
    std::printf("  reliable deliveries still missing after the final wait: %lld\n",
                (long long)r.reliable_missing_at_end);
  }
  if (r.problems.empty()) {
    std::printf("overlay converged (checked %.1f s after the last fault ended); every topic "
                "has one root, the closest daemon\n",
                Seconds(r.final_convergence));
  }
  for (const std::string& p : r.problems) std::printf("PROBLEM: %s\n", p.c_str());
  for (const std::string& p : v.problems) std::printf("VIOLATION: %s\n", p.c_str());
  for (const auto& [topic, count] : v.violations_by_topic) {
    std::printf("violations on topic %s: %lld\n", r.topics[topic].c_str(), (long long)count);
  }
  const int64_t total = v.violations + static_cast<int64_t>(r.problems.size());
  std::printf("verdict: %s (%lld violations)\n", total == 0 ? "PASS" : "FAIL",
              (long long)total);
}

}  // namespace peter::chaos

#include "tests/chaos/faults.h"

#include <signal.h>

#include "absl/time/clock.h"

namespace peter::chaos {

const char* FaultName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKill:
      return "kill";
    case FaultKind::kPause:
      return "pause";
    case FaultKind::kPartition:
      return "partition";
  }
  return "?";
}

FaultInjector::FaultInjector(integration::Cluster& cluster, integration::NetnsLab* lab)
    : cluster_(cluster), lab_(lab) {}

absl::StatusOr<Fault> FaultInjector::Begin(FaultKind kind, int node) {
  if (!cluster_.alive(node)) return absl::FailedPreconditionError("node not running");
  Fault fault;
  fault.kind = kind;
  fault.node = node;
  fault.start = absl::Now();
  switch (kind) {
    case FaultKind::kKill:
      cluster_.Kill(node);
      break;
    case FaultKind::kPause:
      if (kill(cluster_.node(node).pid(), SIGSTOP) != 0) {
        return absl::InternalError("SIGSTOP failed");
      }
      break;
    case FaultKind::kPartition:
      if (lab_ == nullptr) return absl::FailedPreconditionError("no network namespaces");
      if (absl::Status s = lab_->SetConnected(node, false); !s.ok()) return s;
      break;
  }
  return fault;
}

absl::Status FaultInjector::End(Fault& fault) {
  fault.end = absl::Now();
  switch (fault.kind) {
    case FaultKind::kKill: {
      std::vector<int> others;
      for (int i : cluster_.Alive()) {
        if (i != fault.node) others.push_back(i);
      }
      if (others.empty()) return absl::FailedPreconditionError("no node to join through");
      const int via = others[cluster_.rng()() % others.size()];
      return cluster_.Start(fault.node, via);
    }
    case FaultKind::kPause:
      if (kill(cluster_.node(fault.node).pid(), SIGCONT) != 0) {
        return absl::InternalError("SIGCONT failed");
      }
      return absl::OkStatus();
    case FaultKind::kPartition:
      return lab_->SetConnected(fault.node, true);
  }
  return absl::OkStatus();
}

}  // namespace peter::chaos

#include "tests/chaos/faults.h"

#include <signal.h>

#include <algorithm>

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
    case FaultKind::kSplit:
      return "split";
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
    case FaultKind::kSplit: {
      if (lab_ == nullptr) return absl::FailedPreconditionError("no network namespaces");
      fault.cut_from = SplitPeers(node);
      for (int peer : fault.cut_from) {
        if (absl::Status s = lab_->SetReachable(node, peer, false); !s.ok()) return s;
      }
      break;
    }
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
    case FaultKind::kSplit:
      for (int peer : fault.cut_from) {
        if (absl::Status s = lab_->SetReachable(fault.node, peer, true); !s.ok()) return s;
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

// A random half (at least one) of the kSplitNeighbours live daemons nearest
// `node` on the ring: its replica set and leaf-set neighbours, so a root
// keeps some of its replicas and loses others, and the ones it lost still
// reach the rest.
std::vector<int> FaultInjector::SplitPeers(int node) {
  constexpr size_t kSplitNeighbours = 8;
  const pastry::NodeId self = *cluster_.id(node);
  std::vector<int> near;
  for (int i : cluster_.Alive()) {
    if (i != node && cluster_.id(i).has_value()) near.push_back(i);
  }
  std::sort(near.begin(), near.end(), [&](int a, int b) {
    return pastry::NodeId::CloserTo(self, *cluster_.id(a), *cluster_.id(b));
  });
  if (near.size() > kSplitNeighbours) near.resize(kSplitNeighbours);
  std::vector<int> cut;
  for (int i : near) {
    if (cluster_.rng()() % 2 == 0) cut.push_back(i);
  }
  if (cut.empty() && !near.empty()) cut.push_back(near[cluster_.rng()() % near.size()]);
  return cut;
}

}  // namespace peter::chaos

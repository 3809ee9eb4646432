#include "pastry/sim/transit_stub.h"

#include <algorithm>
#include <cassert>
#include <limits>

namespace peter::pastry::sim {
namespace {

constexpr int64_t kInf = std::numeric_limits<int64_t>::max() / 4;

// A connected random graph on n vertices: a random spanning tree (vertex i
// links to a random earlier vertex) plus n/2 random extra edges.
template <typename AddEdge>
void RandomConnectedGraph(Rng& rng, int n, AddEdge add) {
  for (int i = 1; i < n; ++i) add(i, static_cast<int>(rng.Below(i)));
  for (int k = 0; k < n / 2; ++k) {
    int a = static_cast<int>(rng.Below(n));
    int b = static_cast<int>(rng.Below(n));
    if (a != b) add(a, b);
  }
}

void FloydWarshall(std::vector<int64_t>& d, int n) {
  for (int k = 0; k < n; ++k) {
    for (int i = 0; i < n; ++i) {
      const int64_t ik = d[i * n + k];
      if (ik >= kInf) continue;
      for (int j = 0; j < n; ++j) d[i * n + j] = std::min(d[i * n + j], ik + d[k * n + j]);
    }
  }
}

void AddUndirected(std::vector<int64_t>& d, int n, int a, int b, int64_t w) {
  d[a * n + b] = std::min(d[a * n + b], w);
  d[b * n + a] = std::min(d[b * n + a], w);
}

std::vector<int64_t> EmptyMatrix(int n) {
  std::vector<int64_t> d(static_cast<size_t>(n) * n, kInf);
  for (int i = 0; i < n; ++i) d[i * n + i] = 0;
  return d;
}

}  // namespace

TransitStubTopology::TransitStubTopology(const Options& options, uint64_t seed)
    : options_(options), rng_(Rng::Derive(seed, 1)) {
  Rng graph(Rng::Derive(seed, 2));
  BuildTransit(graph);
  BuildStubs(graph);
}

int64_t TransitStubTopology::LinkUs(Rng& rng, double mean_ms) const {
  return static_cast<int64_t>(mean_ms * 1000.0 * (0.5 + rng.Uniform01()));
}

void TransitStubTopology::BuildTransit(Rng& rng) {
  const int per = options_.routers_per_transit_domain;
  const int domains = options_.transit_domains;
  transit_routers_ = per * domains;
  transit_ = EmptyMatrix(transit_routers_);
  for (int d = 0; d < domains; ++d) {
    RandomConnectedGraph(rng, per, [&](int a, int b) {
      AddUndirected(transit_, transit_routers_, d * per + a, d * per + b,
                    LinkUs(rng, options_.intra_transit_ms));
    });
  }
  // Domains linked by a random connected graph; each link joins a random
  // router of each domain.
  RandomConnectedGraph(rng, domains, [&](int a, int b) {
    int ra = a * per + static_cast<int>(rng.Below(per));
    int rb = b * per + static_cast<int>(rng.Below(per));
    AddUndirected(transit_, transit_routers_, ra, rb, LinkUs(rng, options_.inter_transit_ms));
  });
  FloydWarshall(transit_, transit_routers_);
}

void TransitStubTopology::BuildStubs(Rng& rng) {
  stub_size_ = options_.routers_per_stub_domain;
  stub_domains_ = transit_routers_ * options_.stub_domains_per_transit_router;
  for (int s = 0; s < stub_domains_; ++s) {
    Matrix d = EmptyMatrix(stub_size_);
    RandomConnectedGraph(rng, stub_size_, [&](int a, int b) {
      AddUndirected(d, stub_size_, a, b, LinkUs(rng, options_.intra_stub_ms));
    });
    FloydWarshall(d, stub_size_);
    stub_.push_back(std::move(d));
    stub_transit_.push_back(s / options_.stub_domains_per_transit_router);
    stub_gateway_.push_back(static_cast<int>(rng.Below(stub_size_)));
    stub_uplink_us_.push_back(LinkUs(rng, options_.transit_stub_ms));
  }
}

int TransitStubTopology::routers() const {
  return transit_routers_ + stub_domains_ * stub_size_;
}

int64_t TransitStubTopology::StubDistanceUs(int a, int b) const {
  const int da = a / stub_size_, ra = a % stub_size_;
  const int db = b / stub_size_, rb = b % stub_size_;
  if (da == db) return stub_[da][ra * stub_size_ + rb];
  const int64_t up = stub_[da][ra * stub_size_ + stub_gateway_[da]] + stub_uplink_us_[da];
  const int64_t down = stub_uplink_us_[db] + stub_[db][stub_gateway_[db] * stub_size_ + rb];
  return up + transit_[stub_transit_[da] * transit_routers_ + stub_transit_[db]] + down;
}

void TransitStubTopology::AddNode(int index) {
  assert(index == size());
  attach_.push_back(static_cast<int32_t>(rng_.Below(stub_domains_ * stub_size_)));
}

absl::Duration TransitStubTopology::Delay(int from, int to) const {
  if (from == to) return absl::ZeroDuration();
  const int64_t access = static_cast<int64_t>(options_.access_ms * 1000.0);
  return absl::Microseconds(2 * access + StubDistanceUs(attach_[from], attach_[to]));
}

}  // namespace peter::pastry::sim

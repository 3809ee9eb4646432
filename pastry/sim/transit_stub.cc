#include "pastry/sim/transit_stub.h"

#include <algorithm>
#include <cassert>
#include <limits>
#include <utility>

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

// All-pairs shortest paths over the direct links in `d`; `next` receives the
// first hop of a shortest path from i to j (i itself when i == j).
void FloydWarshall(std::vector<int64_t>& d, std::vector<int32_t>& next, int n) {
  next.assign(static_cast<size_t>(n) * n, -1);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      if (d[i * n + j] < kInf) next[i * n + j] = j;
    }
  }
  for (int k = 0; k < n; ++k) {
    for (int i = 0; i < n; ++i) {
      const int64_t ik = d[i * n + k];
      if (ik >= kInf) continue;
      for (int j = 0; j < n; ++j) {
        if (ik + d[k * n + j] < d[i * n + j]) {
          d[i * n + j] = ik + d[k * n + j];
          next[i * n + j] = next[i * n + k];
        }
      }
    }
  }
}

uint64_t LinkId(int a, int b) {
  if (a > b) std::swap(a, b);
  return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b);
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
  FloydWarshall(transit_, transit_next_, transit_routers_);
}

void TransitStubTopology::BuildStubs(Rng& rng) {
  stub_size_ = options_.routers_per_stub_domain;
  stub_domains_ = transit_routers_ * options_.stub_domains_per_transit_router;
  for (int s = 0; s < stub_domains_; ++s) {
    Matrix d = EmptyMatrix(stub_size_);
    RandomConnectedGraph(rng, stub_size_, [&](int a, int b) {
      AddUndirected(d, stub_size_, a, b, LinkUs(rng, options_.intra_stub_ms));
    });
    std::vector<int32_t> next;
    FloydWarshall(d, next, stub_size_);
    stub_.push_back(std::move(d));
    stub_next_.push_back(std::move(next));
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

int TransitStubTopology::StubVertex(int domain, int local) const {
  return transit_routers_ + domain * stub_size_ + local;
}

void TransitStubTopology::StubPath(int domain, int a, int b,
                                   absl::FunctionRef<void(uint64_t)> link) const {
  const std::vector<int32_t>& next = stub_next_[domain];
  while (a != b) {
    const int hop = next[a * stub_size_ + b];
    link(LinkId(StubVertex(domain, a), StubVertex(domain, hop)));
    a = hop;
  }
}

void TransitStubTopology::TransitPath(int a, int b,
                                      absl::FunctionRef<void(uint64_t)> link) const {
  while (a != b) {
    const int hop = transit_next_[a * transit_routers_ + b];
    link(LinkId(a, hop));
    a = hop;
  }
}

bool TransitStubTopology::ForEachLink(int from, int to,
                                      absl::FunctionRef<void(uint64_t)> link) const {
  if (from == to) return true;
  const int a = attach_[from], b = attach_[to];
  const int da = a / stub_size_, ra = a % stub_size_;
  const int db = b / stub_size_, rb = b % stub_size_;
  link(LinkId(StubVertex(da, ra), routers() + from));
  if (da == db) {
    StubPath(da, ra, rb, link);
  } else {
    StubPath(da, ra, stub_gateway_[da], link);
    link(LinkId(StubVertex(da, stub_gateway_[da]), stub_transit_[da]));
    TransitPath(stub_transit_[da], stub_transit_[db], link);
    link(LinkId(stub_transit_[db], StubVertex(db, stub_gateway_[db])));
    StubPath(db, stub_gateway_[db], rb, link);
  }
  link(LinkId(StubVertex(db, rb), routers() + to));
  return true;
}

}  // namespace peter::pastry::sim

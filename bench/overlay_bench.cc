// overlay_bench: a 10-node Pastry cluster on loopback TCP in one process
// (one NodeRuntime, hence one event-loop thread, per node), measuring
//   1. lookups per second and their latency (p50, p99): client threads each
//      run one lookup at a time (NodeRuntime::Lookup: routed through the
//      overlay, answered by the key's root) from a random node to a random
//      key, and check the root against the ground truth;
//   2. idle maintenance traffic: messages and bytes each node sends per
//      second while nothing else happens, from deltas of the peter_frames_
//      sent_total and peter_bytes_sent_total counters scraped from each
//      node's admin endpoint (GET /metrics), as an operator would see them.
// With --cluster-key and/or --tls-dir the nodes authenticate each other
// (docs/security.md), to measure what that costs.
// A program, not a test: it prints a table. See docs/benchmarks.md.
#include <httplib.h>

#include <algorithm>
#include <map>
#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "pastry/net/node_runtime.h"
#include "spdlog/sinks/null_sink.h"
#include "spdlog/spdlog.h"
#include "tests/pastry/net/test_pki.h"
#include "tools/admin/admin_server.h"

namespace peter::bench {
namespace {

using pastry::NodeId;
using pastry::net::NodeRuntime;

struct Flags {
  int nodes = 10;
  int lookups = 20000;
  int threads = 4;
  double idle_seconds = 30;
  uint64_t seed = 1;
  bool cluster_key = false;
  std::string tls_dir;  // non-empty: TLS, a throwaway CA made here
};

// Every node's credentials: the same key, one certificate each.
std::vector<pastry::SecurityOptions> Credentials(const Flags& flags) {
  std::vector<pastry::SecurityOptions> out(flags.nodes);
  std::optional<testing::TestPki> pki;
  if (!flags.tls_dir.empty()) {
    absl::StatusOr<testing::TestPki> made = testing::TestPki::Create(flags.tls_dir, "bench-ca");
    if (!made.ok()) {
      std::fprintf(stderr, "overlay_bench: %s\n", std::string(made.status().message()).c_str());
      std::exit(1);
    }
    pki = std::move(*made);
  }
  for (int i = 0; i < flags.nodes; ++i) {
    if (flags.cluster_key) out[i].cluster_key = "overlay_bench cluster key, 32 by";
    if (!pki) continue;
    absl::StatusOr<testing::TlsFiles> f = pki->Issue("node" + std::to_string(i));
    if (!f.ok()) {
      std::fprintf(stderr, "overlay_bench: %s\n", std::string(f.status().message()).c_str());
      std::exit(1);
    }
    out[i].tls_cert_file = f->cert;
    out[i].tls_key_file = f->key;
    out[i].tls_ca_file = f->ca;
  }
  return out;
}

NodeId RandomId(std::mt19937_64& rng) {
  uint64_t hi = rng();
  return NodeId(hi, rng());
}

class RuntimeSource : public tools::admin::NodeSource {
 public:
  explicit RuntimeSource(NodeRuntime* r) : r_(r) {}
  pastry::net::NodeSnapshot Snapshot() override { return r_->Snapshot(); }
  absl::StatusOr<pastry::Node::LookupResult> Lookup(const NodeId& key,
                                                    absl::Duration t) override {
    return r_->Lookup(key, t);
  }

 private:
  NodeRuntime* r_;
};

struct Member {
  std::unique_ptr<NodeRuntime> runtime;
  std::unique_ptr<RuntimeSource> source;
  std::unique_ptr<tools::admin::AdminServer> admin;
};

// Adds the samples of `family` in exposition text to `by_type`, keyed by
// their `type` label.
void AddFamily(const std::string& text, const std::string& family,
               std::map<std::string, double>& by_type) {
  std::istringstream in(text);
  std::string line;
  const std::string prefix = family + "{type=\"";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::string type = line.substr(prefix.size(), line.find('"', prefix.size()) - prefix.size());
    by_type[type] += std::stod(line.substr(line.rfind(' ') + 1));
  }
}

// Frames and bytes sent, by message type, summed over the cluster.
struct Traffic {
  std::map<std::string, double> frames;
  std::map<std::string, double> bytes;
};

Traffic Scrape(const std::vector<Member>& members) {
  Traffic t;
  for (const Member& m : members) {
    httplib::Client client("127.0.0.1", m.admin->port());
    httplib::Result r = client.Get("/metrics");
    if (!r || r->status != 200) {
      std::fprintf(stderr, "overlay_bench: cannot scrape /metrics\n");
      std::exit(1);
    }
    AddFamily(r->body, "peter_frames_sent_total", t.frames);
    AddFamily(r->body, "peter_bytes_sent_total", t.bytes);
  }
  return t;
}

std::vector<Member> StartCluster(const Flags& flags,
                                 const std::vector<pastry::SecurityOptions>& credentials,
                                 std::mt19937_64& rng, std::vector<NodeId>& ids) {
  auto quiet = std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::vector<Member> members;
  for (int i = 0; i < flags.nodes; ++i) {
    pastry::net::RuntimeOptions o;
    o.listen = "127.0.0.1:0";
    o.security = credentials[i];
    if (!o.security.tls()) o.id = RandomId(rng);  // with TLS: the certificate's
    o.logger = quiet;
    if (i > 0) {
      o.bootstrap = {members[rng() % i].runtime->listen_endpoint().ToString()};
    }
    absl::StatusOr<std::unique_ptr<NodeRuntime>> r = NodeRuntime::Start(o);
    if (!r.ok()) {
      std::fprintf(stderr, "overlay_bench: %s\n", std::string(r.status().message()).c_str());
      std::exit(1);
    }
    Member m;
    m.runtime = std::move(*r);
    m.source = std::make_unique<RuntimeSource>(m.runtime.get());
    m.admin = std::make_unique<tools::admin::AdminServer>(m.source.get(), absl::Seconds(5));
    if (!m.admin->Start("127.0.0.1", 0).ok()) std::exit(1);
    ids.push_back(m.runtime->self().id);
    members.push_back(std::move(m));
  }
  for (Member& m : members) {
    if (!m.runtime->WaitUntilActive(absl::Seconds(30)).ok()) {
      std::fprintf(stderr, "overlay_bench: a node did not become active\n");
      std::exit(1);
    }
  }
  return members;
}

NodeId Closest(const std::vector<NodeId>& ids, const NodeId& key) {
  NodeId best = ids[0];
  for (const NodeId& id : ids) {
    if (NodeId::CloserTo(key, id, best)) best = id;
  }
  return best;
}

void MeasureLookups(const Flags& flags, std::vector<Member>& members,
                    const std::vector<NodeId>& ids) {
  std::vector<std::vector<double>> latencies(flags.threads);
  std::atomic<int> next{0}, wrong{0}, failed{0};
  absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < flags.threads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(flags.seed * 1000 + t);
      while (next.fetch_add(1) < flags.lookups) {
        NodeRuntime& from = *members[rng() % members.size()].runtime;
        NodeId key = RandomId(rng);
        absl::Time sent = absl::Now();
        absl::StatusOr<pastry::Node::LookupResult> r = from.Lookup(key, absl::Seconds(5));
        latencies[t].push_back(absl::ToDoubleMicroseconds(absl::Now() - sent));
        if (!r.ok()) {
          ++failed;
        } else if (r->root.id != Closest(ids, key)) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all[std::min(all.size() - 1, size_t(p * all.size()))]; };
  std::printf("lookups            %d from %d client threads, %d wrong root, %d failed\n",
              flags.lookups, flags.threads, wrong.load(), failed.load());
  std::printf("lookups per second %.0f\n", flags.lookups / seconds);
  std::printf("latency p50        %.0f us\n", pct(0.50));
  std::printf("latency p99        %.0f us\n", pct(0.99));
  std::printf("latency max        %.0f us\n", all.back());
}

void MeasureIdle(const Flags& flags, std::vector<Member>& members) {
  Traffic before = Scrape(members);
  absl::Time start = absl::Now();
  absl::SleepFor(absl::Seconds(flags.idle_seconds));
  Traffic after = Scrape(members);
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  double per = seconds * members.size();
  // Scraping itself is HTTP, not overlay traffic: it does not show here.
  std::printf("idle window        %.1f s\n", seconds);
  double frames = 0, bytes = 0;
  for (const auto& [type, n] : after.frames) {
    double df = (n - before.frames[type]) / per;
    double db = (after.bytes[type] - before.bytes[type]) / per;
    frames += df;
    bytes += db;
    if (df > 0) std::printf("  %-16s %6.2f msg/s %7.0f B/s per node\n", type.c_str(), df, db);
  }
  std::printf("idle messages      %.1f per node per second\n", frames);
  std::printf("idle bytes         %.0f per node per second\n", bytes);
}

}  // namespace
}  // namespace peter::bench

int main(int argc, char** argv) {
  peter::bench::Flags flags;
  CLI::App app{"Overlay benchmark: lookups and idle traffic of a loopback cluster"};
  app.add_option("--nodes", flags.nodes, "Nodes")->capture_default_str()->check(CLI::Range(2, 200));
  app.add_option("--lookups", flags.lookups, "Lookups to time")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--threads", flags.threads, "Client threads, one lookup in flight each")
      ->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--idle-seconds", flags.idle_seconds, "Idle window for maintenance traffic")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", flags.seed, "Random seed (ids, bootstraps, keys)")->capture_default_str();
  app.add_flag("--cluster-key", flags.cluster_key, "Nodes authenticate with a shared cluster key");
  app.add_option("--tls-dir", flags.tls_dir,
                 "TLS 1.3 between nodes: make a throwaway CA and certificates in this "
                 "(existing) directory with the openssl tool");
  CLI11_PARSE(app, argc, argv);

  std::mt19937_64 rng(flags.seed);
  std::vector<peter::pastry::NodeId> ids;
  // Certificates are made before the clock starts (the openssl tool is slow).
  const std::vector<peter::pastry::SecurityOptions> credentials =
      peter::bench::Credentials(flags);
  absl::Time t0 = absl::Now();
  std::vector<peter::bench::Member> members =
      peter::bench::StartCluster(flags, credentials, rng, ids);
  std::printf("cluster            %d nodes on 127.0.0.1%s%s, active after %.2f s, %u hardware threads\n",
              flags.nodes, flags.cluster_key ? ", cluster key" : "",
              flags.tls_dir.empty() ? "" : ", TLS 1.3", absl::ToDoubleSeconds(absl::Now() - t0),
              std::thread::hardware_concurrency());
  // Let joins settle (probes to new neighbours, first PNS probes).
  absl::SleepFor(absl::Seconds(3));
  peter::bench::MeasureLookups(flags, members, ids);
  peter::bench::MeasureIdle(flags, members);
  for (auto& m : members) {
    m.admin->Stop();
    m.runtime->Leave(absl::Seconds(1));
  }
  return 0;
}

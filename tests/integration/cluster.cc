#include "tests/integration/cluster.h"

#include <signal.h>

#include <algorithm>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace peter::integration {

using nlohmann::json;
using pastry::NodeId;

NodeId RandomId(std::mt19937_64& rng) {
  uint64_t hi = rng();
  return NodeId(hi, rng());
}

Cluster::Cluster(std::string binary, std::function<Host(int)> host_of,
                 std::string log_dir, uint64_t seed, int leaf_set_size)
    : binary_(std::move(binary)),
      host_of_(std::move(host_of)),
      log_dir_(std::move(log_dir)),
      rng_(seed),
      leaf_set_size_(leaf_set_size) {}

absl::Status Cluster::Start(int i, std::optional<int> via) {
  if (i >= size()) {
    nodes_.resize(i + 1);
    clients_.resize(i + 1);
    ids_.resize(i + 1);
    starts_.resize(i + 1);
    last_addresses_.resize(i + 1);
  }
  if (nodes_[i] != nullptr) return absl::FailedPreconditionError("already running");
  if (!ids_[i]) ids_[i] = RandomId(rng_);
  Host host = host_of_(i);
  NodeSpec spec;
  spec.prefix = host.prefix;
  spec.listen = host.ip + ":0";
  spec.admin = host.ip + ":0";
  if (reuse_addresses_ && !last_addresses_[i].first.empty()) {
    spec.listen = last_addresses_[i].first;
    spec.admin = last_addresses_[i].second;
  }
  spec.id = ids_[i]->ToHex();
  if (via) {
    if (!alive(*via)) return absl::FailedPreconditionError("bootstrap not running");
    spec.join = {nodes_[*via]->listen()};
  }
  spec.extra = {"--leaf-set", std::to_string(leaf_set_size_), "--log-level", log_level_};
  spec.log_path = absl::StrCat(log_dir_, "/node-", i, ".", starts_[i]++, ".log");
  absl::StatusOr<std::unique_ptr<NodeProcess>> node = NodeProcess::Spawn(binary_, spec);
  if (!node.ok() && spec.listen != host.ip + ":0") {
    // The old port may have been taken meanwhile (on loopback, by another
    // program's outgoing connection): take fresh ones.
    spec.listen = host.ip + ":0";
    spec.admin = host.ip + ":0";
    node = NodeProcess::Spawn(binary_, spec);
  }
  if (!node.ok()) return node.status();
  nodes_[i] = std::move(*node);
  last_addresses_[i] = {nodes_[i]->listen(), absl::StrCat(nodes_[i]->admin_host(), ":",
                                                          nodes_[i]->admin_port())};
  auto client = std::make_unique<httplib::Client>(nodes_[i]->admin_host(),
                                                  nodes_[i]->admin_port());
  client->set_keep_alive(true);
  client->set_tcp_nodelay(true);
  client->set_connection_timeout(2, 0);
  client->set_read_timeout(10, 0);
  clients_[i] = std::move(client);
  ring_.Insert(*ids_[i], i);
  return absl::OkStatus();
}

void Cluster::Kill(int i) {
  if (!alive(i)) return;
  nodes_[i]->Kill();
  nodes_[i].reset();
  clients_[i].reset();
  ring_.Erase(*ids_[i]);
}

std::optional<int> Cluster::Stop(int i, int signal, absl::Duration timeout) {
  if (!alive(i)) return std::nullopt;
  std::optional<int> status = nodes_[i]->SignalAndWait(signal, timeout);
  nodes_[i].reset();
  clients_[i].reset();
  ring_.Erase(*ids_[i]);
  return status;
}

void Cluster::AddExternal(const NodeId& id) {
  externals_.push_back(id);
  ring_.Insert(id, -static_cast<int>(externals_.size()));
}

std::optional<NodeId> Cluster::ClosestId(const NodeId& key) const {
  std::optional<int> index = ring_.Closest(key);
  if (!index) return std::nullopt;
  return *index >= 0 ? *ids_[*index] : externals_[-*index - 1];
}

int Cluster::ClosestProcess(const NodeId& key) const {
  pastry::sim::LiveRing processes;
  for (int i : Alive()) processes.Insert(*ids_[i], i);
  return processes.Closest(key).value_or(-1);
}

std::vector<int> Cluster::Alive() const {
  std::vector<int> out;
  for (int i = 0; i < size(); ++i) {
    if (alive(i)) out.push_back(i);
  }
  return out;
}

absl::StatusOr<std::pair<int, std::string>> Cluster::GetRaw(int i, const std::string& path) {
  if (!alive(i)) return absl::FailedPreconditionError("node not running");
  httplib::Result r = clients_[i]->Get(path.c_str());
  if (!r) {
    return absl::UnavailableError(absl::StrCat("node ", i, " GET ", path, ": ",
                                               httplib::to_string(r.error())));
  }
  return std::make_pair(r->status, r->body);
}

absl::StatusOr<json> Cluster::Get(int i, const std::string& path) {
  absl::StatusOr<std::pair<int, std::string>> r = GetRaw(i, path);
  if (!r.ok()) return r.status();
  if (r->first != 200) {
    return absl::UnavailableError(
        absl::StrCat("node ", i, " GET ", path, ": HTTP ", r->first, " ", r->second));
  }
  json body = json::parse(r->second, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return absl::DataLossError("not JSON: " + r->second);
  return body;
}

absl::Status Cluster::WaitAllActive(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::string waiting;
  while (true) {
    std::vector<std::string> inactive;
    for (int i : Alive()) {
      absl::StatusOr<json> status = Get(i, "/status");
      if (!status.ok() || !(*status)["active"].get<bool>()) {
        inactive.push_back(std::to_string(i));
      }
    }
    if (inactive.empty()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("nodes not active: ", absl::StrJoin(inactive, ", ")));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

int Cluster::WrongLeafSets(std::string* first) {
  int wrong = 0;
  for (int i : Alive()) {
    pastry::sim::ExpectedLeaves leaves = ring_.LeafSet(*ids_[i], leaf_set_size_);
    std::set<std::string> expected;
    for (const NodeId& id : leaves.left) expected.insert(id.ToHex());
    for (const NodeId& id : leaves.right) expected.insert(id.ToHex());
    std::set<std::string> actual;
    absl::StatusOr<json> status = Get(i, "/status");
    if (status.ok()) {
      for (const json& leaf : (*status)["leaf_set"]) {
        actual.insert(leaf["id"].get<std::string>());
      }
    }
    if (status.ok() && actual == expected) continue;
    if (wrong++ == 0 && first != nullptr) {
      *first = absl::StrCat("node ", i, " (", ids_[i]->ShortHex(), "): ",
                            status.ok() ? "" : status.status().ToString(), " has [",
                            absl::StrJoin(actual, " "), "] expected [",
                            absl::StrJoin(expected, " "), "]");
    }
  }
  return wrong;
}

absl::Status Cluster::WaitLeafSetsCorrect(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::string first;
    int wrong = WrongLeafSets(&first);
    if (wrong == 0) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(wrong, " leaf sets wrong; first: ", first));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

Cluster::LookupReport Cluster::Lookups(int count, absl::Duration max_duration) {
  LookupReport report;
  std::vector<int> live = Alive();
  long hops = 0;
  absl::Time start = absl::Now();
  for (int n = 0; n < count && absl::Now() - start < max_duration; ++n) {
    int source = live[rng_() % live.size()];
    NodeId key = RandomId(rng_);
    std::string expected = ClosestId(key)->ToHex();
    ++report.sent;
    absl::StatusOr<json> answer = Get(source, "/route?key=" + key.ToHex());
    if (!answer.ok()) {
      ++report.failed;
      if (report.first_problem.empty()) report.first_problem = answer.status().ToString();
      continue;
    }
    std::string root = (*answer)["root"]["id"].get<std::string>();
    if (root == expected) {
      ++report.right;
      hops += (*answer)["hops"].get<int>();
    } else {
      ++report.wrong;
      if (report.first_problem.empty()) {
        report.first_problem = absl::StrCat("key ", key.ToHex(), " from node ", source,
                                            " ended at ", root, ", expected ", expected);
      }
    }
  }
  report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  report.mean_hops = report.right > 0 ? static_cast<double>(hops) / report.right : 0;
  return report;
}

}  // namespace peter::integration

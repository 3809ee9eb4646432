// A cluster of `peter node` processes driven through their admin endpoints,
// with the ground truth (which ids are alive) kept beside it, for the
// integration tests and the benchmark.
#ifndef PETER_TESTS_INTEGRATION_CLUSTER_H_
#define PETER_TESTS_INTEGRATION_CLUSTER_H_

#include <httplib.h>

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "pastry/sim/live_ring.h"
#include "peter/pastry/node_id.h"
#include "tests/integration/node_process.h"

namespace peter::integration {

class Cluster {
 public:
  // Where node i runs: a command prefix (e.g. `ip netns exec ...`) and the
  // address it listens on.
  struct Host {
    std::vector<std::string> prefix;
    std::string ip = "127.0.0.1";
  };

  // `log_dir` receives one stderr log per node start (node-<i>.<n>.log).
  Cluster(std::string binary, std::function<Host(int)> host_of, std::string log_dir,
          uint64_t seed, int leaf_set_size = 16);

  // Starts node i (a new random id, or its previous id if it ran before)
  // joining through `via` (none: a new ring). With reuse_addresses, a node
  // that ran before listens on its previous overlay and admin addresses.
  absl::Status Start(int i, std::optional<int> via);
  void set_reuse_addresses(bool reuse) { reuse_addresses_ = reuse; }
  // The nodes' --log-level (default debug).
  void set_log_level(std::string level) { log_level_ = std::move(level); }
  // A ring member that is not one of these processes (an embedded node), so
  // the ground truth for leaf sets and roots includes it.
  void AddExternal(const pastry::NodeId& id);
  // The id of the ring member closest to `key` (processes and externals).
  std::optional<pastry::NodeId> ClosestId(const pastry::NodeId& key) const;
  // The process closest to `key` among processes only; -1 if none.
  int ClosestProcess(const pastry::NodeId& key) const;
  // kill -9 node i.
  void Kill(int i);
  // Sends `signal` to node i and waits for it to exit; returns its exit
  // status (waitpid form), nullopt if it did not exit (it is then killed).
  std::optional<int> Stop(int i, int signal, absl::Duration timeout);

  int size() const { return static_cast<int>(nodes_.size()); }
  bool alive(int i) const { return i < size() && nodes_[i] != nullptr; }
  std::vector<int> Alive() const;
  std::mt19937_64& rng() { return rng_; }
  const NodeProcess& node(int i) const { return *nodes_[i]; }
  // Node i's id once it has run (it keeps it across restarts).
  const std::optional<pastry::NodeId>& id(int i) const { return ids_[i]; }

  // GET `path` from node i's admin endpoint; the JSON body of a 200.
  absl::StatusOr<nlohmann::json> Get(int i, const std::string& path);
  // GET `path`, any status: {status, body}.
  absl::StatusOr<std::pair<int, std::string>> GetRaw(int i, const std::string& path);

  // Polls until every live node reports active, or the deadline passes.
  absl::Status WaitAllActive(absl::Duration timeout);
  // Leaf sets that differ from the ground truth now; `first` describes one.
  int WrongLeafSets(std::string* first);
  // Polls until WrongLeafSets() is 0, or the deadline passes.
  absl::Status WaitLeafSetsCorrect(absl::Duration timeout);

  struct LookupReport {
    int sent = 0;
    int right = 0;     // answered by the numerically closest live node
    int wrong = 0;     // answered by another node
    int failed = 0;    // no answer (HTTP error, timeout)
    double mean_hops = 0;
    double seconds = 0;  // wall time of the whole batch
    std::string first_problem;
  };
  // `count` /route lookups from random live nodes to random keys, one at a
  // time; stops early once `max_duration` has passed.
  LookupReport Lookups(int count, absl::Duration max_duration = absl::InfiniteDuration());

 private:
  std::string binary_;
  std::function<Host(int)> host_of_;
  std::string log_dir_;
  std::mt19937_64 rng_;
  int leaf_set_size_;
  std::vector<std::unique_ptr<NodeProcess>> nodes_;
  std::vector<std::unique_ptr<httplib::Client>> clients_;
  std::vector<std::optional<pastry::NodeId>> ids_;
  std::vector<int> starts_;
  std::vector<std::pair<std::string, std::string>> last_addresses_;  // listen, admin
  std::vector<pastry::NodeId> externals_;  // ring index -(k+1)
  bool reuse_addresses_ = false;
  std::string log_level_ = "debug";
  pastry::sim::LiveRing ring_;
};

// A random id, as 32 hex digits.
pastry::NodeId RandomId(std::mt19937_64& rng);

}  // namespace peter::integration

#endif  // PETER_TESTS_INTEGRATION_CLUSTER_H_

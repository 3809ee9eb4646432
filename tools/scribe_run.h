// Internals of the Scribe experiment (tools/scribe_experiment.h): the
// experiment's state and phases. scribe_experiment.cc runs the phases,
// scribe_tally.cc observes deliveries and computes the results.
#ifndef PETER_TOOLS_SCRIBE_RUN_H_
#define PETER_TOOLS_SCRIBE_RUN_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "pastry/sim/network.h"
#include "pastry/sim/sim_network.h"
#include "pubsub/scribe.h"
#include "tools/scribe_experiment.h"

namespace peter::tools::scribe_run {

using pastry::sim::Rng;
using pastry::sim::SimNetwork;
using pubsub::Scribe;

// Streams of the experiment's seed (the overlay uses 101..103).
enum Stream : uint64_t { kGroups = 201, kPublishers = 202, kVictims = 203 };
constexpr uint64_t kNoSeq = std::numeric_limits<uint64_t>::max();

struct Member {
  int topic = 0;
  int node = 0;
  uint64_t last_seq = 0;
  int64_t first_delay_ns = -1;  // message 0, from its publish at the root
  std::vector<bool> got;        // by message index
};

struct Topic {
  std::string name;
  pubsub::TopicId id;
  std::vector<int> members;           // indices into the member list
  int root = -1;                      // where message 0 was published
  std::vector<absl::Time> published;  // by message index; InfinitePast: not
  std::vector<uint64_t> seq_of;       // by message index, as first delivered
};

class Experiment {
 public:
  Experiment(const ScribeSetup& setup, SimNetwork& net)
      : setup_(setup), net_(net), topology_(net.network().topology()), scribes_(net.size()) {}

  ScribeResult Run();

 private:
  void CallScribe(int i, absl::FunctionRef<void(Scribe&)> fn) {
    fn(*scribes_[i]);
    net_.Reschedule(i);
  }
  void Crash(int i) {
    net_.Crash(i);
    scribes_[i].reset();
  }
  int RandomLiveNode(Rng& rng) const {
    for (;;) {
      const int i = static_cast<int>(rng.Below(net_.size()));
      if (scribes_[i] != nullptr) return i;
    }
  }
  int RootOf(const Topic& t) const;
  // Publishes message `index` of topic `k` at node `from`.
  void Publish(int from, int k, int index);

  void AttachScribes();
  void ChooseGroups();
  void Subscribe();
  void MeasureNodeStress();
  void PublishFirstAtRoots();
  void Stream();
  void OnMessage(int member, const pubsub::Delivery& d);
  void Observe(const pastry::sim::Delivery& d);
  void Tally();
  void TallyDelay();
  void TallyLinks();

  const ScribeSetup& setup_;
  SimNetwork& net_;
  const pastry::sim::Topology& topology_;
  std::vector<std::unique_ptr<Scribe>> scribes_;
  std::vector<Topic> topics_;
  std::vector<int> nonempty_;  // topic indices with members
  absl::flat_hash_map<pubsub::TopicId, int> topic_index_;
  std::vector<Member> members_;
  ScribeResult r_;

  // Set by the phases, read by Observe.
  bool counting_control_ = false;
  bool counting_links_ = false;
  int64_t control_msgs_ = 0;
  int64_t overlay_msgs_ = 0;
  // Hash maps only summed or maxed over (order cannot matter).
  absl::flat_hash_map<uint64_t, int64_t> link_copies_;
  absl::flat_hash_map<std::pair<int, uint64_t>, int64_t> message_link_copies_;
  absl::Time repaired_at_ = absl::InfinitePast();
  int64_t publishes_ = 0;
  // Shared with completions, which a crashed publisher never runs.
  // By topic * messages + index: 1 once the root confirmed the publish.
  std::shared_ptr<std::vector<char>> confirmed_ = std::make_shared<std::vector<char>>();
};

}  // namespace peter::tools::scribe_run

#endif  // PETER_TOOLS_SCRIBE_RUN_H_

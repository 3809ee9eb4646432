#include "tests/chaos/soak.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "pubsub/topic_id.h"

namespace peter::chaos {

using integration::Cluster;
using integration::NetnsLab;
using nlohmann::json;

constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr absl::Duration kPoll = absl::Milliseconds(300);

Soak::Soak(SoakOptions options, const std::atomic<bool>& stop)
    // A stream apart from the cluster's (seeded with o_.seed), so the
    // embedded nodes' ids are not the daemons'.
    : o_(std::move(options)),
      stop_(stop),
      rng_(o_.seed ^ 0x9E3779B97F4A7C15ULL),
      t0_(absl::Now()) {
  for (const std::string& f : o_.faults) {
    if (f == "kill") kinds_.push_back(FaultKind::kKill);
    if (f == "pause") kinds_.push_back(FaultKind::kPause);
    if (f == "partition") kinds_.push_back(FaultKind::kPartition);
    if (f == "split") kinds_.push_back(FaultKind::kSplit);
  }
}

Soak::~Soak() {
  // Embedded nodes first (they talk to the daemons), the namespaces last.
  workload_.reset();
  injector_.reset();
  cluster_.reset();
  lab_.reset();
}

void Soak::Say(const std::string& line) {
  std::printf("[%7.1fs] %s\n", absl::ToDoubleSeconds(absl::Now() - t0_), line.c_str());
  std::fflush(stdout);
}

double Soak::Uniform(double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng_);
}

void Soak::SleepUnlessStopped(absl::Duration d) {
  const absl::Time until = absl::Now() + d;
  while (!stop_.load() && absl::Now() < until) {
    absl::SleepFor(std::min(until - absl::Now(), absl::Milliseconds(100)));
  }
}

absl::Status Soak::SetUp() {
  const std::string unsupported = NetnsLab::Unsupported();
  result_.netns = o_.netns == "on" || (o_.netns == "auto" && unsupported.empty());
  if (result_.netns) {
    if (!unsupported.empty()) return absl::FailedPreconditionError(unsupported);
    absl::StatusOr<std::unique_ptr<NetnsLab>> lab = NetnsLab::Create(o_.nodes);
    if (!lab.ok()) return lab.status();
    lab_ = std::move(*lab);
    // This thread, and the embedded nodes' threads it starts, live in the hub.
    if (absl::Status s = lab_->Enter(); !s.ok()) return s;
  }
  std::erase_if(kinds_, [&](FaultKind k) {
    return (k == FaultKind::kPartition || k == FaultKind::kSplit) && !lab_;
  });
  if (kinds_.empty()) return absl::InvalidArgumentError("no fault kind can be injected");
  if (absl::Status s = StartDaemons(); !s.ok()) return s;

  WorkloadOptions w;
  w.listen_ip = lab_ ? lab_->HubAddress() : "127.0.0.1";
  w.bootstrap = cluster_->node(0).listen();
  w.publishers = o_.publishers;
  w.reliable_subscribers = o_.reliable;
  w.best_effort_subscribers = o_.best_effort;
  w.rate = o_.rate;
  w.log_path = o_.log_dir + "/embedded.log";
  PickTopics();
  w.topics = topic_names_;
  w.ids = EmbeddedIds(o_.publishers + o_.reliable + o_.best_effort);
  workload_ = std::make_unique<Workload>(w);
  if (absl::Status s = workload_->StartNodes(kStartTimeout); !s.ok()) return s;
  for (const pastry::NodeId& id : workload_->NodeIds()) cluster_->AddExternal(id);
  result_.embedded = static_cast<int>(workload_->NodeIds().size());
  Say(absl::StrCat(result_.embedded, " embedded nodes up; topics: ",
                   absl::StrJoin(topic_names_, " ")));
  if (absl::Status s = cluster_->WaitLeafSetsCorrect(kStartTimeout); !s.ok()) return s;
  if (absl::Status s = workload_->Subscribe(kStartTimeout); !s.ok()) return s;
  workload_->StartPublishing();
  Say(absl::StrCat("publishing ", o_.rate, " msg/s; waiting for the first deliveries"));
  const absl::Time since = absl::Now();
  while (!workload_->AllDeliveringSince(since)) {
    if (absl::Now() - since > kStartTimeout) {
      int64_t confirmed = 0, delivered = 0;
      for (const auto& [payload, r] : workload_->Publishes()) confirmed += r.seq ? 1 : 0;
      std::string silent;
      for (const SubscriberLog& log : workload_->Logs()) {
        delivered += log.deliveries.size();
        if (log.deliveries.empty()) {
          absl::StrAppend(&silent, " subscriber ", log.node, " topic ", log.topic);
        }
      }
      return absl::DeadlineExceededError(
          absl::StrCat("no delivery to some subscription (published ",
                       workload_->published(), ", confirmed ", confirmed, ", delivered ",
                       delivered, "; nothing delivered to", silent, ")",
                       workload_->DebugTopics()));
    }
    absl::SleepFor(kPoll);
  }
  return absl::OkStatus();
}

absl::Status Soak::StartDaemons() {
  NetnsLab* net = lab_.get();
  cluster_ = std::make_unique<Cluster>(
      o_.binary,
      [net](int i) {
        // The daemons die with the driver even when it crashes (setpriv and
        // ip exec in place, so the pid stays the daemon's). Spawned from
        // this thread, which lives as long as the process.
        Cluster::Host host;
        host.prefix = {"setpriv", "--pdeathsig", "KILL"};
        if (net != nullptr) {
          for (std::string& word : net->Prefix(i)) host.prefix.push_back(std::move(word));
          host.ip = net->Address(i);
        }
        return host;
      },
      o_.log_dir, o_.seed, o_.leaf_set);
  cluster_->set_reuse_addresses(true);
  cluster_->set_log_level(o_.node_log_level);
  injector_ = std::make_unique<FaultInjector>(*cluster_, net);
  for (int i = 0; i < o_.nodes; ++i) {
    std::optional<int> via;
    if (i > 0) via = static_cast<int>(rng_() % i);
    if (absl::Status s = cluster_->Start(i, via); !s.ok()) return s;
  }
  if (absl::Status s = cluster_->WaitAllActive(kStartTimeout); !s.ok()) return s;
  if (absl::Status s = cluster_->WaitLeafSetsCorrect(kStartTimeout); !s.ok()) return s;
  Say(absl::StrCat(o_.nodes, " daemons up", lab_ ? " in network namespaces" : " on loopback"));
  return absl::OkStatus();
}

// Topics whose roots are daemons (so faults can hit them), each on a
// different daemon while there are enough.
void Soak::PickTopics() {
  std::set<int> roots;
  for (int k = 0; static_cast<int>(topic_names_.size()) < o_.topics; ++k) {
    const std::string name = absl::StrCat("chaos-", o_.seed, "-", k);
    const int root = cluster_->ClosestProcess(pubsub::TopicIdOf(name));
    if (roots.contains(root) && static_cast<int>(roots.size()) < o_.nodes) continue;
    roots.insert(root);
    topic_names_.push_back(name);
  }
}

// Random ids for the embedded nodes, none closer to a topic than its root
// daemon, so a topic's root is a daemon whenever no fault is on.
std::vector<pastry::NodeId> Soak::EmbeddedIds(int count) {
  std::vector<pastry::NodeId> ids;
  while (static_cast<int>(ids.size()) < count) {
    const pastry::NodeId id = integration::RandomId(rng_);
    if (cluster_->ClosestId(id) == id ||
        std::find(ids.begin(), ids.end(), id) != ids.end()) {
      continue;
    }
    const bool takes_a_root =
        std::any_of(topic_names_.begin(), topic_names_.end(), [&](const std::string& t) {
          const pastry::NodeId key = pubsub::TopicIdOf(t);
          return pastry::NodeId::CloserTo(key, id, *cluster_->ClosestId(key));
        });
    if (!takes_a_root) ids.push_back(id);
  }
  return ids;
}

int Soak::PickTarget() {
  std::vector<int> alive = cluster_->Alive();
  if (Uniform(0, 1) < o_.root_bias) {
    const std::string& topic = topic_names_[rng_() % topic_names_.size()];
    const int root = cluster_->ClosestProcess(pubsub::TopicIdOf(topic));
    if (root >= 0) return root;
  }
  return alive[rng_() % alive.size()];
}

std::string Soak::RootsOf(int node) {
  std::vector<std::string> roots;
  for (const std::string& topic : topic_names_) {
    if (cluster_->ClosestProcess(pubsub::TopicIdOf(topic)) == node) roots.push_back(topic);
  }
  return absl::StrJoin(roots, ",");
}

bool Soak::Converged(std::string* why) {
  for (int i : cluster_->Alive()) {
    absl::StatusOr<json> status = cluster_->Get(i, "/status");
    if (!status.ok() || !(*status)["active"].get<bool>()) {
      *why = absl::StrCat("node ", i, " not active");
      return false;
    }
  }
  return cluster_->WrongLeafSets(why) == 0;
}

void Soak::WaitRepaired(Fault& fault) {
  const absl::Time deadline = fault.end + absl::Seconds(o_.repair_timeout_s);
  std::string why;
  while (!stop_.load()) {
    if (workload_->AllDeliveringSince(fault.end) && Converged(&why)) {
      fault.repaired = absl::Now();
      return;
    }
    if (why.empty()) why = "a subscription has had no message published since";
    fault.waited_on = why;
    if (absl::Now() >= deadline) break;
    absl::SleepFor(kPoll);
    why.clear();
  }
  fault.problem = absl::StrCat("not repaired within ", o_.repair_timeout_s, " s: ", why);
}

void Soak::InjectFaults() {
  fault_phase_start_ = absl::Now();
  const absl::Time end = fault_phase_start_ + absl::Seconds(o_.duration_s);
  while (!stop_.load() && absl::Now() < end) {
    const FaultKind kind = kinds_[rng_() % kinds_.size()];
    const int target = PickTarget();
    const std::string roots = RootsOf(target);
    const absl::Duration hold = absl::Seconds(Uniform(o_.fault_s[0], o_.fault_s[1]));
    absl::StatusOr<Fault> fault = injector_->Begin(kind, target);
    if (!fault.ok()) {
      result_.problems.push_back(absl::StrCat(FaultName(kind), " node ", target, ": ",
                                              fault.status().ToString()));
      break;
    }
    fault->roots = roots;
    SleepUnlessStopped(hold);
    if (absl::Status s = injector_->End(*fault); !s.ok()) {
      fault->problem = absl::StrCat("could not end: ", s.ToString());
    } else {
      WaitRepaired(*fault);
    }
    Say(absl::StrCat(FaultName(kind), " node ", target, roots.empty() ? "" : " (root of ",
                     roots, roots.empty() ? "" : ")",
                     fault->cut_from.empty()
                         ? ""
                         : absl::StrCat(" from nodes ", absl::StrJoin(fault->cut_from, ",")),
                     " for ",
                     absl::FormatDuration(absl::Trunc(fault->end - fault->start,
                                                      absl::Milliseconds(10))),
                     fault->problem.empty()
                         ? absl::StrCat(", repaired ",
                                        absl::FormatDuration(absl::Trunc(
                                            fault->repaired - fault->end,
                                            absl::Milliseconds(10))),
                                        " after it ended",
                                        fault->repaired - fault->end > absl::Seconds(5)
                                            ? "; last waited on: " + fault->waited_on
                                            : "")
                         : ": " + fault->problem));
    if (!fault->problem.empty()) result_.problems.push_back(fault->problem);
    result_.faults.push_back(*fault);
    SleepUnlessStopped(absl::Seconds(Uniform(o_.gap_s[0], o_.gap_s[1])));
  }
  result_.fault_phase = absl::Now() - fault_phase_start_;
}

void Soak::CheckRoots() {
  for (const std::string& topic : topic_names_) {
    const std::string id = pubsub::TopicIdOf(topic).ToHex();
    const int expected = cluster_->ClosestProcess(pubsub::TopicIdOf(topic));
    std::vector<int> claim;
    for (int i : cluster_->Alive()) {
      absl::StatusOr<json> status = cluster_->Get(i, "/status");
      if (!status.ok()) continue;
      for (const json& t : (*status)["pubsub"]["topic_list"]) {
        if (t["id"] == id && t["root"].get<bool>()) claim.push_back(i);
      }
    }
    if (claim != std::vector<int>{expected}) {
      result_.problems.push_back(absl::StrCat("topic ", topic, ": root should be node ",
                                              expected, ", claimed by [",
                                              absl::StrJoin(claim, ","), "]"));
    }
  }
}

std::string Soak::SumDaemonCounters() {
  int64_t published = 0, duplicates = 0, repaired = 0, skipped = 0, timeouts = 0;
  for (int i : cluster_->Alive()) {
    absl::StatusOr<json> status = cluster_->Get(i, "/status");
    if (!status.ok()) continue;
    const json& p = (*status)["pubsub"];
    published += p["published"].get<int64_t>();
    duplicates += p["duplicates"].get<int64_t>();
    repaired += p["gaps_repaired"].get<int64_t>();
    skipped += p["gaps_skipped"].get<int64_t>();
    timeouts += p["publish_timeouts"].get<int64_t>();
  }
  return absl::StrCat("stamped ", published, ", duplicates dropped ", duplicates,
                      ", gaps repaired ", repaired, ", gaps skipped ", skipped,
                      " (daemons' current incarnations)");
}

SoakResult Soak::Finish() {
  const absl::Time last_end =
      result_.faults.empty() ? absl::Now() : result_.faults.back().end;
  Say("fault phase over; publishing 3 s more, then waiting for the reliable subscribers");
  SleepUnlessStopped(absl::Seconds(3));
  workload_->StopPublishing();
  result_.reliable_missing_at_end = workload_->WaitReliableComplete(absl::Seconds(30));
  std::string why;
  const absl::Time deadline = absl::Now() + absl::Seconds(o_.repair_timeout_s);
  while (!Converged(&why) && absl::Now() < deadline) absl::SleepFor(kPoll);
  if (Converged(&why)) {
    result_.final_convergence = absl::Now() - last_end;
  } else {
    result_.problems.push_back("overlay not converged at the end: " + why);
  }
  CheckRoots();
  result_.daemon_counters = SumDaemonCounters();
  result_.verdict = Judge(workload_->Publishes(), workload_->Logs(), result_.faults,
                          absl::Seconds(o_.window_margin_s));
  result_.topics = topic_names_;
  result_.total = absl::Now() - t0_;
  return result_;
}

}  // namespace peter::chaos

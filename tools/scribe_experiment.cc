#include "tools/scribe_experiment.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "pubsub/topic_id.h"
#include "tools/scribe_run.h"
#include "tools/sim_common.h"

namespace peter::tools {
namespace scribe_run {

void Experiment::Publish(int from, int k, int index) {
  ++publishes_;
  const Topic& t = topics_[k];
  std::string payload = absl::StrCat(index);
  CallScribe(from, [&](Scribe& s) {
    if (!setup_.acked_publish) {
      (void)s.Publish(t.name, std::move(payload));
      return;
    }
    std::weak_ptr<std::vector<char>> confirmed = confirmed_;
    const size_t slot = static_cast<size_t>(k) * setup_.messages + index;
    absl::Status sent =
        s.Publish(t.name, std::move(payload), [confirmed, slot](absl::StatusOr<uint64_t> seq) {
          if (auto c = confirmed.lock(); c && seq.ok()) (*c)[slot] = 1;
        });
    (void)sent;
  });
}

int Experiment::RootOf(const Topic& t) const {
  const int closest = net_.ClosestLiveNode(t.id);
  if (closest >= 0 && scribes_[closest] && scribes_[closest]->IsRoot(t.name)) return closest;
  for (int i = 0; i < net_.size(); ++i) {
    if (scribes_[i] && scribes_[i]->IsRoot(t.name)) return i;
  }
  return closest;
}

void Experiment::AttachScribes() {
  for (int i : net_.LiveIndices()) {
    scribes_[i] = std::make_unique<Scribe>([&](pastry::Application* app) {
      return net_.node(i).RegisterApplication(pubsub::kScribeAppId, app);
    });
    net_.Reschedule(i);
  }
}

void Experiment::ChooseGroups() {
  const int n = net_.size();
  std::vector<int> sizes = setup_.zipf
                               ? ZipfGroupSizes(n, setup_.topics)
                               : std::vector<int>(setup_.topics, std::min(setup_.group_size, n));
  Rng rng(Rng::Derive(setup_.overlay.seed, kGroups));
  std::vector<int> perm = net_.LiveIndices();
  topics_.resize(setup_.topics);
  confirmed_->assign(static_cast<size_t>(setup_.topics) * setup_.messages, 0);
  for (int k = 0; k < setup_.topics; ++k) {
    Topic& t = topics_[k];
    t.name = absl::StrCat("topic-", k);
    t.id = pubsub::TopicIdOf(t.name);
    t.published.assign(setup_.messages, absl::InfinitePast());
    t.seq_of.assign(setup_.messages, kNoSeq);
    topic_index_[t.id] = k;
    // A partial Fisher-Yates shuffle picks a uniform random subset.
    const int size = std::min<int>(sizes[k], perm.size());
    std::vector<int> chosen;
    for (int j = 0; j < size; ++j) {
      const int pick = j + static_cast<int>(rng.Below(perm.size() - j));
      std::swap(perm[j], perm[pick]);
      chosen.push_back(perm[j]);
    }
    std::sort(chosen.begin(), chosen.end());
    for (int node : chosen) {
      t.members.push_back(static_cast<int>(members_.size()));
      members_.push_back(Member{k, node, 0, -1, std::vector<bool>(setup_.messages)});
    }
    if (size > 0) nonempty_.push_back(k);
  }
  r_.topics_nonempty = static_cast<int>(nonempty_.size());
  r_.memberships = static_cast<int64_t>(members_.size());
}

void Experiment::Subscribe() {
  const absl::Time start = net_.Now();
  const absl::Duration spread = absl::Seconds(5);
  const size_t total = members_.size();
  for (size_t m = 0; m < total; ++m) {
    net_.Schedule(start + spread * (static_cast<double>(m) / total), [this, m] {
      Member& member = members_[m];
      if (!scribes_[member.node]) return;
      pubsub::SubscribeOptions options;
      options.reliable = setup_.reliable;
      options.on_message = [this, m](const pubsub::Delivery& d) { OnMessage(m, d); };
      CallScribe(member.node, [&](Scribe& s) {
        (void)s.Subscribe(topics_[member.topic].name, std::move(options));
      });
    });
  }
  net_.RunUntil(start + spread);
  size_t done = 0;
  net_.RunUntil(
      [&] {
        while (done < total) {
          const Member& m = members_[done];
          if (scribes_[m.node] && !scribes_[m.node]->IsAttached(topics_[m.topic].name)) break;
          ++done;
        }
        return done == total;
      },
      absl::Seconds(120), absl::Milliseconds(100));
  int64_t attached = 0;
  for (const Member& m : members_) {
    if (scribes_[m.node] && scribes_[m.node]->IsAttached(topics_[m.topic].name)) ++attached;
  }
  r_.attached_fraction = total ? static_cast<double>(attached) / total : 1.0;
  net_.RunFor(absl::Seconds(2));
}

void Experiment::MeasureNodeStress() {
  int64_t nodes_with_state = 0, state_sum = 0, tables_sum = 0, entries_sum = 0;
  for (int i = 0; i < net_.size(); ++i) {
    if (!scribes_[i] || scribes_[i]->topic_count() == 0) continue;
    ++nodes_with_state;
    state_sum += static_cast<int64_t>(scribes_[i]->topic_count());
    int64_t tables = 0, entries = 0;
    for (int k : nonempty_) {
      const size_t children = scribes_[i]->ChildCount(topics_[k].name);
      if (children == 0) continue;
      ++tables;
      entries += static_cast<int64_t>(children);
    }
    if (tables == 0) continue;
    ++r_.nodes_with_children;
    tables_sum += tables;
    entries_sum += entries;
    r_.tables_max = std::max(r_.tables_max, tables);
    r_.entries_max = std::max(r_.entries_max, entries);
    if (static_cast<int64_t>(r_.tables_histogram.size()) <= tables)
      r_.tables_histogram.resize(tables + 1);
    ++r_.tables_histogram[tables];
    if (static_cast<int64_t>(r_.entries_histogram.size()) <= entries)
      r_.entries_histogram.resize(entries + 1);
    ++r_.entries_histogram[entries];
  }
  if (r_.nodes_with_children > 0) {
    r_.tables_mean = static_cast<double>(tables_sum) / r_.nodes_with_children;
    r_.entries_mean = static_cast<double>(entries_sum) / r_.nodes_with_children;
  }
  if (nodes_with_state > 0) r_.topic_state_mean = static_cast<double>(state_sum) / nodes_with_state;
}

void Experiment::PublishFirstAtRoots() {
  const absl::Time start = net_.Now();
  counting_links_ = true;
  for (size_t j = 0; j < nonempty_.size(); ++j) {
    const int k = nonempty_[j];
    topics_[k].root = RootOf(topics_[k]);
    const absl::Time at = start + absl::Seconds(1) * (static_cast<double>(j) / nonempty_.size());
    net_.Schedule(at, [this, k] {
      Topic& t = topics_[k];
      if (t.root < 0 || !scribes_[t.root]) return;
      t.published[0] = net_.Now();
      Publish(t.root, k, 0);
    });
  }
  net_.RunFor(absl::Seconds(10));
  counting_links_ = false;
}

void Experiment::Stream() {
  const int64_t per_topic = setup_.messages - 1;
  const int64_t total = per_topic * static_cast<int64_t>(nonempty_.size());
  const absl::Time start = net_.Now();
  auto publishers = std::make_shared<Rng>(Rng::Derive(setup_.overlay.seed, kPublishers));
  for (int64_t q = 0; q < total; ++q) {
    const int k = nonempty_[q % nonempty_.size()];
    const int index = 1 + static_cast<int>(q / nonempty_.size());
    net_.Schedule(start + setup_.stream * (static_cast<double>(q) / total),
                  [this, k, index, publishers] {
                    const int from = RandomLiveNode(*publishers);
                    Topic& t = topics_[k];
                    t.published[index] = net_.Now();
                    Publish(from, k, index);
                  });
  }
  const int victims = static_cast<int>(setup_.fail_fraction * net_.size());
  const absl::Time crash_at = start + setup_.stream / 4;
  const int live_before = net_.live_count();
  if (victims > 0) {
    repaired_at_ = crash_at + setup_.repair_window;
    net_.Schedule(crash_at, [this, victims] {
      Rng rng(Rng::Derive(setup_.overlay.seed, kVictims));
      // The roots of the largest topics first, then random nodes.
      const int roots = std::min<int>(
          victims, static_cast<int>(std::ceil(setup_.fail_fraction * nonempty_.size())));
      for (int j = 0; j < roots; ++j) {
        const int root = RootOf(topics_[nonempty_[j]]);
        if (root >= 0 && scribes_[root]) {
          Crash(root);
          ++r_.failed;
        }
      }
      while (r_.failed < victims) {
        Crash(RandomLiveNode(rng));
        ++r_.failed;
      }
    });
  }
  counting_control_ = true;
  net_.RunUntil(start + setup_.stream);
  counting_control_ = false;
  const double node_seconds =
      victims > 0 ? live_before * absl::ToDoubleSeconds(crash_at - start) +
                        net_.live_count() * absl::ToDoubleSeconds(start + setup_.stream - crash_at)
                  : live_before * absl::ToDoubleSeconds(setup_.stream);
  if (node_seconds > 0) {
    r_.control_msgs_per_node_s = control_msgs_ / node_seconds;
    r_.overlay_msgs_per_node_s = overlay_msgs_ / node_seconds;
  }
  // Time for the last messages, repairs and retries.
  net_.RunFor(setup_.repair_window + absl::Seconds(10));
}

ScribeResult Experiment::Run() {
  net_.network().set_delivery_observer([this](const pastry::sim::Delivery& d) { Observe(d); });
  r_.rss_overlay_mb = CurrentRssMb();
  r_.heap_overlay_mb = HeapInUseMb();
  AttachScribes();
  ChooseGroups();
  Subscribe();
  r_.heap_subscribed_mb = HeapInUseMb();
  MeasureNodeStress();
  PublishFirstAtRoots();
  Stream();
  r_.heap_streamed_mb = HeapInUseMb();
  Tally();
  net_.network().set_delivery_observer({});
  r_.sim_time_s = absl::ToDoubleSeconds(net_.Now() - absl::UnixEpoch());
  return r_;
}

}  // namespace scribe_run

std::vector<int> ZipfGroupSizes(int nodes, int topics) {
  std::vector<int> sizes(topics);
  for (int r = 1; r <= topics; ++r) {
    const double size = std::floor(nodes * std::pow(r, -1.25) + 0.5);
    sizes[r - 1] = static_cast<int>(std::min<double>(size, nodes));
  }
  return sizes;
}

absl::StatusOr<ScribeResult> RunScribeExperiment(const ScribeSetup& setup) {
  pastry::sim::JoinReport join;
  absl::StatusOr<std::unique_ptr<pastry::sim::SimNetwork>> net =
      pastry::sim::BuildOverlay(setup.overlay, &join);
  if (!net.ok()) return net.status();
  scribe_run::Experiment experiment(setup, **net);
  ScribeResult r = experiment.Run();
  r.all_joined = join.all_active;
  return r;
}

}  // namespace peter::tools

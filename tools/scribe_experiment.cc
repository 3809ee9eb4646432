#include "tools/scribe_experiment.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "pastry/core/messages.h"
#include "pastry/sim/network.h"
#include "pubsub/scribe.h"
#include "pubsub/topic_id.h"
#include "pubsub/wire/codec.h"

namespace peter::tools {
namespace {

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
  std::vector<int> members;  // indices into the member list
  int root = -1;             // where message 0 was published
  std::vector<absl::Time> published;  // by message index; InfinitePast: not
  std::vector<uint64_t> seq_of;       // by message index, as first delivered
};

int RatioBin(double ratio) {
  return std::min(ScribeResult::kRatioBins - 1,
                  static_cast<int>(ratio / ScribeResult::kRatioBin));
}

class Experiment {
 public:
  Experiment(const ScribeSetup& setup, SimNetwork& net)
      : setup_(setup), net_(net), topology_(net.network().topology()),
        scribes_(net.size()) {}

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
  void Publish(int from, const Topic& t, std::string payload);

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
  absl::flat_hash_map<uint64_t, int64_t> link_copies_;
  absl::flat_hash_map<std::pair<int, uint64_t>, int64_t> message_link_copies_;
  absl::Time repaired_at_ = absl::InfinitePast();
  int64_t publishes_ = 0;
  // Shared with completions, which a crashed publisher never runs.
  std::shared_ptr<int64_t> confirmed_ = std::make_shared<int64_t>(0);
};

void Experiment::Publish(int from, const Topic& t, std::string payload) {
  ++publishes_;
  CallScribe(from, [&](Scribe& s) {
    if (!setup_.acked_publish) {
      (void)s.Publish(t.name, std::move(payload));
      return;
    }
    std::weak_ptr<int64_t> confirmed = confirmed_;
    absl::Status sent = s.Publish(t.name, std::move(payload), [confirmed](absl::StatusOr<uint64_t> seq) {
      if (auto c = confirmed.lock(); c && seq.ok()) ++*c;
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
  std::vector<int> sizes = setup_.zipf ? ZipfGroupSizes(n, setup_.topics)
                                       : std::vector<int>(setup_.topics, std::min(setup_.group_size, n));
  Rng rng(Rng::Derive(setup_.overlay.seed, kGroups));
  std::vector<int> perm = net_.LiveIndices();
  topics_.resize(setup_.topics);
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
    if (static_cast<int64_t>(r_.tables_histogram.size()) <= tables) r_.tables_histogram.resize(tables + 1);
    ++r_.tables_histogram[tables];
    if (static_cast<int64_t>(r_.entries_histogram.size()) <= entries) r_.entries_histogram.resize(entries + 1);
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
      Publish(t.root, t, "0");
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
                    Publish(from, t, absl::StrCat(index));
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

void Experiment::OnMessage(int m, const pubsub::Delivery& d) {
  Member& member = members_[m];
  Topic& t = topics_[member.topic];
  int index = -1;
  if (!absl::SimpleAtoi(absl::string_view(d.payload.data(), d.payload.size()), &index) || index < 0 || index >= setup_.messages) {
    ++r_.order_violations;  // not a message of ours: corrupted
    return;
  }
  if (member.got[index]) {
    ++r_.duplicates;
    return;
  }
  member.got[index] = true;
  if (d.seq <= member.last_seq) ++r_.order_violations;
  member.last_seq = std::max(member.last_seq, d.seq);
  uint64_t& seq = t.seq_of[index];
  if (seq == kNoSeq) {
    seq = d.seq;
  } else if (seq != d.seq) {
    ++r_.numbering_conflicts;
  }
  if (index == 0) member.first_delay_ns = absl::ToInt64Nanoseconds(net_.Now() - t.published[0]);
}

void Experiment::Observe(const pastry::sim::Delivery& d) {
  if (!counting_control_ && !counting_links_) return;
  const auto* route = std::get_if<pastry::RouteMsg>(&d.envelope.body);
  if (route == nullptr || route->kind != pastry::RouteKind::kApp ||
      route->app != pubsub::kScribeAppId) {
    if (counting_control_) ++overlay_msgs_;
    return;
  }
  absl::StatusOr<pubsub::ScribeMessage> msg = pubsub::wire::Decode(route->payload);
  if (!msg.ok()) return;
  if (const auto* data = std::get_if<pubsub::DataMsg>(&*msg)) {
    if (!counting_links_) return;
    auto it = topic_index_.find(data->topic);
    if (it == topic_index_.end()) return;
    const int topic = it->second;
    topology_.ForEachLink(d.from, d.to, [&](uint64_t link) {
      ++link_copies_[link];
      ++message_link_copies_[{topic, link}];
    });
    return;
  }
  if (std::holds_alternative<pubsub::PublishMsg>(*msg)) return;
  if (counting_control_) ++control_msgs_;
}

void Experiment::TallyDelay() {
  r_.rad_histogram.assign(ScribeResult::kRatioBins, 0);
  r_.rmd_histogram.assign(ScribeResult::kRatioBins, 0);
  int measured = 0;
  double rad_sum = 0, rmd_sum = 0, tree_ms = 0, unicast_ms = 0;
  int64_t pairs = 0;
  for (int k : nonempty_) {
    const Topic& t = topics_[k];
    if (t.root < 0) continue;
    int64_t tree_sum = 0, uni_sum = 0, tree_max = 0, uni_max = 0;
    for (int m : t.members) {
      const Member& member = members_[m];
      if (member.node == t.root || member.first_delay_ns < 0) continue;
      const int64_t uni = absl::ToInt64Nanoseconds(net_.Delay(t.root, member.node));
      tree_sum += member.first_delay_ns;
      uni_sum += uni;
      tree_max = std::max(tree_max, member.first_delay_ns);
      uni_max = std::max(uni_max, uni);
      ++pairs;
    }
    if (uni_sum <= 0 || uni_max <= 0) continue;
    const double rad = static_cast<double>(tree_sum) / uni_sum;
    const double rmd = static_cast<double>(tree_max) / uni_max;
    rad_sum += rad;
    rmd_sum += rmd;
    ++r_.rad_histogram[RatioBin(rad)];
    ++r_.rmd_histogram[RatioBin(rmd)];
    tree_ms += tree_sum / 1e6;
    unicast_ms += uni_sum / 1e6;
    ++measured;
  }
  if (measured > 0) {
    r_.rad_mean = rad_sum / measured;
    r_.rmd_mean = rmd_sum / measured;
  }
  if (pairs > 0) {
    r_.tree_delay_ms_mean = tree_ms / pairs;
    r_.unicast_delay_ms_mean = unicast_ms / pairs;
  }
}

// Histogram of link stress, index: copies, trimmed after the last non-zero.
std::vector<int64_t> StressHistogram(const absl::flat_hash_map<uint64_t, int64_t>& copies) {
  std::vector<int64_t> h(ScribeResult::kLinkStressBins, 0);
  for (const auto& [link, count] : copies) {
    ++h[std::min<int64_t>(count, ScribeResult::kLinkStressBins - 1)];
  }
  while (!h.empty() && h.back() == 0) h.pop_back();
  return h;
}

void Experiment::TallyLinks() {
  if (!topology_.ForEachLink(0, 0, [](uint64_t) {})) return;
  int64_t copies = 0, max = 0, per_message_max = 0;
  for (const auto& [link, count] : link_copies_) {
    copies += count;
    max = std::max(max, count);
  }
  for (const auto& [key, count] : message_link_copies_) per_message_max = std::max(per_message_max, count);
  r_.links_used = static_cast<int64_t>(link_copies_.size());
  r_.link_stress_mean = link_copies_.empty() ? 0.0 : static_cast<double>(copies) / link_copies_.size();
  r_.link_stress_max = max;
  r_.link_stress_per_message_max = per_message_max;
  // IP multicast: each topic's shortest-path tree from its root.
  absl::flat_hash_map<uint64_t, int64_t> ip;
  int64_t ip_copies = 0, ip_max = 0;
  for (int k : nonempty_) {
    const Topic& t = topics_[k];
    if (t.root < 0) continue;
    absl::flat_hash_set<uint64_t> tree;
    for (int m : t.members) {
      topology_.ForEachLink(t.root, members_[m].node, [&](uint64_t link) { tree.insert(link); });
    }
    for (uint64_t link : tree) ip_max = std::max(ip_max, ++ip[link]);
    ip_copies += static_cast<int64_t>(tree.size());
  }
  r_.ip_link_stress_mean = ip.empty() ? 0.0 : static_cast<double>(ip_copies) / ip.size();
  r_.ip_link_stress_max = ip_max;
  r_.link_stress_histogram = StressHistogram(link_copies_);
  r_.ip_link_stress_histogram = StressHistogram(ip);
}

void Experiment::Tally() {
  const bool everything_promised = setup_.reliable || setup_.fail_fraction <= 0;
  for (const Member& member : members_) {
    if (!scribes_[member.node]) continue;
    const Topic& t = topics_[member.topic];
    for (int index = 0; index < setup_.messages; ++index) {
      if (t.published[index] == absl::InfinitePast()) continue;
      const bool promised = everything_promised || t.published[index] >= repaired_at_;
      if (promised) {
        ++r_.expected;
        if (member.got[index]) ++r_.delivered;
      } else if (member.got[index]) {
        ++r_.delivered_unpromised;
      }
    }
  }
  for (const auto& s : scribes_) {
    if (!s) continue;
    r_.parent_failures += s->stats().parent_failures;
    r_.repairs_served += s->stats().repairs_served;
    r_.skipped += s->stats().skipped;
    r_.roots_taken += s->stats().roots_taken;
    r_.publish_resends += s->stats().publish_resends;
    r_.publishes_deduplicated += s->stats().publishes_deduplicated;
    r_.pushdowns += s->stats().pushdowns;
  }
  if (setup_.acked_publish) r_.publishes_unconfirmed = publishes_ - *confirmed_;
  TallyDelay();
  TallyLinks();
}

ScribeResult Experiment::Run() {
  net_.network().set_delivery_observer(
      [this](const pastry::sim::Delivery& d) { Observe(d); });
  AttachScribes();
  ChooseGroups();
  Subscribe();
  MeasureNodeStress();
  PublishFirstAtRoots();
  Stream();
  Tally();
  net_.network().set_delivery_observer({});
  r_.sim_time_s = absl::ToDoubleSeconds(net_.Now() - absl::UnixEpoch());
  return r_;
}

}  // namespace

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
  absl::StatusOr<std::unique_ptr<SimNetwork>> net =
      pastry::sim::BuildOverlay(setup.overlay, &join);
  if (!net.ok()) return net.status();
  Experiment experiment(setup, **net);
  ScribeResult r = experiment.Run();
  r.all_joined = join.all_active;
  return r;
}

}  // namespace peter::tools

#include "tests/pubsub/root_sweep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pastry/sim/rng.h"
#include "pubsub/topic_id.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/base_sink.h"
#include "tests/pubsub/scribe_harness.h"

namespace peter::pubsub::testing {
namespace {

using pastry::sim::Rng;

constexpr int kTopics = 3;
constexpr int kSubscribersPerTopic = 3;
constexpr int kReplicas = 4;  // ScribeOptions::replicas
const absl::Duration kPublishEvery = absl::Milliseconds(100);
const absl::Duration kBeforeFaults = absl::Seconds(2);
const absl::Duration kAfterFaults = absl::Seconds(5);
// Longer than publish_timeout (10 s) and several repair rounds.
const absl::Duration kQuiet = absl::Seconds(25);

std::string TopicName(int k) { return absl::StrCat("sweep-", k); }

const char* KindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kCutRoot: return "cut-root";
    case FaultKind::kCutGroup: return "cut-group";
    case FaultKind::kCutPartial: return "cut-partial";
    case FaultKind::kKillRoot: return "kill-root";
    case FaultKind::kKillReplica: return "kill-replica";
    case FaultKind::kShrink: return "shrink";
    case FaultKind::kCutRootLaggedHeal: return "cut-root-lagged-heal";
  }
  return "?";
}

// 0.3-12 s, log-uniform: short cuts (below failure detection) as often as
// long ones.
absl::Duration CutLength(Rng& rng) {
  return absl::Milliseconds(std::round(300.0 * std::exp(rng.Uniform01() * std::log(40.0))));
}

// A kill's time down: 0.5-8 s, or for good (one in five).
absl::Duration DownTime(Rng& rng) {
  if (rng.Bernoulli(0.2)) return absl::InfiniteDuration();
  return absl::Milliseconds(500 + static_cast<int64_t>(rng.Below(7500)));
}

Fault DrawFault(Rng& rng, FaultKind kind, absl::Duration start) {
  Fault f;
  f.kind = kind;
  f.start = start;
  f.salt = rng.Next();
  switch (kind) {
    case FaultKind::kCutRoot:
    case FaultKind::kCutPartial:
      f.length = CutLength(rng);
      break;
    case FaultKind::kCutGroup:
      f.length = CutLength(rng);
      f.rank = 1 + static_cast<int>(rng.Below(3));
      break;
    case FaultKind::kKillRoot:
      f.length = DownTime(rng);
      break;
    case FaultKind::kKillReplica:
      f.length = DownTime(rng);
      f.rank = 1 + static_cast<int>(rng.Below(kReplicas));
      break;
    case FaultKind::kCutRootLaggedHeal:
      // Both within lone_root_grace (8 s) together.
      f.length = absl::Milliseconds(3000 + static_cast<int64_t>(rng.Below(3000)));
      f.gap = absl::Milliseconds(
          500 + static_cast<int64_t>(rng.Below(7300 - absl::ToInt64Milliseconds(f.length))));
      break;
    case FaultKind::kShrink:
      f.length = absl::InfiniteDuration();
      f.rank = 3 + static_cast<int>(rng.Below(2));  // below replicas + 1
      f.gap = absl::Milliseconds(static_cast<int64_t>(rng.Below(2000)));
      break;
  }
  return f;
}

// The nodes in the order of their distance to `key`, live ones only: the
// topic's root first, then its replica set.
std::vector<int> ByDistance(ScribeRing& ring, const TopicId& key) {
  std::vector<int> out;
  for (int i = 0; i < ring.size(); ++i) {
    if (ring.alive(i)) out.push_back(i);
  }
  std::sort(out.begin(), out.end(), [&](int a, int b) {
    return NodeId::CloserTo(key, ring.net().id(a), ring.net().id(b));
  });
  return out;
}

// The Scribes' debug log to stderr, stamped with simulated time and node.
class SimSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  SimSink(ScribeRing* ring, int node) : ring_(ring), node_(node) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::fprintf(stderr, "%10.3f n%-2d %.*s\n",
                 absl::ToDoubleSeconds(ring_->net().Now() - absl::UnixEpoch()), node_,
                 static_cast<int>(msg.payload.size()), msg.payload.data());
  }
  void flush_() override {}

 private:
  ScribeRing* ring_;
  int node_;
};

class CaseRun {
 public:
  CaseRun(const SweepCase& c, bool debug_log)
      : case_(c), debug_log_(debug_log), ring_(Network(c.seed), c.nodes), rng_(Rng::Derive(c.seed, 7)) {}

  SweepResult Run();

 private:
  static ScribeRing::SimNetwork::Config Network(uint64_t seed) {
    ScribeRing::SimNetwork::Config config = ScribeRing::Config(seed);
    config.plane.per_unit = absl::Microseconds(10);
    return config;
  }
  int n() const { return ring_.size(); }
  bool Cut(int from, int to) const { return cut_[from * n() + to] > 0; }
  void SetLogger(int i);
  void ChooseMembers();
  void Schedule(absl::Duration at, std::function<void()> fn) {
    ring_.net().Schedule(start_ + at, std::move(fn));
  }
  void ScheduleFault(const Fault& f);
  void CutLinks(const std::vector<std::pair<int, int>>& links, absl::Duration length);
  void CutOneWay(const std::vector<std::pair<int, int>>& links, absl::Duration length);
  void Kill(int i, absl::Duration down);
  void PublishRound(int step);
  void Observe(const pastry::sim::Delivery& d);
  void Record(int topic, uint64_t seq, const std::string& payload, const std::string& where);
  void Check();
  void AddStats(const ScribeStats& s) {
    result_.roots_taken += s.roots_taken;
    result_.numbers_withdrawn += s.numbers_withdrawn;
    result_.lone_root_waits += s.lone_root_waits;
  }

  const SweepCase& case_;
  const bool debug_log_;
  ScribeRing ring_;
  Rng rng_;
  absl::Time start_;
  absl::Duration faults_end_;
  std::vector<int> cut_;                 // n x n: cuts holding from -> to
  std::set<int> ever_down_;              // crashed at least once
  std::vector<std::vector<int>> subscribers_;  // per topic
  std::vector<std::vector<int>> acked_;        // per topic
  std::vector<int> best_effort_;               // per topic
  struct Acked {
    int topic;
    std::string payload;
    std::optional<absl::StatusOr<uint64_t>> outcome;
  };
  std::deque<Acked> acked_publishes_;
  std::set<std::string> best_effort_payloads_;
  // (topic, number) -> the payload first seen under it, and where.
  std::map<std::pair<int, uint64_t>, std::pair<std::string, std::string>> seen_;
  std::map<TopicId, int> topic_index_;
  SweepResult result_;
};

void CaseRun::SetLogger(int i) {
  if (!debug_log_ || !ring_.alive(i)) return;
  auto logger = std::make_shared<spdlog::logger>(absl::StrCat("n", i),
                                                 std::make_shared<SimSink>(&ring_, i));
  logger->set_level(spdlog::level::debug);
  ring_.scribe(i).set_logger(std::move(logger));
}

// Three reliable subscribers per topic; two acknowledged publishers and a
// best-effort one per topic, on any node (a publisher that crashes stops).
// When the ring shrinks, the subscribers are among the survivors.
void CaseRun::ChooseMembers() {
  std::vector<int> pool;
  for (int i = 0; i < n(); ++i) pool.push_back(i);
  for (const Fault& f : case_.faults) {
    if (f.kind != FaultKind::kShrink) continue;
    for (size_t k = pool.size(); k > 1; --k) std::swap(pool[k - 1], pool[rng_.Below(k)]);
    pool.resize(static_cast<size_t>(f.rank));
  }
  const int root = ring_.net().ClosestLiveNode(TopicIdOf(TopicName(0)));
  subscribers_.resize(kTopics);
  acked_.resize(kTopics);
  best_effort_.resize(kTopics);
  for (int k = 0; k < kTopics; ++k) {
    topic_index_[TopicIdOf(TopicName(k))] = k;
    std::vector<int> order = pool;
    for (size_t j = order.size(); j > 1; --j) std::swap(order[j - 1], order[rng_.Below(j)]);
    order.resize(std::min<size_t>(order.size(), kSubscribersPerTopic));
    subscribers_[k] = order;
    acked_[k] = {static_cast<int>(rng_.Below(n())), static_cast<int>(rng_.Below(n()))};
    if (k == 0 && case_.publish_at_root) acked_[k][1] = root;
    best_effort_[k] = static_cast<int>(rng_.Below(n()));
  }
}

void CaseRun::CutLinks(const std::vector<std::pair<int, int>>& links, absl::Duration length) {
  for (auto [a, b] : links) {
    ++cut_[a * n() + b];
    ++cut_[b * n() + a];
  }
  if (length == absl::InfiniteDuration()) return;
  ring_.net().Schedule(ring_.net().Now() + length, [this, links] {
    for (auto [a, b] : links) {
      --cut_[a * n() + b];
      --cut_[b * n() + a];
    }
    ring_.net().network().ReleaseHeld();
  });
}

// Holds what goes from `first` to `second` of each link only.
void CaseRun::CutOneWay(const std::vector<std::pair<int, int>>& links, absl::Duration length) {
  for (auto [a, b] : links) ++cut_[a * n() + b];
  ring_.net().Schedule(ring_.net().Now() + length, [this, links] {
    for (auto [a, b] : links) --cut_[a * n() + b];
    ring_.net().network().ReleaseHeld();
  });
}

void CaseRun::Kill(int i, absl::Duration down) {
  if (!ring_.alive(i)) return;
  if (ring_.net().live_count() <= 1) return;
  AddStats(ring_.scribe(i).stats());
  ring_.Crash(i);
  ever_down_.insert(i);
  if (down == absl::InfiniteDuration()) return;
  ring_.net().Schedule(ring_.net().Now() + down, [this, i] {
    if (ring_.alive(i)) return;
    // Through a live node it can reach.
    std::vector<int> through;
    for (int b = 0; b < n(); ++b) {
      if (b != i && ring_.alive(b) && !Cut(i, b)) through.push_back(b);
    }
    if (through.empty()) return;
    ring_.Restart(i, through[rng_.Below(through.size())]);
    SetLogger(i);
  });
}

void CaseRun::ScheduleFault(const Fault& f) {
  const TopicId topic = TopicIdOf(TopicName(0));
  Schedule(f.start, [this, f, topic] {
    const std::vector<int> near = ByDistance(ring_, topic);
    if (near.empty()) return;
    const int root = near[0];
    if (debug_log_) {
      std::fprintf(stderr, "%10.3f fault %s on root n%d (length %s)\n",
                   absl::ToDoubleSeconds(ring_.net().Now() - absl::UnixEpoch()), KindName(f.kind),
                   root, absl::FormatDuration(f.length).c_str());
    }
    std::vector<std::pair<int, int>> links;
    switch (f.kind) {
      case FaultKind::kCutRoot:
        for (int b : near) {
          if (b != root) links.emplace_back(root, b);
        }
        CutLinks(links, f.length);
        break;
      case FaultKind::kCutRootLaggedHeal: {
        for (int b : near) {
          if (b != root) links.emplace_back(root, b);
        }
        CutLinks(links, f.length);
        std::vector<std::pair<int, int>> lagged;
        for (size_t r = 1; r <= kReplicas + 1 && r < near.size(); ++r) {
          lagged.emplace_back(near[r], root);
        }
        CutOneWay(lagged, f.length + f.gap);
        break;
      }
      case FaultKind::kCutGroup: {
        const size_t side = std::min<size_t>(1 + f.rank, near.size() - 1);
        for (size_t a = 0; a < side; ++a) {
          for (size_t b = side; b < near.size(); ++b) links.emplace_back(near[a], near[b]);
        }
        CutLinks(links, f.length);
        break;
      }
      case FaultKind::kCutPartial: {
        // Part of the replica set (at least one, not all when there are
        // two or more), and each other node by a coin.
        Rng coin(f.salt);
        const size_t replicas = std::min<size_t>(kReplicas, near.size() - 1);
        std::vector<int> cut;
        for (size_t r = 1; r <= replicas; ++r) {
          if (coin.Bernoulli(0.5)) cut.push_back(near[r]);
        }
        if (cut.empty() && replicas > 0) cut.push_back(near[1 + coin.Below(replicas)]);
        if (cut.size() == replicas && replicas > 1) cut.erase(cut.begin() + coin.Below(cut.size()));
        for (size_t b = replicas + 1; b < near.size(); ++b) {
          if (coin.Bernoulli(0.5)) cut.push_back(near[b]);
        }
        for (int b : cut) links.emplace_back(root, b);
        CutLinks(links, f.length);
        break;
      }
      case FaultKind::kKillRoot:
        Kill(root, f.length);
        break;
      case FaultKind::kKillReplica:
        if (static_cast<size_t>(f.rank) < near.size()) Kill(near[f.rank], f.length);
        break;
      case FaultKind::kShrink: {
        // Everyone but the survivors chosen with the subscribers, one by
        // one, `gap` apart.
        std::set<int> keep(subscribers_[0].begin(), subscribers_[0].end());
        for (int k = 1; k < kTopics; ++k) keep.insert(subscribers_[k].begin(), subscribers_[k].end());
        std::vector<int> victims;
        for (int b : near) {
          if (!keep.contains(b)) victims.push_back(b);
        }
        const size_t target = static_cast<size_t>(f.rank);
        absl::Duration at;
        for (size_t j = 0; j < victims.size() && near.size() - j > target; ++j) {
          const int v = victims[j];
          ring_.net().Schedule(ring_.net().Now() + at,
                               [this, v] { Kill(v, absl::InfiniteDuration()); });
          at += f.gap;
        }
        break;
      }
    }
  });
}

void CaseRun::PublishRound(int step) {
  for (int k = 0; k < kTopics; ++k) {
    for (size_t slot = 0; slot < acked_[k].size(); ++slot) {
      const int p = acked_[k][slot];
      if (!ring_.alive(p)) continue;
      Acked& a = acked_publishes_.emplace_back();
      a.topic = k;
      a.payload = absl::StrCat("a", p, "/", slot, "-", k, "-", step);
      ring_.PublishAcked(p, TopicName(k), a.payload, &a.outcome);
    }
    const int b = best_effort_[k];
    if (ring_.alive(b)) {
      std::string payload = absl::StrCat("b", b, "-", k, "-", step);
      best_effort_payloads_.insert(payload);
      ring_.Publish(b, TopicName(k), std::move(payload));
    }
  }
}

void CaseRun::Record(int topic, uint64_t seq, const std::string& payload,
                     const std::string& where) {
  auto [it, fresh] = seen_.emplace(std::make_pair(topic, seq), std::make_pair(payload, where));
  if (fresh || it->second.first == payload) return;
  ++result_.numbers_given_twice;
  result_.violations.push_back(absl::StrCat("topic ", topic, " #", seq, ": '", it->second.first,
                                            "' (", it->second.second, ") and '", payload, "' (",
                                            where, ")"));
  it->second.first = payload;  // report each further change once
}

void CaseRun::Observe(const pastry::sim::Delivery& d) {
  for (const ScribeMessage& m : ScribeOf(d.envelope)) {
    const auto* data = std::get_if<DataMsg>(&m);
    if (data == nullptr) continue;
    auto k = topic_index_.find(data->topic);
    if (k == topic_index_.end()) continue;
    Record(k->second, data->seq, std::string(data->payload), absl::StrCat("data n", d.from, "->n", d.to));
  }
}

void CaseRun::Check() {
  // Confirmations: one publish per number, and the number's one message.
  std::vector<std::map<uint64_t, std::string>> confirmed(kTopics);
  std::set<std::string> unconfirmed;
  for (const Acked& a : acked_publishes_) {
    ++result_.acked_publishes;
    if (!a.outcome.has_value() || !a.outcome->ok()) {
      ++result_.unconfirmed;
      unconfirmed.insert(a.payload);
      continue;
    }
    ++result_.confirmed;
    const uint64_t seq = **a.outcome;
    Record(a.topic, seq, a.payload, "confirmed");
    auto [it, fresh] = confirmed[a.topic].emplace(seq, a.payload);
    if (!fresh) {
      ++result_.numbers_given_twice;
      result_.violations.push_back(absl::StrCat("topic ", a.topic, " #", seq, " confirmed to '",
                                                it->second, "' and '", a.payload, "'"));
    }
  }
  for (int k = 0; k < kTopics; ++k) {
    for (int i = 0; i < n(); ++i) {
      const std::vector<Received>& log = ring_.log(i, TopicName(k));
      for (const Received& r : log) Record(k, r.seq, r.payload, absl::StrCat("delivered at n", i));
    }
    for (int s : subscribers_[k]) {
      const std::vector<Received>& log = ring_.log(s, TopicName(k));
      const std::string who = absl::StrCat("topic ", k, " subscriber n", s);
      std::map<std::string, int> times;
      bool in_order = true;  // the first gap or step back only is reported
      for (size_t j = 0; j < log.size(); ++j) {
        const uint64_t expected = j == 0 ? 1 : log[j - 1].seq + 1;
        if (log[j].seq != expected && in_order) {
          in_order = false;
          result_.violations.push_back(absl::StrCat(who, ": #", log[j].seq, " after #",
                                                    expected - 1,
                                                    log[j].seq < expected ? " (reordered)" : " (gap)"));
        }
        if (++times[log[j].payload] == 2) {
          result_.violations.push_back(absl::StrCat(who, ": '", log[j].payload, "' twice"));
        }
      }
      if (ever_down_.contains(s)) continue;  // its log is a prefix
      ++result_.checked_subscribers;
      for (const auto& [seq, payload] : confirmed[k]) {
        if (times[payload] != 1) {
          result_.violations.push_back(absl::StrCat(who, ": confirmed '", payload, "' (#", seq,
                                                    ") delivered ", times[payload], " times"));
        }
      }
    }
  }
  for (int i = 0; i < n(); ++i) {
    if (!ring_.alive(i)) continue;
    const Scribe& scribe = ring_.scribe(i);
    AddStats(scribe.stats());
    // The running count of kept bytes (max_replay_bytes) through the
    // hand-overs, merges and take-overs of the case, against a recount.
    if (scribe.stats().replay_bytes != scribe.RecountReplayBytes()) {
      result_.violations.push_back(absl::StrCat("node ", i, ": replay bytes counted ",
                                                scribe.stats().replay_bytes, ", held ",
                                                scribe.RecountReplayBytes()));
    }
  }
}

SweepResult CaseRun::Run() {
  if (!ring_.all_active()) {
    result_.violations.push_back("the ring never formed");
    return result_;
  }
  cut_.assign(static_cast<size_t>(n() * n()), 0);
  for (int i = 0; i < n(); ++i) SetLogger(i);
  ChooseMembers();
  if (debug_log_) {
    for (int i = 0; i < n(); ++i) {
      std::fprintf(stderr, "n%d is %s\n", i, ring_.net().id(i).ShortHex().c_str());
    }
    for (int k = 0; k < kTopics; ++k) {
      std::fprintf(stderr, "topic %d is %s; subscribers %s; acknowledged publishers %s\n", k,
                   TopicIdOf(TopicName(k)).ShortHex().c_str(),
                   absl::StrJoin(subscribers_[k], ",").c_str(),
                   absl::StrJoin(acked_[k], ",").c_str());
    }
  }
  std::vector<int> all_subscribers;
  for (int k = 0; k < kTopics; ++k) {
    for (int s : subscribers_[k]) ring_.Subscribe(s, TopicName(k), /*reliable=*/true);
    all_subscribers.insert(all_subscribers.end(), subscribers_[k].begin(), subscribers_[k].end());
  }
  for (int k = 0; k < kTopics; ++k) (void)RunUntilAttached(ring_, subscribers_[k], TopicName(k));
  ring_.net().network().set_hold_filter(
      [this](int from, int to, const pastry::Envelope&) { return Cut(from, to); });
  ring_.net().network().set_delivery_observer(
      [this](const pastry::sim::Delivery& d) { Observe(d); });

  start_ = ring_.net().Now();
  faults_end_ = kBeforeFaults;
  for (const Fault& f : case_.faults) {
    ScheduleFault(f);
    absl::Duration end = f.start;
    if (f.length != absl::InfiniteDuration()) end += f.length;
    if (f.kind == FaultKind::kCutRootLaggedHeal) end += f.gap;
    if (f.kind == FaultKind::kShrink) end += f.gap * case_.nodes;
    faults_end_ = std::max(faults_end_, end);
  }
  for (int step = 0; ring_.net().Now() - start_ < faults_end_ + kAfterFaults; ++step) {
    PublishRound(step);
    ring_.net().RunFor(kPublishEvery);
  }
  ring_.net().RunFor(kQuiet);
  ring_.net().network().set_delivery_observer(nullptr);
  result_.simulated = ring_.net().Now() - start_;
  Check();
  return result_;
}

}  // namespace

SweepCase SweepCase::FromSeed(uint64_t seed) {
  Rng rng(Rng::Derive(seed, 1));
  SweepCase c;
  c.seed = seed;
  c.nodes = 6 + static_cast<int>(rng.Below(25));
  c.publish_at_root = rng.Bernoulli(0.5);
  // The first fault: cuts most often, then kills; a shrink in small rings.
  const uint64_t draw = rng.Below(100);
  FaultKind first = draw < 20   ? FaultKind::kCutRoot
                    : draw < 40 ? FaultKind::kCutGroup
                    : draw < 65 ? FaultKind::kCutPartial
                    : draw < 75 ? FaultKind::kKillRoot
                    : draw < 85 ? FaultKind::kKillReplica
                                : FaultKind::kShrink;
  if (first == FaultKind::kShrink && c.nodes > 12) c.nodes = 6 + static_cast<int>(rng.Below(7));
  c.faults.push_back(DrawFault(rng, first, kBeforeFaults));
  // A second fault during the first or right after it, in three cases out
  // of five.
  if (rng.Bernoulli(0.6)) {
    static constexpr FaultKind kSecond[] = {FaultKind::kKillRoot, FaultKind::kKillReplica,
                                            FaultKind::kCutRoot, FaultKind::kCutPartial,
                                            FaultKind::kCutGroup};
    const FaultKind kind = kSecond[rng.Below(5)];
    absl::Duration window = c.faults[0].length;
    if (window == absl::InfiniteDuration()) window = absl::Seconds(4);
    window += absl::Milliseconds(1500);
    const absl::Duration at = kBeforeFaults + absl::Milliseconds(static_cast<int64_t>(
                                                  rng.Below(absl::ToInt64Milliseconds(window))));
    c.faults.push_back(DrawFault(rng, kind, at));
  }
  return c;
}

SweepCase SweepCase::LaggedHealFromSeed(uint64_t seed) {
  Rng rng(Rng::Derive(seed, 2));
  SweepCase c;
  c.seed = seed;
  c.nodes = 10 + static_cast<int>(rng.Below(21));
  c.publish_at_root = rng.Bernoulli(0.5);
  c.faults.push_back(DrawFault(rng, FaultKind::kCutRootLaggedHeal, kBeforeFaults));
  return c;
}

absl::Duration SweepCase::LongestCut() const {
  std::vector<std::pair<absl::Duration, absl::Duration>> cuts;
  for (const Fault& f : faults) {
    if (f.kind == FaultKind::kCutRoot || f.kind == FaultKind::kCutGroup ||
        f.kind == FaultKind::kCutPartial) {
      cuts.emplace_back(f.start, f.start + f.length);
    } else if (f.kind == FaultKind::kCutRootLaggedHeal) {
      cuts.emplace_back(f.start, f.start + f.length + f.gap);
    }
  }
  std::sort(cuts.begin(), cuts.end());
  absl::Duration longest;
  for (size_t k = 0; k < cuts.size();) {
    absl::Duration end = cuts[k].second;
    size_t j = k + 1;
    while (j < cuts.size() && cuts[j].first <= end) end = std::max(end, cuts[j++].second);
    longest = std::max(longest, end - cuts[k].first);
    k = j;
  }
  return longest;
}

std::string SweepCase::Describe() const {
  std::vector<std::string> parts;
  for (const Fault& f : faults) {
    std::string s = absl::StrCat(KindName(f.kind), "@", absl::FormatDuration(f.start));
    if (f.length != absl::InfiniteDuration()) absl::StrAppend(&s, "+", absl::FormatDuration(f.length));
    if (f.kind == FaultKind::kCutRootLaggedHeal) {
      absl::StrAppend(&s, " lag ", absl::FormatDuration(f.gap));
    } else if (f.kind == FaultKind::kShrink) {
      absl::StrAppend(&s, " to ", f.rank, " nodes, ", absl::FormatDuration(f.gap), " apart");
    } else if (f.kind == FaultKind::kCutGroup || f.kind == FaultKind::kKillReplica) {
      absl::StrAppend(&s, " rank ", f.rank);
    }
    parts.push_back(std::move(s));
  }
  return absl::StrCat("seed ", seed, ": ", nodes, " nodes", publish_at_root ? ", root publishes" : "",
                      "; ", absl::StrJoin(parts, ", "),
                      BeyondLoneRootGrace() ? " (cut beyond lone_root_grace)" : "");
}

SweepResult RunSweepCase(const SweepCase& c, bool debug_log) {
  CaseRun run(c, debug_log);
  return run.Run();
}

}  // namespace peter::pubsub::testing

// The Scribe experiment's measurements: deliveries to members, messages on
// the wire (control traffic, link stress), and the results.
#include <algorithm>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "pastry/core/messages.h"
#include "pubsub/wire/codec.h"
#include "tools/scribe_run.h"

namespace peter::tools::scribe_run {
namespace {

int RatioBin(double ratio) {
  return std::min(ScribeResult::kRatioBins - 1, static_cast<int>(ratio / ScribeResult::kRatioBin));
}

}  // namespace

void Experiment::OnMessage(int m, const pubsub::Delivery& d) {
  Member& member = members_[m];
  Topic& t = topics_[member.topic];
  int index = -1;
  if (!absl::SimpleAtoi(absl::string_view(d.payload.data(), d.payload.size()), &index) ||
      index < 0 || index >= setup_.messages) {
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

namespace {

// Histogram of link stress, index: copies, trimmed after the last non-zero.
std::vector<int64_t> StressHistogram(const absl::flat_hash_map<uint64_t, int64_t>& copies) {
  std::vector<int64_t> h(ScribeResult::kLinkStressBins, 0);
  for (const auto& [link, count] : copies) {
    ++h[std::min<int64_t>(count, ScribeResult::kLinkStressBins - 1)];
  }
  while (!h.empty() && h.back() == 0) h.pop_back();
  return h;
}

}  // namespace

void Experiment::TallyLinks() {
  if (!topology_.ForEachLink(0, 0, [](uint64_t) {})) return;
  int64_t copies = 0, max = 0, per_message_max = 0;
  for (const auto& [link, count] : link_copies_) {
    copies += count;
    max = std::max(max, count);
  }
  for (const auto& [key, count] : message_link_copies_)
    per_message_max = std::max(per_message_max, count);
  r_.links_used = static_cast<int64_t>(link_copies_.size());
  r_.link_stress_mean =
      link_copies_.empty() ? 0.0 : static_cast<double>(copies) / link_copies_.size();
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
        if (member.got[index]) {
          ++r_.delivered;
        } else if (setup_.acked_publish &&
                   !(*confirmed_)[static_cast<size_t>(member.topic) * setup_.messages + index]) {
          ++r_.missing_unconfirmed;
        }
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
  if (setup_.acked_publish) {
    int64_t confirmed = 0;
    for (char c : *confirmed_) confirmed += c;
    r_.publishes_unconfirmed = publishes_ - confirmed;
  }
  TallyDelay();
  TallyLinks();
}

}  // namespace peter::tools::scribe_run

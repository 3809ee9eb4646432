// Cluster-wide PSUBSCRIBE, built only on Backend topics (docs/resp.md):
//  - every gateway subscribes to kPatternsTopic, where each node announces
//    the full set of patterns its clients hold (soft state: re-announced
//    every refresh period, forgotten when not refreshed within its ttl);
//  - each pattern P has its own topic PatternTopic(P), joined by the nodes
//    whose clients hold P;
//  - a node taking PUBLISH ch msg publishes on ch and, for every pattern P it
//    knows that matches ch, (ch, msg) on PatternTopic(P): 1 + matching
//    patterns publishes, whatever the size of the cluster;
//  - a node that joins kPatternsTopic asks for fresh announcements
//    (kAnnounceQuery), so it need not wait a refresh period.
// This file holds the pure parts: topic names, encodings and the directory.
#ifndef PETER_PUBSUB_RESP_PATTERN_DIRECTORY_H_
#define PETER_PUBSUB_RESP_PATTERN_DIRECTORY_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace peter::resp {

// Every topic of the gateway's own starts with this; clients may not use
// channels with this prefix.
inline constexpr std::string_view kReservedPrefix = "__peter.";
inline constexpr std::string_view kPatternsTopic = "__peter.patterns";
// Published on kPatternsTopic by a node that just joined it: every node
// holding patterns re-announces them at once.
inline constexpr std::string_view kAnnounceQuery = "PQ1";
inline constexpr std::string_view kPatternTopicPrefix = "__peter.p:";
inline constexpr std::string_view kShardTopicPrefix = "__peter.s:";

std::string PatternTopic(std::string_view pattern);
std::string ShardTopic(std::string_view channel);

// One node's announcement: its whole current pattern set.
struct Announcement {
  uint64_t node = 0;      // random per gateway instance
  uint64_t sequence = 0;  // grows with each announcement of that node
  absl::Duration ttl;     // believe it this long without a refresh
  std::vector<std::string> patterns;
};
std::string EncodeAnnouncement(const Announcement& a);
absl::StatusOr<Announcement> DecodeAnnouncement(std::string_view payload);

// A message on a pattern topic: the channel it was published on, and the
// payload.
std::string EncodePatternMessage(std::string_view channel, std::string_view payload);
// The views point into `message`.
absl::StatusOr<std::pair<std::string_view, std::string_view>> DecodePatternMessage(
    std::string_view message);

// The patterns believed held somewhere in the cluster. Not thread-safe.
class PatternDirectory {
 public:
  // Replaces `a.node`'s set, unless an announcement with a higher sequence
  // from it was already taken. False if ignored: stale, or (over_limit())
  // the directory would then hold more than its limit of entries (nodes
  // plus the patterns each announced).
  bool Apply(const Announcement& a, absl::Time now);
  void set_limit(size_t max_entries) { limit_ = max_entries; }
  // The last Apply() was refused for the limit.
  bool over_limit() const { return over_limit_; }
  // An announcement is believed at most this long without a refresh,
  // whatever ttl it states (up to 24 h on the wire): a hostile or
  // misconfigured node must not hold entries for a day.
  void set_max_ttl(absl::Duration max_ttl) { max_ttl_ = max_ttl; }
  // The last Apply() took the announcement with its ttl cut to max_ttl.
  bool ttl_clipped() const { return ttl_clipped_; }
  // Forgets nodes not refreshed in time.
  void Expire(absl::Time now);
  // Patterns known from any node, each once, sorted.
  std::vector<std::string> Patterns() const;
  // Patterns matching `channel` (Redis glob), each once.
  std::vector<std::string> Matching(std::string_view channel) const;
  size_t size() const { return holders_.size(); }

 private:
  struct NodeEntry {
    uint64_t sequence = 0;
    absl::Time expiry;
    std::vector<std::string> patterns;
  };
  void Drop(uint64_t node);

  std::map<uint64_t, NodeEntry> nodes_;
  std::map<std::string, int, std::less<>> holders_;  // pattern -> node count
  size_t entries_ = 0;  // nodes_.size() + their patterns
  size_t limit_ = SIZE_MAX;
  bool over_limit_ = false;
  absl::Duration max_ttl_ = absl::InfiniteDuration();
  bool ttl_clipped_ = false;
};

}  // namespace peter::resp

#endif  // PETER_PUBSUB_RESP_PATTERN_DIRECTORY_H_

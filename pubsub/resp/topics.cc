// The node's backend subscriptions (one per channel, shard channel or
// pattern with local clients) and the cluster pattern directory.
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "pubsub/resp/client.h"
#include "pubsub/resp/glob.h"
#include "pubsub/resp/server.h"

namespace peter::resp {

std::string Server::BackendTopic(Kind kind, std::string_view name) const {
  switch (kind) {
    case Kind::kChannel: return std::string(name);
    case Kind::kShard: return ShardTopic(name);
    case Kind::kPattern: return PatternTopic(name);
  }
  return std::string(name);
}

std::shared_ptr<Topic> Server::AcquireTopic(Kind kind, const std::string& name) {
  std::string key = BackendTopic(kind, name);
  if (auto it = topics_.find(key); it != topics_.end()) return it->second;
  auto topic = std::make_shared<Topic>();
  topic->kind = kind;
  topic->name = name;
  std::weak_ptr<Topic> weak = topic;
  // Bounded: a loop slower than the backend's deliveries drops (and counts)
  // messages rather than queue them without limit. Runs on the backend's
  // thread, never after the subscription is destroyed (Backend contract),
  // so `this` is alive.
  auto on_message = [this, poster = poster_, weak](std::string_view, std::string_view payload) {
    if (!poster->PostMessage(options_.max_queued_message_bytes, weak, payload)) {
      counters_.messages_dropped.AddFromAnyThread();  // off the loop
    }
  };
  auto on_active = [this, poster = poster_, weak](bool active) {
    poster->Post([this, weak, active] { OnTopicActive(weak, active); });
  };
  auto subscription = backend_.Subscribe(key, std::move(on_message), std::move(on_active));
  if (!subscription.ok()) {
    counters_.backend_errors++;
    return nullptr;
  }
  topic->subscription = std::move(*subscription);
  auto [entry, inserted] = topics_.insert_or_assign(key, topic);
  topic_index_[entry->first] = topic.get();
  if (kind == Kind::kPattern) {
    if (inserted) ++pattern_topics_;
    ScheduleAnnounce();
  }
  return topic;
}

void Server::MaybeDropTopic(const std::string& key) {
  auto it = topics_.find(key);
  if (it == topics_.end()) return;
  if (!it->second->members.empty() || !it->second->waiters.empty()) return;
  bool pattern = it->second->kind == Kind::kPattern;
  topic_index_.erase(it->first);
  topics_.erase(it);  // destroys the backend subscription
  if (pattern) {
    --pattern_topics_;
    ScheduleAnnounce();
  }
}

void Server::OnTopicActive(std::weak_ptr<Topic> weak, bool active) {
  auto topic = weak.lock();
  if (!topic) return;
  topic->active = active;
  const bool ready = topic->ready();
  if (ready == topic->counted_ready) return;
  topic->counted_ready = ready;
  // A copy: completing a SUBSCRIBE takes its client out of the waiters.
  std::set<uint64_t> waiters = topic->waiters;
  for (uint64_t id : waiters) {
    auto client = FindClient(id);
    if (!client || !client->pending_subscribe_) continue;
    if (!ready) {
      ++client->pending_subscribe_->unready;
      continue;
    }
    --client->pending_subscribe_->unready;
    TryCompleteSubscribe(*client);
  }
}

void Server::OnTopicMessage(const std::weak_ptr<Topic>& weak, std::string_view payload) {
  auto topic = weak.lock();
  if (!topic) return;
  if (topic->kind != Kind::kPattern) return Deliver(*topic, topic->name, payload);
  auto decoded = DecodePatternMessage(payload);
  if (!decoded.ok()) {
    counters_.bad_announcements++;
    return;
  }
  Deliver(*topic, decoded->first, decoded->second);
}

void Server::Deliver(const Topic& topic, std::string_view channel, std::string_view payload) {
  // A snapshot: a slow client may be dropped below. Inline for a few
  // members (no allocation), else one allocation per message rather than
  // one per member.
  const absl::InlinedVector<uint64_t, 16> members(topic.members.begin(), topic.members.end());
  const std::string_view pattern = topic.name;
  const std::string_view verb = topic.kind == Kind::kChannel ? "message"
                                : topic.kind == Kind::kShard ? "smessage"
                                                             : "pmessage";
  const std::string_view* pattern_or_null = topic.kind == Kind::kPattern ? &pattern : nullptr;
  // With several members, the push is encoded once per protocol into
  // message_frames_ and copied to each; a lone member's straight into its
  // output. (Should a client's Flush ever re-enter Deliver, the inner one
  // encodes per client and leaves the frames alone.)
  const bool share = members.size() > 1 && !frames_in_use_;
  std::array<bool, 2> encoded = {false, false};
  frames_in_use_ = frames_in_use_ || share;
  for (uint64_t id : members) {
    auto client = FindClient(id);
    if (!client || client->closed()) continue;
    ReplyWriter w = client->push_writer();
    counters_.messages_delivered++;
    if (!share) {
      w.Message(verb, pattern_or_null, channel, payload);
      counters_.messages_encoded++;
    } else {
      const size_t p = w.protocol() >= 3 ? 1 : 0;
      std::string& frame = message_frames_[p];
      if (!encoded[p]) {
        frame.clear();
        ReplyWriter(&frame, w.protocol()).Message(verb, pattern_or_null, channel, payload);
        encoded[p] = true;
        counters_.messages_encoded++;
      }
      w.Encoded(frame);
    }
    client->Flush();
  }
  if (share) {
    frames_in_use_ = false;
    // A large message's frame is not kept for the small ones after it.
    constexpr size_t kKeptFrameCapacity = 64 * 1024;
    for (std::string& frame : message_frames_) {
      if (frame.capacity() > kKeptFrameCapacity) std::string().swap(frame);
    }
  }
}

void Server::StartPatternDirectory() {
  auto on_message = [this, poster = poster_](std::string_view, std::string_view payload) {
    poster->Post([this, data = std::string(payload)] { OnAnnouncement(data); });
  };
  // Once on the tree, ask every node to re-announce now: a node joining the
  // cluster (or restarting) learns the patterns without waiting a refresh.
  auto on_active = [this, poster = poster_](bool active) {
    if (!active) return;
    poster->Post([this] {
      backend_.Publish(std::string(kPatternsTopic), std::string(kAnnounceQuery),
                       [](absl::StatusOr<uint64_t>) {});
    });
  };
  auto subscription = backend_.Subscribe(std::string(kPatternsTopic), std::move(on_message),
                                         std::move(on_active));
  if (!subscription.ok()) {
    counters_.backend_errors++;
    return;
  }
  patterns_subscription_ = std::move(*subscription);
}

void Server::OnAnnouncement(std::string_view payload) {
  if (payload == kAnnounceQuery) {
    if (!announced_empty_) ScheduleAnnounce();
    return;
  }
  auto announcement = DecodeAnnouncement(payload);
  if (!announcement.ok()) {
    counters_.bad_announcements++;
    return;
  }
  if (!directory_.Apply(*announcement, absl::Now()) && directory_.over_limit()) {
    counters_.pattern_directory_overflows++;
    WarnBound(absl::StrCat("ignored a pattern announcement of ", announcement->patterns.size(),
                           " patterns: the directory would pass max_cluster_patterns (",
                           options_.max_cluster_patterns, ")"));
  }
  if (directory_.ttl_clipped()) {
    counters_.pattern_ttls_clipped++;
    WarnBound(absl::StrCat("a pattern announcement states a ttl of ",
                           absl::FormatDuration(announcement->ttl), ": believed for ",
                           absl::FormatDuration(options_.max_pattern_ttl),
                           " (max_pattern_ttl)"));
  }
  counters_.known_patterns = directory_.size();
}

void Server::ScheduleAnnounce() {
  if (announce_scheduled_) return;
  announce_scheduled_ = true;
  asio::post(io_, [this] {
    announce_scheduled_ = false;
    if (!stopping_) Announce();
  });
}

void Server::Announce() {
  last_announce_ = absl::Now();
  Announcement a;
  for (const auto& [key, topic] : topics_) {
    if (topic->kind == Kind::kPattern) a.patterns.push_back(topic->name);
  }
  if (a.patterns.empty() && announced_empty_) return;
  announced_empty_ = a.patterns.empty();
  a.node = node_nonce_;
  a.sequence = ++announce_sequence_;
  a.ttl = options_.pattern_ttl;
  std::string payload = EncodeAnnouncement(a);
  auto done = [this, poster = poster_,
               names = std::move(a.patterns)](absl::StatusOr<uint64_t> seq) {
    poster->Post([this, names, status = seq.status()] {
      if (!status.ok()) {
        counters_.backend_errors++;
        return;
      }
      for (const std::string& name : names) {
        auto it = topics_.find(PatternTopic(name));
        if (it == topics_.end() || it->second->announced) continue;
        it->second->announced = true;
        OnTopicActive(it->second, it->second->active);
      }
    });
  };
  backend_.Publish(std::string(kPatternsTopic), std::move(payload), std::move(done));
}

std::vector<const Topic*> Server::LocalPatternsMatching(std::string_view channel) const {
  std::vector<const Topic*> out;
  if (pattern_topics_ == 0) return out;
  for (auto it = topics_.lower_bound(kPatternTopicPrefix);
       it != topics_.end() && it->first.starts_with(kPatternTopicPrefix); ++it) {
    const Topic& topic = *it->second;
    if (topic.kind == Kind::kPattern && GlobMatch(topic.name, channel)) out.push_back(&topic);
  }
  return out;
}

std::vector<std::string> Server::MatchingPatterns(std::string_view channel) const {
  if (NoPatternsKnown()) return {};  // nothing to walk or build
  std::vector<std::string> matching = directory_.Matching(channel);
  // This node's own patterns too: its announcement may not have come back.
  const std::vector<const Topic*> local = LocalPatternsMatching(channel);
  if (local.empty()) return matching;
  std::set<std::string> seen(matching.begin(), matching.end());
  for (const Topic* topic : local) {
    if (seen.insert(topic->name).second) matching.push_back(topic->name);
  }
  return matching;
}

}  // namespace peter::resp

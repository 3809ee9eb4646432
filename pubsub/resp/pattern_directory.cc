#include "pubsub/resp/pattern_directory.h"

#include <algorithm>
#include <charconv>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "pubsub/resp/glob.h"

namespace peter::resp {
namespace {

// Length-prefixed fields: "<decimal length>:<bytes>".
void AppendField(std::string* out, std::string_view field) {
  absl::StrAppend(out, field.size(), ":");
  out->append(field);
}

bool ReadField(std::string_view* in, std::string_view* field) {
  size_t colon = in->find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 10) return false;
  size_t len = 0;
  auto [end, ec] = std::from_chars(in->data(), in->data() + colon, len);
  if (ec != std::errc() || end != in->data() + colon || len > in->size() - colon - 1) return false;
  *field = in->substr(colon + 1, len);
  in->remove_prefix(colon + 1 + len);
  return true;
}

bool ReadNumber(std::string_view* in, uint64_t* value) {
  std::string_view field;
  if (!ReadField(in, &field)) return false;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), *value);
  return ec == std::errc() && end == field.data() + field.size();
}

constexpr std::string_view kAnnouncementTag = "PA1";

}  // namespace

std::string PatternTopic(std::string_view pattern) {
  return std::string(kPatternTopicPrefix).append(pattern);
}

std::string ShardTopic(std::string_view channel) {
  return std::string(kShardTopicPrefix).append(channel);
}

std::string EncodeAnnouncement(const Announcement& a) {
  std::string out(kAnnouncementTag);
  AppendField(&out, absl::StrCat(a.node));
  AppendField(&out, absl::StrCat(a.sequence));
  AppendField(&out, absl::StrCat(absl::ToInt64Milliseconds(a.ttl)));
  for (const auto& p : a.patterns) AppendField(&out, p);
  return out;
}

absl::StatusOr<Announcement> DecodeAnnouncement(std::string_view payload) {
  if (payload.substr(0, kAnnouncementTag.size()) != kAnnouncementTag) {
    return absl::InvalidArgumentError("not a pattern announcement");
  }
  payload.remove_prefix(kAnnouncementTag.size());
  Announcement a;
  uint64_t ttl_ms = 0;
  if (!ReadNumber(&payload, &a.node) || !ReadNumber(&payload, &a.sequence) ||
      !ReadNumber(&payload, &ttl_ms) || ttl_ms > 24ull * 3600 * 1000) {
    return absl::InvalidArgumentError("bad pattern announcement header");
  }
  a.ttl = absl::Milliseconds(ttl_ms);
  while (!payload.empty()) {
    std::string_view pattern;
    if (!ReadField(&payload, &pattern)) return absl::InvalidArgumentError("bad pattern field");
    a.patterns.emplace_back(pattern);
  }
  return a;
}

std::string EncodePatternMessage(std::string_view channel, std::string_view payload) {
  std::string out;
  out.reserve(channel.size() + payload.size() + 12);
  AppendField(&out, channel);
  out.append(payload);
  return out;
}

absl::StatusOr<std::pair<std::string_view, std::string_view>> DecodePatternMessage(
    std::string_view message) {
  std::string_view channel;
  if (!ReadField(&message, &channel)) return absl::InvalidArgumentError("bad pattern message");
  return std::make_pair(channel, message);
}

bool PatternDirectory::Apply(const Announcement& a, absl::Time now) {
  over_limit_ = false;
  ttl_clipped_ = false;
  auto it = nodes_.find(a.node);
  if (it != nodes_.end() && it->second.sequence > a.sequence) return false;
  const size_t replaced = it == nodes_.end() ? 0 : 1 + it->second.patterns.size();
  if (entries_ - replaced + 1 + a.patterns.size() > limit_) {
    over_limit_ = true;
    return false;
  }
  Drop(a.node);
  entries_ += 1 + a.patterns.size();
  NodeEntry& entry = nodes_[a.node];
  entry.sequence = a.sequence;
  ttl_clipped_ = a.ttl > max_ttl_;
  entry.expiry = now + std::min(a.ttl, max_ttl_);
  entry.patterns = a.patterns;
  for (const auto& p : entry.patterns) ++holders_[p];
  return true;
}

void PatternDirectory::Drop(uint64_t node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return;
  for (const auto& p : it->second.patterns) {
    auto h = holders_.find(p);
    if (h != holders_.end() && --h->second <= 0) holders_.erase(h);
  }
  entries_ -= 1 + it->second.patterns.size();
  nodes_.erase(it);
}

void PatternDirectory::Expire(absl::Time now) {
  std::vector<uint64_t> dead;
  for (const auto& [node, entry] : nodes_) {
    if (entry.expiry <= now) dead.push_back(node);
  }
  for (uint64_t node : dead) Drop(node);
}

std::vector<std::string> PatternDirectory::Patterns() const {
  std::vector<std::string> out;
  for (const auto& [p, n] : holders_) out.push_back(p);
  return out;
}

std::vector<std::string> PatternDirectory::Matching(std::string_view channel) const {
  std::vector<std::string> out;
  for (const auto& [p, n] : holders_) {
    if (GlobMatch(p, channel)) out.push_back(p);
  }
  return out;
}

}  // namespace peter::resp

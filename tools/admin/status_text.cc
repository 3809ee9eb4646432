#include "tools/admin/status_text.h"

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "httplib.h"

namespace peter::tools::admin {
namespace {

using nlohmann::json;

// A Pastry routing-table row holds one entry per digit value but its own:
// 2^b - 1 with b = 4.
constexpr int kRowCapacity = 15;
// Topics listed one per line; the rest are counted.
constexpr size_t kMaxTopicsShown = 20;

uint64_t Count(const json& object, const char* key) {
  if (!object.is_object()) return 0;
  auto it = object.find(key);
  return it != object.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

std::string Text(const json& object, const char* key, const char* absent = "?") {
  if (!object.is_object()) return absent;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : absent;
}

std::string Bytes(uint64_t n) {
  if (n < 1024) return absl::StrCat(n, " B");
  if (n < 1024 * 1024) return absl::StrFormat("%.1f KiB", n / 1024.0);
  if (n < uint64_t{1} << 30) return absl::StrFormat("%.1f MiB", n / (1024.0 * 1024));
  return absl::StrFormat("%.1f GiB", n / (1024.0 * 1024 * 1024));
}

std::string Uptime(int64_t s) {
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, s % 86400 / 3600);
}

void Identity(const json& s, std::string& out) {
  const bool active = s.value("active", false);
  const int64_t uptime = s.contains("uptime_s") && s["uptime_s"].is_number_integer()
                             ? s["uptime_s"].get<int64_t>()
                             : 0;
  absl::StrAppend(&out, "node      ", Text(s, "id"), "  ", active ? "active" : "NOT ACTIVE",
                  "  up ", Uptime(uptime), "\n");
  absl::StrAppend(&out, "listen    ", Text(s, "listen"), "\n");
}

void LeafSet(const json& s, std::string& out) {
  if (!s.contains("leaf_set") || !s["leaf_set"].is_array()) return;
  const json& leaves = s["leaf_set"];
  absl::StrAppend(&out, "leaf set  ", leaves.size(), leaves.size() == 1 ? " node" : " nodes",
                  leaves.empty() ? " (alone in the ring)" : "", "\n");
  for (const json& leaf : leaves) {
    absl::StrAppend(&out, "          ", Text(leaf, "id"), "  ", Text(leaf, "addr"), "\n");
  }
}

void RoutingTable(const json& s, std::string& out) {
  if (!s.contains("routing_table") || !s["routing_table"].is_array()) return;
  std::map<int, int> per_row;
  for (const json& entry : s["routing_table"]) {
    if (entry.is_object() && entry.contains("row") && entry["row"].is_number_integer()) {
      ++per_row[entry["row"].get<int>()];
    }
  }
  const size_t entries = s["routing_table"].size();
  absl::StrAppend(&out, "routing   ", entries, entries == 1 ? " entry" : " entries");
  if (per_row.empty()) {
    absl::StrAppend(&out, "\n");
    return;
  }
  absl::StrAppend(&out, " in ", per_row.size(), per_row.size() == 1 ? " row" : " rows", ":");
  for (const auto& [row, n] : per_row) {
    absl::StrAppend(&out, " r", row, " ", n, "/", kRowCapacity);
  }
  absl::StrAppend(&out, "\n");
}

void PubSub(const json& s, std::string& out) {
  if (!s.contains("pubsub") || !s["pubsub"].is_object()) return;
  const json& p = s["pubsub"];
  absl::StrAppend(&out, "pubsub    ", Count(p, "topics"), " topics (root of ", Count(p, "roots"),
                  "), ", Count(p, "children"), " children, ", Count(p, "subscriptions"),
                  " local subscriptions\n");
  absl::StrAppend(&out, "          published ", Count(p, "published"), "  forwarded ",
                  Count(p, "forwarded"), "  delivered ", Count(p, "delivered"),
                  "  duplicates ", Count(p, "duplicates"), "\n");
  absl::StrAppend(&out, "          gaps repaired ", Count(p, "gaps_repaired"), "  skipped ",
                  Count(p, "gaps_skipped"), "  slow-consumer drops ",
                  Count(p, "slow_consumer_drops"), "  malformed ", Count(p, "malformed"),
                  "\n");
  absl::StrAppend(&out, "          sent in bundles ", Count(p, "bundled_messages"), " in ",
                  Count(p, "bundles_sent"), "; in lists: replicates ",
                  Count(p, "replicates_listed"), " in ", Count(p, "replicate_lists_sent"),
                  ", replica acks ", Count(p, "replica_acks_listed"), " in ",
                  Count(p, "replica_ack_lists_sent"), ", publishes/data/acks ",
                  Count(p, "messages_listed"), " in ", Count(p, "message_lists_sent"),
                  " (in runs ", Count(p, "messages_in_runs"), " in ",
                  Count(p, "message_runs_sent"), ")\n");
  if (!p.contains("topic_list") || !p["topic_list"].is_array()) return;
  const json& topics = p["topic_list"];
  size_t shown = 0;
  for (const json& t : topics) {
    if (shown++ == kMaxTopicsShown) {
      absl::StrAppend(&out, "          ... and ", topics.size() - kMaxTopicsShown,
                      " more topics (--json lists them all)\n");
      break;
    }
    const std::string name = Text(t, "name", "");
    const std::string id = Text(t, "id");
    std::string place;
    if (t.is_object() && t.value("root", false)) {
      place = "root";
    } else if (t.is_object() && t.value("attached", false)) {
      place = absl::StrCat("child of ", Text(t, "parent").substr(0, 8));
    } else {
      place = "DETACHED";
    }
    absl::StrAppend(&out, "  topic   ", name.empty() ? id.substr(0, 8) + "..." : name, "  ",
                    place, ", ", Count(t, "children"), " children, seq ",
                    Count(t, "last_seq"), ", ", Count(t, "local_subscriptions"),
                    " local subscriptions\n");
  }
}

void Transport(const json& s, std::string& out) {
  if (!s.contains("transport") || !s["transport"].is_object()) return;
  const json& t = s["transport"];
  absl::StrAppend(&out, "transport ", Count(t, "connections_open"), " connections open (opened ",
                  Count(t, "connections_opened"), ", accepted ", Count(t, "connections_accepted"),
                  ", closed ", Count(t, "connections_closed"), ", connect failures ",
                  Count(t, "connect_failures"), ", rejected ", Count(t, "connections_rejected"),
                  ")\n");
  absl::StrAppend(&out, "          sent ", Count(t, "frames_sent"), " frames (",
                  Bytes(Count(t, "bytes_sent")), ")  received ", Count(t, "frames_received"),
                  " frames (", Bytes(Count(t, "bytes_received")), ")  queued ",
                  Bytes(Count(t, "send_queue_bytes")), "\n");
  if (t.contains("dropped") && t["dropped"].is_object()) {
    const json& d = t["dropped"];
    absl::StrAppend(&out, "          dropped: decode ", Count(d, "decode"), ", oversize ",
                    Count(d, "oversize"), ", unknown type ", Count(d, "unknown_type"),
                    ", old version ", Count(d, "old_version"), ", queue full ",
                    Count(d, "queue_overflow"), ", all queues full ",
                    Count(d, "global_queue_overflow"), ", partial frames over the limit ",
                    Count(d, "receive_overflow"), ", peer backing off ", Count(d, "backoff"),
                    "\n");
  }
  // Only when a bound was reached or a peer refused: most clusters never see one.
  if (s.contains("overlay") && s["overlay"].is_object() && s["overlay"].contains("dropped") &&
      s["overlay"]["dropped"].is_object()) {
    const json& d = s["overlay"]["dropped"];
    const uint64_t any = Count(d, "join_buffer_overflow") + Count(d, "pending_ack_overflow") +
                         Count(d, "hops_in_flight_overflow") +
                         Count(d, "candidate_probe_overflow") + Count(d, "dead_node_overflow");
    if (any > 0) {
      absl::StrAppend(&out, "          overlay bounds reached: join buffer ",
                      Count(d, "join_buffer_overflow"), ", pending acks (rerouted early) ",
                      Count(d, "pending_ack_overflow"),
                      ", hops in flight to one peer (rerouted early) ",
                      Count(d, "hops_in_flight_overflow"), ", tracked peers ",
                      Count(d, "candidate_probe_overflow"), ", dead nodes ",
                      Count(d, "dead_node_overflow"), "\n");
    }
  }
  if (t.contains("auth_failures") && t["auth_failures"].is_object()) {
    std::string refused;
    for (const auto& [reason, count] : t["auth_failures"].items()) {
      if (count.is_number_unsigned() && count.get<uint64_t>() > 0) {
        absl::StrAppend(&refused, refused.empty() ? "" : ", ", reason, " ", count.get<uint64_t>());
      }
    }
    if (!refused.empty()) absl::StrAppend(&out, "          refused peers: ", refused, "\n");
  }
}

}  // namespace

absl::StatusOr<json> FetchStatus(const std::string& host, int port, absl::Duration timeout) {
  httplib::Client client(host, port);
  const auto us = absl::ToInt64Microseconds(timeout);
  client.set_connection_timeout(us / 1000000, us % 1000000);
  client.set_read_timeout(us / 1000000, us % 1000000);
  const std::string where = host.find(':') != std::string::npos
                                ? absl::StrCat("[", host, "]:", port)
                                : absl::StrCat(host, ":", port);
  httplib::Result result = client.Get("/status");
  if (!result) {
    return absl::UnavailableError(absl::StrCat("cannot reach the admin endpoint at ", where,
                                               ": ", httplib::to_string(result.error())));
  }
  if (result->status != 200) {
    return absl::UnavailableError(
        absl::StrCat("GET http://", where, "/status answered ", result->status));
  }
  json status = json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (status.is_discarded() || !status.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("GET http://", where, "/status did not answer a JSON object"));
  }
  return status;
}

std::string RenderStatus(const json& status) {
  std::string out;
  Identity(status, out);
  LeafSet(status, out);
  RoutingTable(status, out);
  PubSub(status, out);
  Transport(status, out);
  return out;
}

}  // namespace peter::tools::admin

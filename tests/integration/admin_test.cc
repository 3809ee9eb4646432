// Unit tests of the admin endpoint's pieces (tools/admin/): JSON and
// Prometheus rendering from hand-made snapshots, `peter node`'s flag checks,
// and the HTTP server over a fake node.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pubsub/resp/gateway.h"
#include "tests/pubsub/resp/fake_cluster.h"
#include "tests/pubsub/resp/test_client.h"
#include "tools/admin/admin_server.h"
#include "tools/admin/metrics_text.h"
#include "tools/admin/node_config.h"
#include "tools/admin/status_json.h"

namespace peter::tools::admin {
namespace {

using nlohmann::json;
using pastry::Endpoint;
using pastry::NodeHandle;
using pastry::NodeId;
using pastry::net::NodeSnapshot;

NodeHandle Handle(uint64_t hi, uint32_t ip, uint16_t port) {
  return NodeHandle{NodeId(hi, 7), Endpoint::FromIpv4(ip, port)};
}

NodeSnapshot SampleSnapshot() {
  NodeSnapshot s;
  s.self = Handle(0x1000000000000000, 0x7f000001, 4000);
  s.active = true;
  s.leaf_set = {Handle(0x0f00000000000000, 0x7f000001, 4001),
                Handle(0x1100000000000000, 0x0a000002, 4002)};
  s.routing_table.push_back({0, 2, Handle(0x2000000000000000, 0x7f000001, 4003), 1500});
  s.routing_table.push_back({1, 5, Handle(0x1500000000000000, 0x7f000001, 4004), -1});
  s.uptime = absl::Seconds(42) + absl::Milliseconds(700);
  s.stats.messages_sent[0] = 11;
  s.stats.delivered_hops[0] = 1;
  s.stats.delivered_hops[2] = 3;
  s.stats.delivered_hops[7] = 2;
  s.stats.probes_sent = 99;
  s.transport.bytes_sent[3] = 1234;
  s.transport.connections_open = 5;
  s.transport.auth_failures[static_cast<size_t>(pastry::net::AuthFailure::kKey)] = 3;
  return s;
}

TEST(StatusJsonTest, HasEveryDocumentedField) {
  json j = StatusJson(SampleSnapshot());
  EXPECT_EQ(j["id"], "10000000000000000000000000000007");
  EXPECT_EQ(j["listen"], "127.0.0.1:4000");
  EXPECT_EQ(j["active"], true);
  EXPECT_EQ(j["uptime_s"], 42);
  ASSERT_EQ(j["leaf_set"].size(), 2u);
  EXPECT_EQ(j["leaf_set"][0]["id"], "0f000000000000000000000000000007");
  EXPECT_EQ(j["leaf_set"][1]["addr"], "10.0.0.2:4002");
  ASSERT_EQ(j["routing_table"].size(), 2u);
  EXPECT_EQ(j["routing_table"][0]["row"], 0);
  EXPECT_EQ(j["routing_table"][0]["col"], 2);
  EXPECT_EQ(j["routing_table"][0]["addr"], "127.0.0.1:4003");
  EXPECT_DOUBLE_EQ(j["routing_table"][0]["rtt_ms"].get<double>(), 1.5);
  EXPECT_TRUE(j["routing_table"][1]["rtt_ms"].is_null());
}

TEST(StatusJsonTest, RouteAnswer) {
  pastry::Node::LookupResult r;
  r.root = Handle(0x2000000000000000, 0x7f000001, 4003);
  r.hops = 1;
  r.path = {NodeId(0x1000000000000000, 7), r.root.id};
  json j = RouteJson(NodeId(0x2100000000000000, 0), r);
  EXPECT_EQ(j["key"], "21000000000000000000000000000000");
  EXPECT_EQ(j["root"]["id"], "20000000000000000000000000000007");
  EXPECT_EQ(j["root"]["addr"], "127.0.0.1:4003");
  EXPECT_EQ(j["hops"], 1);
  EXPECT_EQ(j["path"].size(), 2u);
  EXPECT_EQ(ErrorJson("x")["error"], "x");
}

// Parses exposition text into {series -> value}, checking that every sample
// belongs to a family announced by # HELP and # TYPE just before.
std::map<std::string, double> ParseExposition(const std::string& text) {
  std::map<std::string, double> samples;
  std::istringstream in(text);
  std::string line, help_family, type_family, type;
  static const std::regex kSample(
      R"(^([a-z_]+)(\{[a-z_]+="[^"]*"\})? (-?[0-9.e+]+)$)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (line.rfind("# HELP ", 0) == 0) {
      help_family = line.substr(7, line.find(' ', 7) - 7);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      t >> type_family >> type;
      EXPECT_EQ(type_family, help_family) << line;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
    } else if (std::regex_match(line, m, kSample)) {
      std::string name = m[1];
      EXPECT_EQ(name.rfind("peter_", 0), 0u) << line;
      EXPECT_EQ(name.rfind(type_family, 0), 0u) << "sample outside its family: " << line;
      if (type == "counter" && name == type_family) {
        EXPECT_TRUE(name.size() > 6 && name.substr(name.size() - 6) == "_total") << line;
      }
      samples[name + std::string(m[2])] = std::stod(m[3]);
    } else {
      ADD_FAILURE() << "not exposition format: \"" << line << "\"";
    }
  }
  return samples;
}

TEST(MetricsTextTest, IsValidExpositionWithTheCounters) {
  std::map<std::string, double> m = ParseExposition(MetricsText(SampleSnapshot()));
  EXPECT_EQ(m["peter_messages_sent_total{type=\"route\"}"], 11);
  EXPECT_EQ(m["peter_bytes_sent_total{type=\"probe\"}"], 1234);
  EXPECT_EQ(m["peter_probes_sent_total"], 99);
  EXPECT_EQ(m["peter_connections_open"], 5);
  EXPECT_EQ(m["peter_active"], 1);
  EXPECT_EQ(m["peter_routing_table_entries"], 2);
  EXPECT_TRUE(m.contains("peter_frames_dropped_total{reason=\"oversize\"}"));
  EXPECT_TRUE(m.contains("peter_send_queue_overflows_total"));
  EXPECT_TRUE(m.contains("peter_reroutes_total"));
  EXPECT_TRUE(m.contains("peter_joins_completed_total"));
  EXPECT_TRUE(m.contains("peter_failures_detected_total"));
  EXPECT_NEAR(m["peter_uptime_seconds"], 42.7, 1e-9);
  EXPECT_EQ(m["peter_auth_failures_total{reason=\"key\"}"], 3);
  EXPECT_EQ(m["peter_auth_failures_total{reason=\"tls\"}"], 0);
  EXPECT_EQ(m.count("peter_auth_failures_total{reason=\"sender_id\"}"), 1u);
}

// Every field of PubSubCounters, each set to its own value, is in /metrics
// as peter_pubsub_NAME_total and in /status as pubsub.NAME.
TEST(MetricsTextTest, EveryPubSubCounterIsExported) {
  PubSubStats p;
  uint64_t value = 100;
  for (const PubSubCounterField& f : kPubSubCounterFields) p.counters.*f.value = value++;
  const std::map<std::string, double> m = ParseExposition(MetricsText(SampleSnapshot(), p));
  const json j = StatusJson(SampleSnapshot(), p);
  value = 100;
  for (const PubSubCounterField& f : kPubSubCounterFields) {
    const std::string metric = absl::StrCat("peter_pubsub_", f.name, "_total");
    ASSERT_TRUE(m.contains(metric)) << metric;
    EXPECT_EQ(m.at(metric), static_cast<double>(value)) << metric;
    ASSERT_TRUE(j["pubsub"].contains(f.name)) << f.name;
    EXPECT_EQ(j["pubsub"][f.name], value) << f.name;
    ++value;
  }
}

// The counters of resource bounds reached (docs/limits.md) are on /metrics,
// and the transport's and pub/sub's on /status too, beside the others.
TEST(MetricsTextTest, BoundsReachedAreExported) {
  NodeSnapshot s = SampleSnapshot();
  s.transport.global_queue_overflows = 4;
  s.transport.receive_overflows = 5;
  s.transport.connections_evicted = 13;
  s.transport.outgoing_refused = 14;
  s.transport.pending_evicted = 21;
  s.transport.pending_timeouts = 22;
  s.stats.dead_node_overflows = 6;
  s.stats.candidate_probe_overflows = 7;
  s.stats.join_buffer_overflows = 9;
  s.stats.pending_ack_overflows = 10;
  s.stats.hops_in_flight_overflows = 43;
  PubSubStats p;
  p.topics_refused = 8;
  p.joins_refused = 11;
  p.messages_dropped = 12;
  p.publish_acks_unconfirmed = 15;
  p.lease_waits = 16;
  p.lone_root_waits = 17;
  p.replica_conflicts = 18;
  p.replica_tentative_replaced = 42;
  p.numbers_withdrawn = 41;
  p.publishes_held_for_order = 19;
  p.publishes_order_forced = 20;
  p.replica_states_sent = 23;
  p.replica_sends_limited = 24;
  p.replica_acks_ignored = 25;
  p.bundles_sent = 26;
  p.bundled_messages = 27;
  p.publishes_held_for_window = 44;
  p.publishes_window_forced = 45;
  p.replicate_lists_sent = 46;
  p.replica_ack_lists_sent = 47;
  p.replicates_listed = 48;
  p.replica_acks_listed = 49;
  p.message_lists_sent = 50;
  p.messages_listed = 51;
  p.message_runs_sent = 52;
  p.messages_in_runs = 53;
  p.replay_bytes = 54;
  p.replay_evicted_for_bytes = 55;
  std::map<std::string, double> m = ParseExposition(MetricsText(s, p));
  EXPECT_EQ(m["peter_pending_connections_evicted_total"], 21);
  EXPECT_EQ(m["peter_pending_connection_timeouts_total"], 22);
  EXPECT_EQ(m["peter_pubsub_replica_states_sent_total"], 23);
  EXPECT_EQ(m["peter_pubsub_replica_sends_limited_total"], 24);
  EXPECT_EQ(m["peter_pubsub_replica_acks_ignored_total"], 25);
  EXPECT_EQ(m["peter_pubsub_bundles_sent_total"], 26);
  EXPECT_EQ(m["peter_pubsub_bundled_messages_total"], 27);
  EXPECT_EQ(m["peter_send_queue_global_overflows_total"], 4);
  EXPECT_EQ(m["peter_receive_overflows_total"], 5);
  EXPECT_EQ(m["peter_connections_evicted_total"], 13);
  EXPECT_EQ(m["peter_outgoing_connections_refused_total"], 14);
  EXPECT_EQ(m["peter_dead_node_overflows_total"], 6);
  EXPECT_EQ(m["peter_candidate_probe_overflows_total"], 7);
  EXPECT_EQ(m["peter_pubsub_topics_refused_total"], 8);
  EXPECT_EQ(m["peter_join_buffer_overflows_total"], 9);
  EXPECT_EQ(m["peter_pending_ack_overflows_total"], 10);
  EXPECT_EQ(m["peter_hops_in_flight_overflows_total"], 43);
  EXPECT_EQ(m["peter_pubsub_joins_refused_total"], 11);
  EXPECT_EQ(m["peter_pubsub_messages_dropped_total"], 12);
  EXPECT_EQ(m["peter_pubsub_publish_acks_unconfirmed_total"], 15);
  EXPECT_EQ(m["peter_pubsub_lease_waits_total"], 16);
  EXPECT_EQ(m["peter_pubsub_lone_root_waits_total"], 17);
  EXPECT_EQ(m["peter_pubsub_replica_conflicts_total"], 18);
  EXPECT_EQ(m["peter_pubsub_replica_tentative_replaced_total"], 42);
  EXPECT_EQ(m["peter_pubsub_numbers_withdrawn_total"], 41);
  EXPECT_EQ(m["peter_pubsub_publishes_held_for_order_total"], 19);
  EXPECT_EQ(m["peter_pubsub_publishes_order_forced_total"], 20);
  EXPECT_EQ(m["peter_pubsub_publishes_held_for_window_total"], 44);
  EXPECT_EQ(m["peter_pubsub_publishes_window_forced_total"], 45);
  EXPECT_EQ(m["peter_pubsub_replicate_lists_sent_total"], 46);
  EXPECT_EQ(m["peter_pubsub_replica_ack_lists_sent_total"], 47);
  EXPECT_EQ(m["peter_pubsub_replicates_listed_total"], 48);
  EXPECT_EQ(m["peter_pubsub_replica_acks_listed_total"], 49);
  EXPECT_EQ(m["peter_pubsub_message_lists_sent_total"], 50);
  EXPECT_EQ(m["peter_pubsub_messages_listed_total"], 51);
  EXPECT_EQ(m["peter_pubsub_message_runs_sent_total"], 52);
  EXPECT_EQ(m["peter_pubsub_messages_in_runs_total"], 53);
  EXPECT_EQ(m["peter_pubsub_replay_bytes"], 54);
  EXPECT_EQ(m["peter_pubsub_replay_evicted_for_bytes_total"], 55);
  json j = StatusJson(s, p);
  EXPECT_EQ(j["overlay"]["dropped"]["dead_node_overflow"], 6);
  EXPECT_EQ(j["overlay"]["dropped"]["candidate_probe_overflow"], 7);
  EXPECT_EQ(j["overlay"]["dropped"]["join_buffer_overflow"], 9);
  EXPECT_EQ(j["overlay"]["dropped"]["pending_ack_overflow"], 10);
  EXPECT_EQ(j["overlay"]["dropped"]["hops_in_flight_overflow"], 43);
  EXPECT_EQ(j["pubsub"]["joins_refused"], 11);
  EXPECT_EQ(j["pubsub"]["messages_dropped"], 12);
  EXPECT_EQ(j["transport"]["dropped"]["global_queue_overflow"], 4);
  EXPECT_EQ(j["transport"]["dropped"]["receive_overflow"], 5);
  EXPECT_EQ(j["transport"]["connections_evicted"], 13);
  EXPECT_EQ(j["transport"]["outgoing_refused"], 14);
  EXPECT_EQ(j["transport"]["pending_evicted"], 21);
  EXPECT_EQ(j["transport"]["pending_timeouts"], 22);
  EXPECT_EQ(j["pubsub"]["replica_sends_limited"], 24);
  EXPECT_EQ(j["pubsub"]["replica_acks_ignored"], 25);
  EXPECT_EQ(j["pubsub"]["bundles_sent"], 26);
  EXPECT_EQ(j["pubsub"]["bundled_messages"], 27);
  EXPECT_EQ(j["pubsub"]["topics_refused"], 8);
  EXPECT_EQ(j["pubsub"]["publish_acks_unconfirmed"], 15);
  EXPECT_EQ(j["pubsub"]["lease_waits"], 16);
  EXPECT_EQ(j["pubsub"]["lone_root_waits"], 17);
  EXPECT_EQ(j["pubsub"]["replica_conflicts"], 18);
  EXPECT_EQ(j["pubsub"]["replica_tentative_replaced"], 42);
  EXPECT_EQ(j["pubsub"]["numbers_withdrawn"], 41);
  EXPECT_EQ(j["pubsub"]["publishes_held_for_order"], 19);
  EXPECT_EQ(j["pubsub"]["publishes_order_forced"], 20);
  EXPECT_EQ(j["pubsub"]["publishes_held_for_window"], 44);
  EXPECT_EQ(j["pubsub"]["publishes_window_forced"], 45);
  EXPECT_EQ(j["pubsub"]["replicate_lists_sent"], 46);
  EXPECT_EQ(j["pubsub"]["replica_ack_lists_sent"], 47);
  EXPECT_EQ(j["pubsub"]["replicates_listed"], 48);
  EXPECT_EQ(j["pubsub"]["replica_acks_listed"], 49);
  EXPECT_EQ(j["pubsub"]["message_lists_sent"], 50);
  EXPECT_EQ(j["pubsub"]["messages_listed"], 51);
  EXPECT_EQ(j["pubsub"]["message_runs_sent"], 52);
  EXPECT_EQ(j["pubsub"]["messages_in_runs"], 53);
  EXPECT_EQ(j["pubsub"]["replay_bytes"], 54);
  EXPECT_EQ(j["pubsub"]["replay_evicted_for_bytes"], 55);
  std::map<std::string, double> a = ParseExposition(AdminMetricsText(2, 3));
  EXPECT_EQ(a["peter_admin_queue_full_waits_total"], 2);
  EXPECT_EQ(a["peter_admin_bodies_refused_total"], 3);
}

TEST(MetricsTextTest, HopsHistogramIsCumulative) {
  std::map<std::string, double> m = ParseExposition(MetricsText(SampleSnapshot()));
  auto bucket = [&](const std::string& le) {
    return m.at("peter_route_hops_bucket{le=\"" + le + "\"}");
  };
  EXPECT_EQ(bucket("0"), 1);
  EXPECT_EQ(bucket("1"), 1);
  EXPECT_EQ(bucket("2"), 4);
  EXPECT_EQ(bucket("6"), 4);
  EXPECT_EQ(bucket("8"), 6);
  EXPECT_EQ(bucket("32"), 6);
  EXPECT_EQ(bucket("+Inf"), 6);
  EXPECT_EQ(m["peter_route_hops_count"], 6);
  EXPECT_EQ(m["peter_route_hops_sum"], 2 * 3 + 7 * 2);
}

TEST(NodeConfigTest, AcceptsTheDocumentedFlags) {
  NodeFlags f;
  f.listen = "127.0.0.1:0";
  f.join = {"127.0.0.1:4000,127.0.0.1:4001", "[::1]:4002"};
  f.id = "0123456789abcdef0123456789ABCDEF";
  f.admin = "127.0.0.1:0";
  f.leaf_set = 24;
  absl::StatusOr<NodeConfig> c = MakeNodeConfig(f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->node.listen, "127.0.0.1:0");
  EXPECT_EQ(c->node.bootstrap,
            (std::vector<std::string>{"127.0.0.1:4000", "127.0.0.1:4001", "[::1]:4002"}));
  ASSERT_TRUE(c->node.id.has_value());
  EXPECT_EQ(c->node.id->ToHex(), "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c->node.overlay.leaf_set_size, 24);
  ASSERT_TRUE(c->admin.has_value());
  EXPECT_EQ(c->admin->host, "127.0.0.1");
  EXPECT_EQ(c->admin->port, 0);
}

TEST(NodeConfigTest, ResolvesNames) {
  NodeFlags f;
  f.listen = "localhost:5000";
  absl::StatusOr<NodeConfig> c = MakeNodeConfig(f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->node.listen, "127.0.0.1:5000");
  EXPECT_FALSE(c->admin.has_value());
  EXPECT_TRUE(c->node.bootstrap.empty());
}

// The error MakeNodeConfig gives for flags changed by `edit` from a valid
// set; empty if it accepted them.
template <typename Edit>
std::string ConfigError(Edit edit) {
  NodeFlags f;
  f.listen = "127.0.0.1:0";
  edit(f);
  absl::StatusOr<NodeConfig> c = MakeNodeConfig(f);
  if (c.ok()) return "";
  std::string message(c.status().message());
  EXPECT_EQ(message.find('\n'), std::string::npos);
  return message;
}

TEST(NodeConfigTest, RejectsBadFlagsWithOneLine) {
  auto has = [](const std::string& error, const char* word) {
    return error.find(word) != std::string::npos;
  };
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.listen = "127.0.0.1"; }), "--listen"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.listen = "127.0.0.1:99999"; }), "port"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.listen = "0.0.0.0:4000"; }), "--advertise"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) {
                    f.listen = "0.0.0.0:4000";
                    f.advertise = "[::]:4000";
                  }),
                  "wildcard"));
  EXPECT_EQ(ConfigError([](NodeFlags& f) {
              f.listen = "[::]:4000";
              f.advertise = "10.1.2.3:4000";
            }),
            "");
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.listen = "::1:4000"; }), "brackets"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.listen = "no-such-host.invalid:1"; }),
                  "resolve"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.join = {"127.0.0.1:0"}; }), "--join"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.join = {"127.0.0.1:1,x"}; }), "--join"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.id = "abc"; }), "--id"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.leaf_set = 7; }), "--leaf-set"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.leaf_set = 0; }), "--leaf-set"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.admin = "nope"; }), "--admin"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.join_timeout_s = 0; }), "--join-timeout"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.tls_cert = "c.pem"; }), "go together"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) {
                    f.tls_cert = "c.pem";
                    f.tls_key = "k.pem";
                    f.tls_ca = "ca.pem";
                    f.id = "0123456789abcdef0123456789abcdef";
                  }),
                  "--id"));
  EXPECT_TRUE(has(ConfigError([](NodeFlags& f) { f.cluster_key_file = "/nonexistent/key"; }),
                  "--cluster-key-file"));
}

// --resp-own-thread reaches GatewayOptions::own_thread (off by default: the
// gateway on the node's network thread), and needs --resp.
TEST(NodeConfigTest, RespOwnThreadReachesTheGatewayOptions) {
  NodeFlags f;
  f.listen = "127.0.0.1:0";
  f.resp = "127.0.0.1:0";
  absl::StatusOr<NodeConfig> c = MakeNodeConfig(f);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->gateway.has_value());
  EXPECT_FALSE(c->gateway->own_thread);
  f.gateway.own_thread = true;
  c = MakeNodeConfig(f);
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->gateway.has_value());
  EXPECT_TRUE(c->gateway->own_thread);
  EXPECT_EQ(ConfigError([](NodeFlags& f) { f.gateway.own_thread = true; }),
            "--resp-own-thread needs --resp");
}

TEST(NodeConfigTest, ClusterKeyIsTheFileWithoutItsNewline) {
  char path[] = "/tmp/peter-key-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string key = "0123456789abcdef0123456789abcdef";
  ASSERT_EQ(write(fd, (key + "\n").data(), key.size() + 1), static_cast<ssize_t>(key.size() + 1));
  close(fd);
  NodeFlags f;
  f.listen = "127.0.0.1:0";
  f.cluster_key_file = path;
  absl::StatusOr<NodeConfig> c = MakeNodeConfig(f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->node.security.cluster_key, key);
  // Too short once the newline is gone.
  std::ofstream(path) << "0123456789abcde\n";
  EXPECT_FALSE(MakeNodeConfig(f).ok());
  unlink(path);
}

// `peter node`'s flags for argv (the limit flags and the ones the tests
// need), parsed as the command parses them. Returns CLI11's error, empty if
// the flags parsed.
std::string ParseLimitFlags(std::vector<std::string> args, NodeFlags* flags) {
  CLI::App app{"test", "peter-node"};
  app.add_option("--listen", flags->listen);
  app.add_option("--resp", flags->resp);
  AddLimitFlags(app, flags);
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

// Each limit flag reaches its option; the others keep the options' defaults.
TEST(NodeConfigTest, LimitFlagsReachTheOptions) {
  NodeFlags f;
  ASSERT_EQ(ParseLimitFlags({"--listen", "127.0.0.1:0", "--resp", "127.0.0.1:0",
                             "--max-connections", "100", "--reserved-outgoing-connections", "10",
                             "--max-frame-bytes", "2mb",
                             "--max-send-queue-bytes", "1048576",
                             "--max-total-send-queue-bytes", "64mb",
                             "--max-total-receive-bytes", "32mb",
                             "--max-tracked-peers", "512", "--max-pending-acks", "1000",
                             "--max-hops-in-flight-per-peer", "250",
                             "--max-topics", "50", "--max-children", "8",
                             "--replay-capacity", "64", "--replay-max-age", "2.5",
                             "--max-pending-messages", "77", "--resp-max-clients", "9",
                             "--resp-max-subscriptions-per-client", "3",
                             "--resp-max-request-bytes", "128kb",
                             "--resp-max-total-input-bytes", "1mb",
                             "--resp-client-output-buffer-limit", "4mb 1mb 7",
                             "--resp-max-publishes-in-flight", "100"},
                            &f),
            "");
  absl::StatusOr<NodeConfig> c = MakeNodeConfig(f);
  ASSERT_TRUE(c.ok()) << c.status();
  const NodeOptions& n = c->node;
  EXPECT_EQ(n.max_connections, 100u);
  EXPECT_EQ(n.reserved_outgoing_connections, 10u);
  EXPECT_EQ(n.max_frame_bytes, 2u << 20);
  EXPECT_EQ(n.max_send_queue_bytes, 1u << 20);
  EXPECT_EQ(n.max_total_send_queue_bytes, 64u << 20);
  EXPECT_EQ(n.max_total_receive_bytes, 32u << 20);
  EXPECT_EQ(n.overlay.max_tracked_peers, 512u);
  EXPECT_EQ(n.overlay.max_pending_acks, 1000u);
  EXPECT_EQ(n.overlay.max_hops_in_flight_per_peer, 250u);
  EXPECT_EQ(n.pubsub.max_topics, 50u);
  EXPECT_EQ(n.pubsub.max_children, 8u);
  EXPECT_EQ(n.pubsub.replay_capacity, 64u);
  EXPECT_EQ(n.pubsub.replay_max_age, absl::Milliseconds(2500));
  EXPECT_EQ(n.max_pending_messages, 77u);
  ASSERT_TRUE(c->gateway.has_value());
  const resp::GatewayOptions& g = *c->gateway;
  EXPECT_EQ(g.max_clients, 9u);
  EXPECT_EQ(g.max_subscriptions_per_client, 3u);
  EXPECT_EQ(g.parser.max_request_bytes, 128u << 10);
  EXPECT_EQ(g.max_total_input_bytes, 1u << 20);
  EXPECT_EQ(g.output_hard_limit, 4u << 20);
  EXPECT_EQ(g.output_soft_limit, 1u << 20);
  EXPECT_EQ(g.output_soft_limit_time, absl::Seconds(7));
  EXPECT_EQ(g.max_publishes_in_flight, 100u);
  EXPECT_EQ(g.max_client_publishes_in_flight, 100u);  // not above the gateway-wide one

  // Without the flags, the options' own defaults.
  NodeFlags d;
  ASSERT_EQ(ParseLimitFlags({"--listen", "127.0.0.1:0", "--resp", "127.0.0.1:0"}, &d), "");
  absl::StatusOr<NodeConfig> dc = MakeNodeConfig(d);
  ASSERT_TRUE(dc.ok()) << dc.status();
  const NodeOptions defaults;
  const resp::GatewayOptions gateway_defaults;
  EXPECT_EQ(dc->node.max_connections, defaults.max_connections);
  EXPECT_EQ(dc->node.reserved_outgoing_connections, defaults.reserved_outgoing_connections);
  EXPECT_EQ(dc->node.max_frame_bytes, defaults.max_frame_bytes);
  EXPECT_EQ(dc->node.pubsub.max_topics, defaults.pubsub.max_topics);
  EXPECT_EQ(dc->node.pubsub.replay_max_age, defaults.pubsub.replay_max_age);
  EXPECT_EQ(dc->gateway->output_hard_limit, gateway_defaults.output_hard_limit);
  EXPECT_EQ(dc->gateway->max_total_input_bytes, gateway_defaults.max_total_input_bytes);
  EXPECT_EQ(dc->gateway->output_soft_limit_time, gateway_defaults.output_soft_limit_time);
  EXPECT_EQ(dc->gateway->max_client_publishes_in_flight,
            gateway_defaults.max_client_publishes_in_flight);
}

// Out of range, not a number or inconsistent: a one-line error naming the
// flag, from CLI11 or from MakeNodeConfig.
TEST(NodeConfigTest, LimitFlagsOutOfRangeAreErrors) {
  auto parse_error = [](std::vector<std::string> args) {
    NodeFlags f;
    args.insert(args.begin(), {"--listen", "127.0.0.1:0"});
    return ParseLimitFlags(args, &f);
  };
  auto has = [](const std::string& error, const char* word) {
    return error.find(word) != std::string::npos;
  };
  EXPECT_TRUE(has(parse_error({"--max-connections", "0"}), "--max-connections"));
  EXPECT_TRUE(has(parse_error({"--max-topics", "-1"}), "--max-topics"));
  EXPECT_TRUE(has(parse_error({"--max-children", "lots"}), "--max-children"));
  EXPECT_TRUE(has(parse_error({"--max-frame-bytes", "1kb"}), "--max-frame-bytes"));
  EXPECT_TRUE(has(parse_error({"--max-frame-bytes", "4zb"}), "--max-frame-bytes"));
  EXPECT_TRUE(has(parse_error({"--replay-max-age", "0"}), "--replay-max-age"));
  EXPECT_TRUE(has(parse_error({"--resp-max-request-bytes", "99gb"}),
                  "--resp-max-request-bytes"));

  auto config_error = [&](std::vector<std::string> args) -> std::string {
    NodeFlags f;
    args.insert(args.begin(), {"--listen", "127.0.0.1:0", "--resp", "127.0.0.1:0"});
    std::string parse = ParseLimitFlags(args, &f);
    if (!parse.empty()) return "parse: " + parse;
    absl::StatusOr<NodeConfig> c = MakeNodeConfig(f);
    if (c.ok()) return "";
    std::string message(c.status().message());
    EXPECT_EQ(message.find('\n'), std::string::npos);
    return message;
  };
  EXPECT_TRUE(has(config_error({"--max-frame-bytes", "512kb"}), "payload"));
  EXPECT_TRUE(has(config_error({"--max-send-queue-bytes", "32mb",
                                "--max-total-send-queue-bytes", "16mb"}),
                  "--max-total-send-queue-bytes"));
  EXPECT_TRUE(has(config_error({"--max-frame-bytes", "8mb", "--max-total-receive-bytes", "4mb"}),
                  "--max-total-receive-bytes"));
  EXPECT_TRUE(has(config_error({"--max-connections", "100", "--reserved-outgoing-connections",
                                "51"}),
                  "--reserved-outgoing-connections"));
  // The default reserve (64) adapts to a small --max-connections.
  EXPECT_EQ(config_error({"--max-connections", "10"}), "");
  EXPECT_TRUE(has(config_error({"--resp-max-request-bytes", "2mb",
                                "--resp-max-total-input-bytes", "1mb"}),
                  "--resp-max-total-input-bytes"));
  EXPECT_TRUE(has(config_error({"--resp-client-output-buffer-limit", "32mb 8mb"}),
                  "HARD SOFT SECONDS"));
  EXPECT_TRUE(has(config_error({"--resp-client-output-buffer-limit", "8mb 32mb 60"}),
                  "soft"));
  EXPECT_TRUE(has(config_error({"--resp-client-output-buffer-limit", "32mb 0 60"}),
                  "positive size"));
  EXPECT_TRUE(has(config_error({"--resp-client-output-buffer-limit", "32mb 8mb -1"}),
                  "SECONDS"));
  EXPECT_TRUE(has(config_error({"--resp-max-publishes-in-flight", "20000"}),
                  "--resp-max-publishes-in-flight"));
  EXPECT_EQ(config_error({"--max-frame-bytes", "8mb", "--max-total-receive-bytes", "8mb"}), "");
}

// The Scribe flags (not bounds): --replicas and --no-bundle-messages reach
// their options, the defaults are the options' own, and a bad --replicas is
// a one-line error naming the flag: from CLI11 (not a number, outside 0 to
// 256) or from MakeNodeConfig (more than --leaf-set).
TEST(NodeConfigTest, ScribeFlagsReachTheOptions) {
  auto parse = [](std::vector<std::string> args, NodeFlags* f) {
    CLI::App app{"test", "peter-node"};
    app.add_option("--listen", f->listen);
    app.add_option("--leaf-set", f->leaf_set);
    AddScribeFlags(app, f);
    args.insert(args.begin(), {"--listen", "127.0.0.1:0"});
    std::reverse(args.begin(), args.end());
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  NodeFlags f;
  ASSERT_EQ(parse({"--replicas", "2", "--no-bundle-messages"}, &f), "");
  absl::StatusOr<NodeConfig> c = MakeNodeConfig(f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->node.pubsub.replicas, 2);
  EXPECT_FALSE(c->node.pubsub.bundle_messages);

  NodeFlags none;
  ASSERT_EQ(parse({"--replicas", "0"}, &none), "");
  c = MakeNodeConfig(none);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->node.pubsub.replicas, 0);
  EXPECT_TRUE(c->node.pubsub.bundle_messages);

  NodeFlags d;
  ASSERT_EQ(parse({}, &d), "");
  c = MakeNodeConfig(d);
  ASSERT_TRUE(c.ok()) << c.status();
  const pubsub::ScribeOptions defaults;
  EXPECT_EQ(c->node.pubsub.replicas, defaults.replicas);
  EXPECT_EQ(c->node.pubsub.bundle_messages, defaults.bundle_messages);

  auto has = [](const std::string& error, const char* word) {
    return error.find(word) != std::string::npos;
  };
  NodeFlags e;
  EXPECT_TRUE(has(parse({"--replicas", "-1"}, &e), "--replicas"));
  EXPECT_TRUE(has(parse({"--replicas", "257"}, &e), "--replicas"));
  EXPECT_TRUE(has(parse({"--replicas", "all"}, &e), "--replicas"));
  NodeFlags wide;
  ASSERT_EQ(parse({"--replicas", "17"}, &wide), "");
  const std::string error = ConfigError([&](NodeFlags& g) { g.node = wide.node; });
  EXPECT_TRUE(has(error, "--replicas")) << error;
  EXPECT_TRUE(has(error, "--leaf-set (16)")) << error;
  NodeFlags wider;
  ASSERT_EQ(parse({"--replicas", "17", "--leaf-set", "18"}, &wider), "");
  EXPECT_TRUE(MakeNodeConfig(wider).ok());
  EXPECT_TRUE(has(ConfigError([](NodeFlags& g) { g.node.pubsub.replicas = -3; }), "--replicas"));
}

// Every option that bounds what peers or clients make a node hold has a
// flag (issue 8): the ones added after the first set reach their options,
// and bad values are one-line errors naming the flag.
TEST(NodeConfigTest, EveryBoundHasAFlag) {
  NodeFlags f;
  ASSERT_EQ(ParseLimitFlags({"--listen", "127.0.0.1:0", "--resp", "127.0.0.1:0",
                             "--idle-timeout", "30", "--send-stall-timeout", "2.5",
                             "--max-pending-incoming", "9", "--pending-timeout", "4",
                             "--max-join-buffer", "11", "--max-dead-nodes", "12",
                             "--max-moving-children", "0", "--max-reorder", "13",
                             "--max-lease-grants", "3", "--max-pending-publishes", "14000",
                             "--max-pending-anycasts", "15", "--max-anycast-visits", "16",
                             "--root-cache-size", "17", "--max-topic-name-bytes", "18",
                             "--max-payload-bytes", "64kb",
                             "--resp-max-publishes-in-flight", "40",
                             "--resp-max-client-publishes-in-flight", "19",
                             "--resp-max-total-output-bytes", "1gb",
                             "--resp-output-pause-bytes", "2mb",
                             "--resp-max-queued-message-bytes", "8mb",
                             "--resp-max-cluster-patterns", "20",
                             "--resp-max-pattern-ttl", "120", "--resp-max-bulk-len", "1mb",
                             "--resp-max-args", "21", "--resp-max-inline-len", "4kb"},
                            &f),
            "");
  absl::StatusOr<NodeConfig> c = MakeNodeConfig(f);
  ASSERT_TRUE(c.ok()) << c.status();
  const NodeOptions& n = c->node;
  EXPECT_EQ(n.idle_timeout, absl::Seconds(30));
  EXPECT_EQ(n.send_stall_timeout, absl::Milliseconds(2500));
  EXPECT_EQ(n.max_pending_incoming, 9u);
  EXPECT_EQ(n.pending_timeout, absl::Seconds(4));
  EXPECT_EQ(n.overlay.max_join_buffer, 11u);
  EXPECT_EQ(n.overlay.max_dead_nodes, 12u);
  EXPECT_EQ(n.pubsub.max_moving_children, 0u);
  EXPECT_EQ(n.pubsub.max_reorder, 13u);
  EXPECT_EQ(n.pubsub.max_lease_grants, 3u);
  EXPECT_EQ(n.pubsub.max_pending_publishes, 14000u);
  EXPECT_EQ(n.pubsub.max_pending_anycasts, 15u);
  EXPECT_EQ(n.pubsub.max_anycast_visits, 16u);
  EXPECT_EQ(n.pubsub.root_cache_size, 17u);
  EXPECT_EQ(n.pubsub.max_topic_name_bytes, 18u);
  EXPECT_EQ(n.pubsub.max_payload_bytes, 64u << 10);
  ASSERT_TRUE(c->gateway.has_value());
  const resp::GatewayOptions& g = *c->gateway;
  EXPECT_EQ(g.max_client_publishes_in_flight, 19u);
  EXPECT_EQ(g.max_total_output_bytes, size_t{1} << 30);
  EXPECT_EQ(g.output_pause_bytes, 2u << 20);
  EXPECT_EQ(g.max_queued_message_bytes, 8u << 20);
  EXPECT_EQ(g.max_cluster_patterns, 20u);
  EXPECT_EQ(g.max_pattern_ttl, absl::Seconds(120));
  EXPECT_EQ(g.parser.max_bulk_len, 1u << 20);
  EXPECT_EQ(g.parser.max_args, 21u);
  EXPECT_EQ(g.parser.max_inline_len, 4u << 10);

  // Defaults are the options' own.
  NodeFlags d;
  ASSERT_EQ(ParseLimitFlags({"--listen", "127.0.0.1:0", "--resp", "127.0.0.1:0"}, &d), "");
  absl::StatusOr<NodeConfig> dc = MakeNodeConfig(d);
  ASSERT_TRUE(dc.ok()) << dc.status();
  const NodeOptions defaults;
  EXPECT_EQ(dc->node.send_stall_timeout, defaults.send_stall_timeout);
  EXPECT_EQ(dc->node.idle_timeout, defaults.idle_timeout);
  EXPECT_EQ(dc->node.pubsub.max_moving_children, defaults.pubsub.max_moving_children);
  EXPECT_EQ(dc->gateway->max_total_output_bytes, resp::GatewayOptions{}.max_total_output_bytes);

  auto parse_error = [](std::vector<std::string> args) {
    NodeFlags e;
    args.insert(args.begin(), {"--listen", "127.0.0.1:0"});
    return ParseLimitFlags(args, &e);
  };
  auto has = [](const std::string& error, const char* word) {
    return error.find(word) != std::string::npos;
  };
  EXPECT_TRUE(has(parse_error({"--send-stall-timeout", "0"}), "--send-stall-timeout"));
  EXPECT_TRUE(has(parse_error({"--send-stall-timeout", "soon"}), "--send-stall-timeout"));
  EXPECT_TRUE(has(parse_error({"--idle-timeout", "-5"}), "--idle-timeout"));
  EXPECT_TRUE(has(parse_error({"--max-pending-incoming", "0"}), "--max-pending-incoming"));
  EXPECT_TRUE(has(parse_error({"--pending-timeout", "0"}), "--pending-timeout"));
  EXPECT_TRUE(has(parse_error({"--max-moving-children", "-1"}), "--max-moving-children"));
  EXPECT_TRUE(has(parse_error({"--max-moving-children", "2000000"}), "--max-moving-children"));
  EXPECT_TRUE(has(parse_error({"--max-lease-grants", "0"}), "--max-lease-grants"));
  EXPECT_TRUE(has(parse_error({"--max-payload-bytes", "10"}), "--max-payload-bytes"));
  EXPECT_TRUE(has(parse_error({"--resp-max-total-output-bytes", "1kb"}),
                  "--resp-max-total-output-bytes"));
  EXPECT_TRUE(has(parse_error({"--resp-max-args", "0"}), "--resp-max-args"));

  auto config_error = [&](std::vector<std::string> args) -> std::string {
    NodeFlags e;
    args.insert(args.begin(), {"--listen", "127.0.0.1:0", "--resp", "127.0.0.1:0"});
    std::string parse = ParseLimitFlags(args, &e);
    if (!parse.empty()) return "parse: " + parse;
    absl::StatusOr<NodeConfig> config = MakeNodeConfig(e);
    return config.ok() ? "" : std::string(config.status().message());
  };
  EXPECT_TRUE(has(config_error({"--resp-max-total-output-bytes", "16mb"}),
                  "--resp-max-total-output-bytes"));
  EXPECT_EQ(config_error({"--resp-max-total-output-bytes", "16mb",
                          "--resp-client-output-buffer-limit", "8mb 4mb 60"}),
            "");
  EXPECT_TRUE(has(config_error({"--resp-output-pause-bytes", "64mb"}),
                  "--resp-output-pause-bytes"));
  EXPECT_TRUE(has(config_error({"--resp-max-pattern-ttl", "10"}), "--resp-max-pattern-ttl"));
  EXPECT_TRUE(has(config_error({"--max-payload-bytes", "8mb"}), "payload"));
}

// A node that answers lookups from a table and times out on the rest. A
// lookup of NodeId(0, 2) waits until Release(): it keeps a worker busy.
class FakeNode : public NodeSource {
 public:
  NodeSnapshot Snapshot() override { return SampleSnapshot(); }
  absl::StatusOr<pastry::Node::LookupResult> Lookup(const NodeId& key,
                                                    absl::Duration timeout) override {
    if (key == NodeId(0, 0)) return absl::DeadlineExceededError("lookup timed out");
    if (key == NodeId(0, 1)) return absl::UnavailableError("not active yet");
    if (key == NodeId(0, 2)) {
      std::unique_lock<std::mutex> lock(mu_);
      ++held_;
      changed_.notify_all();
      changed_.wait(lock, [&] { return released_; });
    }
    pastry::Node::LookupResult r;
    r.root = Handle(0x2000000000000000, 0x7f000001, 4003);
    r.hops = 1;
    r.path = {SampleSnapshot().self.id, r.root.id};
    return r;
  }
  // Waits until `n` lookups of NodeId(0, 2) are held.
  void AwaitHeld(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [&] { return held_ >= n; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int held_ = 0;
  bool released_ = false;
};

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start("127.0.0.1", 0).ok());
    ASSERT_GT(server_.port(), 0);
  }
  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", server_.port());
    client.set_read_timeout(5, 0);
    return client.Get(path.c_str());
  }

  FakeNode node_;
  AdminServer server_{&node_, absl::Seconds(1)};
};

TEST_F(AdminServerTest, Status) {
  httplib::Result r = Get("/status");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(r->body)["listen"], "127.0.0.1:4000");
}

TEST_F(AdminServerTest, Route) {
  httplib::Result r = Get("/route?key=21000000000000000000000000000000");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json j = json::parse(r->body);
  EXPECT_EQ(j["key"], "21000000000000000000000000000000");
  EXPECT_EQ(j["hops"], 1);
}

TEST_F(AdminServerTest, RouteErrors) {
  for (const char* path : {"/route", "/route?key=xyz", "/route?key=0123"}) {
    httplib::Result r = Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 400) << path;
    EXPECT_TRUE(json::parse(r->body).contains("error")) << path;
  }
  httplib::Result timeout = Get("/route?key=00000000000000000000000000000000");
  ASSERT_TRUE(timeout);
  EXPECT_EQ(timeout->status, 504);
  httplib::Result inactive = Get("/route?key=00000000000000000000000000000001");
  ASSERT_TRUE(inactive);
  EXPECT_EQ(inactive->status, 503);
}

TEST_F(AdminServerTest, MetricsAndNotFound) {
  httplib::Result m = Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->get_header_value("Content-Type"), kMetricsContentType);
  EXPECT_NE(m->body.find("# TYPE peter_route_hops histogram"), std::string::npos);
  httplib::Result missing = Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(json::parse(missing->body).contains("error"));
}

TEST_F(AdminServerTest, BodyOverTheLimitIsRefused) {
  httplib::Client client("127.0.0.1", server_.port());
  client.set_read_timeout(5, 0);
  httplib::Result r = client.Post("/status", std::string(AdminServer::kMaxBodyBytes + 1, 'x'),
                                  "text/plain");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(json::parse(r->body)["error"], "request body over 65536 bytes");
  EXPECT_EQ(server_.bodies_refused(), 1u);
  EXPECT_EQ(Get("/status")->status, 200);
  std::map<std::string, double> m = ParseExposition(Get("/metrics")->body);
  EXPECT_EQ(m["peter_admin_bodies_refused_total"], 1);
}

// Every worker busy (lookups that do not return) and the queue full: the
// accept loop waits (counted, on /metrics) instead of queueing connections
// without bound, so further clients wait in the kernel's listen backlog;
// once the workers are free the endpoint serves again.
TEST_F(AdminServerTest, ConnectionFloodWaitsInTheBacklog) {
  std::vector<std::thread> busy;
  for (size_t i = 0; i < AdminServer::kWorkers; ++i) {
    busy.emplace_back([this] { Get("/route?key=00000000000000000000000000000002"); });
  }
  // Whatever fails below, free the workers (else the server never stops).
  absl::Cleanup release = [&] {
    node_.Release();
    for (std::thread& t : busy) t.join();
  };
  node_.AwaitHeld(static_cast<int>(AdminServer::kWorkers));
  // kMaxQueued connections fill the queue; the next one is accepted and
  // waits for room. (cpp-httplib listens with a backlog of 5: more than a
  // few further connects would block until the loop accepts again.)
  std::vector<int> fds;
  for (size_t i = 0; i < AdminServer::kMaxQueued + 1; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    fds.push_back(fd);  // sends nothing
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (server_.queue_full_waits() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  // Exactly one: the accept loop is blocked in that wait, so no further
  // connection can be counted before the workers are released.
  EXPECT_EQ(server_.queue_full_waits(), 1u);
  for (int fd : fds) ::close(fd);
  std::move(release).Invoke();
  httplib::Result m = Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  // The /metrics request's own connection can find the queue still full
  // (the 64 closed connections not yet served by the workers) and be
  // counted as a second wait before the page is made; the page shows the
  // count as of then, which is the final one (nothing connects after it).
  const double shown = ParseExposition(m->body)["peter_admin_queue_full_waits_total"];
  EXPECT_GE(shown, 1);
  EXPECT_EQ(shown, static_cast<double>(server_.queue_full_waits()));
}

// The Redis gateway's counters are on /metrics (from its own field table):
// a bound reached by a client (a request over max_request_bytes) and an
// unknown command show up on the next scrape.
TEST(AdminGatewayMetricsTest, GatewayCountersAreScraped) {
  resp::testing::FakeCluster cluster;
  resp::GatewayOptions options;
  options.parser.max_request_bytes = 1024;
  auto gateway = resp::Gateway::Start(cluster.AddNode(), options);
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  FakeNode node;
  AdminServer server(&node, absl::Seconds(1));
  server.set_gateway(gateway->get());
  ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  auto scrape = [&] {
    httplib::Client client("127.0.0.1", server.port());
    client.set_read_timeout(5, 0);
    httplib::Result r = client.Get("/metrics");
    return r ? ParseExposition(r->body) : std::map<std::string, double>{};
  };
  std::map<std::string, double> before = scrape();
  ASSERT_EQ(before.count("peter_resp_requests_too_big_total"), 1u);
  EXPECT_EQ(before["peter_resp_requests_too_big_total"], 0);
  EXPECT_EQ(before["peter_resp_unknown_commands_total"], 0);
  // Every field of the gateway's table, once.
  EXPECT_EQ(before.size(),
            ParseExposition(MetricsText(NodeSnapshot{}) + AdminMetricsText(0, 0)).size() +
                std::size(resp::kGatewayStatFields));
  {
    resp::testing::TestClient a((*gateway)->port());
    EXPECT_EQ(a.Call({"NOSUCH"}).substr(0, 4), "-ERR");
    resp::testing::TestClient b((*gateway)->port());
    EXPECT_EQ(b.Call({"ECHO", std::string(2000, 'x')}).substr(0, 4), "-ERR");
    std::map<std::string, double> during = scrape();
    EXPECT_EQ(during["peter_resp_unknown_commands_total"], 1);
    EXPECT_EQ(during["peter_resp_requests_too_big_total"], 1);
    EXPECT_EQ(during["peter_resp_clients_accepted_total"], 2);
  }
  server.Stop();
  (*gateway)->Stop();
}

TEST_F(AdminServerTest, SecondBindOfTheSamePortFails) {
  AdminServer other(&node_, absl::Seconds(1));
  absl::Status s = other.Start("127.0.0.1", server_.port());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("cannot bind"), std::string::npos);
}

}  // namespace
}  // namespace peter::tools::admin

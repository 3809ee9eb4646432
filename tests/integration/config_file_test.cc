// Unit tests of `--config FILE` (tools/admin/config_file.h) on an app shaped
// like `peter` (a global --log-level, a `node` subcommand with fallthrough),
// and of `peter status`'s rendering (tools/admin/status_text.h).
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tools/admin/config_file.h"
#include "tools/admin/node_config.h"
#include "tools/admin/status_json.h"
#include "tools/admin/status_text.h"

namespace peter::tools::admin {
namespace {

// A file in the test's temporary directory, removed afterwards.
class TempFile {
 public:
  TempFile(const std::string& suffix, const std::string& text) {
    const char* dir = std::getenv("TEST_TMPDIR");
    path_ = std::string(dir != nullptr ? dir : "/tmp") + "/peter-config-" +
            std::to_string(getpid()) + "-" + std::to_string(counter_++) + suffix;
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

struct Parsed {
  std::string log_level;
  std::string listen;
  std::string admin;
  std::vector<std::string> join;
  int leaf_set = 16;
  bool ran = false;
};

// Parses `args` (after the program name) with an app like peter's.
void Parse(std::vector<std::string> args, Parsed& out) {
  CLI::App app{"test", "peter"};
  app.require_subcommand(1);
  app.add_option("--log-level", out.log_level);
  CLI::App* node = app.add_subcommand("node", "a node");
  node->fallthrough();
  node->add_option("--listen", out.listen)->required();
  node->add_option("--admin", out.admin);
  node->add_option("--join", out.join)->expected(1)->take_all();  // as peter node's
  node->add_option("--leaf-set", out.leaf_set);
  node->callback([&out] { out.ran = true; });
  app.add_subcommand("other", "another command");
  AddConfigFileOption(app, "node");
  std::reverse(args.begin(), args.end());
  app.parse(args);
}

TEST(ConfigFileTest, FlatKeysAreTheNodesFlagsAndGlobalKeysTheProgramsOwn) {
  TempFile file(".toml",
                "# a comment\n"
                "log-level = \"debug\"\n"
                "listen = \"127.0.0.1:7000\"\n"
                "join = [\"10.0.0.1:7000\",\n"
                "        \"10.0.0.2:7000\"]\n"
                "leaf-set = 8\n");
  Parsed p;
  Parse({"node", "--config", file.path()}, p);
  EXPECT_TRUE(p.ran);
  EXPECT_EQ(p.log_level, "debug");
  EXPECT_EQ(p.listen, "127.0.0.1:7000");
  EXPECT_EQ(p.join, (std::vector<std::string>{"10.0.0.1:7000", "10.0.0.2:7000"}));
  EXPECT_EQ(p.leaf_set, 8);
}

// The limit flags (node_config.h) are keys too, sizes with units included.
TEST(ConfigFileTest, LimitFlagsAreKeys) {
  TempFile file(".toml",
                "listen = \"127.0.0.1:7000\"\n"
                "max-frame-bytes = \"2mb\"\n"
                "max-topics = 50\n"
                "replay-max-age = 2.5\n"
                "[node]\n"
                "resp-client-output-buffer-limit = \"4mb 1mb 7\"\n");
  CLI::App app{"test", "peter"};
  app.require_subcommand(1);
  CLI::App* node = app.add_subcommand("node", "a node");
  node->fallthrough();  // as peter node's: --config is the program's
  NodeFlags flags;
  node->add_option("--listen", flags.listen)->required();
  AddLimitFlags(*node, &flags);
  AddConfigFileOption(app, "node");
  std::vector<std::string> args = {"node", "--max-topics", "60", "--config", file.path()};
  std::reverse(args.begin(), args.end());
  app.parse(args);
  EXPECT_EQ(flags.node.max_frame_bytes, 2u << 20);
  EXPECT_EQ(flags.node.pubsub.max_topics, 60u);  // the command line wins
  EXPECT_EQ(flags.node.pubsub.replay_max_age, absl::Milliseconds(2500));
  EXPECT_EQ(flags.resp_output_buffer_limit, "4mb 1mb 7");

  TempFile bad(".toml", "listen = \"127.0.0.1:7000\"\nmax-children = 0\n");
  std::vector<std::string> bad_args = {"node", "--config", bad.path()};
  std::reverse(bad_args.begin(), bad_args.end());
  NodeFlags other;
  CLI::App app2{"test", "peter"};
  CLI::App* node2 = app2.add_subcommand("node", "a node");
  node2->fallthrough();
  node2->add_option("--listen", other.listen);
  AddLimitFlags(*node2, &other);
  AddConfigFileOption(app2, "node");
  try {
    app2.parse(bad_args);
    ADD_FAILURE() << "max-children = 0 accepted";
  } catch (const CLI::ValidationError& e) {
    EXPECT_NE(std::string(e.what()).find("--max-children"), std::string::npos) << e.what();
  }
}

TEST(ConfigFileTest, ARepeatedFlagTakesEveryValue) {
  Parsed p;
  Parse({"node", "--listen", "a:1", "--join", "b:1", "--join", "c:1"}, p);
  EXPECT_EQ(p.join, (std::vector<std::string>{"b:1", "c:1"}));
}

TEST(ConfigFileTest, KeysMayBeInTheNodeSection) {
  TempFile file(".toml", "[node]\nlisten = \"127.0.0.1:7000\"\nadmin = \"127.0.0.1:7001\"\n");
  Parsed p;
  Parse({"node", "--config", file.path()}, p);
  EXPECT_EQ(p.listen, "127.0.0.1:7000");
  EXPECT_EQ(p.admin, "127.0.0.1:7001");
}

TEST(ConfigFileTest, ReadsIniFiles) {
  TempFile file(".ini", "; an INI comment\n[node]\nlisten=127.0.0.1:7000\nleaf-set=4\n");
  Parsed p;
  Parse({"node", "--config", file.path()}, p);
  EXPECT_EQ(p.listen, "127.0.0.1:7000");
  EXPECT_EQ(p.leaf_set, 4);
}

TEST(ConfigFileTest, CommandLineFlagsWinOverTheFile) {
  TempFile file(".toml", "listen = \"127.0.0.1:7000\"\nleaf-set = 8\nlog-level = \"warn\"\n");
  Parsed p;
  Parse({"--log-level", "error", "node", "--listen", "127.0.0.1:9000", "--config",
         file.path()},
        p);
  EXPECT_EQ(p.listen, "127.0.0.1:9000");
  EXPECT_EQ(p.leaf_set, 8);
  EXPECT_EQ(p.log_level, "error");
}

TEST(ConfigFileTest, UnknownKeyIsAnErrorNamingFileAndLine) {
  TempFile file(".toml",
                "listen = \"127.0.0.1:7000\"\n"
                "join = [\"10.0.0.1:7000\",\n"
                "  \"10.0.0.2:7000\"]\n"
                "\n"
                "[node]\n"
                "leaf-sets = 8\n");
  Parsed p;
  try {
    Parse({"node", "--config", file.path()}, p);
    FAIL() << "an unknown key was accepted";
  } catch (const CLI::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(file.path() + ":6: unknown key \"node.leaf-sets\"", 0),
              0u)
        << e.what();
  }
  EXPECT_FALSE(p.ran);
}

TEST(ConfigFileTest, UnknownTopLevelKeyAndBareWordAreErrors) {
  for (const char* text : {"listen = \"a:1\"\nlisen = \"127.0.0.1:7000\"\n",
                           "listen = \"a:1\"\nverbose\n"}) {
    TempFile file(".toml", text);
    Parsed p;
    try {
      Parse({"node", "--config", file.path()}, p);
      FAIL() << "accepted: " << text;
    } catch (const CLI::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(file.path() + ":2: unknown key"), std::string::npos)
          << e.what();
    }
  }
}

TEST(ConfigFileTest, UnknownSectionIsAnError) {
  TempFile file(".toml", "[nodes]\nlisten = \"127.0.0.1:7000\"\n");
  Parsed p;
  EXPECT_THROW(Parse({"node", "--config", file.path()}, p), CLI::ConfigError);
}

TEST(ConfigFileTest, TheConfigOptionItselfIsNotAKey) {
  TempFile file(".toml", "listen = \"a:1\"\nconfig = \"/etc/other.toml\"\n");
  Parsed p;
  EXPECT_THROW(Parse({"node", "--config", file.path()}, p), CLI::ParseError);
}

TEST(ConfigFileTest, MissingFileIsAnError) {
  Parsed p;
  EXPECT_THROW(Parse({"node", "--config", "/nonexistent/peter.toml"}, p), CLI::FileError);
}

TEST(ConfigFileTest, NodeHelpMentionsTheConfigFile) {
  Parsed p;
  CLI::App app{"test", "peter"};
  CLI::App* node = app.add_subcommand("node", "a node");
  AddConfigFileOption(app, "node");
  EXPECT_NE(node->help().find("--config FILE:"), std::string::npos) << node->help();
}

TEST(StatusTextTest, RendersEveryPart) {
  pastry::net::NodeSnapshot s;
  s.self = {pastry::NodeId(0x1000000000000000, 7), pastry::Endpoint::FromIpv4(0x7f000001, 4000)};
  s.active = true;
  s.leaf_set = {{pastry::NodeId(0x0f00000000000000, 7),
                 pastry::Endpoint::FromIpv4(0x7f000001, 4001)}};
  s.routing_table.push_back({0, 2, s.leaf_set[0], 1500});
  s.routing_table.push_back({0, 3, s.leaf_set[0], 1500});
  s.routing_table.push_back({2, 5, s.leaf_set[0], -1});
  s.uptime = absl::Seconds(3725);
  s.transport.connections_open = 3;
  s.transport.frames_sent[1] = 10;
  s.transport.frames_sent[2] = 5;
  s.transport.bytes_sent[1] = 2048;
  s.transport.frames_dropped_decode = 4;
  PubSubStats ps;
  ps.topics = 2;
  ps.roots = 1;
  ps.published = 17;
  ps.slow_consumer_drops = 9;
  ps.bundles_sent = 2;
  ps.bundled_messages = 5;
  ps.replicate_lists_sent = 3;
  ps.replicates_listed = 7;
  ps.replica_ack_lists_sent = 4;
  ps.replica_acks_listed = 8;
  ps.message_lists_sent = 6;
  ps.messages_listed = 30;
  ps.message_runs_sent = 2;
  ps.messages_in_runs = 9;
  TopicStatus named;
  named.id_hex = "abcdef0123456789abcdef0123456789";
  named.name = "orders";
  named.is_root = true;
  named.attached = true;
  named.children = 3;
  named.last_seq = 41;
  named.local_subscriptions = 1;
  TopicStatus unnamed;
  unnamed.id_hex = "99990123456789abcdef0123456789ab";
  unnamed.attached = true;
  unnamed.parent_id_hex = "12345678123456781234567812345678";
  const std::string text = RenderStatus(StatusJson(s, ps, {named, unnamed}));
  EXPECT_NE(text.find("  topic   orders  root, 3 children, seq 41, 1 local subscriptions\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("  topic   99990123...  child of 12345678, 0 children"),
            std::string::npos) << text;
  EXPECT_NE(text.find("node      10000000000000000000000000000007  active  up 1h02m"),
            std::string::npos) << text;
  EXPECT_NE(text.find("listen    127.0.0.1:4000"), std::string::npos) << text;
  EXPECT_NE(text.find("leaf set  1 node\n          0f000000000000000000000000000007  "
                      "127.0.0.1:4001"),
            std::string::npos) << text;
  EXPECT_NE(text.find("routing   3 entries in 2 rows: r0 2/15 r2 1/15"), std::string::npos)
      << text;
  EXPECT_NE(text.find("pubsub    2 topics (root of 1)"), std::string::npos) << text;
  EXPECT_NE(text.find("published 17"), std::string::npos) << text;
  EXPECT_NE(text.find("slow-consumer drops 9"), std::string::npos) << text;
  EXPECT_NE(text.find("sent in bundles 5 in 2; in lists: replicates 7 in 3, replica acks 8 in "
                      "4, publishes/data/acks 30 in 6 (in runs 9 in 2)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("transport 3 connections open"), std::string::npos) << text;
  EXPECT_NE(text.find("sent 15 frames (2.0 KiB)"), std::string::npos) << text;
  EXPECT_NE(text.find("dropped: decode 4,"), std::string::npos) << text;
  // The overlay's bounds show only once one was reached.
  EXPECT_EQ(text.find("overlay bounds reached"), std::string::npos) << text;
  s.stats.pending_ack_overflows = 6;
  const std::string full = RenderStatus(StatusJson(s, ps, {}));
  EXPECT_NE(full.find("overlay bounds reached: join buffer 0, pending acks (rerouted early) 6, "
                      "hops in flight to one peer (rerouted early) 0, tracked peers 0"),
            std::string::npos)
      << full;
}

TEST(StatusTextTest, ListsAtMostTwentyTopics) {
  pastry::net::NodeSnapshot s;
  std::vector<TopicStatus> topics(25);
  for (size_t i = 0; i < topics.size(); ++i) topics[i].name = "t" + std::to_string(i);
  const std::string text = RenderStatus(StatusJson(s, PubSubStats{}, topics));
  EXPECT_NE(text.find("topic   t19 "), std::string::npos) << text;
  EXPECT_EQ(text.find("topic   t20 "), std::string::npos) << text;
  EXPECT_NE(text.find("... and 5 more topics"), std::string::npos) << text;
}

TEST(StatusTextTest, ToleratesOddDocuments) {
  EXPECT_NE(RenderStatus(nlohmann::json::object()).find("node      ?  NOT ACTIVE"),
            std::string::npos);
  nlohmann::json odd = {{"id", 5}, {"leaf_set", "x"}, {"pubsub", {{"topics", "many"}}},
                        {"routing_table", {1, 2}}};
  const std::string text = RenderStatus(odd);
  EXPECT_NE(text.find("pubsub    0 topics"), std::string::npos) << text;
  EXPECT_NE(text.find("routing   2 entries\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace peter::tools::admin

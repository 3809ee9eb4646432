// redis-cli (Debian's redis-tools) driving the gateway: a real client's
// handshake, requests and reply parsing. Skipped if redis-cli is missing.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pubsub/resp/gateway.h"
#include "tests/pubsub/resp/fake_cluster.h"
#include "tests/pubsub/resp/test_client.h"

namespace peter::resp {
namespace {

constexpr const char* kRedisCli = "/usr/bin/redis-cli";

// A redis-cli child process with its stdout (and stderr) on a pipe.
class Cli {
 public:
  Cli(uint16_t port, std::vector<std::string> args, const std::string& input = "") {
    int out[2], in[2];
    if (::pipe(out) != 0 || ::pipe(in) != 0) return;
    std::vector<std::string> argv_s = {kRedisCli, "-h", "127.0.0.1", "-p", std::to_string(port)};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      ::close(in[1]);
      ::close(out[0]);
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(kRedisCli, argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    if (!input.empty()) (void)!::write(in[1], input.data(), input.size());
    ::close(in[1]);
    fd_ = out[0];
  }
  ~Cli() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) ::close(fd_);
  }

  // Output until it holds `lines` newlines, EOF, or the deadline.
  std::string ReadLines(int lines, std::chrono::seconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::count(out_.begin(), out_.end(), '\n') < lines) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0) break;
      out_.append(buf, static_cast<size_t>(n));
    }
    std::string result = out_;
    out_.clear();
    return result;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string out_;
};

class RedisCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kRedisCli, X_OK) != 0) {
      GTEST_SKIP() << "redis-cli is not installed (apt-get install redis-tools)";
    }
    GatewayOptions options;
    options.requirepass = password_;
    auto a = Gateway::Start(cluster_.AddNode(), options);
    auto b = Gateway::Start(cluster_.AddNode(), options);
    ASSERT_TRUE(a.ok() && b.ok());
    a_ = std::move(*a);
    b_ = std::move(*b);
  }
  void TearDown() override {
    if (a_) a_->Stop();
    if (b_) b_->Stop();
  }

  std::string password_ = "pw";
  testing::FakeCluster cluster_;
  std::unique_ptr<Gateway> a_, b_;
};

TEST_F(RedisCliTest, CommandsFromArgumentsAndStdin) {
  EXPECT_EQ(Cli(a_->port(), {"--no-auth-warning", "-a", "pw", "PING"}).ReadLines(1), "PONG\n");
  // redis-cli prints an error reply followed by an empty line, as with Redis.
  EXPECT_EQ(Cli(a_->port(), {"PING"}).ReadLines(2), "NOAUTH Authentication required.\n\n");
  EXPECT_EQ(Cli(a_->port(), {"--no-auth-warning", "-a", "pw"}, "ECHO \"a b\"\nPUBLISH ch x\n")
                .ReadLines(2),
            "a b\n0\n");
  // A RESP3 map, as redis-cli shows maps: "key value" lines.
  std::string hello =
      Cli(a_->port(), {"--no-auth-warning", "-a", "pw", "-3", "HELLO", "3"}).ReadLines(7);
  EXPECT_EQ(hello.substr(0, 36), "server redis\nversion 7.0.15\nproto 3\n");
  EXPECT_NE(hello.find("\nmode standalone\nrole master\nmodules \n"), std::string::npos) << hello;
}

TEST_F(RedisCliTest, SubscribersOnOneNodeGetMessagesPublishedOnAnother) {
  Cli sub(a_->port(), {"--no-auth-warning", "-a", "pw", "SUBSCRIBE", "news"});
  EXPECT_EQ(sub.ReadLines(3), "subscribe\nnews\n1\n");
  Cli psub(a_->port(), {"--no-auth-warning", "-a", "pw", "PSUBSCRIBE", "ne*"});
  EXPECT_EQ(psub.ReadLines(3), "psubscribe\nne*\n1\n");
  // The pattern subscription is confirmed; wait until node b knows it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (b_->stats().known_patterns < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(Cli(b_->port(), {"--no-auth-warning", "-a", "pw", "PUBLISH", "news", "hello world"})
                .ReadLines(1),
            "0\n");
  EXPECT_EQ(sub.ReadLines(3), "message\nnews\nhello world\n");
  EXPECT_EQ(psub.ReadLines(4), "pmessage\nne*\nnews\nhello world\n");
}

}  // namespace
}  // namespace peter::resp

// TcpTransport on its own, driven by the test's thread: what it promises to
// the runtime beside sending (WhenDrained, which Leave waits on).
#include <sys/socket.h>
#include <unistd.h>

#include <memory>

#include "asio.hpp"
#include "gtest/gtest.h"
#include "net_test_util.h"
#include "pastry/net/transport.h"
#include "spdlog/sinks/null_sink.h"

namespace peter::pastry::net::testing {
namespace {

Envelope ProbeFrom(const Endpoint& self) {
  Envelope e;
  e.sender = NodeHandle{NodeId(1, 1), self};
  e.body = Probe{1, false, false, 0};
  return e;
}

class TransportTest : public ::testing::Test {
 protected:
  TransportTest()
      : transport_(io_, TransportConfig{},
                   std::make_shared<spdlog::logger>("transport-test",
                                                    std::make_shared<spdlog::sinks::null_sink_mt>())) {}
  ~TransportTest() override {
    transport_.Shutdown();
    io_.poll();
  }

  // Runs the loop until `done` or 5 s.
  bool RunUntil(const bool& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(10));
    }
    return done;
  }

  asio::io_context io_;
  TcpTransport transport_;
};

TEST_F(TransportTest, WhenDrainedRunsAtOnceWhenNothingIsQueued) {
  int runs = 0;
  transport_.WhenDrained([&] { ++runs; });
  EXPECT_EQ(runs, 1);
}

// Queued frames: the callback waits for their write, and runs once.
TEST_F(TransportTest, WhenDrainedRunsOnceTheQueuedFramesAreWritten) {
  uint16_t port = 0;
  const int listener = ListenRaw(&port);  // the kernel completes the connect
  ASSERT_GE(listener, 0);
  const Endpoint to = Endpoint::FromIpv4(0x7f000001, port);
  transport_.Send(to, ProbeFrom(Endpoint::FromIpv4(0x7f000001, 1)));
  ASSERT_GT(transport_.queued_bytes(), 0u);
  int runs = 0;
  size_t queued_then = 1;
  transport_.WhenDrained([&] {
    ++runs;
    queued_then = transport_.queued_bytes();
  });
  bool drained = false;
  transport_.WhenDrained([&] { drained = true; });
  EXPECT_EQ(runs, 0) << "ran before the frame was written";
  ASSERT_TRUE(RunUntil(drained));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(queued_then, 0u);
  // Later drains do not run it again.
  transport_.Send(to, ProbeFrom(Endpoint::FromIpv4(0x7f000001, 1)));
  bool again = false;
  transport_.WhenDrained([&] { again = true; });
  ASSERT_TRUE(RunUntil(again));
  EXPECT_EQ(runs, 1);
  ::close(listener);
}

// Frames dropped with a connection that never opens count as drained too:
// Leave must not wait out its timeout for a peer that is gone.
TEST_F(TransportTest, WhenDrainedRunsWhenTheQueueIsDroppedWithItsConnection) {
  uint16_t port = 0;
  const int listener = ListenRaw(&port);
  ASSERT_GE(listener, 0);
  ::close(listener);  // nothing listens there now: the connect is refused
  transport_.Send(Endpoint::FromIpv4(0x7f000001, port), ProbeFrom(Endpoint::FromIpv4(0x7f000001, 1)));
  ASSERT_GT(transport_.queued_bytes(), 0u);
  bool drained = false;
  transport_.WhenDrained([&] { drained = true; });
  EXPECT_FALSE(drained);
  ASSERT_TRUE(RunUntil(drained));
  EXPECT_EQ(transport_.queued_bytes(), 0u);
}

}  // namespace
}  // namespace peter::pastry::net::testing

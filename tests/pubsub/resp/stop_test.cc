// The gateway on a backend's loop of the test's own: Gateway::Stop on a
// loop that no longer runs handlers must return (a hang fails the test at
// its ctest TIMEOUT) and still close the clients and drop the backend
// subscriptions; a read's PUBLISHes reach the backend between
// BeginPublishes and EndPublishes.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pubsub/resp/gateway.h"
#include "pubsub/resp/server.h"  // Asio
#include "tests/pubsub/resp/test_client.h"

namespace peter::resp {
namespace {

using testing::TestClient;

// Offers a loop of the test's own, and counts its live subscriptions.
class LoopBackend : public Backend {
 public:
  absl::StatusOr<std::unique_ptr<BackendSubscription>> Subscribe(std::string, MessageFn,
                                                                 ActiveFn) override {
    return std::unique_ptr<BackendSubscription>(new Held(live));
  }
  void Publish(std::string, pubsub::Payload, PublishDoneFn) override {}
  asio::io_context* loop() override { return &io; }

  asio::io_context io{1};
  std::atomic<int> live{0};

 private:
  struct Held : BackendSubscription {
    explicit Held(std::atomic<int>& n) : live(n) { ++live; }
    ~Held() override { --live; }
    std::atomic<int>& live;
  };
};

// The loop was stopped (io_context::stop) and its thread has returned, but
// the loop is not destroyed: the handler Stop posts never runs. Stop does
// the loop's part itself.
TEST(GatewayStopTest, ReturnsWhenTheBackendsLoopWasStopped) {
  LoopBackend backend;
  auto work = asio::make_work_guard(backend.io);
  std::thread loop([&] { backend.io.run(); });
  absl::StatusOr<std::unique_ptr<Gateway>> gateway = Gateway::Start(backend, {});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  TestClient client((*gateway)->port());
  ASSERT_EQ(client.Call({"PING"}), "+PONG\r\n");
  EXPECT_EQ(backend.live, 1);  // the pattern directory's topic
  backend.io.stop();
  loop.join();
  (*gateway)->Stop();
  EXPECT_TRUE(client.WaitClosed());
  EXPECT_EQ(backend.live, 0);
  gateway->reset();
}

// Records the calls the gateway makes on it; answers each publish from a
// handler of its own (never inside Publish).
class RecordingBackend : public Backend {
 public:
  absl::StatusOr<std::unique_ptr<BackendSubscription>> Subscribe(std::string, MessageFn,
                                                                 ActiveFn) override {
    return std::unique_ptr<BackendSubscription>(new BackendSubscription());
  }
  void Publish(std::string topic, pubsub::Payload payload, PublishDoneFn done) override {
    if (topic.rfind("__peter", 0) == 0) return;  // the pattern directory's
    calls.push_back(absl::StrCat(depth, " publish ", std::string(payload)));
    asio::post(io, [done = std::move(done)]() mutable { done(1); });
  }
  void BeginPublishes() override {
    ++depth;
    calls.push_back("begin");
  }
  void EndPublishes() override {
    calls.push_back("end");
    --depth;
  }
  asio::io_context* loop() override { return &io; }

  asio::io_context io{1};
  std::vector<std::string> calls;  // loop thread
  int depth = 0;
};

// PUBLISHes sent in one write: each reaches the backend inside a
// BeginPublishes/EndPublishes pair of the read that brought it (the
// backend may hold them until the end), and the replies come in order.
TEST(GatewayLoopTest, PublishesOfAReadComeBetweenBeginAndEndPublishes) {
  RecordingBackend backend;
  auto work = asio::make_work_guard(backend.io);
  std::thread loop([&] { backend.io.run(); });
  absl::StatusOr<std::unique_ptr<Gateway>> gateway = Gateway::Start(backend, {});
  ASSERT_TRUE(gateway.ok()) << gateway.status();
  TestClient client((*gateway)->port());
  client.Send(testing::Multibulk({"PUBLISH", "c", "m0"}) +
              testing::Multibulk({"PUBLISH", "c", "m1"}) +
              testing::Multibulk({"PUBLISH", "c", "m2"}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.Read(), ":0\r\n");  // no subscriber
  (*gateway)->Stop();
  std::vector<std::string> calls;
  asio::post(backend.io, [&] {
    calls = backend.calls;
    backend.io.stop();
  });
  loop.join();
  // Each publish inside a pair (depth 1); a read's commands may come in
  // more than one read, so more than one pair may show.
  std::vector<std::string> publishes;
  int depth = 0;
  for (const std::string& c : calls) {
    if (c == "begin") ++depth;
    if (c == "end") --depth;
    if (c.find(" publish ") != std::string::npos) publishes.push_back(c);
    EXPECT_LE(depth, 1) << c;
  }
  EXPECT_EQ(depth, 0);
  EXPECT_EQ(publishes, (std::vector<std::string>{"1 publish m0", "1 publish m1", "1 publish m2"}));
}

}  // namespace
}  // namespace peter::resp

// Gateway::Stop on a backend's loop that no longer runs handlers: it must
// return (a hang fails the test at its ctest TIMEOUT) and still close the
// clients and drop the backend subscriptions.
#include <atomic>
#include <memory>
#include <thread>

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
  void Publish(std::string, std::string, PublishDoneFn) override {}
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

}  // namespace
}  // namespace peter::resp

// NodeImpl::Call when the network thread's loop was stopped
// (io_context::stop) but not destroyed: the loop neither runs nor drops the
// call, so a call that waited for it blocked for good.
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "asio/io_context.hpp"
#include "gtest/gtest.h"
#include "peter/node.h"
#include "pubsub/node/node_impl.h"

namespace peter {
namespace {

TEST(NodeStoppedLoopTest, CallsFailInsteadOfWaitingForAStoppedLoop) {
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(NodeOptions{});
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE((*node)->WaitUntilActive(absl::Seconds(20)).ok());
  asio::io_context& loop = node_internal::ImplOf(**node).runtime().io_context();
  loop.stop();

  // On a thread of its own, so that a hang fails the test instead of
  // hanging it: if Subscribe is still waiting, the loop is run again (on a
  // thread of the test's) until the call it waits for has run.
  std::promise<absl::Status> subscribed;
  std::thread subscriber([&] {
    subscribed.set_value((*node)->Subscribe("t", [](const Message&) {}).status());
  });
  std::future<absl::Status> result = subscribed.get_future();
  const bool returned = result.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  EXPECT_TRUE(returned) << "Subscribe waits for a stopped loop";
  if (!returned) {
    loop.restart();
    std::thread runner([&] { loop.run(); });
    result.wait();
    loop.stop();
    runner.join();
    subscriber.join();
    return;
  }
  subscriber.join();
  EXPECT_EQ(result.get().code(), absl::StatusCode::kFailedPrecondition);

  // The other calls that wait for the network thread return their
  // "stopped" answers too.
  EXPECT_EQ((*node)->pubsub_stats().topics, 0u);
  EXPECT_TRUE((*node)->topics().empty());
}

}  // namespace
}  // namespace peter

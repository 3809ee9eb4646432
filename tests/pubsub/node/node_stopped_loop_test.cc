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
#include "tests/pastry/net/stopped_loop_call.h"

namespace peter {
namespace {

TEST(NodeStoppedLoopTest, CallsFailInsteadOfWaitingForAStoppedLoop) {
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(NodeOptions{});
  ASSERT_TRUE(node.ok()) << node.status();
  ASSERT_TRUE((*node)->WaitUntilActive(absl::Seconds(20)).ok());
  asio::io_context& loop = node_internal::ImplOf(**node).runtime().io_context();
  loop.stop();

  std::optional<absl::Status> subscribed =
      pastry::net::testing::CallBesideStoppedLoop<absl::Status>(loop, [&] {
        return (*node)->Subscribe("t", [](const Message&) {}).status();
      });
  ASSERT_TRUE(subscribed.has_value()) << "Subscribe waits for a stopped loop";
  EXPECT_EQ(subscribed->code(), absl::StatusCode::kFailedPrecondition);

  // The other calls that wait for the network thread return their
  // "stopped" answers too.
  EXPECT_EQ((*node)->pubsub_stats().topics, 0u);
  EXPECT_TRUE((*node)->topics().empty());
}

}  // namespace
}  // namespace peter

// The runtime's blocking calls when its loop was stopped (io_context::stop)
// but not destroyed: the loop neither runs nor drops what they posted, so
// they waited for good (NodeImpl::Call had the same fault, b9613d7).
#include <chrono>
#include <future>
#include <thread>

#include "asio/io_context.hpp"
#include "gtest/gtest.h"
#include "tests/pastry/net/net_test_util.h"
#include "tests/pastry/net/stopped_loop_call.h"

namespace peter::pastry::net {
namespace {

using testing::LoopbackOptions;
using testing::StartNode;

TEST(StoppedLoopTest, SnapshotAndLeaveReturnInsteadOfWaitingForAStoppedLoop) {
  auto node = StartNode(LoopbackOptions());
  ASSERT_NE(node, nullptr);
  ASSERT_TRUE(node->WaitUntilActive(absl::Seconds(10)).ok());
  asio::io_context& loop = node->io_context();
  loop.stop();

  std::optional<NodeSnapshot> snapshot =
      testing::CallBesideStoppedLoop<NodeSnapshot>(loop, [&] {
        node->Leave(absl::Seconds(60));
        return node->Snapshot();
      });
  ASSERT_TRUE(snapshot.has_value()) << "Leave or Snapshot waits for a stopped loop";
  const NodeSnapshot& s = *snapshot;
  EXPECT_EQ(s.self, node->self());
  EXPECT_FALSE(s.active);  // not asked of the node: its loop is stopped
}

}  // namespace
}  // namespace peter::pastry::net

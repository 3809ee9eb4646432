// The runtime's blocking calls when its loop was stopped (io_context::stop)
// but not destroyed: the loop neither runs nor drops what they posted, so
// they waited for good (NodeImpl::Call had the same fault, b9613d7).
#include <chrono>
#include <future>
#include <thread>

#include "asio/io_context.hpp"
#include "gtest/gtest.h"
#include "tests/pastry/net/net_test_util.h"

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

  // On a thread of its own, so that a hang fails the test instead of
  // hanging it: if the calls still wait, the loop is run again (on a
  // thread of the test's) until they have returned.
  std::promise<NodeSnapshot> snapshot;
  std::thread caller([&] {
    node->Leave(absl::Seconds(60));
    snapshot.set_value(node->Snapshot());
  });
  std::future<NodeSnapshot> result = snapshot.get_future();
  const bool returned = result.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  EXPECT_TRUE(returned) << "Leave or Snapshot waits for a stopped loop";
  if (!returned) {
    loop.restart();
    std::thread runner([&] { loop.run(); });
    result.wait();
    loop.stop();
    runner.join();
    caller.join();
    return;
  }
  caller.join();
  const NodeSnapshot s = result.get();
  EXPECT_EQ(s.self, node->self());
  EXPECT_FALSE(s.active);  // not asked of the node: its loop is stopped
}

}  // namespace
}  // namespace peter::pastry::net

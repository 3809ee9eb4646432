// The runtime's passes over the node's due work (Node::Tick) are bounded
// (RuntimeImpl::kMaxJobsPerTick): a timer that schedules itself again at
// no delay leaves the loop free to run its other handlers (posted calls,
// socket reads) between passes.
#include <cstdio>
#include <functional>
#include <future>
#include <memory>

#include "gtest/gtest.h"
#include "tests/pastry/net/net_test_util.h"

namespace peter::pastry::net {
namespace {

using testing::LoopbackOptions;
using testing::StartNode;

class NoApp final : public Application {
 public:
  void Deliver(const RouteMessage&) override {}
};

TEST(TickTest, ATimerReschedulingItselfAtNoDelayLetsAPostedCallRun) {
  auto node = StartNode(LoopbackOptions());
  ASSERT_NE(node, nullptr);
  ASSERT_TRUE(node->WaitUntilActive(absl::Seconds(10)).ok());
  NoApp app;
  std::unique_ptr<Overlay> overlay;
  // The chain ends by itself after kChain runs, so that a loop that never
  // yields to it fails the test instead of hanging it; it ends early once
  // the posted call has run. Node's thread only.
  constexpr int kChain = 100000;
  int runs = 0;
  bool stop = false;
  std::function<void()> again = [&] {
    if (++runs < kChain && !stop) overlay->ScheduleTimer(absl::ZeroDuration(), again);
  };
  std::promise<int> runs_seen;
  node->Post([&](Node& n) {
    overlay = n.RegisterApplication(kFirstUserAppId, &app);
    overlay->ScheduleTimer(absl::ZeroDuration(), again);
    // Queued on the loop behind this call (and the chain's first pass).
    node->Post([&](Node&) {
      stop = true;
      runs_seen.set_value(runs);
    });
  });
  const int runs_before = runs_seen.get_future().get();
  EXPECT_GT(runs_before, 0);
  EXPECT_LT(runs_before, kChain) << "the posted call waited for the whole chain";
  std::printf("the posted call ran after %d of the chain's runs\n", runs_before);
  node->Post([&](Node&) { overlay.reset(); });
  (void)node->Snapshot();  // waits for the post above
}

}  // namespace
}  // namespace peter::pastry::net

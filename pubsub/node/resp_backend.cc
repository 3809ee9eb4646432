#include "pubsub/node/resp_backend.h"

#include <utility>

#include "pubsub/node/node_impl.h"

namespace peter::node_internal {
namespace {

// Subscription's guarantees are the Backend's: its callbacks run one at a
// time, and none after Cancel returns. The gateway's callbacks only queue
// their work for its own loop, so messages and publish completions are
// called on the node's network thread, not handed to its delivery thread
// first: one thread hand-off fewer per message.
class HeldSubscription final : public resp::BackendSubscription {
 public:
  explicit HeldSubscription(Subscription s) : subscription_(std::move(s)) {}

 private:
  Subscription subscription_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<resp::BackendSubscription>> NodeBackend::Subscribe(
    std::string topic, MessageFn on_message, ActiveFn on_active) {
  SubscribeOptions options;
  options.on_active = std::move(on_active);
  absl::StatusOr<Subscription> s = ImplOf(*node_).SubscribeOnNetworkThread(
      std::move(topic),
      [on_message = std::move(on_message)](const Message& m) { on_message(m.topic, m.payload); },
      std::move(options));
  if (!s.ok()) return s.status();
  return std::make_unique<HeldSubscription>(std::move(*s));
}

void NodeBackend::Publish(std::string topic, std::string payload, PublishDoneFn done) {
  if (!done) done = [](absl::StatusOr<uint64_t>) {};
  ImplOf(*node_).PublishDoneOnNetworkThread(std::move(topic), std::move(payload), std::move(done));
}

}  // namespace peter::node_internal

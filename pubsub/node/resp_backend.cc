#include "pubsub/node/resp_backend.h"

#include <utility>

#include "pubsub/node/node_impl.h"

namespace peter::node_internal {
namespace {

// Subscription's guarantees are the Backend's: its callbacks run one at a
// time, and none after Cancel returns. A gateway on the node's own loop
// (loop()) calls from the network thread: its subscriptions and publishes
// are the node's own, called back there, with no thread hand-off at all. A
// gateway on a thread of its own (GatewayOptions::own_thread) gets messages
// and publish completions on the network thread too (its callbacks only
// queue their work for its loop), not handed to the delivery thread first.
class HeldSubscription final : public resp::BackendSubscription {
 public:
  explicit HeldSubscription(Subscription s) : subscription_(std::move(s)) {}

 private:
  Subscription subscription_;
};

}  // namespace

asio::io_context* NodeBackend::loop() { return &ImplOf(*node_).runtime().io_context(); }

bool NodeBackend::AtEndOfWork(absl::AnyInvocable<void()> fn) {
  return ImplOf(*node_).runtime().AtEndOfCall(std::move(fn));
}

void NodeBackend::BeginPublishes() {
  NodeImpl& impl = ImplOf(*node_);
  if (impl.runtime().OnNodeThread()) impl.HoldHerePublishes();
}

void NodeBackend::EndPublishes() {
  NodeImpl& impl = ImplOf(*node_);
  if (impl.runtime().OnNodeThread()) impl.ReleaseHerePublishes();
}

absl::StatusOr<std::unique_ptr<resp::BackendSubscription>> NodeBackend::Subscribe(
    std::string topic, MessageFn on_message, ActiveFn on_active) {
  NodeImpl& impl = ImplOf(*node_);
  if (impl.runtime().OnNodeThread()) {
    absl::StatusOr<Subscription> s = impl.SubscribeHere(
        std::move(topic),
        [on_message = std::move(on_message)](const Message& m) { on_message(m.topic, m.payload); },
        std::move(on_active));
    if (!s.ok()) return s.status();
    return std::make_unique<HeldSubscription>(std::move(*s));
  }
  SubscribeOptions options;
  options.on_active = std::move(on_active);
  absl::StatusOr<Subscription> s = ImplOf(*node_).SubscribeOnNetworkThread(
      std::move(topic),
      [on_message = std::move(on_message)](const Message& m) { on_message(m.topic, m.payload); },
      std::move(options));
  if (!s.ok()) return s.status();
  return std::make_unique<HeldSubscription>(std::move(*s));
}

void NodeBackend::Publish(std::string topic, pubsub::Payload payload, PublishDoneFn done) {
  if (!done) done = [](absl::StatusOr<uint64_t>) {};
  NodeImpl& impl = ImplOf(*node_);
  if (impl.runtime().OnNodeThread()) {
    return impl.PublishHere(std::move(topic), std::move(payload), std::move(done));
  }
  impl.PublishDoneOnNetworkThread(std::move(topic), std::move(payload), std::move(done));
}

}  // namespace peter::node_internal

// The Redis gateway's Backend (pubsub/resp/backend.h) on an embedded node:
// gateway subscriptions are peter::Subscriptions, publishes are confirmed
// by the topic's root. Used by `peter node --resp`: the gateway then runs
// on the node's network thread (docs/resp.md, "Threads").
#ifndef PETER_PUBSUB_NODE_RESP_BACKEND_H_
#define PETER_PUBSUB_NODE_RESP_BACKEND_H_

#include "peter/node.h"
#include "pubsub/resp/backend.h"

namespace peter::node_internal {

class NodeBackend final : public resp::Backend {
 public:
  // `node` must outlive the backend and every subscription it made.
  explicit NodeBackend(Node* node) : node_(node) {}

  absl::StatusOr<std::unique_ptr<resp::BackendSubscription>> Subscribe(
      std::string topic, MessageFn on_message, ActiveFn on_active) override;
  void Publish(std::string topic, pubsub::Payload payload, PublishDoneFn done) override;
  // The node's network thread: a gateway started on this backend runs
  // there (unless GatewayOptions::own_thread). Called from that thread,
  // Subscribe and Publish are the node's own, with callbacks there.
  asio::io_context* loop() override;
  // Inside a call the node's runtime posted (the gateway's publishes, the
  // work they made due): NodeRuntime::AtEndOfCall.
  bool AtEndOfWork(absl::AnyInvocable<void()> fn) override;
  // On the network thread: NodeImpl::HoldHerePublishes and its release
  // (the publishes as one call into the node, NodeRuntime::RunAsCall).
  // Elsewhere nothing waits.
  void BeginPublishes() override;
  void EndPublishes() override;

 private:
  Node* node_;
};

}  // namespace peter::node_internal

#endif  // PETER_PUBSUB_NODE_RESP_BACKEND_H_

// Private to the embedded node (include/peter/node.h): its implementation,
// shared with the daemon's admin endpoint, which reads the overlay and Scribe
// state through it.
//
// Threads: the runtime's network thread owns the overlay and the Scribe
// (scribe_ and subs_ are touched only there, or after that thread has been
// joined); the delivery thread runs user callbacks. Subscriptions reach the
// node through a Control block, which outlives the node.
#ifndef PETER_PUBSUB_NODE_NODE_IMPL_H_
#define PETER_PUBSUB_NODE_NODE_IMPL_H_

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "pastry/net/loop_call.h"
#include "pastry/net/node_runtime.h"
#include "peter/node.h"
#include "pubsub/node/delivery_thread.h"
#include "pubsub/scribe.h"

namespace peter {

namespace node_internal {

// Lets a subscription call into its node if it still exists.
struct Control {
  std::mutex mu;
  std::condition_variable cv;
  NodeImpl* impl = nullptr;  // guarded by mu; null once the node stops
  int users = 0;             // guarded by mu: calls in progress through impl
};

}  // namespace node_internal

struct Subscription::State : node_internal::DeliveryThread::Owner {
  std::shared_ptr<node_internal::Control> control;
  std::string topic;
  MessageHandler handler;
  std::function<void(bool)> on_active;
  MessageHandler on_anycast;

  pubsub::SubscriptionId scribe_id = 0;  // network thread
  std::atomic<size_t> pending{0};        // queued for the handlers
  std::atomic<uint64_t> dropped{0};

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  bool active = false;  // guarded by mu
  bool closed = false;  // guarded by mu: cancelled, or the node stopped

  // The handler runs on the network thread instead of the delivery thread
  // (NodeImpl::SubscribeOnNetworkThread), under inline_mu, unless
  // inline_cancelled.
  bool inline_delivery = false;
  std::mutex inline_mu;
  bool inline_cancelled = false;  // guarded by inline_mu, or network thread if on_loop

  // Made on the network thread by its own user (NodeImpl::SubscribeHere):
  // handler and on_active run there, without a lock, and the subscription
  // is cancelled there (inline_cancelled is the network thread's).
  bool on_loop = false;
};

namespace node_internal {

class NodeImpl {
 public:
  using State = Subscription::State;

  explicit NodeImpl(NodeOptions options);
  // Stops the delivery thread, then the network thread.
  ~NodeImpl();

  absl::Status Start();

  pastry::net::NodeRuntime& runtime() { return *runtime_; }
  // REQUIRES: on the network thread (inside runtime().Post or Call).
  pubsub::Scribe& scribe() { return *scribe_; }

  // Runs `fn` on the network thread and returns its result; `on_stop` if
  // the node stopped first, or its loop was stopped (io_context::stop) before
  // `fn` started: then `fn` never runs. REQUIRES: not on the network thread.
  template <typename T, typename F>
  T Call(F fn, T on_stop);

  absl::StatusOr<Subscription> Subscribe(std::string topic, MessageHandler handler,
                                         SubscribeOptions options);
  // As Subscribe, but `handler` runs on the network thread, one hand-off
  // fewer per message: only for handlers that return at once (the Redis
  // gateway's, which queue the message for their own thread). on_active
  // still runs on the delivery thread. No handler runs once the
  // subscription is cancelled (Cancel waits for a running one).
  absl::StatusOr<Subscription> SubscribeOnNetworkThread(std::string topic,
                                                        MessageHandler handler,
                                                        SubscribeOptions options);
  void Unsubscribe(const std::shared_ptr<State>& state);
  // `done` runs on the network thread.
  void PublishOnLoop(std::string topic, pubsub::Payload payload, pubsub::PublishCallback done);
  void Publish(std::string topic, std::string payload, PublishCallback done);
  // As Publish, but `done` runs on the network thread (see
  // SubscribeOnNetworkThread for when that is right). Publishes that arrive
  // while earlier ones wait for the network thread are handed over with
  // them, as one batch (one post and wake-up for the batch, not each).
  void PublishDoneOnNetworkThread(std::string topic, pubsub::Payload payload,
                                  pubsub::PublishCallback done);
  absl::StatusOr<uint64_t> PublishAndWait(std::string topic, std::string payload);

  // --- For a user that runs on the network thread itself (the Redis
  // gateway of `peter node --resp`, pubsub/node/resp_backend.h): no hand-off
  // to another thread either way. REQUIRES: on the network thread
  // (runtime().OnNodeThread()). ---
  // Subscribes at once. `handler` runs on the network thread, from inside
  // the node's work (it may publish and cancel subscriptions there, not
  // subscribe), `on_active` too but never inside this call. Fails
  // (FailedPrecondition) when called from inside a call into the node.
  // Cancel the subscription on the network thread.
  absl::StatusOr<Subscription> SubscribeHere(std::string topic, MessageHandler handler,
                                             std::function<void(bool)> on_active);
  // Publishes: handed to Scribe after the current handler (publishes made
  // in one handler go together); `done` runs on the network thread, never
  // inside this call.
  void PublishHere(std::string topic, pubsub::Payload payload, pubsub::PublishCallback done);
  // Between these (on the network thread, outside the node's work; they
  // nest), PublishHere's publishes wait for the end, which hands them to
  // Scribe at once as one call into the node (NodeRuntime::RunAsCall), in
  // order, instead of in a handler posted for them. Where the runtime
  // refuses that call they are posted as before.
  void HoldHerePublishes() { ++here_holds_; }
  void ReleaseHerePublishes();
  void Anycast(std::string topic, std::string payload, AnycastCallback done);
  PubSubStats Stats();
  std::vector<TopicStatus> Topics();

 private:
  // Network thread.
  absl::StatusOr<Subscription> SubscribeWith(std::string topic, MessageHandler handler,
                                             SubscribeOptions options, bool inline_delivery);
  absl::Status SubscribeOnLoop(const std::shared_ptr<State>& state,
                               const SubscribeOptions& options);
  void Enqueue(const std::shared_ptr<State>& state, const pubsub::Delivery& d,
               bool anycast);
  void SetActive(const std::shared_ptr<State>& state, bool active);
  // Runs the publishes PublishDoneOnNetworkThread queued, in order.
  void RunQueuedPublishes();
  // Whether the network thread's loop was stopped (io_context::stopped):
  // it runs no handler until it is destroyed.
  bool LoopStopped();
  // Posts `fn` to run on the delivery thread (not for any subscription).
  void Deliver(std::function<void()> fn) { delivery_.Post(std::move(fn)); }

  NodeOptions options_;
  std::shared_ptr<Control> control_ = std::make_shared<Control>();
  std::unique_ptr<pubsub::Scribe> scribe_;
  std::unique_ptr<pastry::net::NodeRuntime> runtime_;
  DeliveryThread delivery_;
  std::atomic<uint64_t> slow_consumer_drops_{0};
  // Network thread: live subscriptions, keyed by their Scribe id.
  absl::flat_hash_map<pubsub::SubscriptionId, std::shared_ptr<State>> subs_;
  struct QueuedPublish {
    std::string topic;
    pubsub::Payload payload;  // the gateway's, shared as it is
    pubsub::PublishCallback done;  // moved through to Scribe as it is
  };
  std::mutex publish_mu_;
  std::vector<QueuedPublish> publish_queue_;  // guarded by publish_mu_
  std::vector<QueuedPublish> publishing_;     // network thread
  // PublishHere's: network thread only.
  std::vector<QueuedPublish> here_queue_;
  std::vector<QueuedPublish> here_publishing_;
  size_t here_holds_ = 0;  // HoldHerePublishes without its release
  void RunHerePublishes();
};

template <typename T, typename F>
T NodeImpl::Call(F fn, T on_stop) {
  // The posted call is dropped (so the call returns on_stop) when the
  // runtime is stopping.
  return pastry::net::CallOnLoop(
      [this](auto handler) {
        runtime_->Post([handler = std::move(handler)](pastry::Node&) mutable { handler(); });
      },
      [this] { return LoopStopped(); }, std::move(fn), std::move(on_stop));
}

}  // namespace node_internal
}  // namespace peter

#endif  // PETER_PUBSUB_NODE_NODE_IMPL_H_

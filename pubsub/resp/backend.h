// The gateway's view of the cluster: subscribe to and publish on topics.
// The embedded node (peter::Node) implements it with Scribe; tests implement
// it with an in-process bus. The gateway never sees Pastry or Scribe.
#ifndef PETER_PUBSUB_RESP_BACKEND_H_
#define PETER_PUBSUB_RESP_BACKEND_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pubsub/payload.h"

namespace asio {
class io_context;
}

namespace peter::resp {

// Destroying it unsubscribes.
class BackendSubscription {
 public:
  virtual ~BackendSubscription() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  using MessageFn = std::function<void(std::string_view topic, std::string_view payload)>;
  using ActiveFn = std::function<void(bool active)>;
  // Subscribes this node to `topic` (cluster-wide). on_active(true) once the
  // node is on the topic's tree: anything published after that reaches
  // on_message. Callbacks may run on any thread, but never concurrently for
  // one subscription; none runs after the subscription is destroyed returns.
  virtual absl::StatusOr<std::unique_ptr<BackendSubscription>> Subscribe(
      std::string topic, MessageFn on_message, ActiveFn on_active) = 0;
  // Publishes cluster-wide; `done` (any thread) gets the message's sequence
  // number once the topic's root has accepted it, or an error. The backend
  // calls it at most once, or destroys it uncalled (a node that stops drops
  // what it holds): the gateway answers the PUBLISH then. Move-only, so the
  // gateway sees the last of it go (Scribe's own callback type: the node
  // takes it as it is, no wrapper allocated per publish).
  using PublishDoneFn = absl::AnyInvocable<void(absl::StatusOr<uint64_t> seq)>;
  // `payload` is one shared block (pubsub::Payload): the backend keeps it
  // as it is, no copy of the bytes.
  virtual void Publish(std::string topic, pubsub::Payload payload, PublishDoneFn done) = 0;

  // The event loop of the thread the backend works on, if it offers it:
  // the gateway then runs on it (unless GatewayOptions::own_thread), and
  // calls Subscribe, Publish and destroys subscriptions on that thread,
  // with no hand-off between threads. Called there, the backend calls back
  // there too: messages and publish completions possibly from inside its
  // own work (the gateway may publish and destroy subscriptions in them,
  // but not subscribe), never inside the Subscribe or Publish call itself
  // (nor on_active inside Subscribe). Handlers on the loop never block. Null (the default): callbacks may come from any
  // thread, and the gateway runs a thread of its own.
  virtual asio::io_context* loop() { return nullptr; }
  // With loop(), inside a callback of the backend's on the loop: may queue
  // `fn` to run once the backend's current work has finished, in the same
  // handler of the loop, before any other handler, and then returns true.
  // False (the default; `fn` dropped): the caller posts it itself.
  virtual bool AtEndOfWork(absl::AnyInvocable<void()> fn) { return false; }
  // With loop(), on the loop, in a handler of the gateway's own (never
  // inside a callback of the backend's): Publish calls between these may
  // wait for EndPublishes, which then does them, in order, as the backend's
  // own work in this handler: callbacks they make due may run inside
  // EndPublishes (as in any call of the backend's; AtEndOfWork works
  // there). They nest. Default: nothing waits.
  virtual void BeginPublishes() {}
  virtual void EndPublishes() {}
};

}  // namespace peter::resp

#endif  // PETER_PUBSUB_RESP_BACKEND_H_

// The gateway's view of the cluster: subscribe to and publish on topics.
// The embedded node (peter::Node) implements it with Scribe; tests implement
// it with an in-process bus. The gateway never sees Pastry or Scribe.
#ifndef PETER_PUBSUB_RESP_BACKEND_H_
#define PETER_PUBSUB_RESP_BACKEND_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

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
  // number once the topic's root has accepted it, or an error. (The node's
  // own callback type: the node takes it as it is, no wrapper allocated per
  // publish.)
  using PublishDoneFn = std::function<void(absl::StatusOr<uint64_t> seq)>;
  virtual void Publish(std::string topic, std::string payload, PublishDoneFn done) = 0;
};

}  // namespace peter::resp

#endif  // PETER_PUBSUB_RESP_BACKEND_H_

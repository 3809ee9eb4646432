// What a local subscriber asks for and receives.
#ifndef PETER_PUBSUB_SUBSCRIPTION_H_
#define PETER_PUBSUB_SUBSCRIPTION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

namespace peter::pubsub {

// One message as a local subscriber receives it.
struct Delivery {
  std::string_view topic;
  uint64_t seq = 0;
  std::string_view payload;
};

// The callbacks run on the Scribe's thread, inside its work (a delivery of
// a publish numbered at once, inside Scribe::Publish), and must not throw:
// an exception leaves the Scribe's state half-updated.
struct SubscribeOptions {
  // Called for each message of the topic, in sequence order, once each.
  std::function<void(const Delivery&)> on_message;
  // Called with true when this node is on the topic's tree (a message
  // published afterwards will be delivered), false when it falls off (its
  // parent failed) until it is back. May be empty.
  std::function<void(bool active)> on_active;
  // Reliable: gaps (after a tree repair, a lost message) are filled from
  // the replay buffers along the tree. Best effort: gaps are skipped.
  bool reliable = false;
  // Reliable only: start from this sequence number if still kept, instead
  // of from the first message published after the subscription.
  std::optional<uint64_t> since_seq;
  // Anycast: offered a message sent with Scribe::Anycast (seq is 0);
  // returns true to accept it, which ends the search. Empty: this
  // subscription takes no anycasts.
  std::function<bool(const Delivery&)> on_anycast;
};

using SubscriptionId = uint64_t;

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_SUBSCRIPTION_H_

// The overlay's application interface: the common API of structured
// overlays (Dabek et al., "Towards a Common API for Structured Peer-to-Peer
// Overlays", IPTPS 2003). Applications such as Scribe are built on it alone.
//
// Threading: every upcall runs on the node's event-loop thread, and the
// Overlay methods must be called from that thread too (the networked runtime
// offers a thread-safe wrapper that posts to it).
#ifndef PETER_PASTRY_APPLICATION_H_
#define PETER_PASTRY_APPLICATION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "peter/pastry/node_handle.h"
#include "peter/pastry/node_id.h"

namespace peter::pastry {

// Identifies an application on a node; messages carry it so several
// applications can share one node. Ids below 16 are reserved for Peter.
using AppId = uint32_t;
inline constexpr AppId kFirstUserAppId = 16;

// A message as an application sees it at each hop.
struct RouteMessage {
  // Absent for a message sent straight to a node (Route with no key).
  std::optional<NodeId> key;
  NodeHandle source;         // the node that called Route
  NodeHandle previous_hop;   // the node that handed it to us (source at hop 0)
  int hops = 0;              // overlay hops taken so far
  std::string payload;       // the application's bytes; Forward may rewrite
};

class Application {
 public:
  virtual ~Application() = default;

  // Called at every node a routed message passes through, the source
  // included, before it is sent on to `next_hop`. The application may modify
  // `msg.payload`, change `next_hop`, or return false to consume the message
  // (it then goes no further). Not called at the node that delivers it.
  virtual bool Forward(RouteMessage& msg, NodeHandle& next_hop) { return true; }

  // Called at the key's root (the live node numerically closest to the key),
  // or at the hinted node for a message routed without a key.
  virtual void Deliver(const RouteMessage& msg) = 0;

  // Called when `node` joins (true) or leaves (false) this node's leaf set.
  virtual void Update(const NodeHandle& node, bool joined) {}
};

// What an application holds to talk to the overlay; returned by the node when
// the application registers.
class Overlay {
 public:
  virtual ~Overlay() = default;

  // Routes `payload` toward the root of `key`. With a `hint`, the first hop
  // is the hinted node. Without a key, the message goes straight to `hint`
  // and is delivered there. REQUIRES: key or hint.
  virtual void Route(std::optional<NodeId> key, std::string payload,
                     std::optional<NodeHandle> hint = std::nullopt) = 0;

  // Up to k nodes (this one included) that would become the key's root if
  // those closer failed, closest first, drawn from the leaf set.
  // REQUIRES: k <= leaf-set size + 1.
  virtual std::vector<NodeHandle> ReplicaSet(const NodeId& key, int k) const = 0;

  // Changes whenever the leaf set does (a member added or removed, or one's
  // handle replaced), so an application may keep what it derived from
  // ReplicaSet or LeafSet until then (Scribe keeps each topic's replica
  // set rather than computing it per publish).
  virtual uint64_t LeafSetVersion() const = 0;

  // This node's handle and its current leaf set.
  virtual NodeHandle LocalHandle() const = 0;
  virtual std::vector<NodeHandle> LeafSet() const = 0;

  // True once this node may act as a root (its leaf set has been confirmed).
  virtual bool IsActive() const = 0;

  // The node's clock and timers, so an application needs no I/O of its own
  // (FreePastry's Endpoint.scheduleMessage). `fn` runs on the node's thread
  // at or after `delay` from now, unless cancelled first; a node that has
  // left runs no more timers.
  using TimerId = uint64_t;
  virtual absl::Time Now() const = 0;
  virtual TimerId ScheduleTimer(absl::Duration delay, std::function<void()> fn) = 0;
  virtual void CancelTimer(TimerId id) = 0;
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_APPLICATION_H_

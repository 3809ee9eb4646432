// The overlay's messages as plain C++ values. The core reads and writes only
// these; pastry/wire/ turns them into Cap'n Proto frames and back.
#ifndef PETER_PASTRY_CORE_MESSAGES_H_
#define PETER_PASTRY_CORE_MESSAGES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "peter/pastry/application.h"
#include "peter/pastry/node_handle.h"
#include "peter/pastry/node_id.h"

namespace peter::pastry {

// Version of the wire protocol spoken by this build. A node accepts frames of
// any version >= kMinProtocolVersion and drops (and counts) the rest.
//   1: the first.
//   2: a RouteAck may name several route ids (RouteAck::ids, the wire's
//      `ids` list). A node acknowledges a peer's route messages in batches
//      only if that peer's own route frames carry version >= 2
//      (kBatchedAckVersion); a version-1 peer gets one RouteAck per route
//      message, at once, as before.
inline constexpr uint16_t kProtocolVersion = 2;
inline constexpr uint16_t kMinProtocolVersion = 1;
inline constexpr uint16_t kBatchedAckVersion = 2;

enum class RouteKind : uint8_t {
  kApp = 0,     // an application's message
  kJoin = 1,    // a join request routed toward the joiner's own id
  kLookup = 2,  // a lookup whose root answers the source (admin /route)
};

// A message routed hop by hop toward `key` (or sent straight to a node).
// Each hop acknowledges it to the previous one (a RouteAck naming `id`).
struct RouteMsg {
  uint64_t id = 0;  // chosen by the sending hop, echoed in RouteAck
  RouteKind kind = RouteKind::kApp;
  // Chosen by the source; a kLookup's answer echoes it.
  uint64_t request_id = 0;
  AppId app = 0;
  std::optional<NodeId> key;
  NodeHandle source;
  uint16_t hops = 0;
  // Ids of the nodes the message has visited; recorded only when `trace`.
  bool trace = false;
  std::vector<NodeId> path;
  std::string payload;
  // kJoin: routing-table entries collected along the way (each hop adds
  // the row it shares with the joiner, and itself).
  std::vector<NodeHandle> join_rows;
};

// Acknowledges route messages received from the acknowledging node's peer:
// every id the receiver got from that peer in one batch of work (at most
// kMaxAckIds per frame), or a single one (version-1 peers, see
// kProtocolVersion). Never holds 0 (an untracked hop is not acknowledged).
struct RouteAck {
  static constexpr size_t kMaxAckIds = 1024;
  std::vector<uint64_t> ids;
};

// Sent by the root of a join to the joiner.
struct JoinReply {
  std::vector<NodeHandle> rows;
  std::vector<NodeHandle> leaf_set;
};

// Liveness and round-trip probe. Also announces a joining node to its future
// leaf-set neighbours, and asks for the receiver's leaf set.
struct Probe {
  uint64_t nonce = 0;
  bool joining = false;
  // The receiver replies with its leaf set unless its current leaf-set
  // version equals `known_leaf_version`.
  bool want_leaf_set = false;
  uint64_t known_leaf_version = 0;
  // The prober's own leaf-set version (0: not told). A receiver that holds
  // the prober in its leaf set and last saw another version asks for the
  // new set, so leaf-set changes travel both ways between neighbours.
  uint64_t leaf_version = 0;
};

struct ProbeReply {
  uint64_t nonce = 0;
  bool active = false;
  uint64_t leaf_version = 0;
  bool has_leaf_set = false;
  std::vector<NodeHandle> leaf_set;
};

// Routing-table maintenance: ask for row `row` of the receiver's table.
struct RowRequest {
  uint8_t row = 0;
};
struct RowReply {
  uint8_t row = 0;
  std::vector<NodeHandle> entries;
};

// Graceful departure: the sender is leaving the ring now.
struct Leave {};

// The root's answer to a kLookup RouteMsg, sent straight to the source.
struct LookupReply {
  uint64_t request_id = 0;  // the lookup's RouteMsg::request_id
  NodeId key;
  uint16_t hops = 0;
  std::vector<NodeId> path;
};

using MessageBody = std::variant<RouteMsg, RouteAck, JoinReply, Probe,
                                 ProbeReply, RowRequest, RowReply, Leave,
                                 LookupReply>;

struct Envelope {
  uint16_t version = kProtocolVersion;
  NodeHandle sender;
  MessageBody body;
};

// A short stable name per message type, for counters and logs.
std::string_view MessageTypeName(const MessageBody& body);
// The same by MessageBody::index(); "unknown" out of range.
std::string_view MessageTypeName(size_t index);
inline constexpr int kMessageTypeCount = std::variant_size_v<MessageBody>;

}  // namespace peter::pastry

#endif  // PETER_PASTRY_CORE_MESSAGES_H_

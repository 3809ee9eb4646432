// Where a node lives: its id and the transport endpoint that reaches it.
#ifndef PETER_PASTRY_NODE_HANDLE_H_
#define PETER_PASTRY_NODE_HANDLE_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "peter/pastry/node_id.h"

namespace peter::pastry {

// A transport address: an IPv6 address (IPv4 is stored IPv4-mapped,
// ::ffff:a.b.c.d) and a port. The simulator uses the same type with
// synthetic addresses that never reach a socket.
struct Endpoint {
  std::array<uint8_t, 16> ip{};
  uint16_t port = 0;

  static Endpoint FromIpv4(uint32_t host_order_addr, uint16_t port);
  // Parses "a.b.c.d:port" or "[v6]:port".
  static absl::StatusOr<Endpoint> Parse(std::string_view text);
  bool is_v4() const;
  // "a.b.c.d:port" for IPv4-mapped addresses, "[v6]:port" otherwise.
  std::string ToString() const;
  // The address part alone, without port or brackets.
  std::string HostString() const;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Endpoint& e) {
    return H::combine(std::move(h), e.ip, e.port);
  }
};

struct NodeHandle {
  NodeId id;
  Endpoint endpoint;
  // Which run of the node this is: chosen when the node starts (the runtime
  // uses its start time in microseconds since the Unix epoch), so a node
  // restarted with the same id, even on the same endpoint, is told apart
  // from the process that died. A later run has a larger value. 0: unknown
  // (older peers, handles written by hand); never compared as older or newer.
  uint64_t incarnation = 0;

  bool valid() const { return endpoint.port != 0; }
  friend bool operator==(const NodeHandle&, const NodeHandle&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const NodeHandle& n) {
    return H::combine(std::move(h), n.id, n.endpoint, n.incarnation);
  }
};

// True if `a` is a later run of a node than `b` (both known).
inline bool NewerIncarnation(uint64_t a, uint64_t b) { return a != 0 && b != 0 && a > b; }

}  // namespace peter::pastry

#endif  // PETER_PASTRY_NODE_HANDLE_H_

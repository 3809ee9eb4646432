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

  bool valid() const { return endpoint.port != 0; }
  friend bool operator==(const NodeHandle&, const NodeHandle&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const NodeHandle& n) {
    return H::combine(std::move(h), n.id, n.endpoint);
  }
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_NODE_HANDLE_H_

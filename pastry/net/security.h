// Private to pastry/net: a secured node's credentials, loaded once at start
// (TLS context, cluster key) and shared read-only by its connections. See
// peer_auth.h for the handshake and docs/security.md for what it protects.
#ifndef PETER_PASTRY_NET_SECURITY_H_
#define PETER_PASTRY_NET_SECURITY_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pastry/net/asio_util.h"
#include "peter/pastry/node_id.h"
#include "peter/pastry/security.h"

#include <asio/ssl.hpp>

namespace peter::pastry::net {

struct PeerSecurity {
  std::unique_ptr<asio::ssl::context> tls;  // null: plain TCP
  std::string cluster_key;                  // empty: none
  // With TLS: the id our certificate certifies (CertifiedId).
  std::optional<NodeId> certified_id;
  // The id we announce in the hello. Set before the event loop starts.
  NodeId self_id;
  // A connection that has not finished its handshake by then is refused.
  absl::Duration handshake_timeout = absl::Seconds(2);
};

// Checks `options` and loads the files: a TLS 1.3-only context that
// presents our certificate and requires a peer certificate signed by the
// CA, and/or the cluster key. InvalidArgument naming the file or setting
// on any error. Null when `options` enables nothing.
absl::StatusOr<std::unique_ptr<PeerSecurity>> LoadPeerSecurity(const SecurityOptions& options);

}  // namespace peter::pastry::net

#endif  // PETER_PASTRY_NET_SECURITY_H_

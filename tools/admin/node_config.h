// The flags of `peter node`, checked and turned into the runtime's options.
// Kept apart from the command so the checks can be unit-tested.
#ifndef PETER_TOOLS_ADMIN_NODE_CONFIG_H_
#define PETER_TOOLS_ADMIN_NODE_CONFIG_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "peter/node.h"
#include "peter/pastry/node_handle.h"
#include "pubsub/resp/gateway.h"

namespace peter::tools::admin {

// The flags as given on the command line.
struct NodeFlags {
  std::string listen;
  std::string advertise;          // empty: the listen address
  std::vector<std::string> join;  // each "host:port", or several comma-separated
  std::string id;                 // empty: random
  std::string incarnation_file;   // empty: the start time alone
  std::string admin;              // empty: no admin endpoint
  std::string resp;               // empty: no Redis gateway
  std::string requirepass_file;   // the gateway's AUTH password, first line
  int leaf_set = 16;
  double join_timeout_s = 30;     // how long to retry unreachable bootstraps
  // Peer authentication (docs/security.md): TLS files, all three or none,
  // and/or a file holding the cluster key.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  std::string cluster_key_file;
  // The resource bounds (docs/limits.md) that AddLimitFlags makes flags,
  // bound straight to the options' fields, so each default is the option's
  // own. Only those fields are read from here: MakeNodeConfig sets the
  // others (addresses, ids, security) from the flags above.
  NodeOptions node;
  // Also --resp-own-thread's field, own_thread (not a bound).
  resp::GatewayOptions gateway;
  // --resp-client-output-buffer-limit "HARD SOFT SECONDS"; empty: the
  // gateway's defaults.
  std::string resp_output_buffer_limit;
  // --reserved-outgoing-connections was given (a flag or a configuration
  // key): then it must fit --max-connections; its default adapts.
  bool reserved_outgoing_given = false;
};

// Where the admin endpoint binds.
struct AdminAddress {
  std::string host;  // as given, for the server to resolve and bind
  int port = 0;
};

struct NodeConfig {
  NodeOptions node;
  std::optional<AdminAddress> admin;
  // The Redis gateway's options with --resp; nullopt without it.
  std::optional<resp::GatewayOptions> gateway;
};

// Adds to `command` the flags of the resource bounds (docs/limits.md), each
// range-checked by CLI11 and bound to a field of `flags->node` or
// `flags->gateway`. Sizes take powers-of-1024 units: 64kb, 4mb, 1gb.
void AddLimitFlags(CLI::App& command, NodeFlags* flags);

// Adds to `command` the flags of the Scribe options a user tuning for speed
// may change (not bounds, group "Scribe"): --replicas (0 to 256; at most
// --leaf-set, MakeNodeConfig checks) and --no-bundle-messages, bound to
// `flags->node.pubsub`.
void AddScribeFlags(CLI::App& command, NodeFlags* flags);

// Splits "host:port" or "[v6]:port" into host and port (0-65535). Any other
// shape is InvalidArgument with a message naming `flag`.
absl::StatusOr<AdminAddress> SplitHostPort(std::string_view flag, std::string_view text);

// Resolves "host:port" to a numeric endpoint: an IP literal is taken as is, a
// name is looked up (getaddrinfo; an IPv4 answer is preferred).
absl::StatusOr<pastry::Endpoint> ResolveEndpoint(std::string_view flag,
                                                 std::string_view text);

// Checks every flag and builds the node's (and gateway's) options. The
// bounds must be consistent with each other (a total send queue at least the
// per-peer one, ...; each error names the flags). The cluster key is the
// key file's content without a trailing newline; TLS needs all three files
// and no --id (the id derives from the certificate). The node advertises its
// listen address to peers unless --advertise is given; a wildcard listen
// address (0.0.0.0, [::]) therefore needs --advertise, and an advertised
// address must not be a wildcard. Bootstrap ports must be non-zero.
// --replicas is at most --leaf-set (a replica set is drawn from the leaf
// set). Errors
// are one line each. --requirepass-file needs --resp, and is read here;
// --resp-own-thread (flags->gateway.own_thread) needs --resp too.
absl::StatusOr<NodeConfig> MakeNodeConfig(const NodeFlags& flags);

}  // namespace peter::tools::admin

#endif  // PETER_TOOLS_ADMIN_NODE_CONFIG_H_

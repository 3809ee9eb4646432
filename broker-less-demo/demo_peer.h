// The Peter node every demo program embeds: `peter node`'s flags (--listen,
// --join, --id, --admin; tools/admin/node_config.h), the node itself
// through the public C++ API (include/peter/node.h) and its admin endpoint
// (/status with the topic trees, /route, /metrics), so the launcher sees embedded nodes
// and plain `peter node`s alike.
//
// Like `peter node`, a demo program prints one line on stdout once its
// sockets are bound:
//   listening <host:port> id <32 hex> admin <host:port> http <host:port>
// and `active` once its node has joined the ring. Logs go to stderr.
#ifndef PETER_BROKER_LESS_DEMO_DEMO_PEER_H_
#define PETER_BROKER_LESS_DEMO_DEMO_PEER_H_

#include <csignal>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "peter/node.h"
#include "tools/admin/admin_server.h"
#include "tools/admin/embedded_source.h"
#include "tools/admin/node_config.h"

namespace peter::demo {

// A host and port parsed from "host:port" (IPv4 or a name; the demo runs on
// loopback).
struct HostPort {
  std::string host;
  int port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(const std::string& text);

// The command-line flags of a demo program.
struct PeerFlags {
  tools::admin::NodeFlags node;
  std::string http = "127.0.0.1:0";  // the program's own HTTP/WebSocket port
  std::string name = "demo";         // shown on the page and in events
};
// Adds --listen, --join, --id, --admin, --http and --name to `app`.
void AddPeerFlags(CLI::App& app, PeerFlags& flags);

// Blocks SIGINT and SIGTERM in the calling thread (and so in every thread
// started afterwards); WaitForStopSignal() then takes them. Call first in
// main().
void BlockStopSignals();
// Waits for SIGINT or SIGTERM; returns it.
int WaitForStopSignal();

class DemoPeer {
 public:
  // Starts the node and its admin endpoint. Errors are one-line statuses
  // (bad flags: InvalidArgument).
  static absl::StatusOr<std::unique_ptr<DemoPeer>> Start(const PeerFlags& flags);
  // Stops the admin endpoint, then the node (without Leave: call it first).
  ~DemoPeer();

  Node& node() { return *node_; }
  const std::string& admin_address() const { return admin_address_; }
  // Prints the `listening ...` line with the program's bound HTTP address.
  void PrintListening(const std::string& http_address);
  // Waits until the node is active and prints `active`; false (and a
  // message on stderr) if it cannot join.
  bool WaitActiveAndAnnounce();
  // Leaves the ring gracefully.
  void Leave();

 private:
  DemoPeer() = default;
  std::unique_ptr<Node> node_;
  std::unique_ptr<tools::admin::EmbeddedNodeSource> source_;
  std::unique_ptr<tools::admin::AdminServer> admin_;
  std::string admin_address_ = "-";
};

}  // namespace peter::demo

#endif  // PETER_BROKER_LESS_DEMO_DEMO_PEER_H_

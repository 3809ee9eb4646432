#include "broker-less-demo/demo_peer.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace peter::demo {
namespace {

constexpr absl::Duration kLookupTimeout = absl::Seconds(5);
constexpr absl::Duration kJoinWait = absl::Seconds(60);
constexpr absl::Duration kLeaveTimeout = absl::Seconds(2);

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Logs to stderr: stdout carries the machine-readable lines.
std::shared_ptr<spdlog::logger> StderrLogger() {
  std::shared_ptr<spdlog::logger> logger = spdlog::get("peter");
  if (logger == nullptr) logger = spdlog::stderr_color_mt("peter");
  spdlog::set_default_logger(logger);
  return logger;
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(const std::string& text) {
  const size_t colon = text.rfind(':');
  HostPort out;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(text.substr(colon + 1), &out.port) || out.port < 0 ||
      out.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("want HOST:PORT, got '", text, "'"));
  }
  out.host = text.substr(0, colon);
  return out;
}

void AddPeerFlags(CLI::App& app, PeerFlags& flags) {
  app.add_option("--listen", flags.node.listen, "HOST:PORT of this program's Peter node")
      ->required();
  app.add_option("--join", flags.node.join, "HOST:PORT[,HOST:PORT...] of nodes to join through")
      ->expected(1);
  app.add_option("--id", flags.node.id, "The node's id, 32 hex digits (default: random)");
  app.add_option("--admin", flags.node.admin, "HOST:PORT of the node's admin endpoint");
  app.add_option("--http", flags.http, "HOST:PORT this program serves on")->capture_default_str();
  app.add_option("--name", flags.name, "Name shown on the demo page")->capture_default_str();
}

void BlockStopSignals() {
  sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForStopSignal() {
  sigset_t set = StopSignals();
  int signal = 0;
  sigwait(&set, &signal);
  return signal;
}

absl::StatusOr<std::unique_ptr<DemoPeer>> DemoPeer::Start(const PeerFlags& flags) {
  absl::StatusOr<tools::admin::NodeConfig> config = tools::admin::MakeNodeConfig(flags.node);
  if (!config.ok()) return config.status();
  config->node.logger = StderrLogger();
  std::unique_ptr<DemoPeer> peer(new DemoPeer());
  absl::StatusOr<std::unique_ptr<Node>> node =
      Node::Start(config->node);
  if (!node.ok()) return node.status();
  peer->node_ = std::move(*node);
  peer->source_ = std::make_unique<tools::admin::EmbeddedNodeSource>(peer->node_.get());
  peer->admin_ = std::make_unique<tools::admin::AdminServer>(peer->source_.get(), kLookupTimeout);
  if (config->admin) {
    absl::Status started = peer->admin_->Start(config->admin->host, config->admin->port);
    if (!started.ok()) return started;
    peer->admin_address_ = absl::StrCat(config->admin->host, ":", peer->admin_->port());
  }
  return peer;
}

DemoPeer::~DemoPeer() {
  if (admin_ != nullptr) admin_->Stop();
}

void DemoPeer::PrintListening(const std::string& http_address) {
  std::printf("listening %s id %s admin %s http %s\n", node_->listen_address().c_str(),
              node_->self().id.ToHex().c_str(), admin_address_.c_str(), http_address.c_str());
  std::fflush(stdout);
}

bool DemoPeer::WaitActiveAndAnnounce() {
  absl::Status status = node_->WaitUntilActive(kJoinWait);
  if (!status.ok()) {
    std::cerr << "cannot join the ring: " << status << "\n";
    return false;
  }
  std::printf("active\n");
  std::fflush(stdout);
  return true;
}

void DemoPeer::Leave() { node_->Leave(kLeaveTimeout); }

}  // namespace peter::demo

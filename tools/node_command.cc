// `peter node`: one Peter node on real sockets (the embedded node of
// include/peter/node.h: the overlay with Scribe pub/sub), with an optional
// HTTP admin endpoint (tools/admin/), until SIGINT or SIGTERM; then it
// leaves the ring gracefully and exits 0.
//
// Once listening it prints one line on stdout, for scripts and tests:
//   listening <host:port> id <32 hex> admin <host:port or ->
// and, once the node has joined, a second line: `active`. Logs go to stderr.
#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "pastry/net/node_runtime.h"
#include "peter/node.h"
#include "pubsub/node/resp_backend.h"
#include "pubsub/resp/gateway.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "tools/admin/admin_server.h"
#include "tools/admin/embedded_source.h"
#include "tools/admin/node_config.h"
#include "tools/commands.h"

namespace peter::tools {
namespace {

constexpr absl::Duration kLeaveTimeout = absl::Seconds(2);
constexpr absl::Duration kLookupTimeout = absl::Seconds(5);

[[noreturn]] void Fail(const std::string& message, int code = 1) {
  PrintError("peter node", message);
  throw CLI::RuntimeError(code);
}

// Waits for SIGINT or SIGTERM on a thread of its own (sigwait). Construct it
// before any other thread starts: it blocks both signals in the calling
// thread, and threads created afterwards inherit the mask, so the signals
// reach only sigwait.
class SignalWaiter {
 public:
  SignalWaiter() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      int signal = 0;
      sigwait(&set_, &signal);
      std::lock_guard lock(mu_);
      signal_ = signal;
      cv_.notify_all();
    });
  }
  ~SignalWaiter() {
    {
      std::lock_guard lock(mu_);
      if (signal_ == 0) pthread_kill(thread_.native_handle(), SIGTERM);
    }
    thread_.join();
    // The signals stay blocked: a second SIGTERM during shutdown (a process
    // group's, say) must not kill the process after a graceful leave.
  }

  // The signal received, or 0 if none arrived within `timeout`.
  int WaitFor(absl::Duration timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [this] { return signal_ != 0; });
    return signal_;
  }

 private:
  sigset_t set_;
  std::mutex mu_;
  std::condition_variable cv_;
  int signal_ = 0;
  std::thread thread_;
};

// All logs go to stderr: stdout carries the machine-readable lines. The
// level is the one --log-level set (spdlog's global level).
std::shared_ptr<spdlog::logger> StderrLogger() {
  std::shared_ptr<spdlog::logger> logger = spdlog::get("peter");
  if (logger == nullptr) logger = spdlog::stderr_color_mt("peter");
  spdlog::set_default_logger(logger);
  return logger;
}

// Waits for a signal; fails if the join fails first. Returns the signal.
int RunUntilSignal(Node& runtime, SignalWaiter& signals,
                   spdlog::logger& log) {
  bool active = false;
  while (true) {
    if (int signal = signals.WaitFor(active ? absl::Seconds(1) : absl::ZeroDuration())) {
      return signal;
    }
    if (active) continue;
    absl::Status status = runtime.WaitUntilActive(absl::Milliseconds(200));
    if (status.ok()) {
      active = true;
      log.info("node {} is active", runtime.self().id.ToHex());
      std::printf("active\n");
      std::fflush(stdout);
    } else if (status.code() != absl::StatusCode::kDeadlineExceeded) {
      Fail(absl::StrCat("cannot join the ring: ", status.message()));
    }
  }
}

void RunNode(const admin::NodeFlags& flags) {
  absl::StatusOr<admin::NodeConfig> config = admin::MakeNodeConfig(flags);
  if (!config.ok()) Fail(std::string(config.status().message()), 2);
  std::shared_ptr<spdlog::logger> log = StderrLogger();
  config->node.logger = log;

  SignalWaiter signals;
  absl::StatusOr<std::unique_ptr<Node>> runtime =
      Node::Start(config->node);
  if (!runtime.ok()) Fail(std::string(runtime.status().message()));
  const pastry::NodeHandle self = (*runtime)->self();
  const std::string listen = (*runtime)->listen_address();

  admin::EmbeddedNodeSource source(runtime->get());
  admin::AdminServer server(&source, kLookupTimeout);
  server.set_logger(log);

  node_internal::NodeBackend backend(runtime->get());
  std::unique_ptr<resp::Gateway> gateway;
  std::string resp_address = "-";
  if (config->gateway.has_value()) {
    config->gateway->logger = log;  // its warnings (bounds reached) beside the node's
    const std::string host = config->gateway->listen_host;
    absl::StatusOr<std::unique_ptr<resp::Gateway>> started =
        resp::Gateway::Start(backend, *config->gateway);
    if (!started.ok()) Fail(absl::StrCat("--resp: ", started.status().message()));
    gateway = std::move(*started);
    resp_address = host.find(':') != std::string::npos
                       ? absl::StrCat("[", host, "]:", gateway->port())
                       : absl::StrCat(host, ":", gateway->port());
    log->info("Redis gateway on {}", resp_address);
  }
  // After the gateway: /metrics exports its counters too.
  server.set_gateway(gateway.get());
  std::string admin_address = "-";
  if (config->admin) {
    absl::Status started = server.Start(config->admin->host, config->admin->port);
    if (!started.ok()) Fail(std::string(started.message()));
    admin_address = config->admin->host.find(':') != std::string::npos
                        ? absl::StrCat("[", config->admin->host, "]:", server.port())
                        : absl::StrCat(config->admin->host, ":", server.port());
  }
  if (config->admin) log->info("admin endpoint on http://{}", admin_address);
  std::printf("listening %s id %s admin %s resp %s\n", listen.c_str(),
              self.id.ToHex().c_str(), admin_address.c_str(), resp_address.c_str());
  std::fflush(stdout);

  int signal = RunUntilSignal(**runtime, signals, *log);
  log->info("{}: leaving the ring", signal == SIGINT ? "SIGINT" : "SIGTERM");
  if (gateway != nullptr) gateway->Stop();  // clients first: their subscriptions end
  (*runtime)->Leave(kLeaveTimeout);
  server.Stop();  // waits for idle keep-alive connections (up to 1 s)
  gateway.reset();
  runtime->reset();
  log->info("left; bye");
}

}  // namespace

void RegisterNodeCommand(CLI::App& app) {
  auto flags = std::make_shared<admin::NodeFlags>();
  CLI::App* node = app.add_subcommand(
      "node", "Run one overlay node until SIGINT or SIGTERM, then leave gracefully");
  node->fallthrough();  // global options (--log-level) may follow `node`
  node->add_option("--listen", flags->listen,
                   "HOST:PORT to listen on and advertise to peers (port 0: any "
                   "free port)")
      ->required();
  node->add_option("--advertise", flags->advertise,
                   "HOST:PORT peers reach this node at, if not the listen "
                   "address (NAT, or --listen 0.0.0.0:PORT); port 0: the bound port");
  node->add_option("--join", flags->join,
                   "HOST:PORT[,HOST:PORT...] of nodes to join through (none: "
                   "start a new ring); may be repeated")
      ->expected(1)
      ->take_all();  // keep every repetition (and a config file's array)
  node->add_option("--id", flags->id, "This node's id, 32 hex digits (default: random)");
  node->add_option("--incarnation-file", flags->incarnation_file,
                   "File keeping this node's incarnation across restarts (created if "
                   "missing; one per node): it then grows even if the clock steps back "
                   "(default: the start time in microseconds)");
  node->add_option("--admin", flags->admin,
                   "HOST:PORT for the HTTP admin endpoint: /status, /route, "
                   "/metrics (default: none)");
  node->add_option("--resp", flags->resp,
                   "HOST:PORT for the Redis-protocol gateway (RESP2/RESP3 pub/sub; "
                   "port 0: any free port; default: none)");
  node->add_option("--requirepass-file", flags->requirepass_file,
                   "File whose first line is the password Redis clients must AUTH "
                   "with (Redis's requirepass; default: no password)");
  node->add_flag("--resp-own-thread", flags->gateway.own_thread,
                 "Run the Redis gateway on a thread of its own instead of the node's network "
                 "thread: its work (parsing, replies, fan-out to clients) may then use another "
                 "core, at the cost of a hand-off between the threads per message (default: "
                 "the network thread)");
  node->add_option("--tls-cert", flags->tls_cert,
                   "PEM certificate (chain) of this node, signed by the cluster CA: peers "
                   "talk TLS 1.3 with mutual authentication, and the node id derives from "
                   "the certificate's public key (needs --tls-key, --tls-ca; no --id)");
  node->add_option("--tls-key", flags->tls_key, "PEM private key of --tls-cert");
  node->add_option("--tls-ca", flags->tls_ca,
                   "PEM certificate of the cluster CA: peers must present a certificate "
                   "it signed");
  node->add_option("--cluster-key-file", flags->cluster_key_file,
                   "File holding the cluster's pre-shared key (at least 16 bytes): "
                   "peers must prove they hold it (HMAC challenge-response) before "
                   "anything else; authenticates, does not encrypt (docs/security.md)");
  node->add_option("--leaf-set", flags->leaf_set, "Leaf-set size L (even)")
      ->capture_default_str();
  node->add_option("--join-timeout", flags->join_timeout_s,
                   "Seconds to keep retrying unreachable bootstrap nodes")
      ->capture_default_str();
  admin::AddLimitFlags(*node, flags.get());
  admin::AddScribeFlags(*node, flags.get());
  node->callback([flags] { RunNode(*flags); });
}

}  // namespace peter::tools

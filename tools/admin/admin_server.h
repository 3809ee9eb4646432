// The admin endpoint: a small HTTP server (cpp-httplib) answering
//   GET /status        JSON state of the node (status_json.h)
//   GET /route?key=K   a lookup routed through the overlay (400 for a bad
//                      key, 503 if the node cannot route yet, 504 on timeout)
//   GET /metrics       Prometheus text (metrics_text.h), with the Redis
//                      gateway's counters if set_gateway was called
// and 404 for anything else. It reads the node only through NodeSource, so
// tests can serve a hand-made snapshot.
//
// Thread safety: Start() and Stop() from one thread; requests are served on
// the server's own threads, which call NodeSource concurrently.
#ifndef PETER_TOOLS_ADMIN_ADMIN_SERVER_H_
#define PETER_TOOLS_ADMIN_ADMIN_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pastry/core/log_limit.h"
#include "pastry/core/node.h"
#include "pastry/net/node_runtime.h"
#include "peter/node.h"
#include "peter/pastry/node_id.h"
#include "pubsub/resp/gateway.h"

namespace httplib {
class Server;
}
namespace spdlog {
class logger;
}

namespace peter::tools::admin {

// What the admin endpoint needs from a node. Implementations must be
// thread-safe. NodeRuntime provides both methods.
class NodeSource {
 public:
  virtual ~NodeSource() = default;
  virtual pastry::net::NodeSnapshot Snapshot() = 0;
  virtual absl::StatusOr<pastry::Node::LookupResult> Lookup(
      const pastry::NodeId& key, absl::Duration timeout) = 0;
  // The node's pub/sub counters; absent for a node without pub/sub.
  virtual std::optional<PubSubStats> PubSub() { return std::nullopt; }
  virtual std::vector<TopicStatus> Topics() { return {}; }
};

class AdminServer {
 public:
  // `source` must outlive the server.
  AdminServer(NodeSource* source, absl::Duration lookup_timeout);
  ~AdminServer();  // Stops the server.
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds `host:port` (port 0 picks a free one) and starts serving on a
  // background thread. Fails with a one-line status if the address cannot
  // be bound.
  absl::Status Start(const std::string& host, int port);
  // The bound port; valid after Start() succeeded.
  int port() const { return port_; }
  // Stops serving and joins the server's threads. Idempotent.
  void Stop();

  // Limits (docs/limits.md). Requests are served by kWorkers threads; at
  // most kMaxQueued accepted connections wait for one, beyond which the
  // accept loop waits too (further clients stay in the kernel's listen
  // backlog). A request body over kMaxBodyBytes is refused (413); header
  // and URI length are httplib's own limits (8 KiB).
  static constexpr size_t kWorkers = 4;
  static constexpr size_t kMaxQueued = 64;
  static constexpr size_t kMaxBodyBytes = 64 << 10;
  // Times the accept loop waited because kMaxQueued connections were queued.
  uint64_t queue_full_waits() const { return queue_full_waits_.load(); }
  // Requests refused because their body was over kMaxBodyBytes.
  uint64_t bodies_refused() const { return bodies_refused_.load(); }
  // Where warnings of limits reached go (at most one a second); before
  // Start(). Default: spdlog's default logger.
  void set_logger(std::shared_ptr<spdlog::logger> logger) { log_ = std::move(logger); }
  // The node's Redis gateway, whose counters /metrics exports too; before
  // Start(). It must outlive Stop() (its stats() are read by the workers).
  void set_gateway(const resp::Gateway* gateway) { gateway_ = gateway; }

 private:
  class BoundedQueue;
  void Routes();
  // Logs that a limit was reached, rate-limited; any thread.
  void WarnLimit(const std::string& what);

  NodeSource* source_;
  const resp::Gateway* gateway_ = nullptr;
  absl::Duration lookup_timeout_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<uint64_t> queue_full_waits_{0};
  std::atomic<uint64_t> bodies_refused_{0};
  std::shared_ptr<spdlog::logger> log_;
  std::mutex warn_mu_;  // the accept loop and the workers warn
  LogLimit warn_limit_;
};

}  // namespace peter::tools::admin

#endif  // PETER_TOOLS_ADMIN_ADMIN_SERVER_H_

#include "tools/admin/admin_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "tools/admin/metrics_text.h"
#include "tools/admin/status_json.h"

namespace peter::tools::admin {
namespace {

constexpr char kJsonType[] = "application/json";

void SendJson(httplib::Response& res, int code, const nlohmann::json& body) {
  res.status = code;
  res.set_content(body.dump() + "\n", kJsonType);
}

// The HTTP status for a failed lookup.
int LookupFailureCode(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded: return 504;
    case absl::StatusCode::kInvalidArgument: return 400;
    default: return 503;  // not active yet, leaving, shutting down
  }
}

}  // namespace

// httplib's thread pool queues accepted connections without limit (each an
// open socket and a job); this one holds at most kMaxQueued and makes the
// accept loop wait for room, so a flood of connections waits in the kernel's
// bounded listen backlog instead of in our memory and file descriptors.
class AdminServer::BoundedQueue : public httplib::TaskQueue {
 public:
  explicit BoundedQueue(AdminServer* server) : pool_(kWorkers), server_(server) {}

  void enqueue(std::function<void()> fn) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (pending_ >= kWorkers + kMaxQueued) {
        ++server_->queue_full_waits_;
        lock.unlock();
        server_->WarnLimit(absl::StrCat("admin endpoint: ", kWorkers, " workers busy and ",
                                        kMaxQueued, " connections queued: not accepting more "
                                        "until one is served"));
        lock.lock();
        room_.wait(lock, [&] { return pending_ < kWorkers + kMaxQueued; });
      }
      ++pending_;
    }
    pool_.enqueue([this, fn = std::move(fn)] {
      fn();
      std::lock_guard<std::mutex> lock(mu_);
      --pending_;
      room_.notify_one();
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  AdminServer* server_;
  std::mutex mu_;
  std::condition_variable room_;
  size_t pending_ = 0;  // queued or running
};

AdminServer::AdminServer(NodeSource* source, absl::Duration lookup_timeout)
    : source_(source),
      lookup_timeout_(lookup_timeout),
      server_(std::make_unique<httplib::Server>()) {
  // httplib's default also sets SO_REUSEPORT, which would let a second
  // process bind the same port without an error; only reuse TIME_WAIT.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // Stop() waits for worker threads, each blocked on an idle keep-alive
  // connection for up to this long: keep shutdown quick.
  server_->set_keep_alive_timeout(1);
  // A response is written in pieces; without this, Nagle's algorithm holds
  // the last piece until the client's (delayed) ACK.
  server_->set_tcp_nodelay(true);
  server_->set_payload_max_length(kMaxBodyBytes);
  server_->new_task_queue = [this] { return new BoundedQueue(this); };
  log_ = spdlog::default_logger();
  Routes();
}

void AdminServer::WarnLimit(const std::string& what) {
  std::lock_guard<std::mutex> lock(warn_mu_);
  if (!warn_limit_.Allow(absl::Now())) return;
  log_->warn("{} ({} warnings suppressed)", what, warn_limit_.suppressed());
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Routes() {
  server_->Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, StatusJson(source_->Snapshot(), source_->PubSub(), source_->Topics()));
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::optional<resp::GatewayStats> gateway;
    if (gateway_ != nullptr) gateway = gateway_->stats();
    std::string text = MetricsText(source_->Snapshot(), source_->PubSub(), gateway);
    absl::StrAppend(&text, AdminMetricsText(queue_full_waits(), bodies_refused()));
    res.set_content(text, kMetricsContentType);
  });
  server_->Get("/route", [this](const httplib::Request& req, httplib::Response& res) {
    if (!req.has_param("key")) {
      SendJson(res, 400, ErrorJson("missing query parameter: key (32 hex digits)"));
      return;
    }
    const std::string text = req.get_param_value("key");
    absl::StatusOr<pastry::NodeId> key = pastry::NodeId::FromHex(text);
    if (!key.ok()) {
      SendJson(res, 400, ErrorJson(absl::StrCat(
                             "bad key: ", key.status().message(),
                             " (want exactly 32 hex digits)")));
      return;
    }
    absl::StatusOr<pastry::Node::LookupResult> result =
        source_->Lookup(*key, lookup_timeout_);
    if (!result.ok()) {
      SendJson(res, LookupFailureCode(result.status()),
               ErrorJson(result.status().ToString()));
      return;
    }
    SendJson(res, 200, RouteJson(*key, *result));
  });
  // Unknown paths (and methods) get a JSON 404.
  server_->set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404) {
      SendJson(res, 404, ErrorJson("no such endpoint: " + req.path +
                                   " (try /status, /route?key=..., /metrics)"));
    } else if (res.status == 413) {  // httplib's answer to a body over the limit
      ++bodies_refused_;
      const std::string error =
          absl::StrCat("request body over ", kMaxBodyBytes, " bytes");
      WarnLimit(absl::StrCat("admin endpoint: refused a ", req.method, " ", req.path, ": ", error));
      SendJson(res, 413, ErrorJson(error));
    }
  });
}

absl::Status AdminServer::Start(const std::string& host, int port) {
  if (port == 0) {
    port_ = server_->bind_to_any_port(host.c_str());
  } else if (server_->bind_to_port(host.c_str(), port)) {
    port_ = port;
  } else {
    port_ = -1;
  }
  if (port_ <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot bind admin endpoint ", host, ":", port,
        " (address in use or not local?)"));
  }
  // The socket already listens: connections queue until the loop accepts.
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return absl::OkStatus();
}

void AdminServer::Stop() {
  if (!thread_.joinable()) return;
  // stop() does nothing until the accept loop has started; give it a moment
  // (it may also have ended on its own, after an accept error).
  for (int i = 0; i < 1000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server_->stop();
  thread_.join();
}

}  // namespace peter::tools::admin

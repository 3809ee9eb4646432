#include "tools/admin/admin_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
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
  Routes();
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Routes() {
  server_->Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, StatusJson(source_->Snapshot(), source_->PubSub(), source_->Topics()));
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(MetricsText(source_->Snapshot(), source_->PubSub()), kMetricsContentType);
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
  server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404) {
      SendJson(res, 404, ErrorJson("no such endpoint: " + req.path +
                                   " (try /status, /route?key=..., /metrics)"));
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

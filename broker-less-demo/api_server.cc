// The demo's API server: an application server that publishes events about
// users. `POST /users/{id}/events` with a JSON body publishes, through the
// Peter node this program embeds, to topic `user.{id}` the JSON envelope
//   {"user": id, "api": <--name>, "event": <body>, "posted_ms": <unix ms>}
// and answers 202 {"topic", "seq", "api"} once the topic's root acknowledged
// it (seq: the number the root stamped), 400 for a body that is not JSON,
// 413 for one over 64 KiB, 503 {"error"} when the publish failed. `GET /healthz` answers 200 once the node is active.
//
// HTTP: cpp-httplib (Debian libcpp-httplib-dev), as the admin endpoint.
// Usage: peter-demo-api --listen H:P [--join H:P] [--admin H:P] --http H:P
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "broker-less-demo/demo_peer.h"
#include "nlohmann/json.hpp"

namespace peter::demo {
namespace {

using nlohmann::json;

constexpr size_t kMaxBody = 64 << 10;

void SendJson(httplib::Response& res, int code, const json& body) {
  res.status = code;
  res.set_content(body.dump() + "\n", "application/json");
}

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Routes(httplib::Server& http, Node& node, const std::string& name,
            const std::atomic<bool>& active) {
  // User ids: letters, digits, '-', '_' (the path pattern is the check).
  http.Post(R"(/users/([A-Za-z0-9_-]{1,64})/events)",
            [&node, &name](const httplib::Request& req, httplib::Response& res) {
              const std::string user = req.matches[1];
              json event = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
              if (event.is_discarded()) {
                SendJson(res, 400, {{"error", "the body is not JSON"}});
                return;
              }
              const json envelope = {
                  {"user", user}, {"api", name}, {"event", event}, {"posted_ms", UnixMillis()}};
              const std::string topic = "user." + user;
              absl::StatusOr<uint64_t> seq = node.PublishAndWait(topic, envelope.dump());
              if (!seq.ok()) {
                SendJson(res, 503, {{"error", seq.status().ToString()}});
                return;
              }
              SendJson(res, 202, {{"topic", topic}, {"seq", *seq}, {"api", name}});
            });
  http.Get("/healthz", [&active](const httplib::Request&, httplib::Response& res) {
    SendJson(res, active ? 200 : 503, {{"active", active.load()}});
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404) {
      SendJson(res, 404, {{"error", "no such endpoint: " + req.method + " " + req.path +
                                        " (try POST /users/{id}/events)"}});
    } else if (res.status == 413) {
      SendJson(res, 413, {{"error", "body over 64 KiB"}});
    }
  });
}

int Run(const PeerFlags& flags) {
  absl::StatusOr<HostPort> http_address = ParseHostPort(flags.http);
  if (!http_address.ok()) {
    std::cerr << "peter-demo-api: --http: " << http_address.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<DemoPeer>> peer = DemoPeer::Start(flags);
  if (!peer.ok()) {
    std::cerr << "peter-demo-api: " << peer.status().message() << "\n";
    return peer.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::atomic<bool> active{false};
  httplib::Server http;
  http.set_payload_max_length(kMaxBody);
  http.set_keep_alive_timeout(1);
  http.set_tcp_nodelay(true);
  Routes(http, (*peer)->node(), flags.name, active);
  int port = http_address->port == 0 ? http.bind_to_any_port(http_address->host.c_str())
             : http.bind_to_port(http_address->host.c_str(), http_address->port)
                 ? http_address->port
                 : -1;
  if (port <= 0) {
    std::cerr << "peter-demo-api: cannot bind " << flags.http << "\n";
    return 1;
  }
  std::thread server([&http] { http.listen_after_bind(); });
  (*peer)->PrintListening(absl::StrCat(http_address->host, ":", port));
  const int code = (*peer)->WaitActiveAndAnnounce() ? 0 : 1;
  if (code == 0) {
    active = true;
    WaitForStopSignal();
  }
  // Stop taking requests first: requests in flight finish their publishes
  // while the node is still on the ring. stop() does nothing until the
  // accept loop has started.
  for (int i = 0; i < 1000 && !http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  http.stop();
  server.join();
  if (code == 0) (*peer)->Leave();
  peer->reset();
  return code;
}

}  // namespace
}  // namespace peter::demo

int main(int argc, char** argv) {
  peter::demo::BlockStopSignals();
  CLI::App app("Broker-less demo: an API server that publishes user events through Peter");
  peter::demo::PeerFlags flags;
  flags.name = "api";
  peter::demo::AddPeerFlags(app, flags);
  CLI11_PARSE(app, argc, argv);
  return peter::demo::Run(flags);
}

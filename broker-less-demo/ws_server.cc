// The demo's WebSocket server: it holds browser connections and pushes each
// user's events to them. A browser connects to `/ws?user=ID`; the server
// subscribes (reliably: no gap, no duplicate, in order) to topic `user.ID`
// through the Peter node it embeds, once per user however many browsers
// show that user, and sends each connection text frames:
//   {"type":"status","server":S,"user":U,"active":bool}  on connect and
//       whenever the node joins or falls off the topic's tree;
//   {"type":"event","server":S,"user":U,"seq":N,"event":<published JSON>}.
// When the last connection of a user closes, the subscription ends.
// `GET /healthz` answers 200. Anything else: 404 (400 for a bad user).
//
// HTTP and WebSocket: Boost.Beast (Debian libboost-dev), on Boost.Asio;
// Peter's own Asio stays behind include/peter/node.h. See README.md here.
// Usage: peter-demo-ws --listen H:P [--join H:P] [--admin H:P] --http H:P
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "broker-less-demo/demo_peer.h"
#include "nlohmann/json.hpp"

namespace peter::demo {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using nlohmann::json;

// Frames queued for one browser before it counts as too slow and is closed.
constexpr size_t kMaxQueuedFrames = 10000;

// The `user` query parameter of a `/ws?...` target; empty if absent or not
// [A-Za-z0-9_-]{1,64}.
std::string UserOf(std::string_view target) {
  static const std::regex kPattern(R"(^/ws\?(?:.*&)?user=([A-Za-z0-9_-]{1,64})(?:&.*)?$)");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(target.begin(), target.end(), m, kPattern)) return "";
  return m[1].str();
}

class Hub;

// One browser connection. Frames are written one at a time from a queue on
// the connection's strand; Send() may be called from any thread.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket socket, Hub& hub, std::string user)
      : ws_(std::move(socket)), hub_(hub), user_(std::move(user)) {}

  void Accept(http::request<http::string_body> request);
  void Send(std::string frame);
  const std::string& user() const { return user_; }

 private:
  void OnAccept(beast::error_code error);
  void Read();
  void Write();
  void Close();

  websocket::stream<beast::tcp_stream> ws_;
  Hub& hub_;
  std::string user_;
  http::request<http::string_body> request_;  // the upgrade request
  beast::flat_buffer read_buffer_;
  std::deque<std::string> queue_;  // on the strand
  bool closed_ = false;            // on the strand
};

// The subscriptions, one per user with connections here.
class Hub {
 public:
  Hub(Node& node, std::string server) : node_(node), server_(std::move(server)) {}

  // Adds `session` to its user's subscription, subscribing first if needed.
  void Attach(const std::shared_ptr<WsSession>& session) {
    std::lock_guard lock(mu_);
    auto [it, added] = users_.try_emplace(session->user());
    Entry& entry = it->second;
    entry.sessions.insert(session.get());
    if (added) {
      const std::string user = session->user();
      SubscribeOptions options;
      options.reliable = true;
      options.on_active = [this, user](bool active) { OnActive(user, active); };
      absl::StatusOr<Subscription> sub = node_.Subscribe(
          "user." + user, [this, user](const Message& m) { OnMessage(user, m); }, options);
      if (!sub.ok()) {
        std::cerr << "subscribe user." << user << ": " << sub.status() << "\n";
      } else {
        entry.subscription = std::move(*sub);
      }
    }
    session->Send(StatusFrame(session->user(), entry.active));
  }

  // Removes `session`; the last one of a user ends the subscription.
  void Detach(WsSession* session) {
    Subscription ended;  // destroyed after the lock is released
    {
      std::lock_guard lock(mu_);
      auto it = users_.find(session->user());
      if (it == users_.end()) return;
      it->second.sessions.erase(session);
      if (!it->second.sessions.empty()) return;
      ended = std::move(it->second.subscription);
      users_.erase(it);
    }
  }

 private:
  struct Entry {
    Subscription subscription;
    std::set<WsSession*> sessions;
    bool active = false;
  };

  std::string StatusFrame(const std::string& user, bool active) const {
    return json{{"type", "status"}, {"server", server_}, {"user", user}, {"active", active}}
        .dump();
  }

  // Delivery thread.
  void OnMessage(const std::string& user, const Message& m) {
    json event = json::parse(m.payload, nullptr, /*allow_exceptions=*/false);
    if (event.is_discarded()) event = std::string(m.payload);
    const std::string frame = json{{"type", "event"}, {"server", server_}, {"user", user},
                                   {"seq", m.seq}, {"event", std::move(event)}}
                                  .dump();
    std::lock_guard lock(mu_);
    auto it = users_.find(user);
    if (it == users_.end()) return;
    for (WsSession* session : it->second.sessions) session->Send(frame);
  }
  void OnActive(const std::string& user, bool active) {
    std::lock_guard lock(mu_);
    auto it = users_.find(user);
    if (it == users_.end()) return;
    it->second.active = active;
    for (WsSession* session : it->second.sessions) session->Send(StatusFrame(user, active));
  }

  Node& node_;
  const std::string server_;
  std::mutex mu_;
  std::map<std::string, Entry> users_;  // guarded by mu_
};

void WsSession::Accept(http::request<http::string_body> request) {
  request_ = std::move(request);
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.async_accept(request_, beast::bind_front_handler(&WsSession::OnAccept, shared_from_this()));
}

void WsSession::OnAccept(beast::error_code error) {
  if (error) return;
  hub_.Attach(shared_from_this());
  Read();
}

// Browsers send nothing we need; reading notices the close.
void WsSession::Read() {
  ws_.async_read(read_buffer_, [self = shared_from_this()](beast::error_code error, size_t) {
    if (error) {
      self->Close();
      return;
    }
    self->read_buffer_.consume(self->read_buffer_.size());
    self->Read();
  });
}

void WsSession::Send(std::string frame) {
  asio::post(ws_.get_executor(), [self = shared_from_this(), frame = std::move(frame)]() mutable {
    if (self->closed_) return;
    if (self->queue_.size() >= kMaxQueuedFrames) {
      self->Close();
      return;
    }
    self->queue_.push_back(std::move(frame));
    if (self->queue_.size() == 1) self->Write();
  });
}

void WsSession::Write() {
  ws_.text(true);
  ws_.async_write(asio::buffer(queue_.front()),
                  [self = shared_from_this()](beast::error_code error, size_t) {
                    if (error) {
                      self->Close();
                      return;
                    }
                    self->queue_.pop_front();
                    if (!self->queue_.empty() && !self->closed_) self->Write();
                  });
}

// On the strand.
void WsSession::Close() {
  if (closed_) return;
  closed_ = true;
  queue_.clear();
  hub_.Detach(this);
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
}

// A plain HTTP connection: answers, or hands a `/ws` upgrade to WsSession.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, Hub& hub) : stream_(std::move(socket)), hub_(hub) {}

  void Read() {
    request_ = {};
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, request_,
                     beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
  }

 private:
  void OnRead(beast::error_code error, size_t) {
    if (error) return;  // closed, timed out or malformed: drop the connection
    const std::string target(request_.target());
    if (websocket::is_upgrade(request_)) {
      const std::string user = UserOf(target);
      if (!user.empty()) {
        stream_.expires_never();
        std::make_shared<WsSession>(stream_.release_socket(), hub_, user)
            ->Accept(std::move(request_));
        return;
      }
      Respond(http::status::bad_request,
              "want /ws?user=ID with ID of 1 to 64 letters, digits, '-' or '_'");
      return;
    }
    if (target == "/healthz") {
      Respond(http::status::ok, "ok");
    } else {
      Respond(http::status::not_found, "no such endpoint; browsers connect to /ws?user=ID");
    }
  }

  void Respond(http::status status, const std::string& message) {
    auto response = std::make_shared<http::response<http::string_body>>(status, request_.version());
    response->set(http::field::content_type, "application/json");
    response->keep_alive(request_.keep_alive());
    response->body() = json{{status == http::status::ok ? "status" : "error", message}}.dump();
    response->prepare_payload();
    http::async_write(stream_, *response,
                      [self = shared_from_this(), response](beast::error_code error, size_t) {
                        if (!error && response->keep_alive()) self->Read();
                      });
  }

  beast::tcp_stream stream_;
  Hub& hub_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
};

class Listener {
 public:
  Listener(asio::io_context& io, Hub& hub) : io_(io), acceptor_(io), hub_(hub) {}

  beast::error_code Bind(const tcp::endpoint& endpoint) {
    beast::error_code error;
    acceptor_.open(endpoint.protocol(), error);
    if (!error) acceptor_.set_option(asio::socket_base::reuse_address(true), error);
    if (!error) acceptor_.bind(endpoint, error);
    if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
    return error;
  }
  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](beast::error_code error,
                                                          tcp::socket socket) {
      if (error == asio::error::operation_aborted) return;
      if (!error) std::make_shared<HttpSession>(std::move(socket), hub_)->Read();
      Accept();
    });
  }

 private:
  asio::io_context& io_;
  tcp::acceptor acceptor_;
  Hub& hub_;
};

int Run(const PeerFlags& flags) {
  absl::StatusOr<HostPort> address = ParseHostPort(flags.http);
  beast::error_code error;
  const asio::ip::address ip =
      address.ok() ? asio::ip::make_address(address->host, error) : asio::ip::address();
  if (!address.ok() || error) {
    std::cerr << "peter-demo-ws: --http: want IP:PORT, got '" << flags.http << "'\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<DemoPeer>> peer = DemoPeer::Start(flags);
  if (!peer.ok()) {
    std::cerr << "peter-demo-ws: " << peer.status().message() << "\n";
    return peer.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  asio::io_context io(1);
  auto hub = std::make_unique<Hub>((*peer)->node(), flags.name);
  Listener listener(io, *hub);
  if (beast::error_code bind = listener.Bind(tcp::endpoint(ip, address->port))) {
    std::cerr << "peter-demo-ws: cannot bind " << flags.http << ": " << bind.message() << "\n";
    return 1;
  }
  listener.Accept();
  std::thread loop([&io] { io.run(); });
  (*peer)->PrintListening(
      absl::StrCat(address->host, ":", listener.local_endpoint().port()));
  int code = 0;
  if ((*peer)->WaitActiveAndAnnounce()) {
    WaitForStopSignal();
    (*peer)->Leave();
  } else {
    code = 1;
  }
  // Sessions refer to the hub and its subscriptions to the node: stop the
  // sockets first, then the node (which ends the subscriptions' callbacks).
  io.stop();
  loop.join();
  hub.reset();  // ends the subscriptions: no more frames
  peer->reset();
  return code;
}

}  // namespace
}  // namespace peter::demo

int main(int argc, char** argv) {
  peter::demo::BlockStopSignals();
  CLI::App app("Broker-less demo: a WebSocket server pushing user events from Peter");
  peter::demo::PeerFlags flags;
  flags.name = "ws";
  peter::demo::AddPeerFlags(app, flags);
  CLI11_PARSE(app, argc, argv);
  return peter::demo::Run(flags);
}

#include "net_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace peter::pastry::net::testing {

RuntimeOptions LoopbackOptions(const std::string& listen) {
  RuntimeOptions o;
  o.listen = listen;
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  o.logger = std::make_shared<spdlog::logger>("net-test", sink);
  o.logger->set_level(spdlog::level::warn);
  return o;
}

std::unique_ptr<NodeRuntime> StartNode(RuntimeOptions options) {
  absl::StatusOr<std::unique_ptr<NodeRuntime>> node = NodeRuntime::Start(std::move(options));
  EXPECT_TRUE(node.ok()) << node.status();
  if (!node.ok()) return nullptr;
  return std::move(*node);
}

std::unique_ptr<NodeRuntime> StartActivePeer(const NodeRuntime& via) {
  RuntimeOptions o = LoopbackOptions();
  o.bootstrap = {via.listen_endpoint().ToString()};
  std::unique_ptr<NodeRuntime> peer = StartNode(std::move(o));
  if (peer == nullptr) return nullptr;
  absl::Status active = peer->WaitUntilActive(absl::Seconds(10));
  EXPECT_TRUE(active.ok()) << active;
  return active.ok() ? std::move(peer) : nullptr;
}

int CapturedLog::Count(const std::string& text) const {
  int n = 0;
  for (const std::string& line : sink_->last_formatted()) {
    if (line.find(text) != std::string::npos) ++n;
  }
  return n;
}

CapturedLog WarningsOf(RuntimeOptions& options) {
  CapturedLog log;
  log.sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  options.logger = std::make_shared<spdlog::logger>("net-test", log.sink_);
  options.logger->set_level(spdlog::level::warn);
  return log;
}

std::vector<std::unique_ptr<NodeRuntime>> StartRing(int n, std::mt19937_64& rng,
                                                    const std::string& listen) {
  std::vector<std::unique_ptr<NodeRuntime>> nodes;
  for (int i = 0; i < n; ++i) {
    RuntimeOptions o = LoopbackOptions(listen);
    if (i > 0) {
      const size_t via = std::uniform_int_distribution<size_t>(0, nodes.size() - 1)(rng);
      o.bootstrap.push_back(nodes[via]->self().endpoint.ToString());
    }
    nodes.push_back(StartNode(std::move(o)));
    if (nodes.back() == nullptr) break;
  }
  for (auto& node : nodes) {
    if (node == nullptr) continue;
    absl::Status s = node->WaitUntilActive(absl::Seconds(20));
    EXPECT_TRUE(s.ok()) << s;
  }
  return nodes;
}

bool Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::string LeafSetMismatch(const std::vector<std::unique_ptr<NodeRuntime>>& nodes,
                            int leaf_set_size) {
  std::vector<NodeId> ids;
  for (const auto& node : nodes) {
    if (node != nullptr) ids.push_back(node->self().id);
  }
  std::sort(ids.begin(), ids.end());
  const int n = static_cast<int>(ids.size());
  const int k = std::min(leaf_set_size / 2, n - 1);
  for (const auto& node : nodes) {
    if (node == nullptr) continue;
    const NodeSnapshot snap = node->Snapshot();
    const int i = static_cast<int>(std::find(ids.begin(), ids.end(), snap.self.id) - ids.begin());
    std::set<NodeId> expected, actual;
    for (int j = 1; j <= k; ++j) {
      expected.insert(ids[(i + j) % n]);
      expected.insert(ids[(i - j + n) % n]);
    }
    for (const NodeHandle& h : snap.leaf_set) actual.insert(h.id);
    if (expected != actual) {
      return absl::StrCat(snap.self.id.ShortHex(), " has ", actual.size(), " leaves, expected ",
                          expected.size());
    }
  }
  return "";
}

NodeId ClosestId(const std::vector<NodeId>& ids, const NodeId& key) {
  NodeId best = ids.front();
  for (const NodeId& id : ids) {
    if (NodeId::CloserTo(key, id, best)) best = id;
  }
  return best;
}

NodeId RandomKey(std::mt19937_64& rng) { return NodeId(rng(), rng()); }

namespace {

int Socket(int family) { return ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0); }

}  // namespace

int ConnectRaw(const Endpoint& to) {
  if (to.is_v4()) {
    int fd = Socket(AF_INET);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(to.port);
    std::memcpy(&a.sin_addr, to.ip.data() + 12, 4);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  int fd = Socket(AF_INET6);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(to.port);
  std::memcpy(&a.sin6_addr, to.ip.data(), 16);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int ListenRaw(uint16_t* port, int rcvbuf_bytes) {
  int fd = Socket(AF_INET);
  if (rcvbuf_bytes > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof(rcvbuf_bytes));
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 16) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

bool SendAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool PeerClosed(int fd, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    if (::recv(fd, buf, sizeof(buf), 0) <= 0) return true;
  }
  return false;
}

uint16_t UnusedPort() {
  uint16_t port = 0;
  int fd = ListenRaw(&port);
  ::close(fd);
  return port;
}

}  // namespace peter::pastry::net::testing

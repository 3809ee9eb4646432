#include "tests/pubsub/resp/test_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

namespace peter::resp::testing {
namespace {

constexpr size_t kIncomplete = std::string_view::npos;

// Position just after the element starting at `pos`, or kIncomplete.
size_t ElementEnd(std::string_view d, size_t pos) {
  if (pos >= d.size()) return kIncomplete;
  size_t eol = d.find("\r\n", pos);
  if (eol == std::string_view::npos) return kIncomplete;
  char type = d[pos];
  long long n = std::atoll(std::string(d.substr(pos + 1, eol - pos - 1)).c_str());
  size_t next = eol + 2;
  switch (type) {
    case '$': case '!': case '=':
      if (n < 0) return next;
      return d.size() < next + n + 2 ? kIncomplete : next + n + 2;
    case '*': case '~': case '>': case '%': case '|': {
      if (n < 0) return next;
      long long elements = (type == '%' || type == '|') ? 2 * n : n;
      if (type == '|') ++elements;  // an attribute precedes a reply
      for (long long i = 0; i < elements; ++i) {
        next = ElementEnd(d, next);
        if (next == kIncomplete) return kIncomplete;
      }
      return next;
    }
    default:
      return next;
  }
}

}  // namespace

std::optional<size_t> ReplyLength(std::string_view data) {
  size_t end = ElementEnd(data, 0);
  if (end == kIncomplete) return std::nullopt;
  return end;
}

std::string Multibulk(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

TestClient::TestClient(uint16_t port, int rcvbuf) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

TestClient::~TestClient() { Close(); }

void TestClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void TestClient::Send(std::string_view bytes) {
  while (fd_ >= 0 && !bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

bool TestClient::Fill(std::chrono::steady_clock::time_point deadline) {
  if (fd_ < 0 || eof_) return false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() < 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char chunk[65536];
  ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buffer_.append(chunk, static_cast<size_t>(n));
  return true;
}

std::string TestClient::Read(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (auto len = ReplyLength(buffer_)) {
      std::string reply = buffer_.substr(0, *len);
      buffer_.erase(0, *len);
      return reply;
    }
    if (!Fill(deadline)) return eof_ ? "<closed>" : "<timeout>";
  }
}

bool TestClient::WaitClosed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!eof_) {
    if (!Fill(deadline) && !eof_) return false;
  }
  return true;
}

size_t TestClient::Pending() {
  Fill(std::chrono::steady_clock::now());
  return buffer_.size();
}

uint16_t FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string FindRedisServer() {
  for (const char* path : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
    if (::access(path, X_OK) == 0) return path;
  }
  return "";
}

std::string RedisServerVersion() {
  std::string binary = FindRedisServer();
  if (binary.empty()) return "";
  FILE* f = ::popen((binary + " --version").c_str(), "r");
  if (f == nullptr) return "";
  char line[256] = {0};
  size_t n = ::fread(line, 1, sizeof(line) - 1, f);
  ::pclose(f);
  std::string text(line, n);
  size_t at = text.find("v=");
  if (at == std::string::npos) return "";
  return text.substr(at + 2, text.find(' ', at) - at - 2);
}

RedisServer::RedisServer(const std::vector<std::string>& extra_args) {
  std::string binary = FindRedisServer();
  if (binary.empty()) return;
  char dir_template[] = "/tmp/peter-redis-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) return;
  dir_ = dir_template;
  uint16_t port = FreeLoopbackPort();
  std::vector<std::string> args = {binary, "--port", std::to_string(port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--dir", dir_,
                                   "--logfile", dir_ + "/log", "--daemonize", "no"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    // The server dies with the test, even if the test is killed.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  // Ready once it answers; a fresh connection per attempt.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    TestClient probe(port);
    if (probe.connected()) {
      std::string info = probe.Call({"INFO", "server"});
      if (info.find("redis_version:") != std::string::npos) {
        size_t at = info.find("redis_version:") + 14;
        version_ = info.substr(at, info.find('\r', at) - at);
        port_ = port;
        return;
      }
      if (info.find("NOAUTH") != std::string::npos) {  // requirepass set
        port_ = port;
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // start-up poll
  }
}

RedisServer::~RedisServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace peter::resp::testing

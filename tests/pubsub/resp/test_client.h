// Test helpers: a blocking RESP client over loopback TCP that returns each
// reply's raw bytes, and a real redis-server on a free loopback port.
#ifndef PETER_TESTS_PUBSUB_RESP_TEST_CLIENT_H_
#define PETER_TESTS_PUBSUB_RESP_TEST_CLIENT_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace peter::resp::testing {

// Length of the first complete RESP2/RESP3 reply in `data`, or nullopt if
// `data` holds only part of one.
std::optional<size_t> ReplyLength(std::string_view data);

// "*N\r\n$len\r\narg\r\n..." for the given arguments.
std::string Multibulk(const std::vector<std::string>& args);
// A pub/sub push as the gateway sends it to a RESP2 client ({"message",
// channel, payload}): the same bytes as Multibulk.
inline std::string Push(const std::vector<std::string>& items) { return Multibulk(items); }

// Waits for `pred` with a deadline (no fixed sleeps); false if it passes.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

class TestClient {
 public:
  // Connects to 127.0.0.1:port; `rcvbuf` > 0 shrinks the receive buffer.
  explicit TestClient(uint16_t port, int rcvbuf = 0);
  ~TestClient();
  bool connected() const { return fd_ >= 0; }

  void Send(std::string_view bytes);
  void Command(const std::vector<std::string>& args) { Send(Multibulk(args)); }
  // One complete reply's raw bytes; "<timeout>" or "<closed>" otherwise.
  std::string Read(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Sends and reads one reply.
  std::string Call(const std::vector<std::string>& args) {
    Command(args);
    return Read();
  }
  // True if the server closed the connection (after any pending replies)
  // within the timeout.
  bool WaitClosed(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Bytes already received and not yet returned by Read (non-blocking).
  size_t Pending();
  void Close();

 private:
  // Reads more into buffer_; false on EOF, error or deadline.
  bool Fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  bool eof_ = false;
  std::string buffer_;
};

// A redis-server child process; available() is false if it could not run
// (not installed).
class RedisServer {
 public:
  explicit RedisServer(const std::vector<std::string>& extra_args = {});
  ~RedisServer();
  bool available() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  std::string version() const { return version_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string version_;
  std::string dir_;
};

// Path of redis-server, or empty.
std::string FindRedisServer();
// Its version ("7.0.15"), or empty.
std::string RedisServerVersion();
uint16_t FreeLoopbackPort();

}  // namespace peter::resp::testing

#endif  // PETER_TESTS_PUBSUB_RESP_TEST_CLIENT_H_

// Helpers for the runtime tests: nodes on loopback, ground truth, polling
// with a deadline (never a sleep as synchronisation), raw POSIX sockets for
// hostile peers.
#ifndef PETER_TESTS_PASTRY_NET_NET_TEST_UTIL_H_
#define PETER_TESTS_PASTRY_NET_NET_TEST_UTIL_H_

#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "pastry/net/node_runtime.h"
#include "spdlog/sinks/ringbuffer_sink.h"

namespace peter::pastry::net::testing {

// Options for a loopback node with a quiet logger (warnings and up).
RuntimeOptions LoopbackOptions(const std::string& listen = "127.0.0.1:0");

// Starts a node; fails the test (and returns null) if it cannot.
std::unique_ptr<NodeRuntime> StartNode(RuntimeOptions options);

// Starts a loopback node that joins through `via` and waits until it is
// active; fails the test (and returns null) if it does not become so.
std::unique_ptr<NodeRuntime> StartActivePeer(const NodeRuntime& via);

// Log lines (warnings and up) of a node, kept in memory by WarningsOf.
class CapturedLog {
 public:
  // How many captured lines contain `text`.
  int Count(const std::string& text) const;

 private:
  friend CapturedLog WarningsOf(RuntimeOptions& options);
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};
// Makes `options`' logger keep its lines in memory (the last 1,000).
CapturedLog WarningsOf(RuntimeOptions& options);

// Starts a ring of `n` nodes, each joining through a random earlier one, and
// waits until all are active.
std::vector<std::unique_ptr<NodeRuntime>> StartRing(int n, std::mt19937_64& rng,
                                                    const std::string& listen = "127.0.0.1:0");

// Polls `done` every few milliseconds until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& done, absl::Duration timeout);

// Empty if every node's leaf set equals the one computed from all the
// nodes' ids (leaf-set size L); otherwise a description of the first
// mismatch. Null entries (destroyed nodes) are skipped.
std::string LeafSetMismatch(const std::vector<std::unique_ptr<NodeRuntime>>& nodes, int leaf_set_size);

// The id among `ids` numerically closest to `key` (NodeId::CloserTo).
NodeId ClosestId(const std::vector<NodeId>& ids, const NodeId& key);
NodeId RandomKey(std::mt19937_64& rng);

// Raw sockets (blocking). Return -1 on failure.
int ConnectRaw(const Endpoint& to);
// Listens on 127.0.0.1 with a small receive buffer; sets *port.
int ListenRaw(uint16_t* port, int rcvbuf_bytes = 0);
bool SendAll(int fd, const std::string& bytes);
// True when the peer has closed (read returns 0 or an error) within timeout.
bool PeerClosed(int fd, absl::Duration timeout);
// A port on 127.0.0.1 that nothing listens on (bound once, then released).
uint16_t UnusedPort();

}  // namespace peter::pastry::net::testing

#endif  // PETER_TESTS_PASTRY_NET_NET_TEST_UTIL_H_

// A `peter node` child process for integration tests: spawned with
// posix_spawn, its first stdout line parsed for the ports it picked, killed
// (SIGKILL) and reaped when the object goes away, so a failing test leaves
// no process behind.
#ifndef PETER_TESTS_INTEGRATION_NODE_PROCESS_H_
#define PETER_TESTS_INTEGRATION_NODE_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace peter::integration {

struct NodeSpec {
  // Run the node through this command, e.g. {"ip", "netns", "exec", "ns1"}.
  std::vector<std::string> prefix;
  std::string listen = "127.0.0.1:0";
  std::string admin = "127.0.0.1:0";
  std::string id;                  // empty: random
  std::vector<std::string> join;   // "host:port" each
  std::vector<std::string> extra;  // more flags
  std::string log_path = "/dev/null";  // the node's stderr
};

class NodeProcess {
 public:
  // Starts `binary node ...` and waits (up to `timeout`) for its
  // "listening ..." line. Fails if it exits or says nothing in time.
  static absl::StatusOr<std::unique_ptr<NodeProcess>> Spawn(
      const std::string& binary, const NodeSpec& spec,
      absl::Duration timeout = absl::Seconds(10));

  ~NodeProcess();  // SIGKILL and reap, if still running
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& listen() const { return listen_; }  // "host:port"
  const std::string& id() const { return id_; }          // 32 hex digits
  const std::string& admin_host() const { return admin_host_; }
  int admin_port() const { return admin_port_; }
  int resp_port() const { return resp_port_; }  // 0: no --resp

  // kill -9 and reap.
  void Kill();
  // Sends `signal` and waits up to `timeout` for the exit; returns the exit
  // status (as waitpid reports it), or nullopt if it is still running.
  std::optional<int> SignalAndWait(int signal, absl::Duration timeout);

 private:
  NodeProcess() = default;

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string listen_;
  std::string id_;
  std::string admin_host_;
  int admin_port_ = 0;
  int resp_port_ = 0;
};

// Runs `binary` with `args` to completion (up to `timeout`, then SIGKILL),
// returning its exit status (waitpid form) and what it wrote to stderr.
struct Completed {
  int status = -1;
  std::string stdout_text;
  std::string stderr_text;
};
absl::StatusOr<Completed> RunToCompletion(const std::string& binary,
                                          const std::vector<std::string>& args,
                                          absl::Duration timeout);

}  // namespace peter::integration

#endif  // PETER_TESTS_INTEGRATION_NODE_PROCESS_H_

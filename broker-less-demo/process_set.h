// The launcher's processes: every program of the demo cluster runs as a
// child the launcher starts, kills (SIGKILL, as a crash) and restarts with
// the same id and ports, so the page can take any node away and bring it
// back.
//
// Threads: Start, Reap and Stop run on the one thread that created the set
// (children get SIGTERM if that thread exits: PR_SET_PDEATHSIG). Kill and
// the accessors are thread-safe.
#ifndef PETER_BROKER_LESS_DEMO_PROCESS_SET_H_
#define PETER_BROKER_LESS_DEMO_PROCESS_SET_H_

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace peter::demo {

enum class ProcessState { kStarting, kUp, kDown };
const char* ToString(ProcessState state);

// What a child announced on stdout (demo_peer.h, `peter node`).
struct Announced {
  std::string overlay;  // host:port of its Peter node
  std::string id;       // 32 hex
  std::string admin;    // host:port
  std::string http;     // host:port, or "" for a plain node
};

struct ProcessView {
  std::string name;
  std::string kind;  // "node", "api", "ws"
  ProcessState state = ProcessState::kDown;
  pid_t pid = 0;
  int restarts = 0;
  std::string last_exit;  // how it last ended, "" if never
  Announced announced;
};

class ProcessSet {
 public:
  // Children's stderr goes to `<log_dir>/<name>.log`.
  explicit ProcessSet(std::string log_dir);
  ~ProcessSet();  // Stop()

  // Registers a process; `argv` is its full command line, without --join
  // (Start adds the addresses of live members).
  void Add(std::string name, std::string kind, std::vector<std::string> argv);

  // Starts `name` (SIGKILLing it first if it runs), joining through up to
  // three live members' overlay addresses, or starting a ring if none.
  absl::Status Start(const std::string& name);
  // Waits until `name` is up (announced `active`), down, or the timeout.
  bool WaitUp(const std::string& name, absl::Duration timeout);
  // SIGKILL; the process shows as down once reaped.
  absl::Status Kill(const std::string& name);
  // Collects exited children; call periodically.
  void Reap();
  // SIGTERM to every child, waits up to `grace` for them, then SIGKILL.
  void Stop(absl::Duration grace = absl::Seconds(5));

  std::vector<ProcessView> Views() const;
  bool Has(const std::string& name) const;
  const std::string& log_dir() const { return log_dir_; }

 private:
  struct Child {
    ProcessView view;
    std::vector<std::string> argv;
    std::thread reader;  // reads the child's stdout
  };
  Child* Find(const std::string& name);  // REQUIRES: mu_ held
  void ReadAnnouncements(Child* child, int fd);
  void ReapLocked(bool block);

  std::string log_dir_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Child>> children_;
};

}  // namespace peter::demo

#endif  // PETER_BROKER_LESS_DEMO_PROCESS_SET_H_

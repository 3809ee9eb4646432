#include "tests/integration/node_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

extern char** environ;

namespace peter::integration {
namespace {

// Spawns argv with stdout and stderr redirected to the given descriptors
// (or, for stderr_path, a file). Returns the child's pid.
absl::StatusOr<pid_t> SpawnWith(const std::vector<std::string>& argv, int stdout_fd,
                                int stderr_fd, const std::string& stderr_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  if (stderr_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, stderr_fd, STDERR_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // The child starts with default signal handling and an empty mask.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("posix_spawn ", argv[0], ": ", std::strerror(rc)));
  }
  return pid;
}

// Reads from `fd` until a newline, EOF or the deadline. Returns what it read
// (without the newline); `complete` says whether a newline came.
std::string ReadLine(int fd, absl::Time deadline, bool* complete) {
  std::string line;
  *complete = false;
  while (true) {
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return line;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) continue;
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n <= 0) return line;
    if (c == '\n') {
      *complete = true;
      return line;
    }
    line.push_back(c);
  }
}

// Reaps `pid`, waiting up to `timeout`. Returns its status if it exited.
std::optional<int> WaitFor(pid_t pid, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeProcess>> NodeProcess::Spawn(
    const std::string& binary, const NodeSpec& spec, absl::Duration timeout) {
  std::vector<std::string> argv = spec.prefix;
  argv.insert(argv.end(), {binary, "node", "--listen", spec.listen});
  if (!spec.admin.empty()) argv.insert(argv.end(), {"--admin", spec.admin});
  if (!spec.id.empty()) argv.insert(argv.end(), {"--id", spec.id});
  if (!spec.join.empty()) argv.insert(argv.end(), {"--join", absl::StrJoin(spec.join, ",")});
  argv.insert(argv.end(), spec.extra.begin(), spec.extra.end());

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  std::unique_ptr<NodeProcess> node(new NodeProcess());
  absl::StatusOr<pid_t> pid = SpawnWith(argv, pipe_fds[1], -1, spec.log_path);
  close(pipe_fds[1]);
  node->stdout_fd_ = pipe_fds[0];
  if (!pid.ok()) return pid.status();
  node->pid_ = *pid;

  bool complete = false;
  std::string line = ReadLine(node->stdout_fd_, absl::Now() + timeout, &complete);
  std::istringstream words(line);
  std::string listening, id_word, admin_word, admin, resp_word, resp;
  words >> listening >> node->listen_ >> id_word >> node->id_ >> admin_word >> admin >>
      resp_word >> resp;
  if (!complete || listening != "listening" || id_word != "id" || admin_word != "admin") {
    return absl::UnavailableError(absl::StrCat(
        "node did not start (", absl::StrJoin(argv, " "), "): stdout \"", line,
        "\"; see ", spec.log_path));
  }
  if (admin != "-") {
    size_t colon = admin.rfind(':');
    node->admin_host_ = admin.substr(0, colon);
    node->admin_port_ = std::stoi(admin.substr(colon + 1));
  }
  if (resp_word == "resp" && !resp.empty() && resp != "-") {
    node->resp_port_ = std::stoi(resp.substr(resp.rfind(':') + 1));
  }
  return node;
}

NodeProcess::~NodeProcess() {
  Kill();
  if (stdout_fd_ >= 0) close(stdout_fd_);
}

void NodeProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  WaitFor(pid_, absl::Seconds(10));
  pid_ = -1;
}

std::optional<int> NodeProcess::SignalAndWait(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return std::nullopt;
  kill(pid_, signal);
  std::optional<int> status = WaitFor(pid_, timeout);
  if (status) pid_ = -1;
  return status;
}

absl::StatusOr<Completed> RunToCompletion(const std::string& binary,
                                          const std::vector<std::string>& args,
                                          absl::Duration timeout) {
  char out_path[] = "/tmp/peter-run-out-XXXXXX";
  char err_path[] = "/tmp/peter-run-err-XXXXXX";
  int out_fd = mkstemp(out_path);
  int err_fd = mkstemp(err_path);
  std::vector<std::string> argv = {binary};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<pid_t> pid = SpawnWith(argv, out_fd, err_fd, "");
  Completed done;
  if (pid.ok()) {
    std::optional<int> status = WaitFor(*pid, timeout);
    if (!status) {
      kill(*pid, SIGKILL);
      WaitFor(*pid, absl::Seconds(10));
    }
    done.status = status.value_or(-1);
  }
  auto slurp = [](int fd) {
    std::string text;
    char buf[4096];
    lseek(fd, 0, SEEK_SET);
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) text.append(buf, n);
    close(fd);
    return text;
  };
  done.stdout_text = slurp(out_fd);
  done.stderr_text = slurp(err_fd);
  unlink(out_path);
  unlink(err_path);
  if (!pid.ok()) return pid.status();
  if (done.status == -1) return absl::DeadlineExceededError("still running; killed");
  return done;
}

}  // namespace peter::integration

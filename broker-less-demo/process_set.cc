#include "broker-less-demo/process_set.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace peter::demo {
namespace {

constexpr int kMaxJoinAddresses = 3;
constexpr auto kPoll = std::chrono::milliseconds(20);

std::string ExitText(int status) {
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::StrCat("exited with code ", WEXITSTATUS(status));
}

}  // namespace

const char* ToString(ProcessState state) {
  switch (state) {
    case ProcessState::kStarting: return "starting";
    case ProcessState::kUp: return "up";
    case ProcessState::kDown: return "down";
  }
  return "?";
}

ProcessSet::ProcessSet(std::string log_dir) : log_dir_(std::move(log_dir)) {}

ProcessSet::~ProcessSet() { Stop(); }

void ProcessSet::Add(std::string name, std::string kind, std::vector<std::string> argv) {
  auto child = std::make_unique<Child>();
  child->view.name = std::move(name);
  child->view.kind = std::move(kind);
  child->argv = std::move(argv);
  std::lock_guard lock(mu_);
  children_.push_back(std::move(child));
}

ProcessSet::Child* ProcessSet::Find(const std::string& name) {
  for (auto& child : children_) {
    if (child->view.name == name) return child.get();
  }
  return nullptr;
}

bool ProcessSet::Has(const std::string& name) const {
  std::lock_guard lock(mu_);
  return const_cast<ProcessSet*>(this)->Find(name) != nullptr;
}

absl::Status ProcessSet::Start(const std::string& name) {
  std::thread old_reader;
  {
    std::lock_guard lock(mu_);
    Child* child = Find(name);
    if (child == nullptr) return absl::NotFoundError(absl::StrCat("no process ", name));
    if (child->view.state != ProcessState::kDown) {
      kill(child->view.pid, SIGKILL);
      int status = 0;
      waitpid(child->view.pid, &status, 0);
      child->view.state = ProcessState::kDown;
      child->view.last_exit = ExitText(status);
    }
    old_reader = std::move(child->reader);
  }
  if (old_reader.joinable()) old_reader.join();  // EOF: the process is gone

  std::lock_guard lock(mu_);
  Child* child = Find(name);
  std::vector<std::string> argv = child->argv;
  std::vector<std::string> join;
  for (auto& other : children_) {
    if (other.get() != child && other->view.state == ProcessState::kUp &&
        join.size() < kMaxJoinAddresses) {
      join.push_back(other->view.announced.overlay);
    }
  }
  if (!join.empty()) {
    argv.push_back("--join");
    argv.push_back(absl::StrJoin(join, ","));
  }
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  const std::string log_path = absl::StrCat(log_dir_, "/", name, ".log");
  const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    close(out[0]);
    close(out[1]);
    return absl::InternalError(absl::StrCat("cannot open ", log_path));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    dup2(out[1], STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    const char message[] = "launcher: exec failed\n";
    (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
    _exit(127);
  }
  close(out[1]);
  close(log);
  if (pid < 0) {
    close(out[0]);
    return absl::InternalError("fork failed");
  }
  if (!child->view.last_exit.empty()) ++child->view.restarts;
  child->view.pid = pid;
  child->view.state = ProcessState::kStarting;
  child->view.announced = {};
  child->reader = std::thread([this, child, fd = out[0]] { ReadAnnouncements(child, fd); });
  return absl::OkStatus();
}

void ProcessSet::ReadAnnouncements(Child* child, int fd) {
  FILE* in = fdopen(fd, "r");
  char* line = nullptr;
  size_t capacity = 0;
  while (getline(&line, &capacity, in) > 0) {
    std::istringstream words(line);
    std::string word;
    words >> word;
    std::lock_guard lock(mu_);
    if (word == "listening") {
      Announced a;
      words >> a.overlay;
      std::string key, value;
      while (words >> key >> value) {
        if (key == "id") a.id = value;
        if (key == "admin") a.admin = value;
        if (key == "http") a.http = value;
      }
      child->view.announced = a;
    } else if (word == "active" && child->view.state == ProcessState::kStarting) {
      child->view.state = ProcessState::kUp;
    }
  }
  free(line);
  fclose(in);
}

bool ProcessSet::WaitUp(const std::string& name, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    Reap();
    {
      std::lock_guard lock(mu_);
      Child* child = Find(name);
      if (child == nullptr || child->view.state == ProcessState::kDown) return false;
      if (child->view.state == ProcessState::kUp) return true;
    }
    std::this_thread::sleep_for(kPoll);
  }
  return false;
}

absl::Status ProcessSet::Kill(const std::string& name) {
  std::lock_guard lock(mu_);
  Child* child = Find(name);
  if (child == nullptr) return absl::NotFoundError(absl::StrCat("no process ", name));
  if (child->view.state == ProcessState::kDown) {
    return absl::FailedPreconditionError(absl::StrCat(name, " is not running"));
  }
  kill(child->view.pid, SIGKILL);
  return absl::OkStatus();
}

void ProcessSet::Reap() {
  std::lock_guard lock(mu_);
  ReapLocked(/*block=*/false);
}

void ProcessSet::ReapLocked(bool block) {
  while (true) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, block ? 0 : WNOHANG);
    if (pid <= 0) return;
    for (auto& child : children_) {
      if (child->view.pid == pid && child->view.state != ProcessState::kDown) {
        child->view.state = ProcessState::kDown;
        child->view.last_exit = ExitText(status);
      }
    }
  }
}

void ProcessSet::Stop(absl::Duration grace) {
  {
    std::lock_guard lock(mu_);
    for (auto& child : children_) {
      if (child->view.state != ProcessState::kDown) kill(child->view.pid, SIGTERM);
    }
  }
  const absl::Time deadline = absl::Now() + grace;
  while (true) {
    bool running = false;
    {
      std::lock_guard lock(mu_);
      ReapLocked(/*block=*/false);
      for (auto& child : children_) running |= child->view.state != ProcessState::kDown;
      if (running && absl::Now() >= deadline) {
        for (auto& child : children_) {
          if (child->view.state == ProcessState::kDown) continue;
          std::fprintf(stderr, "peter-demo: %s did not stop within %s; killing it\n",
                       child->view.name.c_str(), absl::FormatDuration(grace).c_str());
          kill(child->view.pid, SIGKILL);
        }
        ReapLocked(/*block=*/true);
        running = false;
      }
    }
    if (!running) break;
    std::this_thread::sleep_for(kPoll);
  }
  std::vector<std::thread> readers;
  {
    std::lock_guard lock(mu_);
    for (auto& child : children_) {
      if (child->reader.joinable()) readers.push_back(std::move(child->reader));
    }
  }
  for (std::thread& reader : readers) reader.join();
}

std::vector<ProcessView> ProcessSet::Views() const {
  std::lock_guard lock(mu_);
  std::vector<ProcessView> out;
  for (const auto& child : children_) out.push_back(child->view);
  return out;
}

}  // namespace peter::demo

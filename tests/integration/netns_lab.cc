#include "tests/integration/netns_lab.h"

#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/node_process.h"

namespace peter::integration {
namespace {

constexpr char kSubnet[] = "10.77.0.";

bool HaveIp() {
  for (const char* dir : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(dir, X_OK) == 0) return true;
  }
  return false;
}

}  // namespace

std::string NetnsLab::Unsupported() {
  if (geteuid() != 0) return "not running as root";
  if (!HaveIp()) return "the ip command (iproute2) is missing";
  return "";
}

absl::Status NetnsLab::Run(const std::vector<std::string>& args) {
  absl::StatusOr<Completed> done = RunToCompletion("ip", args, absl::Seconds(10));
  if (!done.ok()) return done.status();
  if (done->status != 0) {
    return absl::InternalError(absl::StrCat("ip ", absl::StrJoin(args, " "),
                                            " failed: ", done->stderr_text));
  }
  return absl::OkStatus();
}

// Deletes namespaces left by test processes that died without cleaning up
// (named peter-test-<pid>-..., with no such process any more).
void RemoveStale(const std::function<absl::Status(std::vector<std::string>)>& run) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    constexpr std::string_view kPrefix = "peter-test-";
    if (name.rfind(kPrefix, 0) != 0) continue;
    pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + kPrefix.size()));
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) {
      run({"netns", "del", name}).IgnoreError();
    }
  }
}

absl::StatusOr<std::unique_ptr<NetnsLab>> NetnsLab::Create(int hosts) {
  std::unique_ptr<NetnsLab> lab(new NetnsLab());
  const std::string tag = absl::StrCat("peter-test-", getpid());
  lab->hub_ = tag + "-hub";
  auto run = [&](std::vector<std::string> args) { return lab->Run(args); };
  RemoveStale(run);
  absl::Status s = run({"netns", "add", lab->hub_});
  if (!s.ok()) return s;
  for (auto args : std::vector<std::vector<std::string>>{
           {"-n", lab->hub_, "link", "set", "lo", "up"},
           {"-n", lab->hub_, "link", "add", "br0", "type", "bridge"},
           {"-n", lab->hub_, "addr", "add", absl::StrCat(kSubnet, "1/24"), "dev", "br0"},
           {"-n", lab->hub_, "link", "set", "br0", "up"}}) {
    if (s = run(args); !s.ok()) return s;
  }
  for (int i = 0; i < hosts; ++i) {
    std::string name = absl::StrCat(tag, "-", i);
    if (s = run({"netns", "add", name}); !s.ok()) return s;
    lab->names_.push_back(name);
    std::string veth = absl::StrCat("vh", i);
    for (auto args : std::vector<std::vector<std::string>>{
             {"-n", lab->hub_, "link", "add", veth, "type", "veth", "peer", "name",
              "eth0", "netns", name},
             {"-n", lab->hub_, "link", "set", veth, "master", "br0", "up"},
             {"-n", name, "link", "set", "lo", "up"},
             {"-n", name, "addr", "add", lab->Address(i) + "/24", "dev", "eth0"},
             {"-n", name, "link", "set", "eth0", "up"}}) {
      if (s = run(args); !s.ok()) return s;
    }
  }
  return lab;
}

NetnsLab::~NetnsLab() {
  Leave();
  for (const std::string& name : names_) Run({"netns", "del", name}).IgnoreError();
  if (!hub_.empty()) Run({"netns", "del", hub_}).IgnoreError();
}

absl::Status NetnsLab::Enter() {
  if (saved_ns_fd_ >= 0) return absl::OkStatus();
  saved_ns_fd_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int hub_fd = open(("/run/netns/" + hub_).c_str(), O_RDONLY | O_CLOEXEC);
  if (saved_ns_fd_ < 0 || hub_fd < 0 || setns(hub_fd, CLONE_NEWNET) != 0) {
    if (hub_fd >= 0) close(hub_fd);
    return absl::InternalError("cannot enter the hub namespace");
  }
  close(hub_fd);
  return absl::OkStatus();
}

void NetnsLab::Leave() {
  if (saved_ns_fd_ < 0) return;
  setns(saved_ns_fd_, CLONE_NEWNET);
  close(saved_ns_fd_);
  saved_ns_fd_ = -1;
}

std::vector<std::string> NetnsLab::Prefix(int i) const {
  return {"ip", "netns", "exec", names_[i]};
}

std::string NetnsLab::Address(int i) const { return absl::StrCat(kSubnet, i + 2); }

std::string NetnsLab::HubAddress() const { return absl::StrCat(kSubnet, 1); }

absl::Status NetnsLab::SetConnected(int i, bool connected) {
  return Run({"-n", hub_, "link", "set", absl::StrCat("vh", i), connected ? "up" : "down"});
}

absl::Status NetnsLab::SetReachable(int i, int j, bool reachable) {
  for (auto [from, to] : {std::pair{i, j}, std::pair{j, i}}) {
    absl::Status s = Run({"-n", names_[from], "route", reachable ? "del" : "add", "unreachable",
                          Address(to) + "/32"});
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace peter::integration

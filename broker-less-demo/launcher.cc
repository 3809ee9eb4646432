// `peter-demo`: the broker-less demo on loopback. It starts 5 plain
// `peter node`s, 2 API servers (api_server.cc) and 3 WebSocket servers
// (ws_server.cc) as child processes forming one Peter ring, a small load
// generator posting events for a few users, and the web page
// (broker-less-demo/web/), then prints the address to open. Ctrl-C (SIGINT)
// or SIGTERM stops everything: the children leave the ring and exit.
//
// The page's JSON API (HTTP: cpp-httplib):
//   GET  /api/cluster              every process: state, id, addresses,
//                                  leaf set and topic trees (from each
//                                  node's admin /status), and
//                                  the load generator's counters
//   GET  /api/topic?name=T         T's id and root (a lookup via a live node)
//   POST /api/nodes/NAME/kill      SIGKILL (a crash)
//   POST /api/nodes/NAME/restart   start again with the same id and ports
//   POST /api/publish              {"api","user","event"}: posts through
//                                  that API server
#include <httplib.h>
#include <limits.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "broker-less-demo/process_set.h"
#include "nlohmann/json.hpp"
#include "pubsub/topic_id.h"

#ifndef PETER_DEMO_WEB_DIR
#error "PETER_DEMO_WEB_DIR must name broker-less-demo/web"
#endif

namespace peter::demo {
namespace {

using nlohmann::json;

constexpr absl::Duration kStartTimeout = absl::Seconds(60);
constexpr auto kPollInterval = std::chrono::milliseconds(400);

struct Flags {
  std::string host = "127.0.0.1";
  int port = 8080;
  int nodes = 5;
  int api = 2;
  int ws = 3;
  double rate = 2;  // load-generator events per second; 0: none
  std::string users = "alice,bob,carol";
  std::string log_dir;
  std::string bin_dir;
  std::string web_dir = PETER_DEMO_WEB_DIR;
  uint64_t seed = 0;  // 0: random node ids
};

// True if `port` on `host` (an IPv4 address) can be bound now.
bool CanBind(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, host.c_str(), &address.sin_addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  close(fd);
  return ok;
}

// A free TCP port on `host`, below Linux's ephemeral range (32768 and up),
// so outgoing connections of other programs, which take their source
// ports from that range, do not grab it before the child binds it.
// Not one of `taken`, which it joins.
int FreePort(const std::string& host, std::mt19937_64& rng, std::set<int>& taken) {
  std::uniform_int_distribution<int> pick(20000, 32000);
  for (int tries = 0; tries < 1000; ++tries) {
    const int port = pick(rng);
    if (!taken.contains(port) && CanBind(host, port)) {
      taken.insert(port);
      return port;
    }
  }
  return 0;
}

std::pair<std::string, int> SplitHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  return {address.substr(0, colon), std::atoi(address.c_str() + colon + 1)};
}

absl::StatusOr<json> GetJson(const std::string& address, const std::string& path,
                             int timeout_ms) {
  auto [host, port] = SplitHostPort(address);
  httplib::Client client(host, port);
  client.set_connection_timeout(0, timeout_ms * 1000);
  client.set_read_timeout(0, timeout_ms * 1000);
  httplib::Result r = client.Get(path.c_str());
  if (!r) return absl::UnavailableError(httplib::to_string(r.error()));
  json body = json::parse(r->body, nullptr, false);
  if (r->status != 200 || body.is_discarded()) {
    return absl::UnavailableError(absl::StrCat("HTTP ", r->status, ": ", r->body));
  }
  return body;
}

// Admin state of each process, refreshed by a background thread.
class Poller {
 public:
  explicit Poller(ProcessSet& processes) : processes_(processes) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Poller() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  json Cluster() {
    json out = json::array();
    std::lock_guard lock(mu_);
    for (const ProcessView& v : processes_.Views()) {
      json p = {{"name", v.name}, {"kind", v.kind}, {"state", ToString(v.state)},
                {"pid", v.pid}, {"restarts", v.restarts}, {"last_exit", v.last_exit},
                {"id", v.announced.id}, {"overlay", v.announced.overlay},
                {"admin", v.announced.admin}, {"http", v.announced.http},
                {"leaf_set", json::array()}, {"topics", json::array()}};
      auto it = state_.find(v.name);
      if (v.state != ProcessState::kDown && it != state_.end()) {
        const json& status = it->second;
        p["active"] = status.value("active", false);
        for (const json& leaf : status.value("leaf_set", json::array())) {
          p["leaf_set"].push_back(leaf.value("id", ""));
        }
        if (status.contains("pubsub")) {
          p["topics"] = status["pubsub"].value("topic_list", json::array());
          p["pubsub"] = status["pubsub"];
          p["pubsub"].erase("topic_list");
        }
      }
      out.push_back(std::move(p));
    }
    return out;
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      lock.unlock();
      std::map<std::string, json> fresh;
      for (const ProcessView& v : processes_.Views()) {
        if (v.state == ProcessState::kDown || v.announced.admin.empty()) continue;
        absl::StatusOr<json> status = GetJson(v.announced.admin, "/status", 300);
        if (status.ok()) fresh[v.name] = *status;
      }
      lock.lock();
      state_ = std::move(fresh);
      cv_.wait_for(lock, kPollInterval, [this] { return stop_; });
    }
  }

  ProcessSet& processes_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::string, json> state_;  // name -> its admin /status
  std::thread thread_;
};

// Posts an event to `user` through the API server at `address`; returns
// the HTTP status (0: no answer) and body.
std::pair<int, std::string> PostEvent(const std::string& address, const std::string& user,
                                      const json& event) {
  auto [host, port] = SplitHostPort(address);
  httplib::Client client(host, port);
  client.set_connection_timeout(1, 0);
  client.set_read_timeout(10, 0);
  httplib::Result r =
      client.Post(absl::StrCat("/users/", user, "/events").c_str(), event.dump(),
                  "application/json");
  if (!r) return {0, httplib::to_string(r.error())};
  return {r->status, r->body};
}

// Posts events for a few users round-robin through the live API servers.
class LoadGenerator {
 public:
  LoadGenerator(ProcessSet& processes, double rate, std::vector<std::string> users)
      : processes_(processes), rate_(rate), users_(std::move(users)) {
    if (rate_ > 0 && !users_.empty()) thread_ = std::thread([this] { Loop(); });
  }
  ~LoadGenerator() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  json Stats() const {
    return {{"rate", rate_}, {"users", users_}, {"sent", sent_.load()},
            {"accepted", accepted_.load()}, {"failed", failed_.load()}};
  }

 private:
  void Loop() {
    const auto interval = std::chrono::microseconds(static_cast<int64_t>(1e6 / rate_));
    std::unique_lock lock(mu_);
    for (uint64_t n = 1; !stop_; ++n) {
      lock.unlock();
      std::vector<std::string> apis;
      for (const ProcessView& v : processes_.Views()) {
        if (v.kind == "api" && v.state == ProcessState::kUp) apis.push_back(v.announced.http);
      }
      if (!apis.empty()) {
        const std::string& user = users_[n % users_.size()];
        ++sent_;
        auto [code, body] = PostEvent(apis[n % apis.size()], user,
                                      {{"kind", "load"}, {"n", n}, {"text", "order update"}});
        ++(code == 202 ? accepted_ : failed_);
      }
      lock.lock();
      cv_.wait_for(lock, interval, [this] { return stop_; });
    }
  }

  ProcessSet& processes_;
  const double rate_;
  const std::vector<std::string> users_;
  std::atomic<uint64_t> sent_{0}, accepted_{0}, failed_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Restart requests from the page, carried out on the main thread (the one
// that owns the children).
class Requests {
 public:
  void Push(std::string name) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(name));
  }
  std::deque<std::string> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(queue_, {});
  }

 private:
  std::mutex mu_;
  std::deque<std::string> queue_;
};

void SendJson(httplib::Response& res, int code, const json& body) {
  res.status = code;
  res.set_content(body.dump() + "\n", "application/json");
  res.set_header("Cache-Control", "no-store");
}

void Routes(httplib::Server& http, ProcessSet& processes, Poller& poller,
            LoadGenerator& load, Requests& requests, const std::string& web_dir) {
  http.Get("/api/cluster", [&](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, {{"processes", poller.Cluster()}, {"load", load.Stats()},
                        {"log_dir", processes.log_dir()}});
  });
  http.Get("/api/topic", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.get_param_value("name");
    if (name.empty() || name.size() > 256) {
      SendJson(res, 400, {{"error", "want ?name=TOPIC"}});
      return;
    }
    const std::string id = pubsub::TopicIdOf(name).ToHex();
    json out = {{"name", name}, {"id", id}, {"root", nullptr}};
    for (const ProcessView& v : processes.Views()) {
      if (v.state != ProcessState::kUp || v.announced.admin.empty()) continue;
      absl::StatusOr<json> route = GetJson(v.announced.admin, "/route?key=" + id, 3000);
      if (!route.ok()) continue;
      const std::string root = (*route)["root"].value("id", "");
      out["root"] = {{"id", root}, {"name", nullptr}};
      for (const ProcessView& w : processes.Views()) {
        if (w.announced.id == root) out["root"]["name"] = w.name;
      }
      break;
    }
    SendJson(res, 200, out);
  });
  http.Post(R"(/api/nodes/([A-Za-z0-9_-]+)/(kill|restart))",
            [&](const httplib::Request& req, httplib::Response& res) {
              const std::string name = req.matches[1];
              if (!processes.Has(name)) {
                SendJson(res, 404, {{"error", "no process " + name}});
                return;
              }
              if (req.matches[2] == "kill") {
                absl::Status killed = processes.Kill(name);
                SendJson(res, killed.ok() ? 202 : 409,
                         killed.ok() ? json{{"killed", name}}
                                     : json{{"error", std::string(killed.message())}});
              } else {
                requests.Push(name);
                SendJson(res, 202, {{"restarting", name}});
              }
            });
  http.Post("/api/publish", [&](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
      SendJson(res, 400, {{"error", "want JSON {\"api\", \"user\", \"event\"}"}});
      return;
    }
    const std::string api = body.value("api", "");
    for (const ProcessView& v : processes.Views()) {
      if (v.name != api || v.kind != "api" || v.announced.http.empty()) continue;
      auto [code, answer] = PostEvent(v.announced.http, body.value("user", ""),
                                      body.value("event", json::object()));
      res.status = code == 0 ? 502 : code;
      res.set_content(code == 0 ? json{{"error", answer}}.dump() : answer, "application/json");
      return;
    }
    SendJson(res, 404, {{"error", "no API server " + api}});
  });
  http.set_mount_point("/", web_dir);
}

std::string RandomIdHex(std::mt19937_64& rng) {
  return absl::StrFormat("%016x%016x", rng(), rng());
}

std::string Address(const std::string& host, int port) { return absl::StrCat(host, ":", port); }

// Registers the cluster's processes: ids, ports and command lines.
absl::Status AddProcesses(const Flags& flags, ProcessSet& processes) {
  std::mt19937_64 rng(flags.seed != 0 ? flags.seed : std::random_device{}());
  std::mt19937_64 ports(std::random_device{}());
  std::set<int> taken;
  auto port = [&] { return Address(flags.host, FreePort(flags.host, ports, taken)); };
  const std::string peter = flags.bin_dir + "/peter";
  const std::string api = flags.bin_dir + "/peter-demo-api";
  const std::string ws = flags.bin_dir + "/peter-demo-ws";
  for (const std::string& binary : {peter, api, ws}) {
    if (access(binary.c_str(), X_OK) != 0) {
      return absl::NotFoundError(absl::StrCat("missing program ", binary, " (build it first)"));
    }
  }
  auto add = [&](const std::string& name, const std::string& kind, const std::string& binary) {
    std::vector<std::string> argv = {binary};
    if (kind == "node") argv.push_back("node");
    for (const char* flag : {"--listen", "--admin"}) {
      argv.push_back(flag);
      argv.push_back(port());
    }
    argv.insert(argv.end(), {"--id", RandomIdHex(rng)});
    if (kind != "node") {
      argv.insert(argv.end(), {"--http", port(), "--name", name});
    }
    processes.Add(name, kind, std::move(argv));
  };
  for (int i = 1; i <= flags.nodes; ++i) add(absl::StrCat("node-", i), "node", peter);
  for (int i = 1; i <= flags.api; ++i) add(absl::StrCat("api-", i), "api", api);
  for (int i = 1; i <= flags.ws; ++i) add(absl::StrCat("ws-", i), "ws", ws);
  return absl::OkStatus();
}

// Starts every process in order, each joining through the ones before.
absl::Status StartAll(ProcessSet& processes) {
  for (const ProcessView& v : processes.Views()) {
    if (absl::Status started = processes.Start(v.name); !started.ok()) return started;
    if (!processes.WaitUp(v.name, kStartTimeout)) {
      return absl::UnavailableError(absl::StrCat(v.name, " did not start; see ",
                                                 processes.log_dir(), "/", v.name, ".log"));
    }
    std::printf("  %-7s up\n", v.name.c_str());
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

int Run(Flags flags) {
  in_addr ipv4;
  if (inet_pton(AF_INET, flags.host.c_str(), &ipv4) != 1) {
    std::cerr << "peter-demo: --host: want an IPv4 address such as 127.0.0.1, got '"
              << flags.host << "'\n";
    return 2;
  }
  if (flags.bin_dir.empty()) {
    flags.bin_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
  }
  if (flags.log_dir.empty()) {
    char pattern[] = "/tmp/peter-demo-XXXXXX";
    if (mkdtemp(pattern) == nullptr) {
      std::cerr << "peter-demo: cannot create a log directory\n";
      return 1;
    }
    flags.log_dir = pattern;
  }
  std::filesystem::create_directories(flags.log_dir);
  if (!std::filesystem::exists(flags.web_dir + "/index.html")) {
    std::cerr << "peter-demo: no index.html in --web-dir " << flags.web_dir << "\n";
    return 2;
  }
  const std::vector<std::string> users = absl::StrSplit(flags.users, ',', absl::SkipEmpty());

  ProcessSet processes(flags.log_dir);
  if (absl::Status added = AddProcesses(flags, processes); !added.ok()) {
    std::cerr << "peter-demo: " << added.message() << "\n";
    return 1;
  }
  std::printf("starting %d nodes, %d API servers, %d WebSocket servers (logs in %s)\n",
              flags.nodes, flags.api, flags.ws, flags.log_dir.c_str());
  std::fflush(stdout);
  const sigset_t signals = StopSignals();
  int signal = 0;
  if (absl::Status started = StartAll(processes); !started.ok()) {
    std::cerr << "peter-demo: " << started.message() << "\n";
    processes.Stop();
    return 1;
  }

  Poller poller(processes);
  LoadGenerator load(processes, flags.rate, users);
  Requests requests;
  httplib::Server http;
  http.set_keep_alive_timeout(1);
  http.set_tcp_nodelay(true);
  Routes(http, processes, poller, load, requests, flags.web_dir);
  const int port = flags.port == 0 ? http.bind_to_any_port(flags.host.c_str())
                   : http.bind_to_port(flags.host.c_str(), flags.port) ? flags.port
                                                                       : -1;
  if (port <= 0) {
    std::cerr << "peter-demo: cannot bind the page to " << flags.host << ":" << flags.port
              << " (in use? try --port 0)\n";
    processes.Stop();
    return 1;
  }
  std::thread server([&http] { http.listen_after_bind(); });
  std::printf("open http://%s:%d/   (Ctrl-C stops everything)\n", flags.host.c_str(), port);
  std::fflush(stdout);

  // The main thread owns the children: it reaps them and restarts them.
  const timespec tick = {0, 100'000'000};
  while (signal <= 0) {
    signal = sigtimedwait(&signals, nullptr, &tick);
    processes.Reap();
    for (const std::string& name : requests.Take()) {
      if (absl::Status started = processes.Start(name); !started.ok()) {
        std::cerr << "peter-demo: restart " << name << ": " << started.message() << "\n";
      }
    }
  }
  std::printf("\nstopping...\n");
  std::fflush(stdout);
  for (int i = 0; i < 1000 && !http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  http.stop();
  server.join();
  processes.Stop();
  std::printf("stopped\n");
  return 0;
}

}  // namespace
}  // namespace peter::demo

int main(int argc, char** argv) {
  // Blocked here, so every thread leaves SIGINT and SIGTERM to the main
  // loop's sigtimedwait (children unblock them before exec).
  sigset_t signals = peter::demo::StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  CLI::App app("Broker-less pub/sub demo: a Peter cluster on loopback with a web page");
  peter::demo::Flags flags;
  app.add_option("--host", flags.host, "Loopback address for every process and the page")
      ->capture_default_str();
  app.add_option("--port", flags.port, "Port of the web page (0: any free port)")
      ->capture_default_str();
  app.add_option("--nodes", flags.nodes, "Plain `peter node`s")->capture_default_str()
      ->check(CLI::Range(1, 50));
  app.add_option("--api", flags.api, "API servers")->capture_default_str()->check(CLI::Range(1, 10));
  app.add_option("--ws", flags.ws, "WebSocket servers")->capture_default_str()
      ->check(CLI::Range(1, 10));
  app.add_option("--rate", flags.rate, "Load-generator events per second (0: none)")
      ->capture_default_str()->check(CLI::Range(0.0, 1000.0));
  app.add_option("--users", flags.users, "Users the load generator posts for, comma-separated")
      ->capture_default_str();
  app.add_option("--seed", flags.seed, "Seed for the node ids (0: random)")
      ->capture_default_str();
  app.add_option("--log-dir", flags.log_dir, "Where the processes' logs go (default: a new /tmp dir)");
  app.add_option("--bin-dir", flags.bin_dir, "Where peter, peter-demo-api and peter-demo-ws are "
                 "(default: beside this program)");
  app.add_option("--web-dir", flags.web_dir, "The page's files")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return peter::demo::Run(flags);
}

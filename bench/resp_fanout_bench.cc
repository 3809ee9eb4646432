// resp_fanout_bench: pub/sub fan-out through any Redis-protocol server
// (redis-server, or Peter's gateway on one node or several), measured from
// the outside by a client that speaks RESP2 through hiredis:
//   - S subscriber connections spread round-robin over the --subscribe
//     servers, C channels: with S >= C subscriber i takes channel i % C, with
//     S < C subscriber i takes channels i, i + S, i + 2S, ... (every channel
//     has at least one subscriber, every subscriber at least one channel);
//   - one publisher connection (or --publishers) on the --publish server,
//     pipelining PUBLISH to the channels in turn, and in turn over the
//     connections; each payload starts with the CLOCK_MONOTONIC time
//     of the send (hex nanoseconds), so every delivery gives a
//     publish-to-deliver latency (client and servers are on one machine).
// Two phases, after a warm-up in which one message per channel must arrive:
//   1. saturated: publish as fast as the servers take it while at most
//      --window deliveries are outstanding (published, not yet received);
//      reports delivered messages per second;
//   2. paced: publish at a fixed --paced-rate deliveries per second (open
//      loop); reports latency p50/p99/p99.9 at that load.
// Each phase waits up to 3 s for stragglers, then counts what never arrived
// as lost. A program, not a test: it prints one markdown table row (and a
// summary on stderr). See docs/benchmarks.md and bench/redis-comparison.
#include <hiredis.h>
#include <poll.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"

namespace peter::bench {
namespace {

struct Flags {
  std::string publish = "127.0.0.1:6379";
  std::vector<std::string> subscribe;
  int subscribers = 1;
  int publishers = 1;
  int channels = 1;
  int payload = 64;
  int window = 2000;
  double seconds = 3;
  double paced_seconds = 3;
  double paced_rate = 10000;
  std::string label = "server";
  std::string prefix = "bench";
};

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "resp_fanout_bench: %s\n", what.c_str());
  std::exit(1);
}

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

Context Connect(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) Die("not HOST:PORT: " + address);
  const std::string host = address.substr(0, colon);
  const int port = std::atoi(address.c_str() + colon + 1);
  Context c(redisConnect(host.c_str(), port));
  if (!c || c->err) Die("cannot connect to " + address + ": " + (c ? c->errstr : "no memory"));
  return c;
}

// Blocking read of one reply (setup only).
Reply ReadReply(redisContext* c, const std::string& what) {
  void* raw = nullptr;
  if (redisGetReply(c, &raw) != REDIS_OK) Die(what + ": " + c->errstr);
  Reply reply(static_cast<redisReply*>(raw));
  if (reply->type == REDIS_REPLY_ERROR) Die(what + ": " + reply->str);
  return reply;
}

// Latencies, in nanoseconds, of one phase's deliveries.
struct Percentiles {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;
};
Percentiles Summarize(std::vector<int64_t>& v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]);
  };
  p.p50 = at(0.5);
  p.p99 = at(0.99);
  p.p999 = at(0.999);
  p.max = static_cast<double>(v.back());
  return p;
}

class Bench {
 public:
  explicit Bench(const Flags& f) : f_(f) {
    for (int c = 0; c < f_.channels; ++c) {
      channels_.push_back(f_.prefix + ":" + std::to_string(c));
    }
    fanout_.assign(f_.channels, 0);
  }

  void Subscribe() {
    for (int i = 0; i < f_.subscribers; ++i) {
      Context c = Connect(f_.subscribe[i % f_.subscribe.size()]);
      std::vector<int> mine;
      if (f_.subscribers >= f_.channels) {
        mine.push_back(i % f_.channels);
      } else {
        for (int ch = i; ch < f_.channels; ch += f_.subscribers) mine.push_back(ch);
      }
      std::vector<const char*> argv = {"SUBSCRIBE"};
      for (int ch : mine) {
        argv.push_back(channels_[ch].c_str());
        ++fanout_[ch];
      }
      redisAppendCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), nullptr);
      for (size_t k = 0; k < mine.size(); ++k) ReadReply(c.get(), "SUBSCRIBE");
      subs_.push_back(std::move(c));
    }
    // From here on the subscribers are read by the receiver thread only.
    receiver_ = std::thread([this] { Receive(); });
  }

  void Stop() {
    stop_ = true;
    receiver_.join();
  }

  // One message per channel must arrive before measuring: trees are built
  // and warm, roots hold their state.
  void WarmUp() {
    Context pub = Connect(f_.publish);
    int64_t expected = 0;
    for (int n : fanout_) expected += n;
    const int64_t before = delivered_.load();
    for (int ch = 0; ch < f_.channels; ++ch) AppendPublish(pub.get(), ch);
    for (int ch = 0; ch < f_.channels; ++ch) ReadReply(pub.get(), "PUBLISH (warm-up)");
    const int64_t deadline = NowNs() + 20'000'000'000;
    while (delivered_.load() - before < expected && NowNs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (delivered_.load() - before < expected) {
      Die("warm-up: " + std::to_string(delivered_.load() - before) + " of " +
          std::to_string(expected) + " messages arrived within 20 s");
    }
  }

  struct Result {
    int64_t published = 0, expected = 0, delivered = 0, errors = 0;
    int64_t in_period = 0;  // delivered before the phase's end (throughput)
    double seconds = 0;
    Percentiles latency;
  };

  // paced_rate 0: saturated (window-bound); otherwise deliveries per second.
  Result Run(double seconds, double paced_rate) {
    std::vector<Context> pubs;
    std::vector<redisContext*> c;
    for (int i = 0; i < f_.publishers; ++i) {
      pubs.push_back(Connect(f_.publish));
      c.push_back(pubs.back().get());
    }
    Result r;
    {
      std::lock_guard<std::mutex> lock(latency_mu_);
      latencies_.clear();  // stragglers of the phase before
    }
    recording_ = true;
    const int64_t base = delivered_.load();
    const int64_t start = NowNs();
    const int64_t end = start + static_cast<int64_t>(seconds * 1e9);
    int64_t pending_replies = 0;
    int next_channel = 0;
    int next_publisher = 0;
    while (true) {
      const int64_t now = NowNs();
      if (now >= end) break;
      const int64_t outstanding = r.expected - (delivered_.load() - base);
      int64_t allowed;
      if (paced_rate > 0) {
        allowed = static_cast<int64_t>((now - start) * paced_rate / 1e9) - r.expected;
      } else {
        allowed = f_.window - outstanding;
      }
      int batch = 0;
      while (allowed > 0 && pending_replies < f_.window && batch < 256) {
        AppendPublish(c[next_publisher], next_channel);
        next_publisher = (next_publisher + 1) % f_.publishers;
        r.expected += fanout_[next_channel];
        allowed -= fanout_[next_channel];
        next_channel = (next_channel + 1) % f_.channels;
        ++r.published;
        ++pending_replies;
        ++batch;
      }
      for (redisContext* p : c) Flush(p);
      pending_replies -= DrainReplies(c, &r.errors, batch == 0 ? 1 : 0);
    }
    const int64_t measured_end = NowNs();
    const int64_t delivered_in_time = delivered_.load() - base;
    // Stragglers: replies and deliveries of what was sent.
    const int64_t deadline = measured_end + 3'000'000'000;
    while ((pending_replies > 0 || delivered_.load() - base < r.expected) && NowNs() < deadline) {
      pending_replies -= DrainReplies(c, &r.errors, 5);
    }
    recording_ = false;
    r.delivered = delivered_.load() - base;
    r.in_period = delivered_in_time;
    r.seconds = (measured_end - start) / 1e9;
    std::vector<int64_t> all;
    {
      std::lock_guard<std::mutex> lock(latency_mu_);
      all.swap(latencies_);
    }
    r.latency = Summarize(all);
    return r;
  }

 private:
  void AppendPublish(redisContext* c, int channel) {
    std::string payload(static_cast<size_t>(std::max(f_.payload, 17)), 'x');
    char stamp[17];
    std::snprintf(stamp, sizeof(stamp), "%016" PRIx64, static_cast<uint64_t>(NowNs()));
    payload.replace(0, 16, stamp);
    const char* argv[] = {"PUBLISH", channels_[channel].c_str(), payload.c_str()};
    const size_t lens[] = {7, channels_[channel].size(), payload.size()};
    redisAppendCommandArgv(c, 3, argv, lens);
  }

  static void Flush(redisContext* c) {
    int done = 0;
    while (!done) {
      if (redisBufferWrite(c, &done) != REDIS_OK) Die(std::string("write: ") + c->errstr);
    }
  }

  // Reads whatever publish replies are there (waiting up to timeout_ms for
  // the first); returns how many.
  static int64_t DrainReplies(const std::vector<redisContext*>& c, int64_t* errors,
                              int timeout_ms) {
    std::vector<pollfd> fds;
    for (redisContext* p : c) fds.push_back(pollfd{p->fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), timeout_ms) <= 0) return 0;
    int64_t n = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
      if (redisBufferRead(c[i]) != REDIS_OK) Die(std::string("read: ") + c[i]->errstr);
      void* raw = nullptr;
      while (redisGetReplyFromReader(c[i], &raw) == REDIS_OK && raw != nullptr) {
        Reply reply(static_cast<redisReply*>(raw));
        if (reply->type == REDIS_REPLY_ERROR) {
          if (++*errors <= 3) std::fprintf(stderr, "PUBLISH: %s\n", reply->str);
        }
        ++n;
      }
    }
    return n;
  }

  void Receive() {
    std::vector<pollfd> fds;
    for (auto& s : subs_) fds.push_back(pollfd{s->fd, POLLIN, 0});
    std::vector<int64_t> local;
    while (!stop_) {
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      const int64_t now = NowNs();
      int64_t got = 0;
      for (size_t i = 0; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
        redisContext* c = subs_[i].get();
        if (redisBufferRead(c) != REDIS_OK) Die(std::string("subscriber read: ") + c->errstr);
        void* raw = nullptr;
        while (redisGetReplyFromReader(c, &raw) == REDIS_OK && raw != nullptr) {
          Reply reply(static_cast<redisReply*>(raw));
          if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
              reply->element[2]->type != REDIS_REPLY_STRING || reply->element[2]->len < 16) {
            continue;
          }
          const std::string stamp(reply->element[2]->str, 16);
          const int64_t sent = static_cast<int64_t>(std::strtoull(stamp.c_str(), nullptr, 16));
          if (recording_) local.push_back(now - sent);
          ++got;
        }
      }
      if (!local.empty()) {
        std::lock_guard<std::mutex> lock(latency_mu_);
        latencies_.insert(latencies_.end(), local.begin(), local.end());
        local.clear();
      }
      delivered_ += got;
    }
  }

  const Flags f_;
  std::vector<std::string> channels_;
  std::vector<int> fanout_;  // subscribers per channel
  std::vector<Context> subs_;
  std::thread receiver_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> recording_{false};
  std::atomic<int64_t> delivered_{0};
  std::mutex latency_mu_;
  std::vector<int64_t> latencies_;
};

std::string Ms(double ns) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.2f", ns / 1e6);
  return b;
}

double CpuSeconds() {
  rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int Main(int argc, char** argv) {
  Flags f;
  CLI::App app("Pub/sub fan-out through a Redis-protocol server: delivered messages per second "
               "and publish-to-deliver latency (docs/benchmarks.md)");
  app.add_option("--publish", f.publish, "HOST:PORT the publisher connects to");
  app.add_option("--subscribe", f.subscribe,
                 "HOST:PORT[,HOST:PORT...] subscribers are spread over (default: --publish)")
      ->delimiter(',');
  app.add_option("--subscribers", f.subscribers, "Subscriber connections")
      ->check(CLI::Range(1, 10000));
  app.add_option("--channels", f.channels, "Channels")->check(CLI::Range(1, 100000));
  app.add_option("--publishers", f.publishers,
                 "Publisher connections (publishes go to them in turn)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--payload", f.payload, "Payload bytes (at least 17)")
      ->check(CLI::Range(17, 1 << 20));
  app.add_option("--window", f.window,
                 "Saturated phase: most deliveries (and publish replies) outstanding")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--seconds", f.seconds, "Saturated phase length (0: skip)");
  app.add_option("--paced-seconds", f.paced_seconds, "Paced phase length (0: skip)");
  app.add_option("--paced-rate", f.paced_rate, "Paced phase: deliveries per second")
      ->check(CLI::PositiveNumber);
  app.add_option("--label", f.label, "First column of the printed row");
  app.add_option("--prefix", f.prefix, "Channel name prefix");
  CLI11_PARSE(app, argc, argv);
  if (f.subscribe.empty()) f.subscribe = {f.publish};

  Bench bench(f);
  bench.Subscribe();
  bench.WarmUp();
  const double cpu0 = CpuSeconds();
  Bench::Result sat, paced;
  if (f.seconds > 0) sat = bench.Run(f.seconds, 0);
  if (f.paced_seconds > 0) paced = bench.Run(f.paced_seconds, f.paced_rate);
  const double cpu = CpuSeconds() - cpu0;
  bench.Stop();

  const double rate = sat.seconds > 0 ? sat.in_period / sat.seconds : 0;
  std::fprintf(stderr,
               "%s: %d subscribers, %d channels, %d publishers: saturated %.0f delivered/s (%" PRId64
               " publishes, %" PRId64 " expected, %" PRId64 " delivered, %" PRId64
               " publish errors, p50 %s ms at saturation); paced %.0f/s: %" PRId64 " of %" PRId64
               " delivered, p50 %s p99 %s p99.9 %s max %s ms; bench client CPU %.1f s\n",
               f.label.c_str(), f.subscribers, f.channels, f.publishers, rate, sat.published, sat.expected,
               sat.delivered, sat.errors, Ms(sat.latency.p50).c_str(), f.paced_rate,
               paced.delivered, paced.expected, Ms(paced.latency.p50).c_str(),
               Ms(paced.latency.p99).c_str(), Ms(paced.latency.p999).c_str(),
               Ms(paced.latency.max).c_str(), cpu);
  // | server | subscribers | channels | delivered/s | p50 saturated | p50 | p99 | p99.9 |
  // lost | publish errors | delivered in both phases |
  std::printf("| %s | %d | %d | %.0f | %s | %s | %s | %s | %" PRId64 " | %" PRId64 " | %" PRId64
              " |\n",
              f.label.c_str(), f.subscribers, f.channels, rate, Ms(sat.latency.p50).c_str(),
              Ms(paced.latency.p50).c_str(), Ms(paced.latency.p99).c_str(),
              Ms(paced.latency.p999).c_str(),
              (sat.expected - sat.delivered) + (paced.expected - paced.delivered),
              sat.errors + paced.errors, sat.delivered + paced.delivered);
  return 0;
}

}  // namespace
}  // namespace peter::bench

int main(int argc, char** argv) { return peter::bench::Main(argc, argv); }

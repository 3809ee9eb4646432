// hello_pubsub: the smallest complete program on Peter's C++ API
// (include/peter/node.h). It starts a one-node ring, subscribes to a topic,
// publishes three messages to it and prints them as they arrive. With
// `--join HOST:PORT` it joins an existing ring (a `peter node`) instead.
//
// Build against an installed Peter (docs/embedding.md):
//   find_package(Peter REQUIRED)
//   target_link_libraries(hello_pubsub PRIVATE Peter::pubsub)
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "peter/node.h"

int main(int argc, char** argv) {
  peter::NodeOptions options;  // listens on 127.0.0.1, any free port
  if (argc == 3 && std::strcmp(argv[1], "--join") == 0) {
    options.bootstrap = {argv[2]};
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: hello_pubsub [--join HOST:PORT]\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<peter::Node>> node = peter::Node::Start(options);
  if (!node.ok()) {
    std::fprintf(stderr, "start: %s\n", node.status().ToString().c_str());
    return 1;
  }
  if (absl::Status s = (*node)->WaitUntilActive(absl::Seconds(10)); !s.ok()) {
    std::fprintf(stderr, "join: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("node %s on %s\n", (*node)->self().id.ToHex().c_str(),
              (*node)->listen_address().c_str());

  // The handler runs on the node's delivery thread: hand results over under
  // a mutex.
  constexpr int kMessages = 3;
  std::mutex mu;
  std::condition_variable cv;
  int received = 0;
  absl::StatusOr<peter::Subscription> sub = (*node)->Subscribe(
      "greetings", [&](const peter::Message& m) {
        std::printf("received #%llu: %.*s\n", static_cast<unsigned long long>(m.seq),
                    static_cast<int>(m.payload.size()), m.payload.data());
        std::lock_guard lock(mu);
        ++received;
        cv.notify_all();
      });
  if (!sub.ok()) {
    std::fprintf(stderr, "subscribe: %s\n", sub.status().ToString().c_str());
    return 1;
  }
  // Messages published after the subscription is active reach it.
  if (absl::Status s = sub->WaitUntilActive(absl::Seconds(10)); !s.ok()) {
    std::fprintf(stderr, "subscription: %s\n", s.ToString().c_str());
    return 1;
  }
  for (int i = 1; i <= kMessages; ++i) {
    absl::StatusOr<uint64_t> seq =
        (*node)->PublishAndWait("greetings", "hello " + std::to_string(i));
    if (!seq.ok()) {
      std::fprintf(stderr, "publish: %s\n", seq.status().ToString().c_str());
      return 1;
    }
  }
  std::unique_lock lock(mu);
  if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return received == kMessages; })) {
    std::fprintf(stderr, "received %d of %d messages\n", received, kMessages);
    return 1;
  }
  lock.unlock();
  sub->Cancel();
  (*node)->Leave();
  std::printf("ok\n");
  return 0;
}

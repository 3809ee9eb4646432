// The installed-tree consumer: a one-node ring through the public C++ API,
// one subscription, one publish, the message received. Exits 0 only if the
// published payload arrives as the topic's first message (#1), the number
// the publish's confirmation carries.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "peter/node.h"
#include "peter/pastry/node_id.h"

namespace {

int Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "consumer: %s: %s\n", what, status.ToString().c_str());
  return 1;
}

}  // namespace

int main() {
  peter::NodeOptions options;
  options.listen = "127.0.0.1:0";
  // A fixed id exercises the overlay's public types (peter/pastry/).
  absl::StatusOr<peter::pastry::NodeId> id =
      peter::pastry::NodeId::FromHex("0123456789abcdef0123456789abcdef");
  if (!id.ok()) return Fail("node id", id.status());
  options.id = *id;
  absl::StatusOr<std::unique_ptr<peter::Node>> node = peter::Node::Start(options);
  if (!node.ok()) return Fail("start", node.status());
  if (absl::Status s = (*node)->WaitUntilActive(absl::Seconds(10)); !s.ok()) {
    return Fail("active", s);
  }
  if ((*node)->self().id != *id) {
    std::fprintf(stderr, "consumer: node id %s\n", (*node)->self().id.ToHex().c_str());
    return 1;
  }

  std::mutex mu;
  std::condition_variable cv;
  std::optional<std::pair<uint64_t, std::string>> got;
  absl::StatusOr<peter::Subscription> sub =
      (*node)->Subscribe("install.check", [&](const peter::Message& m) {
        std::lock_guard lock(mu);
        got.emplace(m.seq, std::string(m.payload));
        cv.notify_all();
      });
  if (!sub.ok()) return Fail("subscribe", sub.status());
  if (absl::Status s = sub->WaitUntilActive(absl::Seconds(10)); !s.ok()) {
    return Fail("subscription active", s);
  }
  absl::StatusOr<uint64_t> seq = (*node)->PublishAndWait("install.check", "from the installed tree");
  if (!seq.ok()) return Fail("publish", seq.status());

  std::unique_lock lock(mu);
  if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return got.has_value(); })) {
    std::fprintf(stderr, "consumer: no message within 10 s\n");
    return 1;
  }
  if (got->first != *seq || got->first != 1 || got->second != "from the installed tree") {
    std::fprintf(stderr, "consumer: got #%llu \"%s\", publish confirmed #%llu\n",
                 static_cast<unsigned long long>(got->first), got->second.c_str(),
                 static_cast<unsigned long long>(*seq));
    return 1;
  }
  lock.unlock();
  std::printf("consumer: received #%llu \"%s\"\n",
              static_cast<unsigned long long>(got->first), got->second.c_str());
  return 0;
}

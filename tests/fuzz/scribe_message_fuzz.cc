// Scribe's message decoder (pubsub/wire). A decoded message must encode and
// decode again.
#include "pubsub/messages.h"
#include "pubsub/wire/codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace peter::fuzz {

void FuzzOne(std::string_view data) {
  absl::StatusOr<pubsub::ScribeMessage> msg = pubsub::wire::Decode(data);
  if (!msg.ok()) return;
  if (!pubsub::wire::Decode(pubsub::wire::Encode(*msg)).ok()) {
    Fail("a decoded Scribe message does not survive encode + decode");
  }
}

std::vector<std::string> FuzzSeeds() {
  std::vector<std::string> seeds;
  for (const pubsub::ScribeMessage& msg : EachAlternative<pubsub::ScribeMessage>()) {
    seeds.push_back(pubsub::wire::Encode(msg));
  }
  return seeds;
}

}  // namespace peter::fuzz

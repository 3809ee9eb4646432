// Scribe's message decoder (pubsub/wire), for one message or a bundle. A
// decoded message must encode and decode again, a bundle's messages bundled
// again too.
#include "pubsub/messages.h"
#include "pubsub/wire/codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace peter::fuzz {

void FuzzOne(std::string_view data) {
  absl::StatusOr<pubsub::wire::Received> received = pubsub::wire::DecodeReceived(data);
  if (!received.ok()) return;
  std::vector<std::string> parts;
  for (const pubsub::ScribeMessage& msg : received->messages) {
    parts.push_back(pubsub::wire::Encode(msg));
    if (!pubsub::wire::Decode(parts.back()).ok()) {
      Fail("a decoded Scribe message does not survive encode + decode");
    }
  }
  if (parts.size() > 1 && !pubsub::wire::DecodeReceived(pubsub::wire::EncodeBundle(parts)).ok()) {
    Fail("a decoded Scribe bundle does not survive encode + decode");
  }
}

std::vector<std::string> FuzzSeeds() {
  std::vector<std::string> seeds;
  for (const pubsub::ScribeMessage& msg : EachAlternative<pubsub::ScribeMessage>()) {
    seeds.push_back(pubsub::wire::Encode(msg));
  }
  seeds.push_back(pubsub::wire::EncodeBundle(std::vector<std::string>(seeds.begin(), seeds.begin() + 3)));
  return seeds;
}

}  // namespace peter::fuzz

// The overlay's receive path from a TCP stream: frame assembly and message
// decoding (pastry/wire). A decoded message must encode and decode again.
#include <optional>

#include "pastry/core/messages.h"
#include "pastry/wire/codec.h"
#include "pastry/wire/frame.h"
#include "tests/fuzz/fuzz_target.h"

namespace peter::fuzz {

void FuzzOne(std::string_view data) {
  // The first byte picks where the stream is cut in two reads.
  const size_t cut = data.empty() ? 0 : static_cast<uint8_t>(data[0]) % (data.size() + 1);
  pastry::wire::FrameLimits limits;
  limits.max_frame_bytes = 1 << 20;
  pastry::wire::FrameAssembler assembler(limits);
  // Fed as a connection feeds its reads: frames in place, a cut one buffered.
  for (std::string_view read : {data.substr(0, cut), data.substr(cut)}) {
    assembler.Feed(read);
    while (true) {
      absl::StatusOr<std::optional<std::string_view>> frame = assembler.Next();
      if (!frame.ok() || !frame->has_value()) break;
      absl::StatusOr<pastry::Envelope> envelope = pastry::wire::Decode(**frame);
      if (!envelope.ok()) continue;
      if (!pastry::wire::Decode(pastry::wire::Encode(*envelope)).ok()) {
        Fail("a decoded envelope does not survive encode + decode");
      }
    }
  }
  // Also the whole input as one frame, as the codec tests do.
  (void)pastry::wire::Decode(data);
}

std::vector<std::string> FuzzSeeds() {
  std::vector<std::string> seeds;
  for (pastry::MessageBody& body : EachAlternative<pastry::MessageBody>()) {
    pastry::Envelope envelope;
    envelope.body = std::move(body);
    seeds.push_back(pastry::wire::Encode(envelope));
  }
  // A batched acknowledgement (its `ids` list; the default one has none).
  pastry::Envelope ack;
  ack.body = pastry::RouteAck{{1, 2, 3}};
  seeds.push_back(pastry::wire::Encode(ack));
  return seeds;
}

}  // namespace peter::fuzz

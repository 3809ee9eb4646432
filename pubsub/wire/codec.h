// Encoding and decoding of Scribe's messages (pubsub/messages.h) to and from
// the bytes carried as the overlay's application payload (schema in
// scribe.capnp). The only code in pubsub/ that includes Cap'n Proto; nothing
// of it shows through this header.
//
// Decode never throws. Its error codes, so a caller can count them apart:
//   kInvalidArgument     malformed bytes, or a list or payload over limits
//   kUnimplemented       a message type this build does not know
//   kFailedPrecondition  version below kMinScribeVersion
#ifndef PETER_PUBSUB_WIRE_CODEC_H_
#define PETER_PUBSUB_WIRE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pubsub/messages.h"

namespace peter::pubsub::wire {

// Bounds on what a peer may make us decode and allocate.
struct DecodeLimits {
  // Largest encoded message. Payloads are capped by ScribeOptions well below.
  size_t max_bytes = size_t{4} << 20;
  // Largest application payload inside a message.
  size_t max_payload_bytes = size_t{1} << 20;
  // Longest path to the root; trees are about log16(N) deep.
  size_t max_path = 64;
  // Most topics in one heartbeat (reply) and most messages in a replicate.
  size_t max_list = 4096;
  // Cap'n Proto nesting limit; our deepest legal nesting is 5.
  int nesting_limit = 16;
};

// Encodes `msg`; never fails.
std::string Encode(const ScribeMessage& msg);

// Decodes exactly one message (trailing bytes are an error).
absl::StatusOr<ScribeMessage> Decode(std::string_view bytes,
                                     const DecodeLimits& limits = {});

}  // namespace peter::pubsub::wire

#endif  // PETER_PUBSUB_WIRE_CODEC_H_

// Encoding and decoding of overlay messages: pastry/core/messages.h values
// to and from Cap'n Proto frames (schema in pastry.capnp, framing in
// frame.h). This is the only code that includes Cap'n Proto; nothing of it
// shows through this header.
//
// Error codes from Decode, so a caller can count them separately:
//   kInvalidArgument     malformed frame, or a frame or list over the limits
//   kUnimplemented       "unknown message type": a member of Envelope.body
//                        or a RouteKind this build does not know (a newer
//                        peer's message)
//   kFailedPrecondition  protocol version below kMinProtocolVersion
#ifndef PETER_PASTRY_WIRE_CODEC_H_
#define PETER_PASTRY_WIRE_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "pastry/core/messages.h"
#include "pastry/wire/frame.h"

namespace peter::pastry::wire {

// Bounds applied to frames from peers. The defaults suit the overlay's own
// traffic with a wide margin; every bound exists so a peer cannot make us
// allocate or loop without limit.
struct DecodeLimits {
  // Largest frame, header included (see frame.h).
  size_t max_frame_bytes = kDefaultMaxFrameBytes;
  // Most segments in a frame's segment table.
  size_t max_segments = kDefaultMaxSegments;
  // Longest list of node handles (join rows, reply rows, leaf sets, row
  // entries). A full routing table is 32 x 16 = 512 entries and a leaf set
  // at most a few dozen; 4096 leaves room for larger b.
  size_t max_list_entries = 4096;
  // Longest recorded path (RouteMsg::path, LookupReply::path). Routes take
  // about log16(N) hops; 128 covers pathological reroutes.
  size_t max_path_entries = 128;
  // Largest application payload; a payload cannot exceed its frame anyway.
  size_t max_payload_bytes = kDefaultMaxFrameBytes;
  // Cap'n Proto pointer nesting limit. Our deepest legal path is 6 levels
  // (envelope, body, list, handle, endpoint, ip); capnp's default is 64.
  int nesting_limit = 16;
  // Traversal budget in words = traversal_factor * frame words + 64. A
  // well-formed frame is read once (factor 1); more means pointers that
  // alias each other to amplify a small frame. capnp's default is 8 Mi words
  // whatever the frame size.
  uint64_t traversal_factor = 2;
};

// Encodes `envelope` as one frame. Never fails. The caller keeps frames
// within the receiver's DecodeLimits (e.g. payload size).
std::string Encode(const Envelope& envelope);

// Decodes exactly one frame (trailing bytes are an error). Never throws and
// never crashes, whatever the input; see the error codes above.
absl::StatusOr<Envelope> Decode(std::string_view frame,
                                const DecodeLimits& limits = {});

}  // namespace peter::pastry::wire

#endif  // PETER_PASTRY_WIRE_CODEC_H_

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

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
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
// The same bytes for the messages sent per publish, without copying `msg`
// (its payloads: an allocation each) into a ScribeMessage first.
std::string Encode(const DataMsg& msg);
std::string Encode(const PublishAckMsg& msg);
std::string Encode(const PublishMsg& msg);
std::string Encode(const ReplicateMsg& msg);

// Wraps messages encoded by Encode in one bundle (scribe version
// kBundleVersion), which only DecodeReceived reads; never fails.
// REQUIRES: 1 <= encoded.size() <= DecodeLimits::max_list, none a bundle.
std::string EncodeBundle(absl::Span<const std::string> encoded);

// Several Replicates (ReplicaAcks), of any topics, in one message (scribe
// version kBatchVersion), which only DecodeReceived reads, as the messages
// one by one in this order; never fails. Its bytes may go in a bundle.
// REQUIRES: 1 <= size <= DecodeLimits::max_list.
std::string EncodeReplicates(absl::Span<const ReplicateMsg* const> msgs);
std::string EncodeReplicaAcks(absl::Span<const ReplicaAckMsg> acks);
// Publishes, data and publish acknowledgements, of any topics, mixed, in
// one message (scribe version kListedVersion), which only DecodeReceived
// reads, as each alone, in this order;
// never fails. Each is built in place: no message of its own, no copy of
// one into a bundle, no reader of its own on receipt. With `runs` (only for
// a reader of kRunVersion), each run of two or more consecutive messages of
// one topic is one entry: publishes of one publisher with consecutive
// requests, each naming the one before as its predecessor (`after`), all
// acknowledged and none passed on; data with consecutive numbers; publish
// acknowledgements with consecutive requests and numbers. `counted`, if
// given, is raised by the runs made and the messages in them.
// REQUIRES: 1 <= size <= DecodeLimits::max_list.
struct ListedRuns {
  size_t runs = 0;
  size_t messages = 0;
};
std::string EncodeListed(absl::Span<const ListedMsg> msgs, bool runs = false,
                         ListedRuns* counted = nullptr);

// Decodes exactly one message (trailing bytes are an error). A bundle or a
// list (of Replicates, ReplicaAcks or listed messages) is kUnimplemented
// here.
absl::StatusOr<ScribeMessage> Decode(std::string_view bytes,
                                     const DecodeLimits& limits = {});

// What one payload from a peer held: one message, or a bundle's messages in
// the order sent, and the version the sender wrote (kScribeVersion of its
// build), which tells what it can read. A list (of Replicates, ReplicaAcks
// or listed messages) is its messages, one by one.
struct Received {
  uint16_t version = 0;
  // The lowest version whose decoder reads the payload: 1 for one message,
  // kBundleVersion for a bundle, kBatchVersion with a list of Replicates or
  // ReplicaAcks in it, kListedVersion with a `listed` list, kRunVersion with
  // a run in one.
  uint16_t reader_version = 1;
  absl::InlinedVector<ScribeMessage, 1> messages;
};

// Decodes one message or a bundle (at most DecodeLimits::max_list messages,
// none a bundle itself, a list's entries each counted); any malformed
// message fails the whole payload.
absl::StatusOr<Received> DecodeReceived(std::string_view bytes,
                                        const DecodeLimits& limits = {});

}  // namespace peter::pubsub::wire

#endif  // PETER_PUBSUB_WIRE_CODEC_H_

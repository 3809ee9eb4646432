// Scribe's message decoder (pubsub/wire), for one message, a bundle or a
// list (of Replicates, of ReplicaAcks, or of publishes, data and
// PublishAcks, with runs of them). A decoded message must encode and decode again, a bundle's
// or a list's messages bundled again too.
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
  std::vector<const pubsub::ReplicateMsg*> replicates;
  std::vector<pubsub::ReplicaAckMsg> acks;
  std::vector<pubsub::ListedMsg> listed;
  const std::vector<pubsub::ScribeMessage> each = EachAlternative<pubsub::ScribeMessage>();
  for (const pubsub::ScribeMessage& msg : each) {
    if (const auto* r = std::get_if<pubsub::ReplicateMsg>(&msg)) replicates.push_back(r);
    if (const auto* a = std::get_if<pubsub::ReplicaAckMsg>(&msg)) acks.push_back(*a);
    if (const auto* p = std::get_if<pubsub::PublishMsg>(&msg)) listed.push_back(*p);
    if (const auto* d = std::get_if<pubsub::DataMsg>(&msg)) listed.push_back(*d);
    if (const auto* a = std::get_if<pubsub::PublishAckMsg>(&msg)) listed.push_back(*a);
  }
  if (!listed.empty()) {
    const std::string listed_list = pubsub::wire::EncodeListed(listed);
    seeds.push_back(listed_list);
    seeds.push_back(pubsub::wire::EncodeBundle({seeds.front(), listed_list}));
  }
  // Runs (version 5): two publishes, two data and two acknowledgements of
  // one topic, each pair one entry.
  const pubsub::TopicId topic(1, 2);
  pubsub::NodeHandle publisher;
  publisher.id = pubsub::NodeId(3, 4);
  const std::vector<pubsub::ListedMsg> runs = {
      pubsub::PublishMsg{topic, "a", publisher, 5, true, 4},
      pubsub::PublishMsg{topic, "b", publisher, 6, true, 5},
      pubsub::DataMsg{topic, 7, "c"},
      pubsub::DataMsg{topic, 8, "d"},
      pubsub::PublishAckMsg{topic, 5, 7},
      pubsub::PublishAckMsg{topic, 6, 8},
  };
  const std::string run_list = pubsub::wire::EncodeListed(runs, /*runs=*/true);
  seeds.push_back(run_list);
  seeds.push_back(pubsub::wire::EncodeBundle({seeds.front(), run_list}));
  if (!replicates.empty() && !acks.empty()) {
    replicates.push_back(replicates.front());
    acks.push_back(acks.front());
    const std::string replicate_list = pubsub::wire::EncodeReplicates(replicates);
    const std::string ack_list = pubsub::wire::EncodeReplicaAcks(acks);
    seeds.push_back(replicate_list);
    seeds.push_back(ack_list);
    seeds.push_back(pubsub::wire::EncodeBundle({seeds.front(), replicate_list, ack_list}));
  }
  return seeds;
}

}  // namespace peter::fuzz

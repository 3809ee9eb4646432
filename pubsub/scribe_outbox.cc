// Scribe: messages to one node in one batch of work, sent as one payload
// (docs/scribe.md, "Bundles").
//
// Every message Scribe sends straight to another node (SendTo, SendBytes)
// waits in that node's outbox until FlushOutbox, a zero-delay timer: it runs
// once the event loop has handled what it read (the runtime) or right after
// the message being handled (the simulator). A node then gets the
// publishes, Replicates, ReplicaAcks, publish acknowledgements and data of
// many topics in one overlay frame (and one hop acknowledgement) rather
// than one frame each; with one topic most of those were batched already.
// Only nodes that wrote to us at kBundleVersion or later get bundles; a
// node we have not heard from, or heard from at version 1, gets each
// message as its own payload at once, as before. A lone message is always
// its own payload, readable by every version. Messages keep their order
// per node, and a message routed toward a key (sent here or passing
// through) goes after everything queued before it (SendOutbox first), as
// it did when nothing was held: a Leave to a parent, say, is not overtaken
// by the join that follows it.
//
// ReplicaAcks for a node that reads lists (version 3) sent one after
// another are held apart (Outbox::acks) and queued as one list when
// anything else is queued for that node or the outbox is sent: a replica
// answering a root's Replicates of many topics sends one message, not one
// per topic (docs/scribe.md, "Replicate and ReplicaAck lists"). The
// messages sent per publish -- publishes to a cached root, data, publish
// acknowledgements -- for a node that reads `listed` lists (version 4) are
// held the same way (Outbox::listed) and queued as one list: a root sends
// the subscriber's node each publish's data and the publisher's node its
// acknowledgement in one message per batch of work, built in place, not a
// message each copied into a bundle (docs/scribe.md, "Publish, data and
// PublishAck lists"). For a node that reads runs (version 5), each run of
// consecutive messages of one topic in such a list -- a publisher's
// publishes of one batch of work to one root, a root's data of one topic to
// a child, its acknowledgements of one publisher's consecutive publishes --
// is one entry of the list (docs/scribe.md, "Runs").
#include <utility>

#include "pubsub/scribe.h"
#include "pubsub/wire/codec.h"

namespace peter::pubsub {

bool Scribe::Reads(const NodeHandle& to, uint16_t version) const {
  if (!options_.bundle_messages) return false;
  auto it = peer_versions_.find(to.id);
  if (it == peer_versions_.end() || it->second.version < version) return false;
  // Another run of the node (maybe an older build) must be heard first.
  return it->second.incarnation == to.incarnation || to.incarnation == 0 ||
         it->second.incarnation == 0;
}

void Scribe::NoteVersion(const NodeHandle& from, uint16_t version) {
  if (from.id == Self().id) return;
  auto it = peer_versions_.find(from.id);
  if (it == peer_versions_.end()) {
    if (peer_versions_.size() >= kMaxPeerVersions) peer_versions_.clear();
    peer_versions_.emplace(from.id, PeerVersion{from.incarnation, version});
    return;
  }
  it->second = PeerVersion{from.incarnation, version};
}

Scribe::Outbox& Scribe::OutboxOf(const NodeHandle& to) {
  // Few nodes get messages within one batch of work; the latest is likeliest.
  auto it = std::find_if(outbox_.rbegin(), outbox_.rend(), [&](const Outbox& o) {
    return o.to.id == to.id && o.to.endpoint == to.endpoint;
  });
  if (it != outbox_.rend()) return *it;
  if (!outbox_flush_scheduled_) {
    outbox_flush_scheduled_ = true;
    overlay_->ScheduleTimer(absl::ZeroDuration(), [this] { FlushOutbox(); });
  }
  return outbox_.emplace_back(Outbox{to, {}, 0, 0, {}, {}, 0});
}

void Scribe::Queue(const NodeHandle& to, std::string bytes, size_t count) {
  Outbox& o = OutboxOf(to);
  CloseLists(o);  // they were sent first
  QueueEncoded(o, std::move(bytes), count);
}

void Scribe::CloseLists(Outbox& o) {
  CloseAcks(o);
  CloseListed(o);
}

void Scribe::QueueEncoded(Outbox& o, std::string bytes, size_t count) {
  if (!o.queued.empty() && (o.messages + count > kMaxBundleMessages ||
                            o.bytes + bytes.size() > kMaxBundleBytes)) {
    SendQueued(o.to, std::move(o.queued), o.messages);
    o.queued.clear();
    o.bytes = 0;
    o.messages = 0;
  }
  o.bytes += bytes.size();
  o.messages += count;
  o.queued.push_back(std::move(bytes));
}

// A ReplicaAck for a node that reads lists: with the ones sent right before
// it to that node, one list (a replica answers a root's Replicates of many
// topics, read from one payload, one after another).
void Scribe::QueueAck(const NodeHandle& to, const ReplicaAckMsg& ack) {
  ++stats_.messages_out;
  Outbox& o = OutboxOf(to);
  CloseListed(o);  // they were sent first
  if (o.acks.size() >= kMaxBundleMessages) CloseAcks(o);
  o.acks.push_back(ack);
}

// A publish, data or a PublishAck for a node that reads `listed` lists:
// with the ones sent right before it to that node, one list.
void Scribe::QueueListed(const NodeHandle& to, ListedMsg msg) {
  ++stats_.messages_out;
  Outbox& o = OutboxOf(to);
  CloseAcks(o);  // they were sent first
  size_t payload = 0;
  if (const auto* data = std::get_if<DataMsg>(&msg)) payload = data->payload.size();
  if (const auto* publish = std::get_if<PublishMsg>(&msg)) payload = publish->payload.size();
  if (o.listed.size() >= kMaxBundleMessages ||
      (!o.listed.empty() && o.listed_bytes + payload > kMaxBundleBytes)) {
    CloseListed(o);
  }
  o.listed_bytes += payload;
  o.listed.push_back(std::move(msg));
}

void Scribe::CloseListed(Outbox& o) {
  if (o.listed.empty()) return;
  const size_t count = o.listed.size();
  std::string bytes;
  if (count == 1) {
    bytes = std::visit([](const auto& m) { return wire::Encode(m); }, o.listed.front());
  } else {
    ++stats_.message_lists_sent;
    stats_.messages_listed += count;
    wire::ListedRuns runs;
    bytes = wire::EncodeListed(o.listed, Reads(o.to, kRunVersion), &runs);
    stats_.message_runs_sent += runs.runs;
    stats_.messages_in_runs += runs.messages;
  }
  o.listed.clear();
  o.listed_bytes = 0;
  QueueEncoded(o, std::move(bytes), count);
}

void Scribe::CloseAcks(Outbox& o) {
  if (o.acks.empty()) return;
  const size_t count = o.acks.size();
  std::string bytes;
  if (count == 1) {
    bytes = wire::Encode(ScribeMessage(o.acks.front()));
  } else {
    ++stats_.replica_ack_lists_sent;
    stats_.replica_acks_listed += count;
    bytes = wire::EncodeReplicaAcks(o.acks);
  }
  o.acks.clear();
  QueueEncoded(o, std::move(bytes), count);
}

void Scribe::FlushOutbox() {
  outbox_flush_scheduled_ = false;
  SendOutbox();
}

void Scribe::SendOutbox() {
  if (outbox_.empty()) return;
  std::vector<Outbox> outbox = std::move(outbox_);
  outbox_.clear();
  for (Outbox& o : outbox) {
    CloseLists(o);
    if (!o.queued.empty()) SendQueued(o.to, std::move(o.queued), o.messages);
  }
}

void Scribe::SendQueued(const NodeHandle& to, std::vector<std::string> queued, size_t count) {
  if (queued.size() == 1) {
    overlay_->Route(std::nullopt, std::move(queued.front()), to);
    return;
  }
  ++stats_.bundles_sent;
  stats_.bundled_messages += count;
  overlay_->Route(std::nullopt, wire::EncodeBundle(queued), to);
}

}  // namespace peter::pubsub

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
#include <utility>

#include "pubsub/scribe.h"
#include "pubsub/wire/codec.h"

namespace peter::pubsub {

bool Scribe::ReadsBundles(const NodeHandle& to) const {
  if (!options_.bundle_messages) return false;
  auto it = peer_versions_.find(to.id);
  if (it == peer_versions_.end() || it->second.version < kBundleVersion) return false;
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

void Scribe::Queue(const NodeHandle& to, std::string bytes) {
  // Few nodes get messages within one batch of work; the latest is likeliest.
  auto it = std::find_if(outbox_.rbegin(), outbox_.rend(), [&](const Outbox& o) {
    return o.to.id == to.id && o.to.endpoint == to.endpoint;
  });
  if (it == outbox_.rend()) {
    outbox_.push_back(Outbox{to, {}, 0});
    it = outbox_.rbegin();
  }
  if (!it->queued.empty() && (it->queued.size() >= kMaxBundleMessages ||
                              it->bytes + bytes.size() > kMaxBundleBytes)) {
    SendQueued(it->to, std::move(it->queued));
    it->queued.clear();
    it->bytes = 0;
  }
  it->bytes += bytes.size();
  it->queued.push_back(std::move(bytes));
  if (!outbox_flush_scheduled_) {
    outbox_flush_scheduled_ = true;
    overlay_->ScheduleTimer(absl::ZeroDuration(), [this] { FlushOutbox(); });
  }
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
    if (!o.queued.empty()) SendQueued(o.to, std::move(o.queued));
  }
}

void Scribe::SendQueued(const NodeHandle& to, std::vector<std::string> queued) {
  if (queued.size() == 1) {
    overlay_->Route(std::nullopt, std::move(queued.front()), to);
    return;
  }
  ++stats_.bundles_sent;
  stats_.bundled_messages += queued.size();
  overlay_->Route(std::nullopt, wire::EncodeBundle(queued), to);
}

}  // namespace peter::pubsub

#include "tools/admin/embedded_source.h"

#include "pubsub/node/node_impl.h"

namespace peter::tools::admin {

using node_internal::ImplOf;

EmbeddedNodeSource::EmbeddedNodeSource(Node* node) : node_(node) {}

pastry::net::NodeSnapshot EmbeddedNodeSource::Snapshot() {
  return ImplOf(*node_).runtime().Snapshot();
}

absl::StatusOr<pastry::Node::LookupResult> EmbeddedNodeSource::Lookup(
    const pastry::NodeId& key, absl::Duration timeout) {
  return ImplOf(*node_).runtime().Lookup(key, timeout);
}

std::optional<PubSubStats> EmbeddedNodeSource::PubSub() { return node_->pubsub_stats(); }

std::vector<TopicStatus> EmbeddedNodeSource::Topics() { return node_->topics(); }

NodeOptions ToNodeOptions(const pastry::net::RuntimeOptions& r) {
  NodeOptions o;
  o.listen = r.listen;
  o.bootstrap = r.bootstrap;
  o.advertise = r.advertise;
  o.id = r.id;
  o.overlay = r.pastry;
  o.security = r.security;
  o.bootstrap_retry_for = r.bootstrap_retry_for;
  o.max_frame_bytes = r.max_frame_bytes;
  o.max_send_queue_bytes = r.max_send_queue_bytes;
  o.max_total_send_queue_bytes = r.max_total_send_queue_bytes;
  o.max_total_receive_bytes = r.max_total_receive_bytes;
  o.max_connections = r.max_connections;
  o.logger = r.logger;
  return o;
}

}  // namespace peter::tools::admin

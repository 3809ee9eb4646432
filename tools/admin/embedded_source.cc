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

}  // namespace peter::tools::admin

// The admin endpoint's view of an embedded node (include/peter/node.h):
// `peter node` and the broker-less demo's programs serve their node's
// /status (with its topic trees), /route and /metrics through it.
#ifndef PETER_TOOLS_ADMIN_EMBEDDED_SOURCE_H_
#define PETER_TOOLS_ADMIN_EMBEDDED_SOURCE_H_

#include <optional>
#include <vector>

#include "pastry/net/node_runtime.h"
#include "peter/node.h"
#include "tools/admin/admin_server.h"

namespace peter::tools::admin {

// Thread-safe; `node` must outlive it.
class EmbeddedNodeSource : public NodeSource {
 public:
  explicit EmbeddedNodeSource(Node* node);
  pastry::net::NodeSnapshot Snapshot() override;
  absl::StatusOr<pastry::Node::LookupResult> Lookup(const pastry::NodeId& key,
                                                    absl::Duration timeout) override;
  std::optional<PubSubStats> PubSub() override;
  std::vector<TopicStatus> Topics() override;

 private:
  Node* node_;
};

}  // namespace peter::tools::admin

#endif  // PETER_TOOLS_ADMIN_EMBEDDED_SOURCE_H_

// NodeOptions as an embedding writes it: default-constructed, or designated
// initializers naming only some fields. Built with
// -Werror=missing-field-initializers (tests/pubsub/node/CMakeLists.txt): a
// field without a default initializer fails the build here.
#include <memory>

#include "gtest/gtest.h"
#include "peter/node.h"

namespace peter {
namespace {

constexpr absl::Duration kWait = absl::Seconds(20);

TEST(NodeOptionsTest, DefaultOptionsStartAOneNodeRing) {
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(NodeOptions{});
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_TRUE((*node)->WaitUntilActive(kWait).ok());
  EXPECT_TRUE((*node)->PublishAndWait("t", "m").ok());
}

TEST(NodeOptionsTest, DesignatedInitializersNameOnlySomeFields) {
  const NodeOptions options{.listen = "127.0.0.1:0",
                            .security = {.cluster_key = "0123456789abcdef0123"},
                            .max_pending_messages = 10};
  EXPECT_TRUE(options.bootstrap.empty());
  EXPECT_FALSE(options.id.has_value());
  EXPECT_EQ(options.logger, nullptr);
  EXPECT_TRUE(options.security.enabled());
  EXPECT_FALSE(options.security.tls());
  EXPECT_EQ(options.overlay.leaf_set_size, pastry::Options{}.leaf_set_size);
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Start(options);
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_TRUE((*node)->WaitUntilActive(kWait).ok());
}

}  // namespace
}  // namespace peter

// Topic ids: the first 128 bits of SHA-256 of the topic name, read
// big-endian, so ids are uniform on the ring and every node agrees.
#ifndef PETER_PUBSUB_TOPIC_ID_H_
#define PETER_PUBSUB_TOPIC_ID_H_

#include <string_view>

#include "pubsub/messages.h"

namespace peter::pubsub {

TopicId TopicIdOf(std::string_view name);

}  // namespace peter::pubsub

#endif  // PETER_PUBSUB_TOPIC_ID_H_

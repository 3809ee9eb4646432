#include "pastry/core/messages.h"

namespace peter::pastry {

std::string_view MessageTypeName(size_t index) {
  static constexpr std::string_view kNames[] = {
      "route", "route_ack", "join_reply", "probe", "probe_reply",
      "row_request", "row_reply", "leave", "lookup_reply"};
  static_assert(std::size(kNames) == kMessageTypeCount);
  return index < std::size(kNames) ? kNames[index] : "unknown";
}

std::string_view MessageTypeName(const MessageBody& body) {
  return MessageTypeName(body.index());
}

}  // namespace peter::pastry

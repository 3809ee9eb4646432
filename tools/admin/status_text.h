// `peter status`: a node's /status document fetched from its admin
// endpoint, and rendered for a person to read at a glance.
#ifndef PETER_TOOLS_ADMIN_STATUS_TEXT_H_
#define PETER_TOOLS_ADMIN_STATUS_TEXT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace peter::tools::admin {

// GET http://host:port/status. Unavailable if the endpoint cannot be reached
// or answers with an error; InvalidArgument if the answer is not JSON.
absl::StatusOr<nlohmann::json> FetchStatus(const std::string& host, int port,
                                           absl::Duration timeout);

// A few lines: identity and state, leaf set, routing-table fill per row,
// pub/sub counters and transport counters. Fields missing from `status`
// (an older node) are left out; never throws on an odd document.
std::string RenderStatus(const nlohmann::json& status);

}  // namespace peter::tools::admin

#endif  // PETER_TOOLS_ADMIN_STATUS_TEXT_H_

// `peter status HOST:PORT`: a running node's view from its admin endpoint
// (`peter node --admin HOST:PORT`): id and state, leaf set, routing-table
// fill, pub/sub and transport counters, as a few lines for a person; with
// --json, the endpoint's /status document as is, for scripts.
//
// Exit status: 0 printed, 1 the endpoint could not be read, 2 usage error.
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/admin/node_config.h"
#include "tools/admin/status_text.h"
#include "tools/commands.h"

namespace peter::tools {
namespace {

struct StatusFlags {
  std::string address;
  bool json = false;
  double timeout_s = 5;
};

[[noreturn]] void Fail(const std::string& message, int code) {
  PrintError("peter status", message);
  throw CLI::RuntimeError(code);
}

void RunStatus(const StatusFlags& flags) {
  absl::StatusOr<admin::AdminAddress> where = admin::SplitHostPort("HOST:PORT", flags.address);
  if (!where.ok()) Fail(std::string(where.status().message()), 2);
  if (where->port == 0) Fail("HOST:PORT \"" + flags.address + "\": port must not be 0", 2);
  if (!(flags.timeout_s > 0)) Fail("--timeout must be a positive number of seconds", 2);
  absl::StatusOr<nlohmann::json> status =
      admin::FetchStatus(where->host, where->port, absl::Seconds(flags.timeout_s));
  if (!status.ok()) Fail(std::string(status.status().message()), 1);
  if (flags.json) {
    std::cout << status->dump(2) << "\n";
  } else {
    std::cout << admin::RenderStatus(*status);
  }
}

}  // namespace

void RegisterStatusCommand(CLI::App& app) {
  auto flags = std::make_shared<StatusFlags>();
  CLI::App* status = app.add_subcommand(
      "status", "Show a running node's state, read from its admin endpoint (peter node --admin)");
  status->fallthrough();
  status->add_option("address", flags->address, "HOST:PORT of the node's admin endpoint")
      ->required();
  status->add_flag("--json", flags->json, "Print the endpoint's /status JSON instead");
  status->add_option("--timeout", flags->timeout_s, "Seconds to wait for the endpoint")
      ->capture_default_str();
  status->callback([flags] { RunStatus(*flags); });
}

}  // namespace peter::tools

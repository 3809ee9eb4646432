// `peter`: one program, many subcommands (tools/commands.h).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "spdlog/spdlog.h"
#include "tools/commands.h"
#ifdef PETER_HAVE_NODE
#include "tools/admin/config_file.h"
#endif

#ifndef PETER_VERSION
#define PETER_VERSION "unknown"
#endif

namespace peter::tools {
namespace {

// One line per error, so scripts and people see what went wrong at once.
std::string OneLineFailure(const CLI::App* app, const CLI::Error& e) {
  return "peter: error: " + std::string(e.what()) +
         " (run with --help for usage)\n";
}

// An "unexpected argument" error for what CLI11 left unparsed, in any parsed
// subcommand too. ExtrasError joins its list back to front (so CLI11's own
// message shows them reversed): hand it the leftovers reversed.
CLI::ExtrasError UnexpectedArguments(const CLI::App& app) {
  std::vector<std::string> left = app.remaining(/*recurse=*/true);
  std::reverse(left.begin(), left.end());
  return CLI::ExtrasError(left);
}

void AddGlobalOptions(CLI::App& app) {
  app.set_version_flag("--version", std::string("peter ") + PETER_VERSION);
  app.add_option_function<std::string>(
         "--log-level",
         [](const std::string& level) {
           spdlog::set_level(spdlog::level::from_str(level));
         },
         "Log verbosity: trace, debug, info, warn, error, critical or off")
      ->check(CLI::IsMember(
          {"trace", "debug", "info", "warn", "error", "critical", "off"}));
}

void RegisterCommands(CLI::App& app) {
#ifdef PETER_HAVE_DEMO
  RegisterDemoCommand(app);
#endif
#ifdef PETER_HAVE_NODE
  RegisterNodeCommand(app);
  // `peter node --config FILE` (global, through the node's fallthrough).
  admin::AddConfigFileOption(app, "node");
#endif
#ifdef PETER_HAVE_STATUS
  RegisterStatusCommand(app);
#endif
#ifdef PETER_HAVE_SIM
  RegisterSimCommand(app);
#endif
}

int Run(int argc, char** argv) {
  CLI::App app{"Peter: broker-less publish/subscribe over a Pastry overlay",
               "peter"};
  app.failure_message(OneLineFailure);
  app.require_subcommand(1);
  AddGlobalOptions(app);
  RegisterCommands(app);
  // A usage error (bad or missing flags) exits with status 2, like a
  // command's own refusal of bad input; CLI11's codes are 105 to 109.
  auto usage = [&app](const CLI::Error& e) { return app.exit(e) == 0 ? 0 : 2; };
  try {
    app.parse(argc, argv);
  } catch (const CLI::RequiredError& e) {
    // CLI11 checks requirements before leftovers; an unknown flag is the
    // more useful thing to report ("peter --bogus").
    if (app.remaining(/*recurse=*/true).empty()) return usage(e);
    return usage(UnexpectedArguments(app));
  } catch (const CLI::ExtrasError&) {
    return usage(UnexpectedArguments(app));
  } catch (const CLI::RuntimeError& e) {
    // A command's failure: its own exit code.
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Also covers --help and --version (exit 0).
    return usage(e);
  }
  return 0;
}

}  // namespace

void PrintError(std::string_view who, std::string_view message) {
  std::string line;
  line.reserve(who.size() + message.size() + 9);
  line.append(who).append(": error: ").append(message).push_back('\n');
  // One fwrite: glibc locks stderr for the whole call, as it does for the
  // log sink's own fwrite, so the two never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace peter::tools

int main(int argc, char** argv) {
  try {
    return peter::tools::Run(argc, argv);
  } catch (const std::exception& e) {
    peter::tools::PrintError("peter", e.what());
  } catch (...) {
    peter::tools::PrintError("peter", "unknown exception");
  }
  return 1;
}

// The subcommands of the `peter` program. Each lives in its own file,
// tools/<name>_command.cc, and adds itself to the app through one Register
// function; peter_main.cc calls the ones this build has (PETER_HAVE_<NAME>,
// set by tools/CMakeLists.txt when the file exists).
//
// A subcommand does its work in a CLI11 callback. To fail, it prints its own
// one-line message to stderr (PrintError) and throws
// CLI::RuntimeError(exit_code); main turns that into the process exit code.
// Any other exception that escapes a callback is caught in main, printed,
// and exits with status 1.
#ifndef PETER_TOOLS_COMMANDS_H_
#define PETER_TOOLS_COMMANDS_H_

#include <string_view>

#include "CLI/CLI.hpp"

namespace peter::tools {

// Writes "WHO: error: MESSAGE" and a newline to stderr in one write, so
// that a log line another thread writes meanwhile (spdlog's stderr sink;
// `peter node`'s node thread may still be logging) lands before or after
// it, never inside it.
void PrintError(std::string_view who, std::string_view message);

// `peter demo`: a small local cluster showing the overlay routing messages.
void RegisterDemoCommand(CLI::App& app);

// `peter node`: one overlay node on TCP with an HTTP admin endpoint.
void RegisterNodeCommand(CLI::App& app);
// `peter status`: a running node's state from its admin endpoint.
void RegisterStatusCommand(CLI::App& app);
// `peter sim`: route, failure and churn experiments (tools/sim_*.cc).
void RegisterSimCommand(CLI::App& app);

}  // namespace peter::tools

#endif  // PETER_TOOLS_COMMANDS_H_

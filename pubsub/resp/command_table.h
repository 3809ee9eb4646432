// Private to pubsub/resp: the commands the gateway serves, with Redis 7.0's
// arities (negative: at least that many arguments, the name included) and
// the metadata COMMAND reports.
#ifndef PETER_PUBSUB_RESP_COMMAND_TABLE_H_
#define PETER_PUBSUB_RESP_COMMAND_TABLE_H_

#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace peter::resp {

enum class CommandId {
  kPing, kEcho, kQuit, kReset, kAuth, kHello, kClient, kSelect, kCommand, kInfo,
  kSubscribe, kPsubscribe, kSsubscribe, kUnsubscribe, kPunsubscribe, kSunsubscribe,
  kPublish, kSpublish, kPubsub,
};

enum CommandFlags : unsigned {
  kNoAuth = 1,         // allowed before AUTH
  kPubSubContext = 2,  // allowed to a RESP2 client in subscribed state
};

struct CommandSpec {
  std::string_view name;  // lower case
  CommandId id;
  int arity;
  unsigned flags;
  std::vector<std::string_view> redis_flags;  // as COMMAND INFO shows them
  std::vector<std::string_view> categories;   // ACL categories
  std::string_view group;
  std::string_view summary;
  std::string_view since;
  // Container commands (CLIENT, COMMAND, PUBSUB): the subcommands served,
  // with their Redis arities (counting the command and subcommand names).
  std::vector<std::pair<std::string_view, int>> subcommands = {};
};

// nullptr if unknown. `name` in any case (as Redis: "PuBlIsH" is PUBLISH).
const CommandSpec* FindCommand(std::string_view name);
const std::vector<CommandSpec>& AllCommands();

// The gateway's RequestParser::LendRule: PUBLISH's and SPUBLISH's message
// (the last of their 3 arguments) is lent, not copied (Server::Publish
// copies it once, into the payload block). `name` in any case.
bool LendsMessage(std::string_view name, size_t arg_count);

// The arity of any Redis 7.0 command (served here or not); nullopt if Redis
// has no such command. `name` must be lower case.
std::optional<int> RedisCommandArity(std::string_view name);

}  // namespace peter::resp

#endif  // PETER_PUBSUB_RESP_COMMAND_TABLE_H_

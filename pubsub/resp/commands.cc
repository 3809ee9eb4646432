// Connection and server commands: PING ECHO QUIT RESET AUTH HELLO CLIENT
// SELECT COMMAND INFO, with Redis 7.0's replies and errors.
#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "pubsub/resp/client.h"
#include "pubsub/resp/command_table.h"
#include "pubsub/resp/server.h"

namespace peter::resp {
namespace {

std::string SubcommandArityError(absl::string_view command, absl::string_view sub) {
  return absl::StrCat("ERR wrong number of arguments for '", command, "|",
                      absl::AsciiStrToLower(sub), "' command");
}

std::string UnknownSubcommandError(absl::string_view sub, absl::string_view command) {
  return absl::StrCat("ERR unknown subcommand '", sub.substr(0, 128), "'. Try ", command,
                      " HELP.");
}

// Redis accepts client names of printable ASCII without blanks.
bool ValidClientName(std::string_view name) {
  for (char ch : name) {
    if (ch < '!' || ch > '~') return false;
  }
  return true;
}

constexpr std::string_view kBadClientName =
    "ERR Client names cannot contain spaces, newlines or special characters.";

}  // namespace

void Server::Ping(Client& c, Args& a) {
  ReplyWriter w = c.writer();
  if (a.size() > 2) {
    counters_.wrong_arity++;
    return w.Error("ERR wrong number of arguments for 'ping' command");
  }
  if (c.protocol_ == 2 && c.in_pubsub_mode()) {
    w.Array(2);
    w.Bulk("pong");
    return w.Bulk(a.size() == 2 ? a[1] : "");
  }
  if (a.size() == 2) return w.Bulk(a[1]);
  w.Simple("PONG");
}

void Server::Echo(Client& c, Args& a) { c.writer().Bulk(a[1]); }

void Server::Quit(Client& c, Args& a) {
  c.writer().Simple("OK");
  c.CloseAfterReply();
}

void Server::Reset(Client& c, Args& a) {
  UnsubscribeAll(c, Kind::kChannel, false);
  UnsubscribeAll(c, Kind::kPattern, false);
  UnsubscribeAll(c, Kind::kShard, false);
  c.protocol_ = 2;
  c.name_.reset();
  c.set_authenticated(options_.requirepass.empty());
  c.writer().Simple("RESET");
  c.FencePushes();
}

bool Server::CheckPassword(std::string_view user, std::string_view password) {
  bool ok = absl::AsciiStrToLower(std::string(user)) == "default" &&
            (options_.requirepass.empty() || password == options_.requirepass);
  if (!ok) counters_.auth_failures++;
  return ok;
}

void Server::Auth(Client& c, Args& a) {
  ReplyWriter w = c.writer();
  if (a.size() > 3) return w.Error("ERR syntax error");
  if (a.size() == 2 && options_.requirepass.empty()) {
    return w.Error(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?");
  }
  std::string_view user = a.size() == 3 ? std::string_view(a[1]) : "default";
  if (!CheckPassword(user, a.back())) {
    return w.Error("WRONGPASS invalid username-password pair or user is disabled.");
  }
  c.set_authenticated(true);
  w.Simple("OK");
}

void Server::Hello(Client& c, Args& a) {
  ReplyWriter w = c.writer();
  long long version = 0;
  size_t next = 1;
  if (a.size() >= 2) {
    if (!ParseRedisInteger(a[1], &version)) {
      return w.Error("ERR Protocol version is not an integer or out of range");
    }
    if (version < 2 || version > 3) return w.Error("NOPROTO unsupported protocol version");
    next = 2;
  }
  const std::string* user = nullptr;
  const std::string* password = nullptr;
  const std::string* name = nullptr;
  for (size_t j = next; j < a.size(); ++j) {
    size_t more = a.size() - 1 - j;
    std::string option = absl::AsciiStrToLower(a[j]);
    if (option == "auth" && more >= 2) {
      user = &a[j + 1];
      password = &a[j + 2];
      j += 2;
    } else if (option == "setname" && more >= 1) {
      name = &a[j + 1];
      if (!ValidClientName(*name)) return w.Error(kBadClientName);
      j += 1;
    } else {
      return w.Error(absl::StrCat("ERR Syntax error in HELLO option '", a[j], "'"));
    }
  }
  if (user != nullptr) {
    if (!CheckPassword(*user, *password)) {
      return w.Error("WRONGPASS invalid username-password pair or user is disabled.");
    }
    c.set_authenticated(true);
  }
  if (!c.authenticated_) {
    counters_.noauth_rejections++;
    return w.Error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
        "the RESP protocol version at the same time");
  }
  if (name != nullptr) {
    if (name->empty()) {
      c.name_.reset();
    } else {
      c.name_ = *name;
    }
  }
  if (version != 0) c.protocol_ = static_cast<int>(version);
  WriteHello(c);
  c.FencePushes();  // pushes after it are in its protocol
}

void Server::WriteHello(Client& c) {
  ReplyWriter w = c.writer();
  w.Map(7);
  w.Bulk("server");
  w.Bulk("redis");
  w.Bulk("version");
  w.Bulk(options_.redis_version);
  w.Bulk("proto");
  w.Integer(c.protocol_);
  w.Bulk("id");
  w.Integer(static_cast<long long>(c.id()));
  w.Bulk("mode");
  w.Bulk("standalone");
  w.Bulk("role");
  w.Bulk("master");
  w.Bulk("modules");
  w.Array(0);
}

std::string Server::ClientInfoLine(Client& c) {
  absl::Time now = absl::Now();
  return absl::StrCat(
      "id=", c.id(), " addr=", c.peer(), " laddr=", c.local(), " fd=-1 name=",
      c.name_.value_or(""), " age=", absl::ToInt64Seconds(now - c.created()),
      " idle=", absl::ToInt64Seconds(now - c.last_command_),
      " flags=", c.in_pubsub_mode() ? "P" : "N", " db=0 sub=", c.channels_.size(),
      " psub=", c.patterns_.size(), " ssub=", c.shard_channels_.size(),
      " multi=-1 qbuf=", c.query_buffered(), " obl=0 oll=0 omem=", c.output_bytes(),
      " user=default resp=", c.protocol_, "\n");
}

void Server::ClientCmd(Client& c, Args& a) {
  ReplyWriter w = c.writer();
  std::string sub = absl::AsciiStrToLower(a[1]);
  auto arity = [&](size_t n) {
    if (a.size() == n) return true;
    counters_.wrong_arity++;
    w.Error(SubcommandArityError("client", sub));
    return false;
  };
  if (sub == "id") {
    if (arity(2)) w.Integer(static_cast<long long>(c.id()));
  } else if (sub == "getname") {
    if (!arity(2)) return;
    if (c.name_) return w.Bulk(*c.name_);
    w.Null();
  } else if (sub == "setname") {
    if (!arity(3)) return;
    if (!ValidClientName(a[2])) return w.Error(kBadClientName);
    if (a[2].empty()) {
      c.name_.reset();
    } else {
      c.name_ = a[2];
    }
    w.Simple("OK");
  } else if (sub == "info") {
    if (arity(2)) w.Verbatim("txt", ClientInfoLine(c));
  } else if (sub == "list") {
    ClientList(c, a);
  } else {
    w.Error(UnknownSubcommandError(a[1], "CLIENT"));
  }
}

// CLIENT LIST [TYPE normal|pubsub|master|replica] | [ID id ...], with
// Redis's errors.
void Server::ClientList(Client& c, Args& a) {
  ReplyWriter w = c.writer();
  std::optional<bool> pubsub_type;
  std::set<uint64_t> ids;
  bool by_id = false, none = false;
  std::string option = a.size() >= 3 ? absl::AsciiStrToLower(a[2]) : "";
  if (a.size() == 4 && option == "type") {
    std::string type = absl::AsciiStrToLower(a[3]);
    if (type == "normal" || type == "pubsub") {
      pubsub_type = type == "pubsub";
    } else if (type == "master" || type == "replica" || type == "slave") {
      none = true;
    } else {
      return w.Error(absl::StrCat("ERR Unknown client type '", a[3], "'"));
    }
  } else if (a.size() >= 4 && option == "id") {
    by_id = true;
    for (size_t j = 3; j < a.size(); ++j) {
      long long id = 0;
      if (!ParseRedisInteger(a[j], &id) || id <= 0) return w.Error("ERR Invalid client ID");
      ids.insert(static_cast<uint64_t>(id));
    }
  } else if (a.size() != 2) {
    return w.Error("ERR syntax error");
  }
  std::string text;
  for (const auto& [id, client] : clients_) {
    if (none || (by_id && !ids.count(id))) continue;
    if (pubsub_type && client->in_pubsub_mode() != *pubsub_type) continue;
    text += ClientInfoLine(*client);
  }
  w.Verbatim("txt", text);
}

void Server::Select(Client& c, Args& a) {
  ReplyWriter w = c.writer();
  long long db = 0;
  if (!ParseRedisInteger(a[1], &db) || db < INT32_MIN || db > INT32_MAX) {
    return w.Error("ERR value is not an integer or out of range");
  }
  // Pub/sub ignores the database, as in Redis; the 16 default ones exist.
  if (db < 0 || db >= 16) return w.Error("ERR DB index is out of range");
  w.Simple("OK");
}

namespace {

void WriteCommandInfo(ReplyWriter& w, const CommandSpec& spec) {
  w.Array(10);
  w.Bulk(spec.name);
  w.Integer(spec.arity);
  w.Set(spec.redis_flags.size());
  for (auto f : spec.redis_flags) w.Simple(f);
  w.Integer(0);
  w.Integer(0);
  w.Integer(0);
  w.Set(spec.categories.size());
  for (auto cat : spec.categories) w.Simple(cat);
  w.Array(0);  // tips
  w.Array(0);  // key specs
  w.Array(0);  // subcommands
}

void WriteCommandDocs(ReplyWriter& w, const CommandSpec& spec) {
  w.Bulk(spec.name);
  w.Map(3);
  w.Bulk("summary");
  w.Bulk(spec.summary);
  w.Bulk("since");
  w.Bulk(spec.since);
  w.Bulk("group");
  w.Bulk(spec.group);
}

}  // namespace

void Server::CommandCmd(Client& c, Args& a) {
  ReplyWriter w = c.writer();
  const auto& all = AllCommands();
  if (a.size() == 1) {
    w.Array(all.size());
    for (const auto& spec : all) WriteCommandInfo(w, spec);
    return;
  }
  std::string sub = absl::AsciiStrToLower(a[1]);
  if (sub == "count") {
    if (a.size() != 2) {
      counters_.wrong_arity++;
      return w.Error(SubcommandArityError("command", sub));
    }
    w.Integer(static_cast<long long>(all.size()));
  } else if (sub == "info") {
    if (a.size() == 2) {
      w.Array(all.size());
      for (const auto& spec : all) WriteCommandInfo(w, spec);
      return;
    }
    w.Array(a.size() - 2);
    for (size_t i = 2; i < a.size(); ++i) {
      const CommandSpec* spec = FindCommand(a[i]);
      if (spec != nullptr) {
        WriteCommandInfo(w, *spec);
      } else {
        w.Null();
      }
    }
  } else if (sub == "docs") {
    std::vector<const CommandSpec*> specs;
    for (size_t i = 2; i < a.size(); ++i) {
      if (const CommandSpec* s = FindCommand(a[i])) specs.push_back(s);
    }
    if (a.size() == 2) {
      for (const auto& spec : all) specs.push_back(&spec);
    }
    w.Map(specs.size());
    for (const CommandSpec* spec : specs) WriteCommandDocs(w, *spec);
  } else if (sub == "list") {
    w.Array(all.size());
    for (const auto& spec : all) w.Bulk(spec.name);
  } else {
    w.Error(UnknownSubcommandError(a[1], "COMMAND"));
  }
}

void Server::Info(Client& c, Args& a) {
  bool all = a.size() == 1;
  auto wants = [&](std::string_view section) {
    if (all) return true;
    for (size_t i = 1; i < a.size(); ++i) {
      std::string s = absl::AsciiStrToLower(a[i]);
      if (s == section || s == "all" || s == "default" || s == "everything") return true;
    }
    return false;
  };
  size_t channels = 0, patterns = 0, shards = 0;
  for (const auto& [key, topic] : topics_) {
    if (topic->members.empty()) continue;
    (topic->kind == Kind::kChannel ? channels : topic->kind == Kind::kPattern ? patterns : shards)++;
  }
  GatewayStats s = stats();
  std::string text;
  if (wants("server")) {
    absl::StrAppend(&text, "# Server\r\nredis_version:", options_.redis_version,
                    "\r\nredis_mode:standalone\r\npeter_gateway:resp\r\ntcp_port:", port_,
                    "\r\nuptime_in_seconds:", absl::ToInt64Seconds(absl::Now() - started_),
                    "\r\nuptime_in_days:", absl::ToInt64Hours(absl::Now() - started_) / 24,
                    "\r\n\r\n");
  }
  if (wants("clients")) {
    absl::StrAppend(&text, "# Clients\r\nconnected_clients:", clients_.size(),
                    "\r\nmaxclients:", options_.max_clients, "\r\n\r\n");
  }
  if (wants("stats")) {
    absl::StrAppend(
        &text, "# Stats\r\ntotal_connections_received:", s.clients_accepted,
        "\r\ntotal_commands_processed:", s.commands, "\r\nrejected_connections:",
        s.clients_refused, "\r\npubsub_channels:", channels, "\r\npubsub_patterns:", patterns,
        "\r\npubsub_shardchannels:", shards, "\r\ncluster_known_patterns:", s.known_patterns,
        "\r\nprotocol_errors:", s.protocol_errors, "\r\nunknown_commands:", s.unknown_commands,
        "\r\nauth_failures:", s.auth_failures, "\r\nslow_client_disconnects:",
        s.slow_client_disconnects, "\r\nsubscribe_timeouts:", s.subscribe_timeouts,
        "\r\nbackend_errors:", s.backend_errors,
        "\r\npublish_limit_waits:", s.publish_limit_waits,
        "\r\nmessages_dropped:", s.messages_dropped,
        "\r\nsubscription_limit_rejections:", s.subscription_limit_rejections,
        "\r\nrequests_too_big:", s.requests_too_big,
        "\r\npattern_directory_overflows:", s.pattern_directory_overflows,
        "\r\npattern_ttls_clipped:", s.pattern_ttls_clipped,
        "\r\ninput_limit_pauses:", s.input_limit_pauses,
        "\r\ninput_buffered_bytes:", s.input_bytes,
        "\r\nevicted_clients:", s.evicted_clients,
        "\r\noutput_buffered_bytes:", s.output_bytes, "\r\n\r\n");
  }
  c.writer().Verbatim("txt", text);
}

}  // namespace peter::resp

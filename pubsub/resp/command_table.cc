#include "pubsub/resp/command_table.h"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace peter::resp {

const std::vector<CommandSpec>& AllCommands() {
  static const auto* const kCommands = new std::vector<CommandSpec>{
      {"ping", CommandId::kPing, -1, kPubSubContext, {"fast"}, {"@fast", "@connection"},
       "connection", "Ping the server", "1.0.0"},
      {"echo", CommandId::kEcho, 2, 0, {"fast"}, {"@fast", "@connection"}, "connection",
       "Echo the given string", "1.0.0"},
      {"quit", CommandId::kQuit, -1, kNoAuth | kPubSubContext,
       {"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"},
       {"@fast", "@connection"}, "connection", "Close the connection", "1.0.0"},
      {"reset", CommandId::kReset, 1, kNoAuth | kPubSubContext,
       {"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"},
       {"@fast", "@connection"}, "connection", "Reset the connection", "6.2.0"},
      {"auth", CommandId::kAuth, -2, kNoAuth,
       {"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"},
       {"@fast", "@connection"}, "connection", "Authenticate to the server", "1.0.0"},
      {"hello", CommandId::kHello, -1, kNoAuth,
       {"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"},
       {"@fast", "@connection"}, "connection", "Handshake with Redis", "6.0.0"},
      {"client", CommandId::kClient, -2, 0, {}, {"@slow"}, "connection",
       "A container for client connection commands", "2.4.0",
       {{"getname", 2}, {"id", 2}, {"info", 2}, {"list", -2}, {"setname", 3}}},
      {"select", CommandId::kSelect, 2, 0, {"loading", "stale", "fast"},
       {"@fast", "@connection"}, "connection", "Change the selected database", "1.0.0"},
      {"command", CommandId::kCommand, -1, 0, {"loading", "stale"}, {"@slow", "@connection"},
       "server", "Get array of Redis command details", "2.8.13",
       {{"count", 2}, {"docs", -2}, {"info", -2}, {"list", -2}}},
      {"info", CommandId::kInfo, -1, 0, {"loading", "stale"}, {"@slow", "@dangerous"},
       "server", "Get information and statistics about the server", "1.0.0"},
      {"subscribe", CommandId::kSubscribe, -2, kPubSubContext,
       {"pubsub", "noscript", "loading", "stale"}, {"@pubsub", "@slow"}, "pubsub",
       "Listen for messages published to the given channels", "2.0.0"},
      {"psubscribe", CommandId::kPsubscribe, -2, kPubSubContext,
       {"pubsub", "noscript", "loading", "stale"}, {"@pubsub", "@slow"}, "pubsub",
       "Listen for messages published to channels matching the given patterns", "2.0.0"},
      {"ssubscribe", CommandId::kSsubscribe, -2, kPubSubContext,
       {"pubsub", "noscript", "loading", "stale"}, {"@pubsub", "@slow"}, "pubsub",
       "Listen for messages published to the given shard channels", "7.0.0"},
      {"unsubscribe", CommandId::kUnsubscribe, -1, kPubSubContext,
       {"pubsub", "noscript", "loading", "stale"}, {"@pubsub", "@slow"}, "pubsub",
       "Stop listening for messages posted to the given channels", "2.0.0"},
      {"punsubscribe", CommandId::kPunsubscribe, -1, kPubSubContext,
       {"pubsub", "noscript", "loading", "stale"}, {"@pubsub", "@slow"}, "pubsub",
       "Stop listening for messages posted to channels matching the given patterns", "2.0.0"},
      {"sunsubscribe", CommandId::kSunsubscribe, -1, kPubSubContext,
       {"pubsub", "noscript", "loading", "stale"}, {"@pubsub", "@slow"}, "pubsub",
       "Stop listening for messages posted to the given shard channels", "7.0.0"},
      {"publish", CommandId::kPublish, 3, 0, {"pubsub", "loading", "stale", "fast"},
       {"@pubsub", "@fast"}, "pubsub", "Post a message to a channel", "2.0.0"},
      {"spublish", CommandId::kSpublish, 3, 0, {"pubsub", "loading", "stale", "fast"},
       {"@pubsub", "@fast"}, "pubsub", "Post a message to a shard channel", "7.0.0"},
      {"pubsub", CommandId::kPubsub, -2, 0, {}, {"@slow"}, "pubsub",
       "A container for Pub/Sub commands", "2.8.0",
       {{"channels", -2}, {"numpat", 2}, {"numsub", -2}, {"shardchannels", -2},
        {"shardnumsub", -2}}},
  };
  return *kCommands;
}

namespace {

// A name of 4 to 16 bytes as two overlapping words, its first and its last
// 4 bytes (names under 8 bytes) or 8 (longer), each byte OR-ed with 0x20.
// Every byte of a command's name is a lower-case letter (0x20 set), so a
// folded byte equals it only if it was that letter in either case: two
// names of one length are equal, case folded, exactly when their keys are.
struct NameKey {
  uint64_t head = 0, tail = 0;
  bool operator==(const NameKey&) const = default;
};

NameKey KeyOf(std::string_view name) {
  NameKey key;
  const char* const p = name.data();
  if (name.size() >= 8) {
    std::memcpy(&key.head, p, 8);
    std::memcpy(&key.tail, p + name.size() - 8, 8);
    key.head |= 0x2020202020202020;
    key.tail |= 0x2020202020202020;
  } else {
    uint32_t head = 0, tail = 0;
    std::memcpy(&head, p, 4);
    std::memcpy(&tail, p + name.size() - 4, 4);
    key.head = head | 0x20202020;
    key.tail = tail | 0x20202020;
  }
  return key;
}

}  // namespace

const CommandSpec* FindCommand(std::string_view name) {
  // Every request looks its command up here: by length, then its key (no
  // copy of the name, no hash, no loop over its bytes; a folded copy hashed
  // into a map was 235 instructions per PUBLISH, a byte-by-byte folded
  // compare 101).
  constexpr size_t kShortestName = 4, kLongestName = 16, kPerLength = 6;
  struct Entry {
    NameKey key;
    const CommandSpec* spec;
  };
  struct ByLength {
    std::array<Entry, kPerLength> entries;
    size_t size = 0;
  };
  static const auto* const kByLength = [] {
    auto* by_length = new std::array<ByLength, kLongestName + 1>();
    for (const CommandSpec& spec : AllCommands()) {
      // A longer or shorter name, or more of one length, needs these bounds moved.
      if (spec.name.size() < kShortestName || spec.name.size() > kLongestName) std::abort();
      // The keys tell names apart case folded only if every byte is a
      // lower-case letter (KeyOf): '-' would match '\r', '_' DEL.
      for (char c : spec.name) {
        if (c < 'a' || c > 'z') std::abort();
      }
      ByLength& list = (*by_length)[spec.name.size()];
      if (list.size == kPerLength) std::abort();
      list.entries[list.size++] = Entry{KeyOf(spec.name), &spec};
    }
    return by_length;
  }();
  if (name.size() < kShortestName || name.size() > kLongestName) return nullptr;
  const ByLength& list = (*kByLength)[name.size()];
  const NameKey key = KeyOf(name);
  for (size_t i = 0; i < list.size; ++i) {
    if (list.entries[i].key == key) return list.entries[i].spec;
  }
  return nullptr;
}

bool LendsMessage(std::string_view name, size_t arg_count) {
  // Asked of every command, so no look-up: "publish" or "spublish" in any
  // case, compared 7 bytes at once. Every byte of "publish" is a lower-case
  // letter (0x20 set), so OR-ing 0x20 into a byte gives it only from the
  // letter in either case.
  if (arg_count != 3) return false;
  if (name.size() == 8 && (name[0] | 0x20) == 's') name.remove_prefix(1);
  if (name.size() != 7) return false;
  uint64_t word = 0, publish = 0;
  std::memcpy(&word, name.data(), 7);
  std::memcpy(&publish, "publish", 7);
  return (word | 0x20202020202020) == publish;
}

}  // namespace peter::resp

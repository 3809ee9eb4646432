// Cuts a client's byte stream into commands, as Redis 7.0 does: multibulk
// requests ("*<n>\r\n$<len>\r\n<bytes>\r\n...") and inline ones (a text line
// split like redis-cli/sdssplitargs: blanks, "double quotes" with \n \r \t \b
// \a \xHH escapes, 'single quotes' with \' only).
//
// Limits are strict: a request beyond them is a protocol error with Redis's
// wording ("Protocol error: invalid bulk length" and so on). After an error
// the parser is dead: the caller replies "-ERR <error>" and closes.
//
// Departures from Redis: the two bytes after a bulk must be "\r\n" (Redis
// skips them unchecked) — otherwise "Protocol error: expected CRLF after
// bulk"; the bulk and argument limits are options (Redis: 512 MiB, 2^31).
//
// A command's last argument may be lent instead of copied (set_lend_rule):
// for PUBLISH's message, which the gateway copies once into its payload
// block, the bytes then go from the parser's buffer to the block directly.
//
// Not thread-safe; one per connection.
#ifndef PETER_PUBSUB_RESP_REQUEST_PARSER_H_
#define PETER_PUBSUB_RESP_REQUEST_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace peter::resp {

struct ParserLimits {
  size_t max_bulk_len = 8 << 20;      // one argument, bytes
  size_t max_args = 1 << 16;          // arguments of one command
  size_t max_inline_len = 64 << 10;   // an inline line or a count line (Redis's)
  // One whole multibulk request, counted as sent (count line, bulk headers,
  // arguments and their CRLFs), refused as soon as a bulk header would take
  // it past the bound: without it, max_args x max_bulk_len (512 GiB) could
  // be buffered for one command. Inline requests are bounded by
  // max_inline_len instead. Redis's client-query-buffer-limit is 1 GiB; Peter's payloads
  // are at most 1 MiB (ScribeOptions::max_payload_bytes).
  size_t max_request_bytes = 16 << 20;
  // Before authentication (when a password is required), as Redis.
  size_t unauth_max_args = 10;
  size_t unauth_max_bulk_len = 16384;
};

class RequestParser {
 public:
  enum class Result { kNeedMore, kCommand, kError };

  explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

  // Appends received bytes.
  void Feed(std::string_view bytes);
  // Takes the next complete command into `*args` (replacing its content).
  // kError: `error()` says why ("Protocol error: ..."); every later call
  // returns kError too. Empty requests (an empty line, "*0") are skipped.
  Result Next(std::vector<std::string>* args);

  // Decides, for a multibulk command (its name as sent, in any case, and
  // its argument count, the name included), whether its last argument is
  // lent (true) rather than copied into `args`. Called once per multibulk
  // command of two or more arguments; must not keep the view. Inline
  // commands are never lent.
  using LendRule = bool (*)(std::string_view name, size_t arg_count);
  void set_lend_rule(LendRule rule) { lend_rule_ = rule; }
  // The last argument of the command Next() returned last, if the rule lent
  // it: then `args` holds an empty string in its place, and this views the
  // bytes in the parser's buffer, valid until the next Feed() or Next().
  // nullopt if the last command's arguments were all copied.
  const std::optional<std::string_view>& lent() const { return lent_; }

  // Whether the tighter pre-authentication limits apply.
  void set_authenticated(bool authenticated) { authenticated_ = authenticated; }
  const std::string& error() const { return error_; }
  // The error was a request over max_request_bytes.
  bool request_too_big() const { return request_too_big_; }
  // Bytes received and not yet consumed by a returned command.
  size_t buffered() const { return buffer_.size() - pos_; }
  // Request bytes this parser holds: buffered() plus the arguments already
  // taken from a request still incomplete (what the gateway-wide input
  // bound counts).
  size_t held() const { return buffered() + partial_bytes_; }

 private:
  // A whole request of the usual form already buffered ("*<n>\r\n" and n
  // "$<len>\r\n<bytes>\r\n", n at most kQuickArgs, within every limit):
  // read in one pass into `*args`, whose strings keep their storage (no
  // allocation for an argument that fits the one it replaces). Else false,
  // nothing consumed or changed: the general path takes it, and gives the
  // same command or error.
  bool ParseWholeMultibulk(std::vector<std::string>* args);
  static constexpr size_t kQuickArgs = 8;
  Result ParseInline(std::vector<std::string>* args);
  Result ParseMultibulk(std::vector<std::string>* args);
  // Reads "<prefix><integer>\r\n" at pos_; false if the line is incomplete.
  // On a malformed or over-long line sets error_ and returns false.
  bool ReadCountLine(const char* too_big_error, long long* value, bool* ok);
  // The usual line at pos_, read in one pass: a prefix byte, 1 to 18 digits
  // without a leading zero, CRLF. Then true, with pos_ past it; false (and
  // nothing consumed) for anything else, left to the general path, which
  // gives the same value for every line this accepts.
  bool ReadShortCount(long long* value);
  Result Fail(std::string error);
  void Compact();
  bool Lends(std::string_view name, size_t arg_count) const {
    return lend_rule_ != nullptr && arg_count >= 2 && lend_rule_(name, arg_count);
  }

  ParserLimits limits_;
  bool authenticated_ = true;
  std::string buffer_;
  size_t pos_ = 0;
  std::string error_;
  // Multibulk in progress: arguments still expected (-1: none started) and
  // the length of the bulk being read (-1: its header not read yet).
  long long pending_args_ = -1;
  long long bulk_len_ = -1;
  std::vector<std::string> partial_;
  size_t partial_bytes_ = 0;  // of the arguments in partial_
  size_t request_bytes_ = 0;  // of the multibulk in progress
  bool request_too_big_ = false;
  LendRule lend_rule_ = nullptr;
  std::optional<std::string_view> lent_;
};

// Redis's string2ll: an optional '-', decimal digits without leading zeros,
// no blanks, within long long.
bool ParseRedisInteger(std::string_view s, long long* out);

// Splits an inline request like Redis's sdssplitargs. False on unbalanced
// quotes (or a closing quote not followed by a blank).
bool SplitInlineArgs(std::string_view line, std::vector<std::string>* args);

}  // namespace peter::resp

#endif  // PETER_PUBSUB_RESP_REQUEST_PARSER_H_

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pubsub/resp/command_table.h"
#include "pubsub/resp/reply_writer.h"
#include "pubsub/resp/request_parser.h"
#include "tests/pubsub/resp/test_client.h"

namespace peter::resp {
namespace {

using Commands = std::vector<std::vector<std::string>>;
using testing::Multibulk;

// What ParseWith gives: the commands, the error if any, and the commands
// whose last argument the parser lent.
struct ParseResult {
  Commands commands;
  std::string error;
  int lent = 0;
};

// Feeds `input` in chunks of the given sizes (cycled). With `lend`, the
// gateway's lend rule is set, and each lent argument is put back in its
// place from lent() at once (valid until the next Feed or Next), after
// checking that its string was left empty.
ParseResult ParseWith(std::string_view input, std::vector<size_t> chunks, ParserLimits limits,
                      bool auth, bool lend) {
  RequestParser parser(limits);
  parser.set_authenticated(auth);
  if (lend) parser.set_lend_rule(&LendsMessage);
  ParseResult out;
  std::vector<std::string> args;
  size_t i = 0, c = 0;
  while (true) {
    auto r = parser.Next(&args);
    if (r == RequestParser::Result::kCommand) {
      if (parser.lent()) {
        ++out.lent;
        EXPECT_TRUE(args.back().empty());
        args.back().assign(*parser.lent());
      }
      out.commands.push_back(args);
      continue;
    }
    EXPECT_FALSE(parser.lent());
    if (r == RequestParser::Result::kError) {
      out.error = parser.error();
      return out;
    }
    if (i >= input.size()) return out;
    size_t n = std::min(input.size() - i, std::max<size_t>(1, chunks[c++ % chunks.size()]));
    parser.Feed(input.substr(i, n));
    i += n;
  }
}

// The commands and the error, if any.
std::pair<Commands, std::string> ParseChunked(std::string_view input, std::vector<size_t> chunks,
                                              ParserLimits limits = {}, bool auth = true) {
  ParseResult r = ParseWith(input, chunks, limits, auth, /*lend=*/false);
  return {r.commands, r.error};
}

std::pair<Commands, std::string> Parse(std::string_view input, ParserLimits limits = {},
                                       bool auth = true) {
  return ParseChunked(input, {input.size() + 1}, limits, auth);
}

TEST(RequestParserTest, MultibulkAndPipelining) {
  auto [cmds, err] = Parse("*2\r\n$4\r\nECHO\r\n$3\r\na\r\n\r\n*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(err, "");
  EXPECT_EQ(cmds, (Commands{{"ECHO", std::string("a\r\n")}, {"PING"}}));
}

TEST(RequestParserTest, BinarySafeBulk) {
  std::string payload("a\0b\r\n", 5);
  auto [cmds, err] = Parse("*1\r\n$5\r\n" + payload + "\r\n");
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0][0], payload);
}

TEST(RequestParserTest, InlineLikeRedis) {
  auto [cmds, err] = Parse(
      "PING\r\n  set  \"a b\" 'c\\'d' \"\\x41\\n\"\n\r\n   \r\nx\"y\"\nSUBSCRIBE a\n");
  EXPECT_EQ(err, "");
  EXPECT_EQ(cmds, (Commands{{"PING"}, {"set", "a b", "c'd", "A\n"}, {"xy"}, {"SUBSCRIBE", "a"}}));
}

TEST(RequestParserTest, EmptyRequestsAreSkipped) {
  auto [cmds, err] = Parse("*0\r\n*-1\r\n\r\n*1\r\n$4\r\nping\r\n");
  EXPECT_EQ(err, "");
  EXPECT_EQ(cmds, (Commands{{"ping"}}));
}

TEST(RequestParserTest, RedisProtocolErrors) {
  EXPECT_EQ(Parse("*x\r\n").second, "Protocol error: invalid multibulk length");
  EXPECT_EQ(Parse("*99999999999\r\n").second, "Protocol error: invalid multibulk length");
  EXPECT_EQ(Parse("*1\r\nx").second, "");  // as Redis: judged once the line is complete
  EXPECT_EQ(Parse("*1\r\nx\r\n").second, "Protocol error: expected '$', got 'x'");
  EXPECT_EQ(Parse("*1\r\n$-3\r\n").second, "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("*1\r\n$01\r\n").second, "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("\"abc\r\n").second, "Protocol error: unbalanced quotes in request");
  EXPECT_EQ(Parse("\"a\"b\r\n").second, "Protocol error: unbalanced quotes in request");
  EXPECT_EQ(Parse(std::string(70000, 'a')).second, "Protocol error: too big inline request");
  EXPECT_EQ(Parse("*" + std::string(70000, '1')).second,
            "Protocol error: too big mbulk count string");
  EXPECT_EQ(Parse("*1\r\n$" + std::string(70000, '1')).second,
            "Protocol error: too big bulk count string");
  EXPECT_EQ(Parse("*1\r\n$1\r\naXY").second, "Protocol error: expected CRLF after bulk");
}

TEST(RequestParserTest, Limits) {
  ParserLimits limits;
  limits.max_bulk_len = 10;
  limits.max_args = 3;
  EXPECT_EQ(Parse("*1\r\n$11\r\n", limits).second, "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("*1\r\n$10\r\n0123456789\r\n", limits).second, "");
  EXPECT_EQ(Parse("*4\r\n", limits).second, "Protocol error: invalid multibulk length");
  EXPECT_EQ(Parse("a b c d\r\n", limits).second,
            "Protocol error: too many arguments in inline request");
  // Before authentication, Redis's tighter limits.
  EXPECT_EQ(Parse("*11\r\n", {}, false).second, "Protocol error: unauthenticated multibulk length");
  EXPECT_EQ(Parse("*1\r\n$16385\r\n", {}, false).second,
            "Protocol error: unauthenticated bulk length");
}

TEST(RequestParserTest, ErrorIsFinal) {
  RequestParser parser;
  parser.Feed("*x\r\n*1\r\n$4\r\nping\r\n");
  std::vector<std::string> args;
  EXPECT_EQ(parser.Next(&args), RequestParser::Result::kError);
  parser.Feed("*1\r\n$4\r\nping\r\n");
  EXPECT_EQ(parser.Next(&args), RequestParser::Result::kError);
}

std::string ValidStream(std::mt19937& rng) {
  std::string s;
  int commands = 1 + rng() % 5;
  for (int c = 0; c < commands; ++c) {
    int n = 1 + rng() % 4;
    if (rng() % 3 == 0) {  // inline
      for (int i = 0; i < n; ++i) s += (i ? " " : "") + std::string(1 + rng() % 5, 'a' + rng() % 26);
      s += rng() % 2 ? "\r\n" : "\n";
      continue;
    }
    s += "*" + std::to_string(n) + "\r\n";
    for (int i = 0; i < n; ++i) {
      std::string arg(rng() % 20, '\0');
      for (char& ch : arg) ch = static_cast<char>(rng());
      s += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
    }
  }
  return s;
}

// Random and mutated inputs: never a crash, and chunking never changes
// what is parsed (commands and error alike).
TEST(RequestParserTest, FuzzChunkingInvariant) {
  std::mt19937 rng(20261125);
  ParserLimits limits;
  limits.max_bulk_len = 1 << 16;
  limits.max_inline_len = 256;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string input = ValidStream(rng);
    int mutations = iter % 4;
    for (int m = 0; m < mutations && !input.empty(); ++m) {
      size_t at = rng() % input.size();
      switch (rng() % 4) {
        case 0: input[at] = static_cast<char>(rng()); break;
        case 1: input.erase(at, 1 + rng() % 3); break;
        case 2: input.insert(at, 1, "*$\r\n-0123456789\"'\\"[rng() % 17]); break;
        case 3: input.resize(at); break;
      }
    }
    if (iter % 10 == 0) {  // pure noise
      input.resize(rng() % 300);
      for (char& ch : input) ch = static_cast<char>(rng());
    }
    auto whole = Parse(input, limits);
    std::vector<size_t> chunks = {1 + rng() % 7, 1 + rng() % 50, 1};
    auto chunked = ParseChunked(input, chunks, limits);
    ASSERT_EQ(whole, chunked) << "iteration " << iter;
    if (mutations == 0 && iter % 10 != 0) {
      ASSERT_EQ(whole.second, "") << "iteration " << iter;
    }
  }
}

TEST(ReplyWriterTest, Resp2AndResp3) {
  std::string two, three;
  ReplyWriter w2(&two, 2), w3(&three, 3);
  for (ReplyWriter* w : {&w2, &w3}) {
    w->Simple("OK");
    w->Error("ERR x");
    w->Bulk("ab");
    w->Integer(-5);
    w->Null();
    w->NullArray();
    w->Bool(true);
    w->Map(1);
    w->Set(0);
    w->Push(2);
    w->Verbatim("txt", "hi");
  }
  EXPECT_EQ(two, "+OK\r\n-ERR x\r\n$2\r\nab\r\n:-5\r\n$-1\r\n*-1\r\n:1\r\n*2\r\n*0\r\n*2\r\n$2\r\nhi\r\n");
  EXPECT_EQ(three,
            "+OK\r\n-ERR x\r\n$2\r\nab\r\n:-5\r\n_\r\n_\r\n#t\r\n%1\r\n~0\r\n>2\r\n=6\r\ntxt:hi\r\n");
}

// Count lines are read in one pass when they are short plain numbers; every
// other line goes the general way. Both must give Redis's answers.
TEST(RequestParserTest, CountLinesFastAndGeneralAgree) {
  auto [cmds, err] = Parse("*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$10\r\n0123456789\r\n*0\r\n"
                           "*1\r\n$0\r\n\r\n");
  EXPECT_EQ(err, "");
  EXPECT_EQ(cmds, (Commands{{"PUBLISH", "ch", "0123456789"}, {""}}));
  // A leading zero is refused, as by Redis's string2ll.
  EXPECT_EQ(Parse("*1\r\n$01\r\na\r\n").second, "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("*01\r\n$1\r\na\r\n").second, "Protocol error: invalid multibulk length");
  // 2^64 + 1 must not wrap to 1.
  EXPECT_EQ(Parse("*1\r\n$18446744073709551617\r\na\r\n").second,
            "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("*18446744073709551617\r\n").second, "Protocol error: invalid multibulk length");
  EXPECT_EQ(Parse("*1\r\n$999999999999999999\r\n").second, "Protocol error: invalid bulk length");
  // A negative length, a blank, a line cut before its LF.
  EXPECT_EQ(Parse("*1\r\n$-1\r\n").second, "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("*1\r\n$1 \r\na\r\n").second, "Protocol error: invalid bulk length");
  auto cut = Parse("*1\r\n$1\r");
  EXPECT_EQ(cut, (std::pair<Commands, std::string>{{}, ""}));
  // The line limit holds for short numbers too.
  ParserLimits limits;
  limits.max_inline_len = 3;
  EXPECT_EQ(Parse("*1\r\n$100\r\n" + std::string(100, 'x') + "\r\n", limits).second,
            "Protocol error: too big bulk count string");
  EXPECT_EQ(Parse("*1000\r\n", limits).second, "Protocol error: too big mbulk count string");
  EXPECT_EQ(Parse("*1\r\n$10\r\n0123456789\r\n", limits).first,
            (Commands{{"0123456789"}}));
}

// The one-pass read takes counts of one and two digits without its digit
// loop: every form around those (0, a leading zero, 3 digits, a non-digit
// after one or two, a line cut anywhere) gives the general path's answer,
// whole or split in two at every byte, and fed a byte at a time.
TEST(RequestParserTest, ShortNumbersSplitAtEveryByte) {
  const std::string x10(10, 'x'), x99(99, 'y'), x100(100, 'z');
  const std::vector<std::pair<std::string, std::pair<Commands, std::string>>> cases = {
      {"*3\r\n$7\r\nPUBLISH\r\n$8\r\nbench-ch\r\n$10\r\n" + x10 + "\r\n",
       {{{"PUBLISH", "bench-ch", x10}}, ""}},
      {"*2\r\n$0\r\n\r\n$99\r\n" + x99 + "\r\n", {{{"", x99}}, ""}},
      {"*1\r\n$100\r\n" + x100 + "\r\n", {{{x100}}, ""}},
      {"*1\r\n$9\r\n123456789\r\n*1\r\n$4\r\nPING\r\n", {{{"123456789"}, {"PING"}}, ""}},
      {"*1\r\n$05\r\nabcde\r\n", {{}, "Protocol error: invalid bulk length"}},
      {"*1\r\n$00\r\n\r\n", {{}, "Protocol error: invalid bulk length"}},
      {"*1\r\n$1x\r\na\r\n", {{}, "Protocol error: invalid bulk length"}},
      {"*1\r\n$12x\r\n", {{}, "Protocol error: invalid bulk length"}},
      {"*1\r\n$1\ra\r\n", {{}, "Protocol error: invalid bulk length"}},
      {"*1\r\n$-1\r\n", {{}, "Protocol error: invalid bulk length"}},
      {"*1\r\n$/\r\n", {{}, "Protocol error: invalid bulk length"}},
      {"*1\r\n$:\r\n", {{}, "Protocol error: invalid bulk length"}},
      {"*1\r\n$2\r\nabc\r\n", {{}, "Protocol error: expected CRLF after bulk"}},
      {"*1\r\n$10\r\n" + x10 + "x\r\n", {{}, "Protocol error: expected CRLF after bulk"}},
      {"*1\r\n#1\r\na\r\n", {{}, "Protocol error: expected '$', got '#'"}},
      {"*9\r\n$1\r\na\r\n", {{}, ""}},  // cut: waits for more
      // Ten arguments: more than the one-pass read takes (kQuickArgs), so the
      // general path's own two-digit count.
      {"*10\r\n" + [] {
         std::string ten;
         for (int i = 0; i < 10; ++i) ten += "$1\r\na\r\n";
         return ten;
       }(),
       {{std::vector<std::string>(10, "a")}, ""}},
  };
  // A line limit under 3 bytes: the general path's answers.
  ParserLimits tiny;
  tiny.max_inline_len = 2;
  EXPECT_EQ(Parse("*1\r\n$9\r\n123456789\r\n", tiny).first, (Commands{{"123456789"}}));
  EXPECT_EQ(Parse("*1\r\n$10\r\n" + x10 + "\r\n", tiny).second,
            "Protocol error: too big bulk count string");
  EXPECT_EQ(Parse("*10\r\n", tiny).second, "Protocol error: too big mbulk count string");
  for (const auto& [input, expected] : cases) {
    ASSERT_EQ(Parse(input), expected) << input;
    ASSERT_EQ(ParseChunked(input, {1}), expected) << input;
    for (size_t at = 1; at < input.size(); ++at) {
      ASSERT_EQ(ParseChunked(input, {at, input.size()}), expected) << input << " split at " << at;
    }
  }
}

// A whole request read in one pass (ParseWholeMultibulk) writes into the
// caller's argument strings: an argument that fits the one it replaces
// takes no new allocation (the general path built new strings for every
// argument over the short-string size and freed the old ones).
TEST(RequestParserTest, WholeRequestsReuseTheArgumentStrings) {
  const std::string channel(40, 'c');
  RequestParser parser;
  parser.Feed("*3\r\n$7\r\nPUBLISH\r\n$40\r\n" + channel + "\r\n$3\r\nabc\r\n");
  parser.Feed("*3\r\n$7\r\nPUBLISH\r\n$39\r\n" + channel.substr(1) + "\r\n$3\r\nxyz\r\n");
  std::vector<std::string> args;
  ASSERT_EQ(parser.Next(&args), RequestParser::Result::kCommand);
  ASSERT_EQ(args.size(), 3u);
  const char* storage = args[1].data();
  ASSERT_EQ(parser.Next(&args), RequestParser::Result::kCommand);
  EXPECT_EQ(args, (std::vector<std::string>{"PUBLISH", channel.substr(1), "xyz"}));
  EXPECT_EQ(args[1].data(), storage);
  // Fewer arguments than before: the extra ones go.
  parser.Feed("*1\r\n$4\r\nPING\r\n");
  ASSERT_EQ(parser.Next(&args), RequestParser::Result::kCommand);
  EXPECT_EQ(args, (std::vector<std::string>{"PING"}));
}

// Whole requests at and just past each limit: the one-pass read gives what
// the general path gives (it leaves to it anything past a limit, more than
// 8 arguments, or an unauthenticated client).
TEST(RequestParserTest, WholeRequestsAtTheLimits) {
  ParserLimits limits;
  limits.max_bulk_len = 10;
  limits.max_args = 9;
  limits.max_request_bytes = 4 + 3 * 17;  // "*3\r\n" and three 10-byte bulks
  const std::string ten = "$10\r\n0123456789\r\n";
  EXPECT_EQ(Parse("*3\r\n" + ten + ten + ten, limits),
            (std::pair<Commands, std::string>{
                {{"0123456789", "0123456789", "0123456789"}}, ""}));
  EXPECT_EQ(Parse("*3\r\n" + ten + ten + "$10\r\n01234567890\r\n", limits).second,
            "Protocol error: expected CRLF after bulk");
  EXPECT_EQ(Parse("*1\r\n$11\r\n01234567890\r\n", limits).second,
            "Protocol error: invalid bulk length");
  EXPECT_EQ(Parse("*4\r\n" + ten + ten + ten + ten, limits).second,
            "Protocol error: request over " + std::to_string(limits.max_request_bytes) + " bytes");
  limits.max_request_bytes = 1 << 20;
  const std::string one = "$1\r\na\r\n";
  std::string nine = "*9\r\n";
  for (int i = 0; i < 9; ++i) nine += one;
  EXPECT_EQ(Parse(nine, limits).first, (Commands{std::vector<std::string>(9, "a")}));
  EXPECT_EQ(Parse("*10\r\n" + nine.substr(4) + one, limits).second,
            "Protocol error: invalid multibulk length");
  EXPECT_EQ(Parse("*2\r\n" + one + one, {}, false).first, (Commands{{"a", "a"}}));
  EXPECT_EQ(Parse("*11\r\n", {}, false).second, "Protocol error: unauthenticated multibulk length");
}

ParseResult ParseLending(std::string_view input, std::vector<size_t> chunks,
                         ParserLimits limits = {}) {
  return ParseWith(input, chunks, limits, /*auth=*/true, /*lend=*/true);
}

// PUBLISH's and SPUBLISH's message (3 arguments, any case) is lent by
// the parser, not copied into the argument strings, whether the request
// came whole or split across reads; nothing else is lent.
TEST(RequestParserTest, LendsPublishMessagesOnly) {
  const std::string input = Multibulk({"PUBLISH", "ch", "hello"}) +
                            Multibulk({"publish", "ch", ""}) +
                            Multibulk({"sPublish", "ch", "shard"}) +
                            Multibulk({"PUBLISH", "ch"}) +                // wrong arity
                            Multibulk({"PUBLISH", "ch", "a", "b"}) +      // wrong arity
                            Multibulk({"ECHO", "hello"}) + Multibulk({"SET", "k", "v"}) +
                            "PUBLISH ch inline\r\n";
  const Commands expected = {{"PUBLISH", "ch", "hello"}, {"publish", "ch", ""},
                             {"sPublish", "ch", "shard"}, {"PUBLISH", "ch"},
                             {"PUBLISH", "ch", "a", "b"}, {"ECHO", "hello"},
                             {"SET", "k", "v"}, {"PUBLISH", "ch", "inline"}};
  for (size_t chunk : {input.size(), size_t{1}, size_t{3}, size_t{7}, size_t{13}}) {
    ParseResult parsed = ParseLending(input, {chunk});
    EXPECT_EQ(parsed.error, "") << chunk;
    EXPECT_EQ(parsed.commands, expected) << chunk;
    EXPECT_EQ(parsed.lent, 3) << chunk;
  }
}

// A message far larger than one read, between pipelined commands, fed in
// reads of the gateway's size: the buffer grows and is compacted under
// it, and the lent bytes are the message's.
TEST(RequestParserTest, LendsAHugeMessageSplitAcrossReads) {
  std::mt19937 rng(7);
  std::string huge(3 << 20, '\0');
  for (char& ch : huge) ch = static_cast<char>(rng());
  std::string input;
  for (int i = 0; i < 3; ++i) {
    input += Multibulk({"PUBLISH", "a", std::to_string(i)});
    input += Multibulk({"PUBLISH", "big", huge.substr(i)});
  }
  ParseResult parsed = ParseLending(input, {16384, 100, 16384 * 3});
  EXPECT_EQ(parsed.error, "");
  ASSERT_EQ(parsed.commands.size(), 6u);
  EXPECT_EQ(parsed.lent, 6);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(parsed.commands[2 * i], (std::vector<std::string>{"PUBLISH", "a", std::to_string(i)}));
    EXPECT_TRUE(parsed.commands[2 * i + 1][2] == huge.substr(i)) << i;
  }
}

// Random streams with PUBLISHes among other commands, some mutated: with
// the lend rule the parser gives the same commands and errors as without
// it, however the input is chunked.
TEST(RequestParserTest, LendingChangesNoCommandOrError) {
  std::mt19937 rng(20261128);
  ParserLimits limits;
  limits.max_bulk_len = 1 << 16;
  limits.max_inline_len = 256;
  int lent = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::string input;
    for (int c = 0, n = 1 + rng() % 6; c < n; ++c) {
      std::string message(rng() % 40, '\0');
      for (char& ch : message) ch = static_cast<char>(rng());
      input += rng() % 2 ? Multibulk({rng() % 2 ? "PUBLISH" : "spublish", "ch", message})
                         : ValidStream(rng);
    }
    for (int m = 0, mutations = iter % 3; m < mutations && !input.empty(); ++m) {
      input[rng() % input.size()] = "*$\r\n-0123456789x"[rng() % 16];
    }
    auto plain = Parse(input, limits);
    std::vector<size_t> chunks = {1 + rng() % 7, 1 + rng() % 50, 1};
    ParseResult parsed = ParseLending(input, chunks, limits);
    ASSERT_EQ(parsed.commands, plain.first) << "iteration " << iter;
    ASSERT_EQ(parsed.error, plain.second) << "iteration " << iter;
    lent += parsed.lent;
  }
  EXPECT_GT(lent, 2000);
}

TEST(ReplyWriterTest, MessagePushIsExactBytes) {
  std::string two = "+OK\r\n", three;
  std::string_view pattern = "c*";
  ReplyWriter(&two, 2).Message("message", nullptr, "ch", "0123456789");
  ReplyWriter(&two, 2).Message("pmessage", &pattern, "ch", std::string_view("\0\r\n", 3));
  ReplyWriter(&three, 3).Message("smessage", nullptr, "", "");
  EXPECT_EQ(two,
            "+OK\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$10\r\n0123456789\r\n"
            "*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$3\r\n" +
                std::string("\0\r\n", 3) + "\r\n");
  EXPECT_EQ(three, ">3\r\n$8\r\nsmessage\r\n$0\r\n\r\n$0\r\n\r\n");
  // The same bytes as the general writer, for payload sizes across digit counts.
  for (size_t n : {0, 9, 10, 99, 100, 1000, 65536}) {
    std::string payload(n, 'p'), fast, slow;
    ReplyWriter f(&fast, 3), w(&slow, 3);
    f.Message("pmessage", &pattern, "channel", payload);
    w.Push(4);
    w.Bulk("pmessage");
    w.Bulk(pattern);
    w.Bulk("channel");
    w.Bulk(payload);
    EXPECT_EQ(fast, slow) << n;
  }
}

}  // namespace
}  // namespace peter::resp

// The Redis gateway's request parser (pubsub/resp): any client bytes, cut
// anywhere, give commands or one clean protocol error.
#include "pubsub/resp/command_table.h"
#include "pubsub/resp/request_parser.h"
#include "tests/fuzz/fuzz_target.h"

namespace peter::fuzz {

void FuzzOne(std::string_view data) {
  resp::ParserLimits limits;
  limits.max_bulk_len = 1 << 16;
  limits.max_args = 1024;
  resp::RequestParser parser(limits);
  parser.set_lend_rule(&resp::LendsMessage);
  // The first byte: how many bytes each read delivers (1..256).
  const size_t step = data.empty() ? 1 : static_cast<uint8_t>(data[0]) + 1;
  std::vector<std::string> args;
  for (size_t pos = 0; pos < data.size(); pos += step) {
    parser.Feed(data.substr(pos, step));
    while (true) {
      resp::RequestParser::Result r = parser.Next(&args);
      if (r == resp::RequestParser::Result::kCommand) {
        if (args.empty()) Fail("an empty command was returned");
        if (parser.lent()) {
          // Read every lent byte (under ASan: the view is in the buffer).
          const std::string_view lent = *parser.lent();
          size_t sum = 0;
          for (char c : lent) sum += static_cast<unsigned char>(c);
          if (sum > 255 * lent.size()) Fail("impossible");
          if (!args.back().empty()) Fail("a lent argument was also copied");
        }
        continue;
      }
      if (r == resp::RequestParser::Result::kError && parser.error().empty()) {
        Fail("a protocol error without a message");
      }
      break;
    }
  }
}

std::vector<std::string> FuzzSeeds() {
  return {
      "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n",
      "*3\r\n$7\r\nPUBLISH\r\n$4\r\nnews\r\n$5\r\nhello\r\n",
      "PING\r\n",
      "SUBSCRIBE \"a b\" 'c\\'d' \"\\x41\\n\"\r\n",
      "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
      "*-1\r\n*0\r\n\r\n",
  };
}

}  // namespace peter::fuzz

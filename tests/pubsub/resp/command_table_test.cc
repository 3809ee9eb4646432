// The command table's look-up: by name in any case, as Redis.
#include "pubsub/resp/command_table.h"

#include <string>

#include "absl/strings/ascii.h"
#include "gtest/gtest.h"

namespace peter::resp {
namespace {

TEST(CommandTableTest, FindsEveryCommandInAnyCase) {
  for (const CommandSpec& spec : AllCommands()) {
    const std::string lower(spec.name);
    std::string mixed = lower;
    for (size_t i = 0; i < mixed.size(); i += 2) mixed[i] = absl::ascii_toupper(mixed[i]);
    EXPECT_EQ(FindCommand(lower), &spec) << lower;
    EXPECT_EQ(FindCommand(absl::AsciiStrToUpper(lower)), &spec) << lower;
    EXPECT_EQ(FindCommand(mixed), &spec) << mixed;
  }
  ASSERT_NE(FindCommand("PuBlIsH"), nullptr);
  EXPECT_EQ(FindCommand("PuBlIsH")->id, CommandId::kPublish);
}

TEST(CommandTableTest, UnknownNamesAreNotFound) {
  EXPECT_EQ(FindCommand(""), nullptr);
  EXPECT_EQ(FindCommand("get"), nullptr);  // a Redis command the gateway does not serve
  EXPECT_EQ(FindCommand("publishx"), nullptr);
  EXPECT_EQ(FindCommand("publis"), nullptr);
  EXPECT_EQ(FindCommand("PUBLISH "), nullptr);
  EXPECT_EQ(FindCommand(std::string("publish\0", 8)), nullptr);
  EXPECT_EQ(FindCommand(std::string(200, 'p')), nullptr);
  EXPECT_EQ(FindCommand("client|list"), nullptr);
}

}  // namespace
}  // namespace peter::resp

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

// Any byte in any place of a command's name (in either case around it)
// finds the command whose name is the result folded to lower case, if
// any: the look-up folds by words, and a non-letter that folds like a
// letter ('@' and '`', '[' and '{', bytes over 0x7f) must not pass as one.
TEST(CommandTableTest, FindsOnlyTheNameFoldedForAnyByteInAnyPlace) {
  for (const CommandSpec& spec : AllCommands()) {
    const std::string lower(spec.name);
    const std::string upper = absl::AsciiStrToUpper(lower);
    for (size_t at = 0; at < lower.size(); ++at) {
      for (int byte = 0; byte < 256; ++byte) {
        std::string other = (at % 2 == 0) ? lower : upper;
        other[at] = static_cast<char>(byte);
        const std::string folded = absl::AsciiStrToLower(other);
        const CommandSpec* expected = nullptr;
        for (const CommandSpec& any : AllCommands()) {
          if (any.name == folded) expected = &any;
        }
        ASSERT_EQ(FindCommand(other), expected) << other;
      }
    }
  }
  // Every length around the served ones, the served names' letters shuffled.
  for (size_t n = 0; n <= 20; ++n) {
    EXPECT_EQ(FindCommand(std::string(n, 'a')), nullptr) << n;
    EXPECT_EQ(FindCommand(std::string(n, 's')), nullptr) << n;
  }
  EXPECT_EQ(FindCommand("subscribf"), nullptr);
  EXPECT_EQ(FindCommand("tubscribe"), nullptr);
  EXPECT_EQ(FindCommand("PSUBSCRIBE")->id, CommandId::kPsubscribe);
  EXPECT_EQ(FindCommand("SsUbScRiBe")->id, CommandId::kSsubscribe);
  EXPECT_EQ(FindCommand("puNSUBSCRIBE")->id, CommandId::kPunsubscribe);
}

// The parser's lend rule agrees with the table: PUBLISH and SPUBLISH with
// their 3 arguments, in any case; any other byte in any place of the name
// (a non-letter that folds like one included) is another command.
TEST(CommandTableTest, LendsMessageOfPublishAndSpublishOnly) {
  for (std::string name : {"publish", "spublish"}) {
    const std::string upper = absl::AsciiStrToUpper(name);
    EXPECT_TRUE(LendsMessage(name, 3));
    EXPECT_TRUE(LendsMessage(upper, 3));
    EXPECT_FALSE(LendsMessage(name, 2));
    EXPECT_FALSE(LendsMessage(name, 4));
    for (size_t at = 0; at < name.size(); ++at) {
      for (int byte = 0; byte < 256; ++byte) {
        std::string other = (at % 2 == 0) ? name : upper;
        other[at] = static_cast<char>(byte);
        const CommandSpec* spec = FindCommand(other);
        const bool publish = spec != nullptr && (spec->id == CommandId::kPublish ||
                                                 spec->id == CommandId::kSpublish);
        ASSERT_EQ(LendsMessage(other, 3), publish) << other;
      }
    }
  }
  EXPECT_FALSE(LendsMessage("xpublish", 3));
  EXPECT_FALSE(LendsMessage("publis", 3));
  EXPECT_FALSE(LendsMessage("", 3));
  EXPECT_FALSE(LendsMessage("echo", 3));
}

}  // namespace
}  // namespace peter::resp

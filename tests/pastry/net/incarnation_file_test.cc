// The runtime's incarnation file (pastry/net/incarnation_file.h): each run's
// incarnation is larger than the last one's even when the clock steps back;
// a file that is not ours is a clear error and is left alone.
#include "pastry/net/incarnation_file.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace peter::pastry::net {
namespace {

class IncarnationFileTest : public ::testing::Test {
 protected:
  IncarnationFileTest() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "peter-incarnation-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    path_ = dir_ + "/incarnation";
  }
  ~IncarnationFileTest() override { std::filesystem::remove_all(dir_); }

  std::string Content() const {
    std::ifstream in(path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void Write(const std::string& content) const { std::ofstream(path_) << content; }

  std::string dir_;
  std::string path_;
};

absl::Time At(int64_t unix_seconds) { return absl::FromUnixSeconds(unix_seconds); }

TEST_F(IncarnationFileTest, MissingFileStartsFromTheClockAndIsWritten) {
  absl::StatusOr<uint64_t> first = NextIncarnation(path_, At(1'700'000'000));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, 1'700'000'000'000'000u);
  EXPECT_EQ(*first, ClockIncarnation(At(1'700'000'000)));
  EXPECT_EQ(Content(), "1700000000000000\n");
  // Only the file itself is left: the temporary one was renamed over it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_),
                          std::filesystem::directory_iterator()),
            1);
}

TEST_F(IncarnationFileTest, GrowsAcrossRestartsWhenTheClockStepsBack) {
  ASSERT_EQ(*NextIncarnation(path_, At(1'700'000'100)), 1'700'000'100'000'000u);
  // The clock stepped back 100 s before the restart, and stays there.
  EXPECT_EQ(*NextIncarnation(path_, At(1'700'000'000)), 1'700'000'100'000'001u);
  EXPECT_EQ(*NextIncarnation(path_, At(1'700'000'000)), 1'700'000'100'000'002u);
  EXPECT_EQ(Content(), "1700000100000002\n");
  // Once the clock is past the file again, the clock rules.
  EXPECT_EQ(*NextIncarnation(path_, At(1'700'000'200)), 1'700'000'200'000'000u);
}

TEST_F(IncarnationFileTest, WithoutTheFileAClockSteppedBackGivesASmallerOne) {
  // What the file is for: the clock alone goes backwards with the clock.
  EXPECT_LT(ClockIncarnation(At(1'700'000'000)), ClockIncarnation(At(1'700'000'100)));
  EXPECT_EQ(ClockIncarnation(absl::UnixEpoch() - absl::Seconds(1)), 1u);  // never 0
}

TEST_F(IncarnationFileTest, ContentThatIsNotAnIncarnationIsAClearErrorAndKept) {
  for (const std::string& bad : std::vector<std::string>{
           "", "\n", "abc\n", "12x\n", "-5\n", "+5\n", " 5\n", "1 2\n", "0x10\n",
        "18446744073709551615\n", "99999999999999999999999\n", std::string(100, '7'),
        std::string("12\0" "3\n", 5)}) {
    Write(bad);
    absl::StatusOr<uint64_t> got = NextIncarnation(path_, At(1'700'000'000));
    ASSERT_FALSE(got.ok()) << "accepted \"" << bad << "\"";
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
    EXPECT_NE(got.status().message().find(path_), absl::string_view::npos) << got.status();
    EXPECT_EQ(Content(), bad) << "the file was changed";
  }
}

TEST_F(IncarnationFileTest, TrailingNewlineIsOptional) {
  Write("1800000000000000");
  EXPECT_EQ(*NextIncarnation(path_, At(1'700'000'000)), 1'800'000'000'000'001u);
}

TEST_F(IncarnationFileTest, UnwritablePlaceIsAnErrorNamingTheFile) {
  const std::string nowhere = dir_ + "/no-such-directory/incarnation";
  absl::StatusOr<uint64_t> got = NextIncarnation(nowhere, At(1'700'000'000));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find(nowhere), absl::string_view::npos) << got.status();
  // A directory where the file should be: cannot be read as one.
  std::filesystem::create_directory(path_);
  got = NextIncarnation(path_, At(1'700'000'000));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find(path_), absl::string_view::npos) << got.status();
}

}  // namespace
}  // namespace peter::pastry::net

#include "pastry/net/incarnation_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace peter::pastry::net {
namespace {

// A file this large is not ours (a number and a newline take at most 21).
constexpr size_t kMaxFileBytes = 64;

absl::Status IoError(int error, const std::string& what, const std::string& path) {
  return absl::ErrnoToStatus(error, absl::StrCat("incarnation file \"", path, "\": cannot ",
                                                 what, ": ", std::strerror(error)));
}

// Closes the descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, for the error a delayed write can report only here.
  int Close() {
    int r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

// Reads the file into `content`; `found` is false if it does not exist.
absl::Status ReadSmallFile(const std::string& path, bool* found, std::string* content) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      *found = false;
      return absl::OkStatus();
    }
    return IoError(errno, "open it", path);
  }
  *found = true;
  char buf[kMaxFileBytes + 1];
  size_t total = 0;
  while (total < sizeof(buf)) {
    ssize_t n = ::read(fd.get(), buf + total, sizeof(buf) - total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(errno, "read it", path);
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  if (total > kMaxFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "incarnation file \"", path, "\": longer than ", kMaxFileBytes,
        " bytes; it must hold one decimal number (remove it to start afresh)"));
  }
  content->assign(buf, total);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Parse(const std::string& path, absl::string_view content) {
  absl::string_view digits = absl::StripTrailingAsciiWhitespace(content);
  uint64_t value = 0;
  const bool all_digits =
      !digits.empty() && std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit);
  if (!all_digits || !absl::SimpleAtoi(digits, &value) ||
      value == std::numeric_limits<uint64_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "incarnation file \"", path, "\": \"", absl::CEscape(content.substr(0, 32)),
        "\" is not an incarnation (one decimal number below 2^64-1); remove the file to "
        "start afresh"));
  }
  return value;
}

// 0, or the errno of the failed write.
int WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

// Replaces the file atomically: a reader (the next run, after a crash at
// any point) sees the old content or the new, never a part.
absl::Status WriteAtomically(const std::string& path, uint64_t value) {
  const std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) return IoError(errno, absl::StrCat("create \"", tmp, "\""), path);
    if (int error = WriteAll(fd.get(), absl::StrCat(value, "\n")); error != 0) {
      return IoError(error, absl::StrCat("write \"", tmp, "\""), path);
    }
    if (::fsync(fd.get()) != 0) return IoError(errno, absl::StrCat("sync \"", tmp, "\""), path);
    if (fd.Close() != 0) return IoError(errno, absl::StrCat("close \"", tmp, "\""), path);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    return IoError(error, absl::StrCat("rename \"", tmp, "\" over it"), path);
  }
  // The rename itself must reach the disk too (the directory's entry).
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() < 0 || ::fsync(dfd.get()) != 0) {
    return IoError(errno, absl::StrCat("sync its directory \"", dir, "\""), path);
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t ClockIncarnation(absl::Time now) {
  return static_cast<uint64_t>(std::max<int64_t>(1, absl::ToUnixMicros(now)));
}

absl::StatusOr<uint64_t> NextIncarnation(const std::string& path, absl::Time now) {
  if (path.empty()) return absl::InvalidArgumentError("incarnation file: empty path");
  bool found = false;
  std::string content;
  if (absl::Status s = ReadSmallFile(path, &found, &content); !s.ok()) return s;
  uint64_t incarnation = ClockIncarnation(now);
  if (found) {
    absl::StatusOr<uint64_t> last = Parse(path, content);
    if (!last.ok()) return last.status();
    incarnation = std::max(incarnation, *last + 1);
  }
  if (absl::Status s = WriteAtomically(path, incarnation); !s.ok()) return s;
  return incarnation;
}

}  // namespace peter::pastry::net

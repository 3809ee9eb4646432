#include "pubsub/resp/request_parser.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

#include "absl/strings/str_cat.h"

namespace peter::resp {
namespace {

bool ParseLongLongImpl(std::string_view s, long long* out) {
  if (s.empty() || s.size() > 20) return false;
  bool negative = false;
  size_t i = 0;
  if (s[0] == '-') {
    negative = true;
    i = 1;
    if (s.size() == 1) return false;
  }
  if (s[i] == '0' && s.size() > i + 1) return false;
  unsigned long long v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    unsigned long long digit = s[i] - '0';
    if (v > (std::numeric_limits<unsigned long long>::max() - digit) / 10) return false;
    v = v * 10 + digit;
  }
  constexpr unsigned long long kMax = std::numeric_limits<long long>::max();
  if (negative) {
    if (v > kMax + 1) return false;
    *out = v == kMax + 1 ? std::numeric_limits<long long>::min() : -static_cast<long long>(v);
  } else {
    if (v > kMax) return false;
    *out = static_cast<long long>(v);
  }
  return true;
}

}  // namespace

bool ParseRedisInteger(std::string_view s, long long* out) { return ParseLongLongImpl(s, out); }

namespace {

bool IsBlank(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char EscapedChar(char c) {
  switch (c) {
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'b': return '\b';
    case 'a': return '\a';
    default: return c;
  }
}

}  // namespace

bool SplitInlineArgs(std::string_view line, std::vector<std::string>* args) {
  // Like Redis, the line ends at its first NUL byte.
  line = line.substr(0, line.find('\0'));
  args->clear();
  size_t i = 0;
  auto at = [&](size_t k) -> char { return k < line.size() ? line[k] : '\0'; };
  while (true) {
    while (i < line.size() && IsBlank(line[i])) ++i;
    if (i >= line.size()) return true;
    std::string current;
    bool in_double = false, in_single = false, done = false;
    while (!done) {
      char c = at(i);
      if (in_double) {
        if (c == '\\' && at(i + 1) == 'x' && HexValue(at(i + 2)) >= 0 && HexValue(at(i + 3)) >= 0) {
          current.push_back(static_cast<char>(HexValue(at(i + 2)) * 16 + HexValue(at(i + 3))));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          ++i;
          current.push_back(EscapedChar(at(i)));
        } else if (c == '"') {
          if (at(i + 1) != '\0' && !IsBlank(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          current.push_back(c);
        }
      } else if (in_single) {
        if (c == '\\' && at(i + 1) == '\'') {
          ++i;
          current.push_back('\'');
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !IsBlank(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          current.push_back(c);
        }
      } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0') {
        done = true;
      } else if (c == '"') {
        in_double = true;
      } else if (c == '\'') {
        in_single = true;
      } else {
        current.push_back(c);
      }
      if (c != '\0') ++i;
    }
    args->push_back(std::move(current));
  }
}

void RequestParser::Feed(std::string_view bytes) {
  if (!error_.empty()) return;
  Compact();
  buffer_.append(bytes);
}

void RequestParser::Compact() {
  if (pos_ > 0 && (pos_ == buffer_.size() || pos_ > (64 << 10))) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
}

RequestParser::Result RequestParser::Fail(std::string error) {
  error_ = std::move(error);
  buffer_.clear();
  pos_ = 0;
  partial_.clear();
  partial_bytes_ = 0;
  return Result::kError;
}

RequestParser::Result RequestParser::Next(std::vector<std::string>* args) {
  lent_.reset();
  while (true) {
    if (!error_.empty()) return Result::kError;
    if (pos_ >= buffer_.size()) return Result::kNeedMore;
    if (pending_args_ < 0 && buffer_[pos_] == '*' && ParseWholeMultibulk(args)) {
      return Result::kCommand;
    }
    Result r = (pending_args_ >= 0 || buffer_[pos_] == '*') ? ParseMultibulk(args)
                                                            : ParseInline(args);
    if (r == Result::kCommand && args->empty()) continue;  // empty request
    return r;
  }
}

RequestParser::Result RequestParser::ParseInline(std::vector<std::string>* args) {
  size_t newline = buffer_.find('\n', pos_);
  if (newline == std::string::npos) {
    if (buffered() > limits_.max_inline_len) return Fail("Protocol error: too big inline request");
    return Result::kNeedMore;
  }
  if (newline - pos_ > limits_.max_inline_len) {
    return Fail("Protocol error: too big inline request");
  }
  std::string_view line(buffer_.data() + pos_, newline - pos_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!SplitInlineArgs(line, args)) return Fail("Protocol error: unbalanced quotes in request");
  size_t max_args = authenticated_ ? limits_.max_args : limits_.unauth_max_args;
  if (args->size() > max_args) return Fail("Protocol error: too many arguments in inline request");
  pos_ = newline + 1;
  return Result::kCommand;
}

bool RequestParser::ReadShortCount(long long* value) {
  const char* start = buffer_.data() + pos_;
  const char* end = buffer_.data() + buffer_.size();
  const char* digits = start + 1;
  const char* limit = std::min(end, digits + 18);  // 18 digits cannot overflow
  const char* p = digits;
  unsigned long long v = 0;
  while (p < limit && *p >= '0' && *p <= '9') v = v * 10 + static_cast<unsigned>(*p++ - '0');
  if (p == digits || p + 1 >= end || p[0] != '\r' || p[1] != '\n') return false;
  if (*digits == '0' && p - digits > 1) return false;  // a leading zero: refused by the slow path
  if (static_cast<size_t>(p - start) > limits_.max_inline_len) return false;
  *value = static_cast<long long>(v);
  pos_ += static_cast<size_t>(p + 2 - start);
  return true;
}

bool RequestParser::ParseWholeMultibulk(std::vector<std::string>* args) {
  if (!authenticated_) return false;  // the tighter limits: the general path
  const char* const start = buffer_.data() + pos_;
  const char* const end = buffer_.data() + buffer_.size();
  const char* p = start;
  // A line this reads is at most 3 bytes unless its digit loop runs (then
  // checked): a line limit under 3 is left to the general path.
  if (limits_.max_inline_len < 3) return false;
  // "<prefix><1 to 18 digits, no leading zero>\r\n" at p, within the line
  // limit; moves p past it. One or two digits (a command's count, its
  // name's and channel's lengths, most messages') are read without the
  // loop. The line and the byte after it must be buffered: a whole request
  // has more after each line.
  auto number = [&](char prefix, size_t* value) __attribute__((always_inline)) {
    if (end - p < 5 || *p != prefix) return false;
    const char* const line = p;
    const unsigned d0 = static_cast<unsigned char>(p[1]) - unsigned{'0'};
    const unsigned d1 = static_cast<unsigned char>(p[2]) - unsigned{'0'};
    size_t v = 0;
    if (d0 <= 9 && d1 > 9) {
      v = d0;  // "0" included: one digit has no leading zero
      p += 2;
    } else if (d0 - 1 <= 8 && d1 <= 9 && static_cast<unsigned char>(p[3]) - unsigned{'0'} > 9) {
      v = d0 * 10 + d1;  // d0 from 1 to 9: no leading zero
      p += 3;
    } else {
      const char* const digits = ++p;
      const char* const limit = std::min(end, digits + 18);
      while (p < limit && *p >= '0' && *p <= '9') v = v * 10 + static_cast<size_t>(*p++ - '0');
      if (p == digits || (*digits == '0' && p - digits > 1)) return false;
      if (end - p < 2 || static_cast<size_t>(p - line) > limits_.max_inline_len) return false;
    }
    if (p[0] != '\r' || p[1] != '\n') return false;
    p += 2;
    *value = v;
    return true;
  };
  size_t count = 0;
  if (!number('*', &count) || count == 0 || count > kQuickArgs || count > limits_.max_args) {
    return false;
  }
  // The bulks' places, left uninitialised (a string_view's constructor
  // zeroes them): only the first `count` are written and read.
  struct Bulk {
    const char* data;
    size_t size;
    std::string_view view() const { return {data, size}; }
  };
  std::array<Bulk, kQuickArgs> found;
  for (size_t i = 0; i < count; ++i) {
    size_t len = 0;
    if (!number('$', &len) || len > limits_.max_bulk_len) return false;
    if (static_cast<size_t>(end - p) < len + 2 || p[len] != '\r' || p[len + 1] != '\n') {
      return false;
    }
    found[i] = Bulk{p, len};
    p += len + 2;
  }
  if (static_cast<size_t>(p - start) > limits_.max_request_bytes) return false;
  args->resize(count);
  size_t copied = count;
  if (Lends(found[0].view(), count)) {
    lent_ = found[--copied].view();
    (*args)[copied].clear();
  }
  for (size_t i = 0; i < copied; ++i) (*args)[i].assign(found[i].data, found[i].size);
  pos_ += static_cast<size_t>(p - start);
  return true;
}

bool RequestParser::ReadCountLine(const char* too_big_error, long long* value, bool* ok) {
  if (ReadShortCount(value)) {
    *ok = true;
    return true;
  }
  *ok = false;
  size_t cr = buffer_.find('\r', pos_);
  if (cr == std::string::npos || cr + 1 >= buffer_.size()) {
    if (buffered() > limits_.max_inline_len) Fail(too_big_error);
    return false;
  }
  if (cr - pos_ > limits_.max_inline_len) {
    Fail(too_big_error);
    return false;
  }
  *ok = buffer_[cr + 1] == '\n' &&
        ParseRedisInteger(std::string_view(buffer_.data() + pos_ + 1, cr - pos_ - 1), value);
  pos_ = cr + 2;
  return true;
}

RequestParser::Result RequestParser::ParseMultibulk(std::vector<std::string>* args) {
  if (pending_args_ < 0) {
    const size_t start = pos_;
    long long count = 0;
    bool ok = false;
    if (!ReadCountLine("Protocol error: too big mbulk count string", &count, &ok)) {
      return error_.empty() ? Result::kNeedMore : Result::kError;
    }
    if (!ok || count > static_cast<long long>(limits_.max_args)) {
      return Fail("Protocol error: invalid multibulk length");
    }
    if (!authenticated_ && count > static_cast<long long>(limits_.unauth_max_args)) {
      return Fail("Protocol error: unauthenticated multibulk length");
    }
    partial_.clear();
    partial_bytes_ = 0;
    request_bytes_ = pos_ - start;  // the count line
    if (count <= 0) {
      args->clear();
      return Result::kCommand;  // empty request, skipped by Next()
    }
    pending_args_ = count;
  }
  while (pending_args_ > 0) {
    if (bulk_len_ < 0) {
      if (pos_ >= buffer_.size()) return Result::kNeedMore;
      const size_t header_start = pos_;
      long long len = 0;
      bool ok = false;
      if (buffer_[pos_] == '$' && ReadShortCount(&len)) {
        ok = true;  // the usual header, read in one pass
      } else {
        // As Redis, the header is judged once its line is complete.
        size_t cr = buffer_.find('\r', pos_);
        if (cr == std::string::npos || cr + 1 >= buffer_.size()) {
          if (buffered() > limits_.max_inline_len) {
            return Fail("Protocol error: too big bulk count string");
          }
          return Result::kNeedMore;
        }
        if (buffer_[pos_] != '$') {
          return Fail(std::string("Protocol error: expected '$', got '") + buffer_[pos_] + "'");
        }
        if (!ReadCountLine("Protocol error: too big bulk count string", &len, &ok)) {
          return error_.empty() ? Result::kNeedMore : Result::kError;
        }
      }
      if (!ok || len < 0 || len > static_cast<long long>(limits_.max_bulk_len)) {
        return Fail("Protocol error: invalid bulk length");
      }
      if (!authenticated_ && len > static_cast<long long>(limits_.unauth_max_bulk_len)) {
        return Fail("Protocol error: unauthenticated bulk length");
      }
      // The whole request as sent: header line, bytes and their CRLF.
      request_bytes_ += pos_ - header_start + static_cast<size_t>(len) + 2;
      if (request_bytes_ > limits_.max_request_bytes) {
        request_too_big_ = true;
        return Fail(absl::StrCat("Protocol error: request over ", limits_.max_request_bytes,
                                 " bytes"));
      }
      bulk_len_ = len;
    }
    size_t need = static_cast<size_t>(bulk_len_) + 2;
    // No reservation ahead of the data: a header alone must not make us
    // allocate max_bulk_len.
    if (buffered() < need) return Result::kNeedMore;
    if (buffer_[pos_ + bulk_len_] != '\r' || buffer_[pos_ + bulk_len_ + 1] != '\n') {
      return Fail("Protocol error: expected CRLF after bulk");
    }
    const std::string_view bulk(buffer_.data() + pos_, static_cast<size_t>(bulk_len_));
    // The last bulk is whole in the buffer, as every bulk is once read.
    if (pending_args_ == 1 && !partial_.empty() && Lends(partial_[0], partial_.size() + 1)) {
      lent_ = bulk;
      partial_.emplace_back();
    } else {
      partial_.emplace_back(bulk);
      partial_bytes_ += bulk.size();
    }
    pos_ += need;
    bulk_len_ = -1;
    --pending_args_;
  }
  pending_args_ = -1;
  args->swap(partial_);
  partial_.clear();
  partial_bytes_ = 0;
  return Result::kCommand;
}

}  // namespace peter::resp

#include "pubsub/resp/glob.h"

#include <cstddef>

namespace peter::resp {
namespace {

// A cursor over the pattern: reads past the end give '\0', as Redis's
// NUL-terminated strings do (its matcher relies on that).
struct Cursor {
  std::string_view s;
  size_t i = 0;
  size_t left() const { return s.size() - i; }
  signed char at(size_t k = 0) const {
    return i + k < s.size() ? static_cast<signed char>(s[i + k]) : '\0';
  }
};

// Matches one bracket set at p (just past '['); leaves p on its ']' (or at
// the pattern's end when unterminated). `c` is the text byte to test.
bool MatchSet(Cursor& p, signed char c) {
  bool negate = p.at() == '^';
  if (negate) ++p.i;
  bool match = false;
  while (true) {
    if (p.at() == '\\' && p.left() >= 2) {
      ++p.i;
      if (p.at() == c) match = true;
    } else if (p.at() == ']' && p.left() > 0) {
      break;
    } else if (p.left() == 0) {
      --p.i;  // the caller's step past the set lands on the end
      break;
    } else if (p.left() >= 3 && p.at(1) == '-') {
      signed char lo = p.at(), hi = p.at(2);
      if (lo > hi) std::swap(lo, hi);
      p.i += 2;
      if (c >= lo && c <= hi) match = true;
    } else if (p.at() == c) {
      match = true;
    }
    ++p.i;
  }
  return negate ? !match : match;
}

bool Match(Cursor p, std::string_view text, bool* give_up) {
  size_t t = 0;
  while (p.left() > 0 && t < text.size()) {
    signed char c = static_cast<signed char>(text[t]);
    switch (p.at()) {
      case '*': {
        while (p.at(1) == '*' && p.left() > 1) ++p.i;
        if (p.left() == 1) return true;
        Cursor rest = p;
        ++rest.i;
        for (; t < text.size(); ++t) {
          if (Match(rest, text.substr(t), give_up)) return true;
          if (*give_up) return false;
        }
        *give_up = true;  // no later start can match either
        return false;
      }
      case '?':
        ++t;
        break;
      case '[':
        ++p.i;
        if (!MatchSet(p, c)) return false;
        ++t;
        break;
      case '\\':
        if (p.left() >= 2) ++p.i;
        [[fallthrough]];
      default:
        if (p.at() != c) return false;
        ++t;
        break;
    }
    ++p.i;
    if (t == text.size()) {
      while (p.left() > 0 && p.at() == '*') ++p.i;
      break;
    }
  }
  return p.left() == 0 && t == text.size();
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  bool give_up = false;
  return Match(Cursor{pattern}, text, &give_up);
}

}  // namespace peter::resp

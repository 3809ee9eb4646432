// Redis's glob-style pattern matching (PSUBSCRIBE, PUBSUB CHANNELS), with its
// exact semantics, which differ from fnmatch(3) — hence our own matcher:
//   *      any sequence, also empty
//   ?      exactly one byte
//   [abc]  one of the bytes; [^abc] none of them; [a-z] a range (the ends
//          may be given in either order); "\x" inside brackets is literal x;
//          an unterminated "[" set ends at the pattern's end
//   \x     the byte x literally (a trailing "\" is itself literal)
// Bytes compare as Redis's (signed) chars; matching is case-sensitive.
// Worst-case time is polynomial: like Redis 7.0.9+, a failed suffix search
// under '*' is not retried from longer prefixes.
#ifndef PETER_PUBSUB_RESP_GLOB_H_
#define PETER_PUBSUB_RESP_GLOB_H_

#include <string_view>

namespace peter::resp {

bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace peter::resp

#endif  // PETER_PUBSUB_RESP_GLOB_H_

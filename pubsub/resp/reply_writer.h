// Encodes replies in RESP2 or RESP3 (chosen per client by HELLO). Types that
// RESP2 lacks degrade as Redis does: a map becomes a flat array of 2n
// elements, a set or push an array, null a "$-1" bulk (or "*-1" for a null
// array), a boolean 1 or 0.
//
// Not thread-safe; appends to a caller-owned string.
#ifndef PETER_PUBSUB_RESP_REPLY_WRITER_H_
#define PETER_PUBSUB_RESP_REPLY_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace peter::resp {

class ReplyWriter {
 public:
  // `out` must outlive the writer. `protocol` is 2 or 3.
  ReplyWriter(std::string* out, int protocol) : out_(out), protocol_(protocol) {}

  int protocol() const { return protocol_; }

  void Simple(std::string_view s);  // "+s"; s must not hold CR or LF
  void Error(std::string_view s);   // "-s" (s starts with the code, e.g. "ERR ...")
  void Bulk(std::string_view s);
  void Verbatim(std::string_view format, std::string_view s);  // RESP3 "=", else bulk
  void Integer(long long v);
  void Null();                      // "_" or "$-1"
  void NullArray();                 // "_" or "*-1"
  void Bool(bool v);                // "#t"/"#f" or ":1"/":0"
  void Array(size_t n);
  void Map(size_t n);               // n key/value pairs follow
  void Set(size_t n);
  void Push(size_t n);              // out-of-band data (RESP3 ">")
  // A pub/sub message as one push, encoded in one pass: [verb, channel,
  // payload], or [verb, pattern, channel, payload] when `pattern` is given
  // ("pmessage"). The same bytes as Push() and Bulk()s.
  void Message(std::string_view verb, const std::string_view* pattern, std::string_view channel,
               std::string_view payload);
  // Bytes already encoded for this protocol (a Message shared by clients).
  void Encoded(std::string_view bytes) { out_->append(bytes); }

 private:
  void Header(char type, long long n);
  void Line(char type, std::string_view s);

  std::string* out_;
  int protocol_;
};

}  // namespace peter::resp

#endif  // PETER_PUBSUB_RESP_REPLY_WRITER_H_

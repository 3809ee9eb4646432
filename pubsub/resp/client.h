// Private to pubsub/resp: one Redis client connection. Reads and parses
// requests, runs them through the Server in order, and writes replies and
// pushes from a bounded output buffer (GatewayOptions' output limits).
//
// A SUBSCRIBE waits for the cluster (until its topics are active) and leaves
// the client `blocked`: later requests wait (at most kThrottledReadLimit
// bytes of them are read ahead) until Resume(), so replies keep request
// order.
//
// PUBLISH does not block: it reserves a place for its reply (ReserveReply)
// and the client goes on with its next commands. Replies written while a
// reserved reply is unfinished queue behind it, so replies leave in command
// order; CompleteReply fills the place and sends what is ready. Pushes
// (messages) of a RESP3 client go ahead of the queue (push_writer), unless
// output they must follow waits in it (a subscription's confirmation, HELLO,
// RESET: FencePushes); RESP2 pushes, which a client cannot tell from
// replies, always queue. A PUBLISH costs one node publish for its channel
// and one per matching pattern: at most
// GatewayOptions::max_client_publishes_in_flight of a client's (and
// max_publishes_in_flight of all clients') node publishes wait at once; a
// PUBLISH that does not fit waits as pending_publish_, its reply's place
// reserved, and the client's later commands wait behind it (back-pressure:
// reads pause).
//
// Lifetime: owned by the Server's client map; asynchronous handlers hold a
// shared_ptr. Close() is idempotent and tells the Server once.
// Not thread-safe: loop thread only.
#ifndef PETER_PUBSUB_RESP_CLIENT_H_
#define PETER_PUBSUB_RESP_CLIENT_H_

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "pubsub/payload.h"
#include "pubsub/resp/request_parser.h"
#include "pubsub/resp/server.h"

namespace peter::resp {

// A SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE waiting for its topics.
struct PendingSubscribe {
  Kind kind = Kind::kChannel;
  std::vector<std::string> names;
  // Its distinct topics not ready yet (Topic::counted_ready): it completes
  // at 0, without looking up every name each time one turns ready.
  size_t unready = 0;
};

// A PUBLISH's node publishes (backend topic, payload): the channel's first,
// then one per matching pattern. Waits in Client::pending_publish_ while
// they do not fit the publish limits. Built only for a PUBLISH with pattern
// copies or one that waits: the usual one goes from Server::Publish as is.
struct PendingPublish {
  Kind kind = Kind::kChannel;
  std::string channel;
  // Inline for the usual one (no matching pattern): no allocation.
  absl::InlinedVector<std::pair<std::string, pubsub::Payload>, 1> sends;
  uint64_t ticket = 0;  // its reply's place
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  // Request bytes read ahead while the client's commands are held back.
  static constexpr size_t kThrottledReadLimit = 64 << 10;

  Client(Server& server, asio::ip::tcp::socket socket, uint64_t id);

  void Start();
  // Appends output; may disconnect the client under the output limits.
  void Send(std::string_view bytes);
  // Appends to the output, or behind the reserved replies if any.
  ReplyWriter writer() { return ReplyWriter(OutputTarget(), protocol_); }
  // For a push (message): RESP3 pushes go ahead of replies waiting behind
  // an unanswered PUBLISH, unless a fence waits there.
  ReplyWriter push_writer() { return ReplyWriter(PushTarget(), protocol_); }
  // Pushes written from now on follow everything written so far (call after
  // writing a reply that changes what later pushes mean to the client).
  void FencePushes();
  // Call after writing through writer(): applies limits and starts writing.
  void Flush();
  void CloseAfterReply();
  void Close(const std::string& why);
  // Unblocks after an asynchronous command completed.
  void Resume();
  void Block() { blocked_ = true; }
  // A place for a reply that comes later, after what was written so far;
  // every later reply (and RESP2 push) waits behind it. Returns its ticket.
  uint64_t ReserveReply();
  // Where the reserved reply's bytes are written: the output itself when
  // its place is the first (everything before it is in the output: no copy
  // of the reply), else its place. Null if there is nothing to fill (the
  // client closed, or the place was filled or dropped).
  // REQUIRES: nothing reserves a place on this client or writes to its
  // output until CompleteReply(ticket): a new place may move the others,
  // and output written meanwhile would go before an earlier reply.
  std::string* ReplyPlace(uint64_t ticket);
  // After the reply was written to ReplyPlace(ticket) (not null): sends
  // what is ready, in order, and sends a pending PUBLISH if it fits now.
  void CompleteReply(uint64_t ticket);
  size_t replies_in_flight() const { return unfinished_; }
  // Counts `n` node publishes against both publish limits if they fit
  // (true). A PUBLISH costing more than a limit fits once nothing else is
  // in flight. Otherwise false, and the client is woken when they may fit.
  bool TakePublishes(size_t n);
  // The node answered `n` of this client's node publishes.
  void PublishesAnswered(size_t n) { node_publishes_ -= n; }
  // Sends pending_publish_ if it fits now, then runs the commands behind it.
  void PublishesFinished();
  // Loop thread, after a batch of backend callbacks: writes output that
  // Flush() deferred during the batch.
  void FlushDeferred();
  // From housekeeping: the soft output limit's time runs out for a client
  // that reads nothing too (no write completes to check it then).
  bool over_soft_limit() const { return soft_since_.has_value(); }
  void CheckSoftLimit() { CheckOutputLimits(); }

  uint64_t id() const { return id_; }
  bool closed() const { return closed_; }
  size_t output_bytes() const { return out_.size() + writing_.size() + QueuedBytes(); }
  std::string peer() const { return peer_; }
  std::string local() const { return local_; }
  absl::Time created() const { return created_; }
  size_t query_buffered() const { return parser_.buffered(); }
  // Argument `i` of the command running now: the parser's lent bytes if it
  // lent it (see LendsMessage), else its string.
  std::string_view argument(const Args& args, size_t i) const {
    return i + 1 == args.size() && parser_.lent() ? *parser_.lent() : std::string_view(args[i]);
  }
  // Request bytes the parser holds, as counted toward max_total_input_bytes.
  size_t query_held() const { return input_counted_; }
  uint64_t bytes_read() const { return bytes_read_; }
  // Holds part of a request that only more reading can complete (its
  // commands are not held back).
  bool finishing() const { return !closed_ && !closing_ && !throttled() && parser_.held() > 0; }
  // After a pause at the gateway-wide input bound.
  void ResumeReading() { Read(); }
  bool input_waiting_ = false;  // in the Server's input waiters

  // Connection state, changed by the Server's commands.
  int protocol_ = 2;
  bool authenticated_ = true;
  std::optional<std::string> name_;
  std::set<std::string> channels_, patterns_, shard_channels_;
  std::optional<PendingSubscribe> pending_subscribe_;
  std::optional<PendingPublish> pending_publish_;
  asio::steady_timer pending_timer_;
  absl::Time last_command_;

  std::set<std::string>& set_for(Kind kind) {
    return kind == Kind::kChannel ? channels_ : kind == Kind::kPattern ? patterns_ : shard_channels_;
  }
  // In RESP2, a client subscribed to anything may run only the pub/sub
  // commands, PING, QUIT and RESET.
  bool in_pubsub_mode() const {
    return !channels_.empty() || !patterns_.empty() || !shard_channels_.empty();
  }
  void set_authenticated(bool a) {
    authenticated_ = a;
    parser_.set_authenticated(a);
  }

 private:
  void Read();
  bool throttled() const;
  // Tells the server the bytes the parser holds now.
  void CountInput();
  void ProcessInput();
  void ScheduleProcessInput();
  void Write();
  // After bytes left: the gateway-wide output count, the soft limit's time.
  void AfterWrite();
  void CheckOutputLimits();
  size_t QueuedBytes() const;
  std::string* OutputTarget();
  std::string* PushTarget();
  void PushSlot(bool done);

  Server& server_;
  asio::ip::tcp::socket socket_;
  uint64_t id_;
  RequestParser parser_;
  // Reads into the server's buffer once the socket is readable.
  void OnReadable(std::error_code ec);
  size_t input_counted_ = 0;  // parser_.held() as last told to the server
  size_t output_counted_ = 0;  // output_bytes() as last told to the server
  // Tells the server the unsent output now.
  void CountOutput();
  uint64_t bytes_read_ = 0;
  bool reading_ = false;
  bool blocked_ = false;
  bool closing_ = false;  // reply then close
  bool closed_ = false;
  bool flush_deferred_ = false;
  std::string out_;      // not yet handed to the socket
  // Output behind a reserved reply, in order: `done` places hold their
  // bytes, the others wait for CompleteReply. The front has ticket
  // replies_base_.
  struct ReplySlot {
    bool done = false;
    std::string bytes;
  };
  // The slots in a ring that keeps its storage (a deque allocated a block
  // every dozen PUBLISHes and freed it as they were answered), up to
  // kKeptSlots once it empties, and the slots' strings theirs, up to
  // kKeptSlotBytes.
  class ReplyRing {
   public:
    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    ReplySlot& operator[](size_t i) { return slots_[(head_ + i) & (slots_.size() - 1)]; }
    ReplySlot& front() { return slots_[head_]; }
    ReplySlot& back() { return (*this)[size_ - 1]; }
    const ReplySlot& back() const {
      return slots_[(head_ + size_ - 1) & (slots_.size() - 1)];
    }
    void push_back(bool done) {
      if (size_ == slots_.size()) Grow();
      ReplySlot& slot = (*this)[size_++];
      slot.done = done;
    }
    void pop_front() {
      ReplySlot& slot = front();
      if (slot.bytes.capacity() > kKeptSlotBytes) {
        std::string().swap(slot.bytes);
      } else {
        slot.bytes.clear();
      }
      head_ = (head_ + 1) & (slots_.size() - 1);
      if (--size_ == 0 && slots_.size() > kKeptSlots) {
        // A burst answered: its slots go (up to 1,024, each with up to
        // kKeptSlotBytes, counted in no output bound), as the deque's
        // blocks went.
        std::vector<ReplySlot>().swap(slots_);
        head_ = 0;
      }
    }
    void clear() {
      while (!empty()) pop_front();
    }

   private:
    static constexpr size_t kKeptSlotBytes = 256;
    static constexpr size_t kKeptSlots = 64;
    void Grow() {
      // Doubles (a power of two), the slots in order from index 0.
      std::vector<ReplySlot> grown(slots_.empty() ? 8 : 2 * slots_.size());
      for (size_t i = 0; i < size_; ++i) grown[i] = std::move((*this)[i]);
      slots_.swap(grown);
      head_ = 0;
    }
    std::vector<ReplySlot> slots_;
    size_t head_ = 0;
    size_t size_ = 0;
  };
  ReplyRing replies_;
  size_t queued_closed_ = 0;  // bytes in replies_ but its tail
  uint64_t replies_base_ = 0;
  size_t unfinished_ = 0;
  size_t node_publishes_ = 0;  // of this client's PUBLISHes, unanswered
  // Pushes may go ahead of replies_ only once the slots before this ticket
  // (holding a fence or a push) have left it.
  uint64_t push_fence_ = 0;
  std::string writing_;  // being written
  std::string discarded_;  // output written after QUIT goes here (OutputTarget)
  std::optional<std::chrono::steady_clock::time_point> soft_since_;
  std::string peer_, local_;
  absl::Time created_;
  Args args_;
};

}  // namespace peter::resp

#endif  // PETER_PUBSUB_RESP_CLIENT_H_

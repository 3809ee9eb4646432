// Private to pubsub/resp: the gateway's implementation. Everything here runs
// on the gateway's event loop (the backend's, or a thread of the gateway's
// own), except Start/Stop/stats and the Poster, which hands backend
// callbacks over to that loop when it is the gateway's own.
#ifndef PETER_PUBSUB_RESP_SERVER_H_
#define PETER_PUBSUB_RESP_SERVER_H_

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <asio.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "pastry/core/log_limit.h"
#include "pubsub/resp/backend.h"
#include "pubsub/resp/gateway.h"
#include "pubsub/resp/pattern_directory.h"
#include "pubsub/resp/reply_writer.h"

namespace peter::resp {

class Client;
struct PendingPublish;
struct Topic;
enum class Kind { kChannel, kShard, kPattern };

// A PUBLISH's answers so far, shared by its node publishes when it has more
// than one (pattern copies).
struct PublishTally {
  size_t outstanding = 0;
  absl::Status primary;      // the channel's own publish
  size_t copies_failed = 0;  // pattern copies
  absl::Status copy_error;   // the first of them
};

// One node publish's answer, on its way to the loop: queued as data, not as
// a function (an allocation per PUBLISH fewer), and, for a PUBLISH with one
// node publish (no matching pattern), with no tally to share.
struct PublishAnswer {
  Kind kind = Kind::kChannel;
  std::string channel;
  uint64_t ticket = 0;  // the reply's place
  std::weak_ptr<Client> client;
  size_t cost = 1;   // the PUBLISH's node publishes
  size_t index = 0;  // this one's: 0 is the channel's own
  std::shared_ptr<PublishTally> tally;  // null when cost is 1
  absl::Status status;
};

// Runs functions on the loop while it is alive; drops them after Disable().
// Functions posted while earlier ones wait run together, in order, as one
// batch (one hand-off to the loop rather than one each); `after_batch` runs
// on the loop after each batch.
//
// Direct (the gateway on the backend's loop): callbacks already come on the
// loop's thread, and run at once, without a lock; `before_batch` runs
// before the first of them since the loop last went round, `after_batch`
// in a handler posted then (one per batch; the server's after_batch posts
// the clients' writes for the end of the loop's round), or, when `at_end_of_work` takes it (Backend::AtEndOfWork: the
// callbacks come from a call of the backend's own), at the end of that
// call, without a handler of its own. Disable() is then called on the
// loop's thread too.
class Poster : public std::enable_shared_from_this<Poster> {
 public:
  using MessageFn = std::function<void(const std::weak_ptr<Topic>&, std::string_view payload)>;
  using AnswerFn = std::function<void(PublishAnswer&)>;
  using AtEndOfWorkFn = std::function<bool(absl::AnyInvocable<void()>)>;
  Poster(asio::io_context* io, bool direct, std::function<void()> before_batch,
         std::function<void()> after_batch, MessageFn on_message, AnswerFn on_answer,
         AtEndOfWorkFn at_end_of_work = nullptr)
      : io_(io),
        direct_(direct),
        before_batch_(std::move(before_batch)),
        after_batch_(std::move(after_batch)),
        on_message_(std::move(on_message)),
        on_answer_(std::move(on_answer)),
        at_end_of_work_(std::move(at_end_of_work)) {}
  void Post(std::function<void()> fn);
  // Queues on_message(topic, payload) (in order with Post's functions),
  // unless messages of `limit` bytes or more already wait (then false:
  // dropped). At least one always fits. A message is queued as its topic
  // and a copy of its payload, not wrapped in a function: one allocation
  // per message fewer.
  bool PostMessage(size_t limit, const std::weak_ptr<Topic>& topic, std::string_view payload);
  // Queues on_answer(answer), in order with the rest.
  void PostAnswer(PublishAnswer&& answer);
  // A node publish's completion callback: PostAnswer(answer) with its
  // status, once. The answer waits in a slot of this Poster's; the callback
  // holds only the Poster's address and the slot's key (AnswerDone), which
  // AnyInvocable keeps in its own bytes: no allocation per PUBLISH once the
  // slots have grown. A repeated call is ignored. Destroyed uncalled (the
  // backend dropped it: a node that stops drops the callbacks it holds), it
  // answers with Unavailable, from a handler of its own when direct (never
  // inside the backend's call that dropped it). The Poster stays alive
  // (Disable parks it) until every callback it gave out has run or gone.
  Backend::PublishDoneFn AnswerCallback(PublishAnswer&& answer);
  // Answers given out by AnswerCallback that have not run yet.
  size_t answers_waiting();
  void Disable();

  // AnswerCallback's callable: 16 bytes, nothrow-movable (AnyInvocable
  // stores it inline), never copied, so that its destruction uncalled is
  // seen.
  class AnswerDone {
   public:
    AnswerDone(Poster* poster, uint64_t key) : poster_(poster), key_(key) {}
    AnswerDone(AnswerDone&& other) noexcept
        : poster_(std::exchange(other.poster_, nullptr)), key_(other.key_) {}
    AnswerDone& operator=(AnswerDone&&) = delete;
    ~AnswerDone() {
      if (poster_ != nullptr) poster_->Answered(key_, std::nullopt);
    }
    void operator()(absl::StatusOr<uint64_t> seq) {
      if (Poster* poster = std::exchange(poster_, nullptr)) poster->Answered(key_, seq.status());
    }

   private:
    Poster* poster_;  // null once called or moved from
    uint64_t key_;    // slot index (low 32 bits) and its use (high 32)
  };

 private:
  struct Entry {
    std::function<void()> fn;  // or, if empty, an answer or a message:
    std::optional<PublishAnswer> answer;
    std::weak_ptr<Topic> topic;
    std::string payload;
  };
  struct AnswerSlot {
    uint32_t use = 0;  // bumped as the slot is freed: old keys no longer match
    bool busy = false;
    PublishAnswer answer;
  };
  // `status` null: the callback was destroyed uncalled.
  void Answered(uint64_t key, std::optional<absl::Status> status);
  void Push(Entry entry);  // REQUIRES: mu_ held, io_ set
  void RunBatch();
  // Direct: opens a batch unless one is open (false: disabled).
  bool BeginDirect();

  std::mutex mu_;
  asio::io_context* io_;      // guarded by mu_ (direct: the loop's thread)
  const bool direct_;
  bool direct_batch_ = false;  // direct: a batch is open, its end posted
  std::vector<Entry> queue_;  // guarded by mu_
  size_t message_bytes_ = 0;  // guarded by mu_: of the messages queued or running
  std::vector<Entry> running_;  // loop thread only
  std::function<void()> before_batch_, after_batch_;
  MessageFn on_message_;
  AnswerFn on_answer_;
  AtEndOfWorkFn at_end_of_work_;  // direct only; may be null
  // AnswerCallback's answers (guarded by mu_; direct: the loop's thread).
  std::vector<AnswerSlot> answer_slots_;
  std::vector<uint32_t> free_answer_slots_;
  size_t answers_waiting_ = 0;
  bool parked_ = false;  // disabled with answers waiting: kept alive
};

// One backend subscription of this node, shared by its local clients.
struct Topic {
  Kind kind = Kind::kChannel;
  std::string name;  // channel, shard channel or pattern, as clients gave it
  std::unique_ptr<BackendSubscription> subscription;
  bool active = false;     // the backend reported on_active(true)
  bool announced = false;  // patterns: an announcement holding it was accepted
  std::set<uint64_t> members;  // confirmed clients
  std::set<uint64_t> waiters;  // clients whose SUBSCRIBE waits for it
  bool ready() const { return active && (kind != Kind::kPattern || announced); }
  // ready() as the waiters' PendingSubscribe::unready counts it (updated
  // with them in OnTopicActive).
  bool counted_ready = false;
};

// A gateway counter: written on the loop's thread only (one writer at a
// time: StopOnLoop runs off the loop only once it has stopped), read by
// stats() from any thread. So relaxed loads and stores: an increment is a
// load and a store, not a locked read-modify-write, and a store is a plain
// one, not an xchg (the PUBLISH path bumps or sets several per command).
// Each counter reads whole; stats() was never one snapshot of them all.
// The one counter bumped off the loop (messages_dropped, on whatever thread
// the backend delivers from) uses AddFromAnyThread.
class Counter {
 public:
  void AddFromAnyThread() { value_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t load() const { return value_.load(std::memory_order_relaxed); }
  operator uint64_t() const { return load(); }  // NOLINT: reads as the integer it counts
  Counter& operator=(uint64_t v) {
    value_.store(v, std::memory_order_relaxed);
    return *this;
  }
  void operator++(int) { *this = load() + 1; }
  void operator--(int) { *this = load() - 1; }

 private:
  std::atomic<uint64_t> value_{0};
};

struct Counters {
#define PETER_RESP_COUNTER(name) Counter name;
  PETER_RESP_COUNTER(clients_accepted)
  PETER_RESP_COUNTER(clients_refused)
  PETER_RESP_COUNTER(clients_connected)
  PETER_RESP_COUNTER(commands)
  PETER_RESP_COUNTER(protocol_errors)
  PETER_RESP_COUNTER(unknown_commands)
  PETER_RESP_COUNTER(wrong_arity)
  PETER_RESP_COUNTER(auth_failures)
  PETER_RESP_COUNTER(noauth_rejections)
  PETER_RESP_COUNTER(context_rejections)
  PETER_RESP_COUNTER(slow_client_disconnects)
  PETER_RESP_COUNTER(subscribe_timeouts)
  PETER_RESP_COUNTER(backend_errors)
  PETER_RESP_COUNTER(published)
  PETER_RESP_COUNTER(pattern_publishes)
  PETER_RESP_COUNTER(messages_delivered)
  PETER_RESP_COUNTER(messages_encoded)
  PETER_RESP_COUNTER(bad_announcements)
  PETER_RESP_COUNTER(known_patterns)
  PETER_RESP_COUNTER(output_high_water)
  PETER_RESP_COUNTER(output_async_writes)
  PETER_RESP_COUNTER(reserved_rejections)
  PETER_RESP_COUNTER(publish_limit_waits)
  PETER_RESP_COUNTER(messages_dropped)
  PETER_RESP_COUNTER(subscription_limit_rejections)
  PETER_RESP_COUNTER(requests_too_big)
  PETER_RESP_COUNTER(pattern_directory_overflows)
  PETER_RESP_COUNTER(pattern_ttls_clipped)
  PETER_RESP_COUNTER(input_limit_pauses)
  PETER_RESP_COUNTER(input_bytes)
  PETER_RESP_COUNTER(input_high_water)
  PETER_RESP_COUNTER(evicted_clients)
  PETER_RESP_COUNTER(output_bytes)
#undef PETER_RESP_COUNTER
};

using Args = std::vector<std::string>;

class Server : public Gateway {
 public:
  Server(Backend& backend, GatewayOptions options);
  ~Server() override;

  absl::Status Listen();  // before the loop starts
  void Run();             // starts on the loop (and starts its thread if our own)

  uint16_t port() const override { return port_; }
  GatewayStats stats() const override;
  void Stop() override;

  // --- Used by Client, on the loop thread. ---
  // Logs that a bound was reached, at most once a second.
  void WarnBound(std::string_view what);
  const GatewayOptions& options() const { return options_; }
  Counters& counters() { return counters_; }
  asio::io_context& io() { return io_; }
  // A client's read takes up to kReadBytes (a pipelining publisher's read
  // carries about 600 PUBLISHes: fewer reads, and fewer writes per command,
  // since a client with output gets one write per read's batch; Redis too
  // reads as much as its query buffer holds), into one buffer shared by
  // every client: the loop runs one handler at a time and the parser
  // copies what it keeps (Client::OnReadable), so no client holds one.
  static constexpr size_t kReadBytes = 64 << 10;
  char* read_buffer() { return read_buffer_.get(); }
  // Runs one parsed command for `client`.
  void Execute(Client& client, Args& args);
  // Around the commands of one read (the gateway on the backend's loop):
  // their PUBLISHes reach the backend together at the end of the read's
  // handler (Backend::BeginPublishes), not in a handler of their own.
  void BeginPublishes() {
    if (!own_thread()) backend_.BeginPublishes();
  }
  void EndPublishes() {
    if (!own_thread()) backend_.EndPublishes();
  }
  // The client is gone: drop its subscriptions and forget it.
  void OnClientClosed(Client& client);
  // Node publishes of all clients waiting for their roots (the
  // gateway-wide limit), and the clients waiting for that number to drop.
  size_t publishes_in_flight() const { return publishes_in_flight_; }
  void AddPublishInFlight(long delta);
  void WaitForPublishes(Client& client);
  // Hands a PUBLISH's node publishes (already counted by TakePublishes) to
  // the backend; its reply fills its place once all are answered.
  void SendPublish(Client& client, PendingPublish&& publish);
  // A node publish has been answered; the PUBLISH's reply once all are.
  void OnPublishAnswer(PublishAnswer& answer);
  // Inside a batch of backend callbacks: client writes wait for its end.
  bool in_callback_batch() const { return in_callback_batch_; }
  void DeferFlush(std::shared_ptr<Client> client);
  // The gateway-wide input bound (max_total_input_bytes). A client reports
  // each change of the request bytes its parser holds.
  void InputChanged(size_t before, size_t after);
  // Whether `client` may read more now. If not, it waits, and is read from
  // again once the total drops below the bound or it gets its turn to
  // finish its request (Client::finishing()).
  bool MayRead(Client& client);
  // The gateway-wide output bound (max_total_output_bytes). A client
  // reports each change of its unsent output; past the bound, the clients
  // holding most are closed, by a handler posted to the loop, which first
  // writes the output waiting for the round's end (FlushDeferredClients),
  // so a client that reads is not closed for what it has not been sent.
  void OutputChanged(size_t before, size_t after);
  // `client` finished the request it had its turn for (or closed, or can
  // no longer read): the turn goes to the waiting client holding most.
  void InputTurnOver(Client& client);

 private:
  struct Command;
  friend struct CommandTable;

  void Accept();
  void Housekeeping();
  // On the loop: closes every client and the listener, drops the backend
  // subscriptions.
  void StopOnLoop();
  bool own_thread() const { return own_io_ != nullptr; }
  std::shared_ptr<Client> FindClient(uint64_t id);

  // Connection commands (commands.cc).
  void Ping(Client& c, Args& a);
  void Echo(Client& c, Args& a);
  void Quit(Client& c, Args& a);
  void Reset(Client& c, Args& a);
  void Auth(Client& c, Args& a);
  void Hello(Client& c, Args& a);
  void ClientCmd(Client& c, Args& a);
  void ClientList(Client& c, Args& a);
  void Select(Client& c, Args& a);
  void CommandCmd(Client& c, Args& a);
  void Info(Client& c, Args& a);
  bool CheckPassword(std::string_view user, std::string_view password);
  void WriteHello(Client& c);
  std::string ClientInfoLine(Client& c);

  // Pub/sub commands (pubsub_commands.cc).
  void Subscribe(Client& c, Args& a, Kind kind);
  void Unsubscribe(Client& c, Args& a, Kind kind);
  void Publish(Client& c, Args& a, Kind kind);
  // A PUBLISH over the publish limits: it waits as the client's pending_publish_.
  void WaitToPublish(Client& c, PendingPublish&& publish);
  void PubsubCmd(Client& c, Args& a);
  // Channels named "__peter.*" are the gateway's own topics: refused with
  // an error (true) so no client can read or forge the pattern directory.
  bool RefuseReserved(Client& c, Kind kind, const std::string& channel);
  void UnsubscribeAll(Client& c, Kind kind, bool reply);
  void UnsubscribeOne(Client& c, Kind kind, const std::string& name, bool reply);
  void WriteSubscriptionReply(Client& c, std::string_view verb, Kind kind,
                              const std::string* name);

  // Topics (topics.cc).
  std::string BackendTopic(Kind kind, std::string_view name) const;
  // The topic, subscribing the backend first if needed (nullptr on error).
  std::shared_ptr<Topic> AcquireTopic(Kind kind, const std::string& name);
  // Drops the topic if no client is a member or waiter.
  void MaybeDropTopic(const std::string& key);
  void OnTopicActive(std::weak_ptr<Topic> topic, bool active);
  void OnTopicMessage(const std::weak_ptr<Topic>& topic, std::string_view payload);
  void Deliver(const Topic& topic, std::string_view channel, std::string_view payload);
  // Deliver's encodings of one message, by protocol (RESP2, RESP3), reused
  // from message to message (their storage: no allocation per message).
  std::array<std::string, 2> message_frames_;
  bool frames_in_use_ = false;  // by a Deliver running now
  // A waiting SUBSCRIBE whose topics may all be ready now.
  void TryCompleteSubscribe(Client& c);
  void FailPendingSubscribe(Client& c, std::string error);
  size_t LocalMembers(Kind kind, std::string_view name) const;
  size_t LocalPatternReceivers(std::string_view channel) const;
  // This node's pattern topics that match `channel`: a range of topics_
  // (every pattern topic is keyed under kPatternTopicPrefix), so a PUBLISH
  // does not walk every channel the node holds.
  std::vector<const Topic*> LocalPatternsMatching(std::string_view channel) const;

  // Pattern directory (topics.cc).
  void StartPatternDirectory();
  void OnAnnouncement(std::string_view payload);
  // Announces the node's pattern set once the current command is done: one
  // announcement for a PSUBSCRIBE of many patterns.
  void ScheduleAnnounce();
  void Announce();
  std::vector<std::string> MatchingPatterns(std::string_view channel) const;
  // No pattern known anywhere (the usual case): MatchingPatterns finds none.
  bool NoPatternsKnown() const { return directory_.size() == 0 && pattern_topics_ == 0; }

  Backend& backend_;
  GatewayOptions options_;
  Counters counters_;
  // Our own loop (null on the backend's). Run by one thread only
  // (concurrency hint 1): Asio then queues what a handler posts to its own
  // loop without taking the scheduler's mutex. Other threads still post
  // through the mutex.
  std::unique_ptr<asio::io_context> own_io_;
  asio::io_context& io_;  // the loop we run on
  std::unique_ptr<char[]> read_buffer_ = std::make_unique_for_overwrite<char[]>(kReadBytes);
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer housekeeping_;
  std::shared_ptr<Poster> poster_;
  std::thread thread_;
  std::mutex stop_mu_;
  bool stopped_ = false;   // guarded by stop_mu_
  bool stopping_ = false;  // loop: StopOnLoop ran (handlers still queued return)
  uint16_t port_ = 0;
  absl::Time started_;

  std::shared_ptr<spdlog::logger> log_;
  LogLimit bound_warn_;

  uint64_t next_client_id_ = 1;
  std::map<uint64_t, std::shared_ptr<Client>> clients_;
  size_t publishes_in_flight_ = 0;
  std::vector<std::weak_ptr<Client>> publish_waiters_;
  bool in_callback_batch_ = false;
  std::vector<std::shared_ptr<Client>> deferred_flushes_;
  std::vector<std::shared_ptr<Client>> flushing_;  // keeps its capacity
  // Writes for the clients whose output waited for the round's end.
  void FlushDeferredClients();
  bool flush_posted_ = false;  // the handler that flushes deferred_flushes_
  // Expires with the server: a handler it posted that runs after it is gone
  // (Stop from the loop itself, then destroyed) does nothing.
  std::shared_ptr<char> alive_ = std::make_shared<char>();

  // Gateway-wide input bound: the total, the client whose turn it is to
  // finish its request while the total is at the bound (0: none) with its
  // bytes read as of the last housekeeping tick, and the paused clients.
  void ResumeInput();
  void CheckInputTurn();
  size_t input_bytes_ = 0;
  size_t output_bytes_ = 0;
  bool evicting_ = false;
  bool eviction_posted_ = false;
  void EvictForOutput();
  uint64_t input_turn_ = 0;
  uint64_t input_turn_progress_ = 0;
  std::vector<std::weak_ptr<Client>> input_waiters_;
  bool input_resume_posted_ = false;
  bool input_paused_ = false;  // reads were paused since the total last was below the bound
  // By backend topic; looked up by string_view too (no key built per PUBLISH).
  std::map<std::string, std::shared_ptr<Topic>, std::less<>> topics_;
  // How many of topics_ are pattern topics: with none (the usual case), a
  // PUBLISH and its answer skip the look-up of the pattern range, a descent
  // of topics_ that costs with every channel the node holds.
  size_t pattern_topics_ = 0;
  // topics_ hashed by the same keys (topics_'s own, stable until erased):
  // a PUBLISH's answer counts its channel's members without a descent of
  // topics_, whose string compares grow with the channels the node holds.
  absl::flat_hash_map<std::string_view, Topic*> topic_index_;

  // Patterns.
  uint64_t node_nonce_ = 0;
  uint64_t announce_sequence_ = 0;
  absl::Time last_announce_;
  bool announced_empty_ = true;
  bool announce_scheduled_ = false;
  PatternDirectory directory_;
  std::unique_ptr<BackendSubscription> patterns_subscription_;
};

}  // namespace peter::resp

#endif  // PETER_PUBSUB_RESP_SERVER_H_

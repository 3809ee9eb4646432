// The embedded node: NodeRuntime (overlay on sockets) + Scribe on its
// network thread + a delivery thread for user callbacks. See node_impl.h.
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/io_context.hpp"
#include "pubsub/node/node_impl.h"
#include "spdlog/spdlog.h"

namespace peter {
namespace node_internal {

NodeImpl& ImplOf(Node& node) { return *node.impl_; }

NodeImpl::NodeImpl(NodeOptions options) : options_(std::move(options)) {
  control_->impl = this;
}

NodeImpl::~NodeImpl() {
  {
    std::unique_lock lock(control_->mu);
    control_->cv.wait(lock, [&] { return control_->users == 0; });
    control_->impl = nullptr;
  }
  delivery_.Stop();
  runtime_.reset();  // joins the network thread: subs_ and scribe_ are ours now
  for (auto& [id, state] : subs_) {
    std::lock_guard lock(state->mu);
    state->closed = true;
    state->cv.notify_all();
  }
  subs_.clear();
  scribe_.reset();
}

absl::Status NodeImpl::Start() {
  pastry::net::RuntimeOptions r;
  r.listen = options_.listen;
  r.bootstrap = options_.bootstrap;
  r.advertise = options_.advertise;
  r.id = options_.id;
  r.incarnation_file = options_.incarnation_file;
  r.pastry = options_.overlay;
  r.security = options_.security;
  r.max_frame_bytes = options_.max_frame_bytes;
  r.max_send_queue_bytes = options_.max_send_queue_bytes;
  r.max_total_send_queue_bytes = options_.max_total_send_queue_bytes;
  r.max_total_receive_bytes = options_.max_total_receive_bytes;
  r.max_connections = options_.max_connections;
  r.reserved_outgoing_connections = options_.reserved_outgoing_connections;
  r.idle_timeout = options_.idle_timeout;
  r.send_stall_timeout = options_.send_stall_timeout;
  r.max_pending_incoming = options_.max_pending_incoming;
  r.pending_timeout = options_.pending_timeout;
  r.bootstrap_retry_for = options_.bootstrap_retry_for;
  r.logger = options_.logger;
  r.on_start = [this](pastry::Node& node) {
    scribe_ = std::make_unique<pubsub::Scribe>(
        [&](pastry::Application* app) {
          return node.RegisterApplication(pubsub::kScribeAppId, app);
        },
        options_.pubsub);
    scribe_->set_logger(options_.logger != nullptr ? options_.logger
                                                   : spdlog::default_logger());
  };
  absl::StatusOr<std::unique_ptr<pastry::net::NodeRuntime>> runtime =
      pastry::net::NodeRuntime::Start(std::move(r));
  if (!runtime.ok()) return runtime.status();
  runtime_ = std::move(*runtime);
  return absl::OkStatus();
}

bool NodeImpl::LoopStopped() { return runtime_->io_context().stopped(); }

absl::StatusOr<Subscription> NodeImpl::SubscribeOnNetworkThread(std::string topic,
                                                                MessageHandler handler,
                                                                SubscribeOptions options) {
  if (options.on_anycast) {
    return absl::InvalidArgumentError("SubscribeOnNetworkThread: no anycast handler");
  }
  return SubscribeWith(std::move(topic), std::move(handler), std::move(options), true);
}

absl::StatusOr<Subscription> NodeImpl::Subscribe(std::string topic, MessageHandler handler,
                                                 SubscribeOptions options) {
  return SubscribeWith(std::move(topic), std::move(handler), std::move(options), false);
}

absl::StatusOr<Subscription> NodeImpl::SubscribeWith(std::string topic, MessageHandler handler,
                                                     SubscribeOptions options,
                                                     bool inline_delivery) {
  if (!handler) return absl::InvalidArgumentError("Subscribe: the message handler is empty");
  auto state = std::make_shared<State>();
  state->inline_delivery = inline_delivery;
  state->control = control_;
  state->topic = std::move(topic);
  state->handler = std::move(handler);
  state->on_active = std::move(options.on_active);
  state->on_anycast = std::move(options.on_anycast);
  absl::Status status = Call<absl::Status>(
      [&] { return SubscribeOnLoop(state, options); },
      absl::FailedPreconditionError("the node has stopped"));
  if (!status.ok()) return status;
  return Subscription(std::move(state));
}

absl::Status NodeImpl::SubscribeOnLoop(const std::shared_ptr<State>& state,
                                       const SubscribeOptions& options) {
  pubsub::SubscribeOptions s;
  s.reliable = options.reliable;
  s.since_seq = options.since_seq;
  s.on_message = [this, state](const pubsub::Delivery& d) { Enqueue(state, d, false); };
  s.on_active = [this, state](bool active) { SetActive(state, active); };
  if (state->on_anycast) {
    // Declines while the handler is behind, so the work goes elsewhere.
    s.on_anycast = [this, state](const pubsub::Delivery& d) {
      if (state->pending.load(std::memory_order_relaxed) >= options_.max_pending_messages) {
        return false;
      }
      Enqueue(state, d, true);
      return true;
    };
  }
  absl::StatusOr<pubsub::SubscriptionId> id = scribe_->Subscribe(state->topic, std::move(s));
  if (!id.ok()) return id.status();
  state->scribe_id = *id;
  subs_[*id] = state;
  return absl::OkStatus();
}

void NodeImpl::Enqueue(const std::shared_ptr<State>& state, const pubsub::Delivery& d,
                       bool anycast) {
  if (state->on_loop) {
    if (!state->inline_cancelled) state->handler(Message{d.topic, d.seq, d.payload});
    return;
  }
  if (state->inline_delivery && !anycast) {
    std::lock_guard lock(state->inline_mu);
    if (!state->inline_cancelled) state->handler(Message{d.topic, d.seq, d.payload});
    return;
  }
  if (state->pending.load(std::memory_order_relaxed) >= options_.max_pending_messages) {
    state->dropped.fetch_add(1, std::memory_order_relaxed);
    slow_consumer_drops_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  state->pending.fetch_add(1, std::memory_order_relaxed);
  delivery_.Post(
      [state, anycast, topic = std::string(d.topic), seq = d.seq,
       payload = std::string(d.payload)] {
        state->pending.fetch_sub(1, std::memory_order_relaxed);
        const MessageHandler& handler = anycast ? state->on_anycast : state->handler;
        handler(Message{topic, seq, payload});
      },
      state.get());
}

void NodeImpl::SetActive(const std::shared_ptr<State>& state, bool active) {
  {
    std::lock_guard lock(state->mu);
    if (state->active == active) return;
    state->active = active;
    state->cv.notify_all();
  }
  if (!state->on_active) return;
  if (state->on_loop) {
    // Posted: never inside SubscribeHere, nor inside the node's work.
    runtime_->Post([state, active](pastry::Node&) {
      if (!state->inline_cancelled) state->on_active(active);
    });
    return;
  }
  delivery_.Post([state, active] { state->on_active(active); }, state.get());
}

void NodeImpl::Unsubscribe(const std::shared_ptr<State>& state) {
  if (state->on_loop) {
    auto drop = [this, state] {
      state->inline_cancelled = true;
      // Posted: the subscription's handler may be running (inside Scribe).
      runtime_->Post([this, state](pastry::Node&) {
        if (subs_.erase(state->scribe_id) > 0) {
          scribe_->Unsubscribe(state->scribe_id).IgnoreError();
        }
      });
      return true;
    };
    if (runtime_->OnNodeThread()) {
      drop();
    } else {
      Call<bool>(drop, false);  // waits: no handler runs once Cancel returns
    }
    return;
  }
  delivery_.Cancel(state.get());
  if (state->inline_delivery) {
    std::lock_guard lock(state->inline_mu);  // waits for a running handler
    state->inline_cancelled = true;
  }
  runtime_->Post([this, state](pastry::Node&) {
    if (subs_.erase(state->scribe_id) > 0) scribe_->Unsubscribe(state->scribe_id).IgnoreError();
  });
}

void NodeImpl::PublishOnLoop(std::string topic, pubsub::Payload payload,
                             pubsub::PublishCallback done) {
  // Scribe calls `done` itself (later, or before Publish returns when it
  // numbers the publish at once), unless the publish fails at once
  // (then it leaves `done` to us: no copy of the callback per publish).
  absl::Status status = scribe_->Publish(topic, std::move(payload), std::move(done));
  if (!status.ok()) done(status);
}

void NodeImpl::Publish(std::string topic, std::string payload, PublishCallback done) {
  runtime_->Post([this, topic = std::move(topic), payload = std::move(payload),
                  done = std::move(done)](pastry::Node&) mutable {
    PublishOnLoop(std::move(topic), std::move(payload),
                  [this, done = std::move(done)](absl::StatusOr<uint64_t> result) {
                    if (done) Deliver([done, result] { done(result); });
                  });
  });
}

void NodeImpl::PublishDoneOnNetworkThread(std::string topic, pubsub::Payload payload,
                                          pubsub::PublishCallback done) {
  bool first = false;
  {
    std::lock_guard lock(publish_mu_);
    first = publish_queue_.empty();
    publish_queue_.push_back(QueuedPublish{std::move(topic), std::move(payload), std::move(done)});
  }
  // Dropped with the queue if the node stops first, as a post would be.
  if (first) runtime_->Post([this](pastry::Node&) { RunQueuedPublishes(); });
}

void NodeImpl::RunQueuedPublishes() {
  {
    std::lock_guard lock(publish_mu_);
    publishing_.swap(publish_queue_);
  }
  for (QueuedPublish& p : publishing_) {
    PublishOnLoop(std::move(p.topic), std::move(p.payload), std::move(p.done));
  }
  publishing_.clear();
}

absl::StatusOr<Subscription> NodeImpl::SubscribeHere(std::string topic, MessageHandler handler,
                                                     std::function<void(bool)> on_active) {
  if (!handler) return absl::InvalidArgumentError("Subscribe: the message handler is empty");
  auto state = std::make_shared<State>();
  state->on_loop = true;
  state->control = control_;
  state->topic = std::move(topic);
  state->handler = std::move(handler);
  state->on_active = std::move(on_active);
  absl::Status status;
  if (!runtime_->RunHere([&](pastry::Node&) { status = SubscribeOnLoop(state, {}); })) {
    return absl::FailedPreconditionError(
        "subscribe from inside the node's work, or the node is stopping");
  }
  if (!status.ok()) return status;
  return Subscription(std::move(state));
}

void NodeImpl::PublishHere(std::string topic, pubsub::Payload payload,
                           pubsub::PublishCallback done) {
  here_queue_.push_back(QueuedPublish{std::move(topic), std::move(payload), std::move(done)});
  // Held: ReleaseHerePublishes runs them. Else a post to the loop from its
  // own thread: queued without a lock.
  if (here_queue_.size() == 1 && here_holds_ == 0) {
    runtime_->Post([this](pastry::Node&) { RunHerePublishes(); });
  }
}

void NodeImpl::ReleaseHerePublishes() {
  if (here_holds_ == 0 || --here_holds_ > 0 || here_queue_.empty()) return;
  if (runtime_->RunAsCall([this](pastry::Node&) { RunHerePublishes(); })) return;
  runtime_->Post([this](pastry::Node&) { RunHerePublishes(); });
}

void NodeImpl::RunHerePublishes() {
  here_publishing_.swap(here_queue_);
  for (QueuedPublish& p : here_publishing_) {
    PublishOnLoop(std::move(p.topic), std::move(p.payload), std::move(p.done));
  }
  here_publishing_.clear();
}

absl::StatusOr<uint64_t> NodeImpl::PublishAndWait(std::string topic, std::string payload) {
  // Completed on the network thread, so a handler on the delivery thread
  // may wait for it.
  auto promise = std::make_shared<std::promise<absl::StatusOr<uint64_t>>>();
  std::future<absl::StatusOr<uint64_t>> result = promise->get_future();
  runtime_->Post([this, promise, topic = std::move(topic),
                  payload = std::move(payload)](pastry::Node&) mutable {
    PublishOnLoop(std::move(topic), std::move(payload),
                  [promise](absl::StatusOr<uint64_t> r) { promise->set_value(std::move(r)); });
  });
  try {
    return result.get();
  } catch (const std::future_error&) {
    return absl::CancelledError("the node has stopped");
  }
}

void NodeImpl::Anycast(std::string topic, std::string payload, AnycastCallback done) {
  runtime_->Post([this, topic = std::move(topic), payload = std::move(payload),
                  done = std::move(done)](pastry::Node&) mutable {
    auto complete = [this, done](absl::StatusOr<pastry::NodeHandle> result) {
      if (done) Deliver([done, result] { done(result); });
    };
    absl::Status status = scribe_->Anycast(topic, std::move(payload), complete);
    if (!status.ok()) complete(status);
  });
}

PubSubStats NodeImpl::Stats() {
  PubSubStats s = Call<PubSubStats>(
      [this] {
        PubSubStats out;
        const pubsub::ScribeStats& st = scribe_->stats();
        out.topics = scribe_->topic_count();
        out.roots = scribe_->root_count();
        out.subscriptions = subs_.size();
        out.published = st.published;
        out.forwarded = st.data_forwarded;
        out.delivered = st.delivered;
        out.duplicates = st.duplicates;
        out.gaps_repaired = st.gaps_filled;
        out.gaps_skipped = st.skipped;
        out.malformed = st.malformed;
        out.publish_timeouts = st.publish_timeouts;
        out.publish_acks_waiting_replicas = st.publish_acks_waiting_replicas;
        out.publish_acks_unconfirmed = st.publish_acks_unconfirmed;
        out.lease_waits = st.lease_waits;
        out.lone_root_waits = st.lone_root_waits;
        out.replica_conflicts = st.replica_conflicts;
        out.replica_tentative_replaced = st.replica_tentative_replaced;
        out.numbers_withdrawn = st.numbers_withdrawn;
        out.publishes_held_for_order = st.publishes_held_for_order;
        out.publishes_order_forced = st.publishes_order_forced;
        out.publishes_held_for_window = st.publishes_held_for_window;
        out.publishes_window_forced = st.publishes_window_forced;
        out.replay_bytes = st.replay_bytes;
        out.replay_evicted_for_bytes = st.replay_evicted_for_bytes;
        out.leases_refused = st.leases_refused;
        out.replica_states_sent = st.replica_states_sent;
        out.replica_sends_limited = st.replica_sends_limited;
        out.replica_acks_ignored = st.replica_acks_ignored;
        out.bundles_sent = st.bundles_sent;
        out.bundled_messages = st.bundled_messages;
        out.replicate_lists_sent = st.replicate_lists_sent;
        out.replicates_listed = st.replicates_listed;
        out.replica_ack_lists_sent = st.replica_ack_lists_sent;
        out.replica_acks_listed = st.replica_acks_listed;
        out.message_lists_sent = st.message_lists_sent;
        out.messages_listed = st.messages_listed;
        out.message_runs_sent = st.message_runs_sent;
        out.messages_in_runs = st.messages_in_runs;
        out.anycasts_accepted = st.anycasts_accepted;
        out.anycasts_failed = st.anycasts_failed;
        out.pushdowns = st.pushdowns;
        out.pushdowns_limited = st.pushdowns_limited;
        out.topics_refused = st.topics_refused;
        out.topics_forgotten = st.topics_forgotten;
        out.joins_refused = st.joins_refused;
        out.messages_dropped = st.dropped;
        out.counters.joins_sent = st.joins_sent;
        out.counters.children_adopted = st.children_adopted;
        out.counters.loops_refused = st.loops_refused;
        out.counters.parent_failures = st.parent_failures;
        out.counters.children_expired = st.children_expired;
        out.counters.stale_parents_left = st.stale_parents_left;
        out.counters.repairs_requested = st.repairs_requested;
        out.counters.repairs_served = st.repairs_served;
        out.counters.handovers = st.handovers;
        out.counters.roots_taken = st.roots_taken;
        out.counters.moves = st.moves;
        out.counters.rival_roots_merged = st.rival_roots_merged;
        out.counters.publish_acks_sent = st.publish_acks_sent;
        out.counters.publish_acks_received = st.publish_acks_received;
        out.counters.publish_resends = st.publish_resends;
        out.counters.publishes_deduplicated = st.publishes_deduplicated;
        out.counters.publishes_rerouted = st.publishes_rerouted;
        out.counters.publishes_passed_on = st.publishes_passed_on;
        out.counters.publish_acks_abandoned = st.publish_acks_abandoned;
        out.counters.publishes_numbered_at_once = st.publishes_numbered_at_once;
        out.counters.root_cache_hits = st.root_cache_hits;
        out.counters.root_cache_misses = st.root_cache_misses;
        out.counters.replica_resends = st.replica_resends;
        out.counters.replicate_batches = st.replicate_batches;
        out.counters.replica_stale_terms = st.replica_stale_terms;
        out.counters.numberings_dropped = st.numberings_dropped;
        out.counters.anycasts_sent = st.anycasts_sent;
        out.counters.anycasts_visited = st.anycasts_visited;
        for (const pubsub::TopicInfo& t : scribe_->Topics()) out.children += t.child_count;
        return out;
      },
      PubSubStats{});
  s.slow_consumer_drops = slow_consumer_drops_.load(std::memory_order_relaxed);
  return s;
}

std::vector<TopicStatus> NodeImpl::Topics() {
  return Call<std::vector<TopicStatus>>(
      [this] {
        std::vector<TopicStatus> out;
        for (const pubsub::TopicInfo& t : scribe_->Topics()) {
          out.push_back(TopicStatus{t.id_hex, t.name, t.is_root, t.attached, t.parent_id_hex,
                                    t.child_count, t.next_seq, t.last_seq,
                                    t.local_subscribers});
        }
        return out;
      },
      {});
}

}  // namespace node_internal

// ---- Node -------------------------------------------------------------------

Node::Node(std::unique_ptr<node_internal::NodeImpl> impl) : impl_(std::move(impl)) {}
Node::~Node() = default;

absl::StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  auto impl = std::make_unique<node_internal::NodeImpl>(std::move(options));
  if (absl::Status s = impl->Start(); !s.ok()) return s;
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

absl::Status Node::WaitUntilActive(absl::Duration timeout) {
  return impl_->runtime().WaitUntilActive(timeout);
}
void Node::Leave(absl::Duration timeout) { impl_->runtime().Leave(timeout); }
pastry::NodeHandle Node::self() const { return impl_->runtime().self(); }
std::string Node::listen_address() const {
  return impl_->runtime().listen_endpoint().ToString();
}
absl::StatusOr<Subscription> Node::Subscribe(std::string topic, MessageHandler handler,
                                             SubscribeOptions options) {
  return impl_->Subscribe(std::move(topic), std::move(handler), std::move(options));
}
void Node::Publish(std::string topic, std::string payload, PublishCallback done) {
  impl_->Publish(std::move(topic), std::move(payload), std::move(done));
}
absl::StatusOr<uint64_t> Node::PublishAndWait(std::string topic, std::string payload) {
  return impl_->PublishAndWait(std::move(topic), std::move(payload));
}
void Node::Anycast(std::string topic, std::string payload, AnycastCallback done) {
  impl_->Anycast(std::move(topic), std::move(payload), std::move(done));
}
PubSubStats Node::pubsub_stats() { return impl_->Stats(); }
std::vector<TopicStatus> Node::topics() { return impl_->Topics(); }

// ---- Subscription -----------------------------------------------------------

Subscription::Subscription(Subscription&& other) noexcept = default;
Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    Cancel();
    state_ = std::move(other.state_);
  }
  return *this;
}
Subscription::~Subscription() { Cancel(); }

void Subscription::Cancel() {
  if (state_ == nullptr) return;
  std::shared_ptr<State> state = std::move(state_);
  node_internal::Control& control = *state->control;
  node_internal::NodeImpl* impl = nullptr;
  {
    std::lock_guard lock(control.mu);
    impl = control.impl;
    if (impl != nullptr) ++control.users;
  }
  if (impl != nullptr) {
    impl->Unsubscribe(state);
    std::lock_guard lock(control.mu);
    --control.users;
    control.cv.notify_all();
  }
  std::lock_guard lock(state->mu);
  state->closed = true;
  state->cv.notify_all();
}

const std::string& Subscription::topic() const {
  static const std::string kNone;
  return state_ == nullptr ? kNone : state_->topic;
}

bool Subscription::active() const {
  if (state_ == nullptr) return false;
  std::lock_guard lock(state_->mu);
  return state_->active && !state_->closed;
}

absl::Status Subscription::WaitUntilActive(absl::Duration timeout) const {
  if (state_ == nullptr) return absl::FailedPreconditionError("no subscription");
  std::unique_lock lock(state_->mu);
  state_->cv.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                      [&] { return state_->active || state_->closed; });
  if (state_->closed) return absl::CancelledError("the subscription or its node has stopped");
  if (state_->active) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrCat(
      "subscription to '", state_->topic, "' not active after ", absl::FormatDuration(timeout)));
}

uint64_t Subscription::dropped() const {
  return state_ == nullptr ? 0 : state_->dropped.load(std::memory_order_relaxed);
}

}  // namespace peter

#include "pastry/sim/network.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

#include "pastry/wire/codec.h"

namespace peter::pastry::sim {
namespace {

constexpr uint16_t kPort = 4000;
constexpr uint32_t kLoopbackNet = 0x7F000000;
constexpr int kMaxHosts = (1 << 24) - 2;

uint64_t MixDigest(uint64_t digest, uint64_t v) {
  digest ^= v + 0x9E3779B97F4A7C15ULL + (digest << 6) + (digest >> 2);
  return digest * 0xBF58476D1CE4E5B9ULL;
}

}  // namespace

Network::Network(NetworkConfig config, std::unique_ptr<Topology> topology)
    : config_(std::move(config)),
      endpoint_prefix_(EndpointOf(0)),
      topology_(std::move(topology)),
      clock_(config_.start),
      rng_(Rng::Derive(config_.seed, 0)) {
  if (topology_ == nullptr) {
    topology_ = std::make_unique<PlaneTopology>(config_.plane,
                                                Rng::Derive(config_.seed, 1));
  }
  assert(EndpointOf(0x123455).ip[13] == 0x12 &&
         EndpointOf(0x123455).ip[15] == 0x56 && "unexpected endpoint layout");
}

Network::~Network() = default;

Endpoint Network::EndpointOf(int i) {
  return Endpoint::FromIpv4(kLoopbackNet | static_cast<uint32_t>(i + 1),
                            kPort);
}

int Network::IndexOf(const Endpoint& endpoint) const {
  // Our endpoints differ from EndpointOf(0) only in the last three bytes of
  // the address, which hold index + 1 (checked in the constructor).
  if (endpoint.port != kPort ||
      std::memcmp(endpoint.ip.data(), endpoint_prefix_.ip.data(), 13) != 0) {
    return -1;
  }
  int i = ((endpoint.ip[13] << 16) | (endpoint.ip[14] << 8) | endpoint.ip[15]) -
          1;
  return i >= 0 && i < size() ? i : -1;
}

HostContext Network::ContextFor(int i) {
  HostContext ctx;
  ctx.index = i;
  ctx.endpoint = EndpointOf(i);
  ctx.incarnation = uint64_t{incarnation_[i]} + 1;
  ctx.env.transport = &transports_[i];
  ctx.env.clock = &clock_;
  ctx.env.seed = Rng::Derive(config_.seed, (uint64_t{incarnation_[i]} << 32) |
                                               static_cast<uint32_t>(i + 2));
  ctx.env.logger = config_.logger;
  if (config_.proximity_from_topology) ctx.env.proximity = &proximity_;
  return ctx;
}

int32_t Network::TopologyProximity::RoundTripUs(const Endpoint& a,
                                                const Endpoint& b) const {
  int ia = network_->IndexOf(a);
  int ib = network_->IndexOf(b);
  if (ia < 0 || ib < 0) return -1;
  return static_cast<int32_t>(2 * absl::ToInt64Microseconds(network_->Delay(ia, ib)));
}

int Network::AddHost(HostFactory make) {
  int i = size();
  if (i >= kMaxHosts) std::abort();  // the endpoint scheme's limit
  topology_->AddNode(i);
  transports_.emplace_back(this, i);
  wake_at_.push_back(kNever);
  incarnation_.push_back(0);
  backlog_.emplace_back();
  hosts_.push_back(nullptr);
  hosts_[i] = make(ContextFor(i));
  Reschedule(i);
  return i;
}

void Network::Crash(int i) {
  if (!alive(i)) return;
  graveyard_.push_back(std::move(hosts_[i]));
  wake_at_[i] = kNever;
  // What waits for it is dropped as Serve hands it over (incarnation).
  backlog_[i].stalled_until = backlog_[i].slow_until = 0;
  ++incarnation_[i];
}

void Network::Restart(int i, HostFactory make) {
  hosts_[i] = make(ContextFor(i));
  Reschedule(i);
}

void Network::Reschedule(int i) {
  if (!alive(i)) return;
  SimTime at = clock_.ToSim(hosts_[i]->NextDeadline());
  if (at == kNever) return;
  ScheduleWake(i, std::max(at, clock_.now_ns()));
}

void Network::ScheduleWake(int i, SimTime at) {
  if (at >= wake_at_[i]) return;  // an earlier wake-up is already queued
  wake_at_[i] = at;
  queue_.Push(at, EventKind::kWake, static_cast<uint32_t>(i), 0);
}

void Network::Schedule(absl::Time at, std::function<void()> fn) {
  uint32_t slot;
  if (free_callbacks_.empty()) {
    slot = static_cast<uint32_t>(callbacks_.size());
    callbacks_.emplace_back();
  } else {
    slot = free_callbacks_.back();
    free_callbacks_.pop_back();
  }
  callbacks_[slot] = std::move(fn);
  SimTime t = std::max(clock_.ToSim(at), clock_.now_ns());
  queue_.Push(t, EventKind::kCallback, 0, slot);
}

void Network::Send(int from, const Endpoint& to, const Envelope& envelope) {
  int type = static_cast<int>(envelope.body.index());
  ++stats_.sent;
  ++stats_.sent_by_type[type];
  int dst = IndexOf(to);
  if (dst < 0) {
    ++stats_.dropped_unknown;
    return;
  }
  if (!alive(dst)) {
    ++stats_.dropped_dead;
    return;
  }
  if (filter_ && filter_(from, dst, envelope)) {
    ++stats_.dropped_filter;
    return;
  }
  if (hold_ && hold_(from, dst, envelope)) {
    held_.push_back(Held{from, incarnation_[from], dst, incarnation_[dst], envelope});
    return;
  }
  Transmit(from, dst, envelope);
}

void Network::Transmit(int from, int dst, const Envelope& envelope) {
  if (config_.loss_rate > 0 && rng_.Bernoulli(config_.loss_rate)) {
    ++stats_.dropped_loss;
    return;
  }
  SimTime at = clock_.now_ns() + SampleDelay(from, dst);
  uint32_t slot = StoreMessage(from, dst, envelope);
  queue_.Push(at, EventKind::kMessage, static_cast<uint32_t>(dst), slot);
}

void Network::ReleaseHeld() {
  std::vector<Held> held = std::move(held_);
  held_.clear();
  for (const Held& h : held) {
    // A sender that crashed meanwhile took its connections' buffers along;
    // a receiver that did reset the connection.
    if (!alive(h.from) || h.incarnation != incarnation_[h.from]) continue;
    if (!alive(h.to) || h.to_incarnation != incarnation_[h.to]) {
      ++stats_.dropped_dead;
      continue;
    }
    // Still cut (overlapping partitions): held again, in order.
    if (hold_ && hold_(h.from, h.to, h.envelope)) {
      held_.push_back(h);
      continue;
    }
    Transmit(h.from, h.to, h.envelope);
  }
}

SimTime Network::SampleDelay(int from, int to) {
  SimTime d = absl::ToInt64Nanoseconds(topology_->Delay(from, to));
  if (config_.jitter > absl::ZeroDuration()) {
    uint64_t j = static_cast<uint64_t>(absl::ToInt64Nanoseconds(config_.jitter));
    d += static_cast<SimTime>(rng_.Below(j + 1));
  }
  return d;
}

uint32_t Network::StoreMessage(int from, int to, const Envelope& envelope) {
  uint32_t slot;
  if (free_messages_.empty()) {
    slot = static_cast<uint32_t>(messages_.size());
    messages_.emplace_back();
  } else {
    slot = free_messages_.back();
    free_messages_.pop_back();
  }
  InFlight& in = messages_[slot];
  in.from = from;
  in.incarnation = incarnation_[to];
  if (config_.through_wire) {
    in.frame = wire::Encode(envelope);
    stats_.bytes_sent += in.frame.size();
    stats_.bytes_by_type[envelope.body.index()] += in.frame.size();
  } else {
    in.envelope = envelope;
  }
  return slot;
}

bool Network::Step(SimTime limit) {
  if (queue_.NextTime() > limit) return false;
  Event e = queue_.Pop();
  ++stats_.events;
  clock_.Set(e.at);
  switch (e.kind()) {
    case EventKind::kMessage:
      Deliver(e);
      break;
    case EventKind::kWake:
      Wake(e);
      break;
    case EventKind::kCallback:
      RunCallback(e);
      break;
  }
  graveyard_.clear();
  return true;
}

void Network::Deliver(const Event& e) {
  const int to = static_cast<int>(e.target);
  Backlog& b = backlog_[to];
  if (b.stalled_until > clock_.now_ns() || b.slow_until > clock_.now_ns() ||
      !b.slots.empty()) {
    b.slots.push_back(e.slot);
    ScheduleServe(to);
    return;
  }
  DeliverSlot(to, e.slot);
}

void Network::DeliverSlot(int to, uint32_t slot) {
  InFlight& in = messages_[slot];  // stable while the host sends more
  if (!alive(to) || in.incarnation != incarnation_[to]) {
    ++stats_.dropped_dead;
  } else if (!config_.through_wire) {
    HandTo(to, in.from, in.envelope);
  } else {
    absl::StatusOr<Envelope> decoded = wire::Decode(in.frame);
    if (decoded.ok()) {
      HandTo(to, in.from, *decoded);
    } else {
      ++stats_.dropped_decode;
    }
  }
  free_messages_.push_back(slot);
}

void Network::HandTo(int to, int from, const Envelope& envelope) {
  int type = static_cast<int>(envelope.body.index());
  ++stats_.delivered;
  ++stats_.delivered_by_type[type];
  trace_digest_ = MixDigest(trace_digest_, static_cast<uint64_t>(clock_.now_ns()));
  trace_digest_ =
      MixDigest(trace_digest_, (uint64_t(from) << 32) | uint32_t(to));
  trace_digest_ = MixDigest(trace_digest_, static_cast<uint64_t>(type));
  if (observer_) observer_(Delivery{clock_.Now(), from, to, envelope});
  hosts_[to]->HandleMessage(envelope);
  Reschedule(to);
}

void Network::Wake(const Event& e) {
  int i = static_cast<int>(e.target);
  if (!alive(i) || wake_at_[i] != e.at) return;  // stale
  wake_at_[i] = kNever;
  if (backlog_[i].stalled_until > e.at) {  // its timers wait for the stall's end
    ScheduleWake(i, backlog_[i].stalled_until);
    return;
  }
  ++stats_.ticks;
  hosts_[i]->Tick();
  if (!alive(i)) return;
  // After a Tick nothing should be due at this instant; if the host says
  // otherwise, wake it a nanosecond later rather than spin at one time.
  SimTime at = clock_.ToSim(hosts_[i]->NextDeadline());
  if (at != kNever) ScheduleWake(i, std::max(at, e.at + 1));
}

void Network::Stall(int i, absl::Time until) {
  Backlog& b = backlog_[i];
  b.stalled_until = std::max(b.stalled_until, clock_.ToSim(until));
}

void Network::Slow(int i, absl::Duration per_message, absl::Time until) {
  Backlog& b = backlog_[i];
  b.slow_until = clock_.ToSim(until);
  b.per_message = absl::ToInt64Nanoseconds(per_message);
}

void Network::ScheduleServe(int i) {
  Backlog& b = backlog_[i];
  if (b.serving) return;
  b.serving = true;
  const SimTime at = std::max({clock_.now_ns(), b.stalled_until, b.busy_until});
  Schedule(clock_.ToTime(at), [this, i] { Serve(i); });
}

// Hands host i one waiting message: the oldest of a sender drawn in
// proportion to what each has waiting (a random merge of the per-sender
// queues), then waits per_message while the host is slow.
void Network::Serve(int i) {
  Backlog& b = backlog_[i];
  b.serving = false;
  if (b.slots.empty()) return;
  if (b.stalled_until > clock_.now_ns()) {  // stalled again meanwhile
    ScheduleServe(i);
    return;
  }
  const int sender = messages_[b.slots[rng_.Below(b.slots.size())]].from;
  auto first = std::find_if(b.slots.begin(), b.slots.end(),
                            [&](uint32_t slot) { return messages_[slot].from == sender; });
  const uint32_t slot = *first;
  b.slots.erase(first);
  b.busy_until = clock_.now_ns() + (b.slow_until > clock_.now_ns() ? b.per_message : 0);
  DeliverSlot(i, slot);
  if (!backlog_[i].slots.empty()) ScheduleServe(i);  // `b` may have moved
}

void Network::RunCallback(const Event& e) {
  std::function<void()> fn = std::move(callbacks_[e.slot]);
  callbacks_[e.slot] = nullptr;
  free_callbacks_.push_back(e.slot);
  fn();
}

void Network::RunUntil(absl::Time t) {
  SimTime limit = clock_.ToSim(t);
  while (Step(limit)) {
  }
  if (limit != kNever && limit > clock_.now_ns()) clock_.Set(limit);
}

bool Network::RunUntil(const std::function<bool()>& pred, absl::Duration max,
                       absl::Duration check_every) {
  if (pred()) return true;
  SimTime end = clock_.ToSim(Now() + max);
  SimTime every = std::max<SimTime>(0, absl::ToInt64Nanoseconds(check_every));
  SimTime last_check = clock_.now_ns();
  while (Step(end)) {
    if (clock_.now_ns() - last_check < every) continue;
    last_check = clock_.now_ns();
    if (pred()) return true;
  }
  if (end != kNever && end > clock_.now_ns()) clock_.Set(end);
  return pred();
}

}  // namespace peter::pastry::sim

// SUBSCRIBE PSUBSCRIBE SSUBSCRIBE, their UNSUBSCRIBEs, PUBLISH SPUBLISH and
// PUBSUB. Subscriptions are confirmed only once the cluster has the node on
// the topic's tree; PUBLISH answers once the topic's root accepted it, with
// the number of this node's clients that receive it (as Redis Cluster).
// PUBLISH does not hold up the client's next commands: its reply takes its
// place in the client's output when the root's acknowledgement arrives.
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "pubsub/resp/client.h"
#include "pubsub/resp/glob.h"
#include "pubsub/resp/server.h"

namespace peter::resp {
namespace {

std::string_view Verb(Kind kind, bool subscribe) {
  switch (kind) {
    case Kind::kChannel: return subscribe ? "subscribe" : "unsubscribe";
    case Kind::kPattern: return subscribe ? "psubscribe" : "punsubscribe";
    case Kind::kShard: return subscribe ? "ssubscribe" : "sunsubscribe";
  }
  return "";
}

}  // namespace

void Server::WriteSubscriptionReply(Client& c, std::string_view verb, Kind kind,
                                    const std::string* name) {
  ReplyWriter w = c.writer();
  w.Push(3);
  w.Bulk(verb);
  if (name != nullptr) {
    w.Bulk(*name);
  } else {
    w.Null();
  }
  size_t count = kind == Kind::kShard ? c.shard_channels_.size()
                                      : c.channels_.size() + c.patterns_.size();
  w.Integer(static_cast<long long>(count));
  // A message must not reach the client before its subscription's reply.
  c.FencePushes();
}

bool Server::RefuseReserved(Client& c, Kind kind, const std::string& channel) {
  if (kind != Kind::kChannel || channel.rfind(kReservedPrefix, 0) != 0) return false;
  counters_.reserved_rejections++;
  c.writer().Error(absl::StrCat("ERR channel names starting with '", std::string(kReservedPrefix),
                                "' are reserved by Peter"));
  return true;
}

void Server::Subscribe(Client& c, Args& a, Kind kind) {
  for (size_t i = 1; i < a.size(); ++i) {
    if (RefuseReserved(c, kind, a[i])) return;
  }
  // Refused as a whole (nothing subscribed) if the names new to this client
  // would take it past its limit.
  std::set<std::string> fresh;
  for (size_t i = 1; i < a.size(); ++i) {
    if (!c.set_for(kind).contains(a[i])) fresh.insert(a[i]);
  }
  const size_t held = c.channels_.size() + c.patterns_.size() + c.shard_channels_.size();
  if (held + fresh.size() > options_.max_subscriptions_per_client) {
    counters_.subscription_limit_rejections++;
    WarnBound(absl::StrCat("a client asked for ", held + fresh.size(),
                           " subscriptions, over max_subscriptions_per_client (",
                           options_.max_subscriptions_per_client, ")"));
    c.writer().Error(absl::StrCat("ERR max subscriptions per client (",
                                  options_.max_subscriptions_per_client, ") reached"));
    return;
  }
  PendingSubscribe pending{kind, std::vector<std::string>(a.begin() + 1, a.end())};
  for (const std::string& name : pending.names) {
    std::shared_ptr<Topic> topic = AcquireTopic(kind, name);
    if (topic == nullptr) {
      c.pending_subscribe_ = std::move(pending);
      return FailPendingSubscribe(
          c, absl::StrCat("ERR cannot subscribe to '", name, "': the node refused it"));
    }
    // Counted once per topic: a name given twice waits once.
    if (topic->waiters.insert(c.id()).second && !topic->counted_ready) ++pending.unready;
  }
  c.pending_subscribe_ = std::move(pending);
  TryCompleteSubscribe(c);
  if (!c.pending_subscribe_) return;
  c.Block();
  c.pending_timer_.expires_after(absl::ToChronoNanoseconds(options_.subscribe_timeout));
  c.pending_timer_.async_wait([this, weak = c.weak_from_this()](const std::error_code& ec) {
    auto client = weak.lock();
    if (ec || !client || client->closed() || !client->pending_subscribe_) return;
    counters_.subscribe_timeouts++;
    FailPendingSubscribe(
        *client, absl::StrCat("ERR subscription not confirmed by the cluster within ",
                              absl::ToInt64Milliseconds(options_.subscribe_timeout), " ms"));
  });
}

void Server::TryCompleteSubscribe(Client& c) {
  if (!c.pending_subscribe_ || c.pending_subscribe_->unready != 0) return;
  PendingSubscribe done = std::move(*c.pending_subscribe_);
  c.pending_subscribe_.reset();
  c.pending_timer_.cancel();
  for (const std::string& name : done.names) {
    Topic& topic = *topics_[BackendTopic(done.kind, name)];
    topic.waiters.erase(c.id());
    topic.members.insert(c.id());
    c.set_for(done.kind).insert(name);
    WriteSubscriptionReply(c, Verb(done.kind, true), done.kind, &name);
  }
  c.Flush();
  c.Resume();
}

void Server::FailPendingSubscribe(Client& c, std::string error) {
  if (!c.pending_subscribe_) return;
  PendingSubscribe failed = std::move(*c.pending_subscribe_);
  c.pending_subscribe_.reset();
  c.pending_timer_.cancel();
  for (const std::string& name : failed.names) {
    std::string key = BackendTopic(failed.kind, name);
    auto it = topics_.find(key);
    if (it == topics_.end()) continue;
    it->second->waiters.erase(c.id());
    MaybeDropTopic(key);
  }
  if (!error.empty() && !c.closed()) {
    c.writer().Error(error);
    c.Flush();
  }
  c.Resume();
}

void Server::Unsubscribe(Client& c, Args& a, Kind kind) {
  if (a.size() == 1) return UnsubscribeAll(c, kind, true);
  for (size_t i = 1; i < a.size(); ++i) UnsubscribeOne(c, kind, a[i], true);
}

void Server::UnsubscribeAll(Client& c, Kind kind, bool reply) {
  std::set<std::string> names = c.set_for(kind);
  if (names.empty() && reply) WriteSubscriptionReply(c, Verb(kind, false), kind, nullptr);
  for (const std::string& name : names) UnsubscribeOne(c, kind, name, reply);
}

void Server::UnsubscribeOne(Client& c, Kind kind, const std::string& name, bool reply) {
  if (c.set_for(kind).erase(name) > 0) {
    std::string key = BackendTopic(kind, name);
    auto it = topics_.find(key);
    if (it != topics_.end()) {
      it->second->members.erase(c.id());
      MaybeDropTopic(key);
    }
  }
  if (reply) WriteSubscriptionReply(c, Verb(kind, false), kind, &name);
}

void Server::Publish(Client& c, Args& a, Kind kind) {
  if (RefuseReserved(c, kind, a[1])) return;
  counters_.published++;
  // Lent by the parser (a view into its buffer, valid while this runs).
  const std::string_view message = c.argument(a, 2);
  // Asked here first: the usual PUBLISH makes no call for its patterns.
  std::vector<std::string> patterns;
  if (kind == Kind::kChannel && !NoPatternsKnown()) patterns = MatchingPatterns(a[1]);
  // A channel is its own backend topic.
  std::string topic = kind == Kind::kChannel ? a[1] : BackendTopic(kind, a[1]);
  // The payload's one copy, from the parser's buffer into the block the
  // node keeps and shares (its pending publish, the PublishMsg, the replay
  // buffer).
  pubsub::Payload payload(message);
  if (patterns.empty()) {
    // The usual PUBLISH, one node publish: sent from here unless the limits
    // hold it, with no PendingPublish (its vector of sends) built and moved.
    const uint64_t ticket = c.ReserveReply();
    if (c.TakePublishes(1)) {
      backend_.Publish(std::move(topic), std::move(payload),
                       poster_->AnswerCallback(PublishAnswer{kind, std::move(a[1]), ticket,
                                                             c.weak_from_this(), 1, 0, nullptr,
                                                             absl::OkStatus()}));
      return;
    }
    PendingPublish publish{kind, std::move(a[1]), {}, ticket};
    publish.sends.emplace_back(std::move(topic), std::move(payload));
    return WaitToPublish(c, std::move(publish));
  }
  PendingPublish publish{kind, {}, {}, 0};
  publish.sends.emplace_back(std::move(topic), std::move(payload));
  for (const std::string& pattern : patterns) {
    counters_.pattern_publishes++;
    publish.sends.emplace_back(PatternTopic(pattern), EncodePatternMessage(a[1], message));
  }
  publish.channel = std::move(a[1]);
  publish.ticket = c.ReserveReply();
  if (c.TakePublishes(publish.sends.size())) return SendPublish(c, std::move(publish));
  WaitToPublish(c, std::move(publish));
}

void Server::WaitToPublish(Client& c, PendingPublish&& publish) {
  // Its reply keeps its place; it and the client's later commands wait.
  counters_.publish_limit_waits++;
  c.pending_publish_ = std::move(publish);
}

void Server::SendPublish(Client& c, PendingPublish&& publish) {
  const size_t cost = publish.sends.size();
  std::shared_ptr<PublishTally> tally;
  if (cost > 1) {
    tally = std::make_shared<PublishTally>();
    tally->outstanding = cost;
  }
  for (size_t i = 0; i < cost; ++i) {
    // The last answer takes the channel's name, the others copy it.
    PublishAnswer answer{publish.kind, i + 1 == cost ? std::move(publish.channel) : publish.channel,
                         publish.ticket, c.weak_from_this(), cost, i, tally, absl::OkStatus()};
    // Runs once (on the backend's thread): the answer moves on to the loop.
    backend_.Publish(std::move(publish.sends[i].first), std::move(publish.sends[i].second),
                     poster_->AnswerCallback(std::move(answer)));
  }
}

void Server::OnPublishAnswer(PublishAnswer& a) {
  if (!a.status.ok()) counters_.backend_errors++;
  absl::Status primary;
  size_t copies_failed = 0;
  absl::Status copy_error;
  if (a.tally == nullptr) {
    primary = std::move(a.status);
  } else {
    PublishTally& t = *a.tally;
    if (!a.status.ok() && a.index > 0 && t.copies_failed++ == 0) t.copy_error = a.status;
    if (a.index == 0) t.primary = a.status;
    if (--t.outstanding > 0) return;
    primary = t.primary;
    copies_failed = t.copies_failed;
    copy_error = t.copy_error;
  }
  auto client = a.client.lock();
  if (client && !client->closed()) client->PublishesAnswered(a.cost);
  // Counted until the node has answered, whether or not the client is
  // still there: a client that closes does not free the node.
  AddPublishInFlight(-static_cast<long>(a.cost));
  if (!client) return;
  std::string* place = client->ReplyPlace(a.ticket);
  if (place == nullptr) return;
  ReplyWriter w(place, client->protocol_);
  if (!primary.ok()) {
    w.Error(absl::StrCat("ERR publish failed: ", primary.message()));
  } else if (copies_failed > 0) {
    // A pattern subscriber would miss a message reported published: an
    // error, though the channel's subscribers have it (a retry may repeat
    // it to them).
    w.Error(absl::StrCat("ERR publish accepted for the channel but failed for ", copies_failed,
                         " of ", a.cost - 1, " matching patterns: ", copy_error.message()));
  } else {
    size_t receivers = LocalMembers(a.kind, a.channel);
    if (a.kind == Kind::kChannel && pattern_topics_ > 0) {
      receivers += LocalPatternReceivers(a.channel);
    }
    w.Integer(static_cast<long long>(receivers));
  }
  client->CompleteReply(a.ticket);
}

void Server::PubsubCmd(Client& c, Args& a) {
  ReplyWriter w = c.writer();
  std::string sub = absl::AsciiStrToLower(a[1]);
  if (sub == "channels" || sub == "shardchannels") {
    if (a.size() > 3) {
      return w.Error(absl::StrCat("ERR unknown subcommand or wrong number of arguments for '",
                                  a[1], "'. Try PUBSUB HELP."));
    }
    Kind kind = sub == "channels" ? Kind::kChannel : Kind::kShard;
    std::vector<const std::string*> names;
    for (const auto& [key, topic] : topics_) {
      if (topic->kind != kind || topic->members.empty()) continue;
      if (a.size() == 3 && !GlobMatch(a[2], topic->name)) continue;
      names.push_back(&topic->name);
    }
    w.Array(names.size());
    for (const std::string* name : names) w.Bulk(*name);
  } else if (sub == "numsub" || sub == "shardnumsub") {
    Kind kind = sub == "numsub" ? Kind::kChannel : Kind::kShard;
    w.Array(2 * (a.size() - 2));
    for (size_t i = 2; i < a.size(); ++i) {
      w.Bulk(a[i]);
      w.Integer(static_cast<long long>(LocalMembers(kind, a[i])));
    }
  } else if (sub == "numpat") {
    if (a.size() != 2) {
      counters_.wrong_arity++;
      return w.Error("ERR wrong number of arguments for 'pubsub|numpat' command");
    }
    long long n = 0;
    for (const auto& [key, topic] : topics_) {
      if (topic->kind == Kind::kPattern && !topic->members.empty()) ++n;
    }
    w.Integer(n);
  } else {
    w.Error(absl::StrCat("ERR unknown subcommand '", a[1].substr(0, 128),
                         "'. Try PUBSUB HELP."));
  }
}

size_t Server::LocalMembers(Kind kind, std::string_view name) const {
  // No local subscription at all (a node its clients only publish to):
  // no name to hash.
  if (topic_index_.empty()) return 0;
  // A channel is its own backend topic: no key to build.
  auto it = kind == Kind::kChannel ? topic_index_.find(name)
                                   : topic_index_.find(BackendTopic(kind, name));
  return it == topic_index_.end() ? 0 : it->second->members.size();
}

size_t Server::LocalPatternReceivers(std::string_view channel) const {
  size_t n = 0;
  for (const Topic* topic : LocalPatternsMatching(channel)) n += topic->members.size();
  return n;
}

}  // namespace peter::resp

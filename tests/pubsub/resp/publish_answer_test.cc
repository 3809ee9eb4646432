// A PUBLISH's completion callback (Poster::AnswerCallback): no heap
// allocation per PUBLISH once the Poster's answer slots have grown, the
// answer delivered once, and a callback the backend runs after the gateway
// has stopped (its Poster disabled and released) touches nothing freed. A
// binary of its own: it replaces the global operator new to count.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "pubsub/resp/server.h"
#include "tests/count_allocations.h"

namespace peter::resp {
namespace {

// A Poster on a loop (direct, as on the node's loop), recording answers.
// Its batches end through at_end_of_work, as inside the node's own work:
// no handler posted.
struct Fixture {
  Fixture() {
    poster = std::make_shared<Poster>(
        &io, /*direct=*/true, [] {}, [this] { ++batches; },
        [](const std::weak_ptr<Topic>&, std::string_view) {},
        [this](PublishAnswer& a) {
          answered.push_back(a.ticket);
          channels.push_back(std::move(a.channel));
          last_status = a.status;
        },
        [this](absl::AnyInvocable<void()> fn) {
          end_of_work.emplace(std::move(fn));
          return true;
        });
    answered.reserve(1000);
    channels.reserve(1000);
  }
  void EndWork() {
    if (!end_of_work) return;
    auto fn = std::move(*end_of_work);
    end_of_work.reset();
    fn();
  }

  asio::io_context io;
  std::shared_ptr<Poster> poster;
  std::optional<absl::AnyInvocable<void()>> end_of_work;
  std::vector<uint64_t> answered;
  std::vector<std::string> channels;  // the answers' channel names, in order
  absl::Status last_status;
  int batches = 0;
};

PublishAnswer Answer(uint64_t ticket, std::string channel) {
  PublishAnswer a;
  a.channel = std::move(channel);
  a.ticket = ticket;
  return a;
}

// The callback goes to the backend, which keeps it as the node does (moved
// into a PublishDoneFn of its own) and calls it later: once the slots have
// grown, no allocation for either. Fails with a callback whose capture is
// the answer itself (about 130 bytes: heap-allocated by std::function).
TEST(PublishAnswerTest, CallbackAllocatesNothingOnceSlotsHaveGrown) {
  Fixture f;
  std::vector<Backend::PublishDoneFn> held;
  held.reserve(16);
  // Channel names past the short-string size: their storage moves along,
  // from the answers back to the next round's PUBLISHes.
  std::vector<std::string> channels;
  for (int i = 0; i < 16; ++i) channels.push_back(std::string(40, static_cast<char>('a' + i)));
  uint64_t ticket = 0;
  auto round = [&] {
    for (auto& channel : channels) {
      held.push_back(f.poster->AnswerCallback(Answer(ticket++, std::move(channel))));
    }
    for (auto& done : held) done(uint64_t{7});
    held.clear();
    f.EndWork();
    channels.swap(f.channels);
    f.channels.clear();
  };
  round();  // the slots grow
  f.answered.clear();
  const uint64_t before = allocations;
  for (int r = 0; r < 10; ++r) round();
  EXPECT_EQ(allocations - before, 0u);
  EXPECT_EQ(f.answered.size(), 160u);
  EXPECT_EQ(f.poster->answers_waiting(), 0u);
}

// Each answer once, with the callback's status, whatever order the
// callbacks run in; a callback called again, before or after its slot was
// reused, does nothing.
TEST(PublishAnswerTest, AnswersOnceInAnyOrder) {
  Fixture f;
  Backend::PublishDoneFn a = f.poster->AnswerCallback(Answer(1, "a"));
  Backend::PublishDoneFn b = f.poster->AnswerCallback(Answer(2, "b"));
  EXPECT_EQ(f.poster->answers_waiting(), 2u);
  b(absl::UnavailableError("no root"));
  EXPECT_EQ(f.answered, std::vector<uint64_t>{2});
  EXPECT_EQ(f.channels, std::vector<std::string>{"b"});
  EXPECT_EQ(f.last_status.code(), absl::StatusCode::kUnavailable);
  b(uint64_t{1});
  // b's slot is reused: b, called again, still answers nothing.
  Backend::PublishDoneFn c = f.poster->AnswerCallback(Answer(3, "c"));
  b(uint64_t{1});
  a(uint64_t{1});
  EXPECT_EQ(f.answered, (std::vector<uint64_t>{2, 1}));
  EXPECT_TRUE(f.last_status.ok());
  c(uint64_t{1});
  EXPECT_EQ(f.answered, (std::vector<uint64_t>{2, 1, 3}));
  EXPECT_EQ(f.poster->answers_waiting(), 0u);
  f.EndWork();
  EXPECT_EQ(f.batches, 1);
}

// The gateway stops (Disable) and lets its Poster go while the backend
// still holds callbacks: the Poster is kept until the last one has run
// (nothing is answered then), and freed after it. Under ASan a use after
// free fails here.
TEST(PublishAnswerTest, CallbacksAfterDisableAnswerNothingAndFreeThePoster) {
  Fixture f;
  Backend::PublishDoneFn a = f.poster->AnswerCallback(Answer(1, "a"));
  Backend::PublishDoneFn b = f.poster->AnswerCallback(Answer(2, "b"));
  f.poster->Disable();
  std::weak_ptr<Poster> weak = f.poster;
  f.poster.reset();
  ASSERT_FALSE(weak.expired());  // parked: a and b still point at it
  a(uint64_t{1});
  EXPECT_FALSE(weak.expired());
  b(absl::CancelledError("stopping"));
  EXPECT_TRUE(weak.expired());
  EXPECT_TRUE(f.answered.empty());
}

// Disabled with nothing waiting: nothing parked, freed with its last owner.
TEST(PublishAnswerTest, DisableWithNothingWaitingParksNothing) {
  Fixture f;
  Backend::PublishDoneFn a = f.poster->AnswerCallback(Answer(1, "a"));
  a(uint64_t{1});
  f.EndWork();
  f.poster->Disable();
  std::weak_ptr<Poster> weak = f.poster;
  f.poster.reset();
  EXPECT_TRUE(weak.expired());
}

// A callback the backend destroys without calling (a node that stops drops
// the callbacks it holds): once its last copy is gone, its slot is freed and
// the PUBLISH is answered with an error, from a handler on the loop (not
// inside the backend's call that dropped it). Before, the slot stayed busy
// and the client's reply never came.
TEST(PublishAnswerTest, CallbackDroppedUncalledFreesItsSlotAndAnswersAnError) {
  Fixture f;
  {
    Backend::PublishDoneFn a = f.poster->AnswerCallback(Answer(1, "a"));
    Backend::PublishDoneFn b = f.poster->AnswerCallback(Answer(2, "b"));
    Backend::PublishDoneFn moved = std::move(b);  // as the node moves it
    EXPECT_EQ(f.poster->answers_waiting(), 2u);
  }  // moved (b's), then the empty b, then a: destroyed uncalled
  EXPECT_EQ(f.poster->answers_waiting(), 0u);
  EXPECT_TRUE(f.answered.empty());
  f.io.run();
  f.EndWork();
  EXPECT_EQ(f.answered, (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(f.last_status.code(), absl::StatusCode::kUnavailable);
  // The slots are reused, and a dropped callback's key is stale.
  Backend::PublishDoneFn c = f.poster->AnswerCallback(Answer(3, "c"));
  c(uint64_t{1});
  EXPECT_EQ(f.answered, (std::vector<uint64_t>{2, 1, 3}));
  EXPECT_EQ(f.poster->answers_waiting(), 0u);
}

// The gateway stops (Disable) and lets its Poster go; the backend calls one
// callback and drops the other uncalled (a node stopping after its
// gateway): the Poster is freed once the last is gone, answering nothing.
// Before, it stayed parked for good.
TEST(PublishAnswerTest, DisabledPosterIsFreedWhenItsLastCallbackIsDropped) {
  Fixture f;
  std::optional<Backend::PublishDoneFn> a(f.poster->AnswerCallback(Answer(1, "a")));
  Backend::PublishDoneFn b = f.poster->AnswerCallback(Answer(2, "b"));
  f.poster->Disable();
  std::weak_ptr<Poster> weak = f.poster;
  f.poster.reset();
  b(uint64_t{1});
  EXPECT_FALSE(weak.expired());  // parked: a still points at it
  a.reset();
  EXPECT_TRUE(weak.expired());
  f.io.run();
  EXPECT_TRUE(f.answered.empty());
}

}  // namespace
}  // namespace peter::resp

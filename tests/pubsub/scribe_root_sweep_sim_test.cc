// The root-fault sweep (tests/pubsub/root_sweep.h; docs/scribe.md, "The
// root-fault sweep"): a small fixed set of seeds in CI, and the large sweep
// on request:
//
//   PETER_ROOT_SWEEP=2000 PETER_ROOT_SWEEP_FIRST=1
//     build/tests/pubsub/scribe_root_sweep_sim_test --gtest_filter='*Large*'
//
// runs seeds FIRST .. FIRST+N-1 and prints each case that broke an
// invariant; PETER_ROOT_SWEEP_SEED=S runs seed S alone with the Scribes'
// debug log (root decisions) on stderr; PETER_ROOT_SWEEP_EVERY=1 prints the
// cases that passed too. PETER_ROOT_SWEEP_LAGGED=1 draws the
// cases of LaggedHealFromSeed (a cut root whose successor's side heals
// last) instead.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/pubsub/root_sweep.h"

namespace peter::pubsub::testing {
namespace {

uint64_t EnvNumber(const char* name, uint64_t otherwise) {
  const char* value = std::getenv(name);
  uint64_t out = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &out)) return otherwise;
  return out;
}

void Print(const SweepCase& c, const SweepResult& r) {
  std::printf("%s: %llu acked publishes, %llu confirmed, %llu subscribers checked, "
              "%llu roots taken, %llu withdrawn, %llu lone waits: %s\n",
              c.Describe().c_str(), static_cast<unsigned long long>(r.acked_publishes),
              static_cast<unsigned long long>(r.confirmed),
              static_cast<unsigned long long>(r.checked_subscribers),
              static_cast<unsigned long long>(r.roots_taken),
              static_cast<unsigned long long>(r.numbers_withdrawn),
              static_cast<unsigned long long>(r.lone_root_waits),
              r.violations.empty() ? "ok" : absl::StrCat(r.violations.size(), " VIOLATIONS").c_str());
  for (size_t k = 0; k < r.violations.size() && k < 8; ++k) {
    std::printf("  %s\n", r.violations[k].c_str());
  }
}

class RootSweepTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(RootSweepTest, NoNumberTwiceNoLossNoReorder) {
  const SweepCase c = SweepCase::FromSeed(GetParam());
  const SweepResult r = RunSweepCase(c);
  Print(c, r);
  if (!c.BeyondLoneRootGrace()) {
    EXPECT_TRUE(r.violations.empty()) << c.Describe();
  }
  EXPECT_GT(r.confirmed, r.acked_publishes / 2) << c.Describe();
}

// A fixed handful, drawn to cover every fault kind (see Describe() in the
// output), small enough for CI under ASan.
INSTANTIATE_TEST_SUITE_P(Seeds, RootSweepTest, ::testing::Range<uint64_t>(1, 9));

// Seeds the sweep found violations on (docs/scribe.md, "The root-fault
// sweep"), each a root cut off with some of its neighbours (cut-group):
// 133 and 151 multicast, at a node that took the topic over from its
// replica, numbers the cut root had held back for a full replica set while
// the other side's root released the same numbers (fails without taken-over
// numbers waiting for the replicas, TakeReplica); 185 and 291 had the cut
// root release such numbers against a replica set that included the other
// side's former root, which had handed the topic over and kept nothing
// (fails without KeepAsReplica). 47, 152, 322, 412 and 872 had a replica
// that could not tell a number its root released from one it held back: a
// new root taken over from it (152: one with no frontier of its own) took
// held-back numbers for released ones and acknowledged resends under them,
// while the other side's root had released other messages under them
// (fail without the commit index in Replicate: ReplicaState::commit,
// TakeReplica). 344 had a root skip a number at the merge of a replica's
// state that lacked it, then drop the rival's released message under it
// as behind its frontier, so the publish's resend was numbered again (fails
// without MergeRivalRoot keeping it). 293 (two cut-group cuts; a
// best-effort publisher's messages on the second topic delivered twice)
// had a replica send a root behind it its lease before its state: the root
// numbered its held publishes, the state's among them, then merged the
// state (fails without the state going first, OnReplicate). 720 (a shrink
// killed the root and its replicas, then a kill of the new root) had a
// fresh root that held its publishes hand the topic to a restarted closer
// node, whose empty replica of it let it number from 1 at once (fails
// without an empty replica counting as none, OnDeliverPublish). 205, 784
// and 985 (a cut-partial, then a second cut: two roots, each reaching part
// of the replica set, with replicas both use) had replicas confirm and grant
// leases to both roots, and merges take each other's held-back numbers for
// released ones: numbers carrying two messages, publishes delivered twice
// (fail without entry terms: docs/scribe.md, "Entry terms"). 596 (two
// overlapping cut-group cuts) and 692 (a cut-root, then a cut-group) had a
// node of the cut root's side take the topic over from its replica, which
// held the cut root's held-back numbers, and hand it back: the cut root
// took its own numbers, echoed, as released by the other root and released
// them, while the other side's root had released other messages under
// them (fail without a same-numbered message released at a merge only if
// the rival released it, MergeRivalRoot). 65 (a cut-root, then a
// cut-partial) broke with that rule alone: the echoed numbers, waiting
// again, were withdrawn when a join's frontier passed them, though the
// rival had multicast them (24 numbers, a gap at every subscriber; fails
// without the echoed numbers waiting as taken over).
INSTANTIATE_TEST_SUITE_P(Regressions, RootSweepTest,
                         ::testing::Values(133, 151, 185, 291, 47, 152, 322, 412, 872, 344, 293,
                                           720, 205, 784, 985, 596, 692, 65));

// Seed 551, a cut beyond lone_root_grace (the sweep reports such cases,
// asserts nothing), checked in full here: a kill of the root, then a
// cut-partial of the restarted root for 11.6 s. The root meanwhile, deposed
// by the restarted root's higher term, held two of its numbers as taken
// over while it multicast the later ones, though a replica's state showed
// them released: its subtree skipped them (a gap; fails without a
// taken-over number released by a replica's state, MergeRivalRoot).
TEST(RootSweepBeyondGraceTest, DeposedRootReleasesTakenOverNumbers) {
  const SweepCase c = SweepCase::FromSeed(551);
  ASSERT_TRUE(c.BeyondLoneRootGrace());
  const SweepResult r = RunSweepCase(c);
  Print(c, r);
  EXPECT_TRUE(r.violations.empty()) << c.Describe();
}

// The seed-11 soak (docs/scribe.md, "A root back in part after a cut"): the
// root cut off for 5 s, and at the heal what its successor and the
// successor's replica peers send it held 2.5 s more. The root is back in the
// leaf sets of the farther nodes, whose answers refill its own, gets leases
// from them and would release numbers its successor released meanwhile
// against peers that never held the successor's numbering: numbers
// confirmed to two publishes. Fails without Scribe's lost_neighbours_ rule
// (ReplicaPeersCoverLosses): 123 violations of a number given twice. And
// without the former root keeping its waiting numbers as a replica
// (KeepAsReplica) it ends with a gap: the successor hands the topic over
// with #211 waiting, takes it back from its replica before the hand-over,
// held on the lagged link, reaches the root, and skipped #211 (three
// violations: docs/scribe.md, "A root back in part after a cut").
TEST(RootSweepLaggedHealTest, RootBackBeforeItsSuccessorsSide) {
  SweepCase c;
  c.seed = 11;
  c.nodes = 20;
  c.faults.push_back(Fault{.kind = FaultKind::kCutRootLaggedHeal,
                           .start = absl::Seconds(2),
                           .length = absl::Seconds(5),
                           .gap = absl::Milliseconds(2500)});
  const SweepResult r = RunSweepCase(c, EnvNumber("PETER_ROOT_SWEEP_DEBUG", 0) != 0);
  Print(c, r);
  EXPECT_EQ(r.numbers_given_twice, 0u) << c.Describe();
  EXPECT_TRUE(r.violations.empty()) << c.Describe();
  EXPECT_GT(r.confirmed, r.acked_publishes / 2) << c.Describe();
}

class LaggedHealSweepTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(LaggedHealSweepTest, NoNumberTwiceNoLossNoReorder) {
  const SweepCase c = SweepCase::LaggedHealFromSeed(GetParam());
  const SweepResult r = RunSweepCase(c);
  Print(c, r);
  EXPECT_EQ(r.numbers_given_twice, 0u) << c.Describe();
  EXPECT_TRUE(r.violations.empty()) << c.Describe();
  EXPECT_GT(r.confirmed, r.acked_publishes / 2) << c.Describe();
}

INSTANTIATE_TEST_SUITE_P(Seeds, LaggedHealSweepTest, ::testing::Range<uint64_t>(1, 5));

// Lagged-heal seeds whose third topic (its root next to the cut one) was
// numbered by two roots at the heal, and a publish delivered twice under
// two numbers: a replica sent a root behind it its lease before its state,
// so the root numbered the publishes it held for the lease, among them
// publishes the state carried, then merged the state (fail without the
// state going first, OnReplicate; docs/scribe.md, "The root-fault sweep").
// 251 and 266: the cut root and its successor (which the lag keeps from
// hearing it) number the third topic at once, and each one's merge of the
// other's numbering keeps a publish under two numbers (251), or a replica's
// rate-limited state reaches the root too late (266); fail without entry
// terms (docs/scribe.md, "Entry terms").
INSTANTIATE_TEST_SUITE_P(Regressions, LaggedHealSweepTest,
                         ::testing::Values(160, 260, 251, 266));

SweepCase CaseOf(uint64_t seed) {
  return EnvNumber("PETER_ROOT_SWEEP_LAGGED", 0) != 0 ? SweepCase::LaggedHealFromSeed(seed)
                                                       : SweepCase::FromSeed(seed);
}

TEST(RootSweepLargeTest, Large) {
  const uint64_t only = EnvNumber("PETER_ROOT_SWEEP_SEED", 0);
  if (only != 0) {
    const SweepCase c = CaseOf(only);
    const SweepResult r = RunSweepCase(c, /*debug_log=*/true);
    Print(c, r);
    EXPECT_TRUE(r.violations.empty());
    return;
  }
  const uint64_t count = EnvNumber("PETER_ROOT_SWEEP", 0);
  if (count == 0) GTEST_SKIP() << "set PETER_ROOT_SWEEP=<cases> to run the large sweep";
  const uint64_t first = EnvNumber("PETER_ROOT_SWEEP_FIRST", 1);
  // PETER_ROOT_SWEEP_EVERY=1 prints the cases that passed too (to compare
  // two trees' confirmed publishes case by case).
  const bool every = EnvNumber("PETER_ROOT_SWEEP_EVERY", 0) != 0;
  // Cases within the guarantee, and those with a cut of lone_root_grace or
  // more (reported, not failed: the documented limit).
  uint64_t cases[2] = {0, 0};
  uint64_t failed[2] = {0, 0};
  uint64_t twice[2] = {0, 0};  // of them, with a number given twice
  uint64_t acked = 0;
  uint64_t confirmed = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    const SweepCase c = CaseOf(seed);
    const SweepResult r = RunSweepCase(c);
    const int beyond = c.BeyondLoneRootGrace() ? 1 : 0;
    ++cases[beyond];
    acked += r.acked_publishes;
    confirmed += r.confirmed;
    if (!r.violations.empty()) {
      ++failed[beyond];
      if (r.numbers_given_twice > 0) ++twice[beyond];
      Print(c, r);
    } else if (every) {
      Print(c, r);
    }
    std::fflush(stdout);
  }
  std::printf("root sweep: seeds %llu..%llu; %llu cases within lone_root_grace, %llu with "
              "violations (%llu with a number given twice); %llu cases with a cut beyond it, "
              "%llu with violations (%llu); %llu acked publishes, %llu confirmed\n",
              static_cast<unsigned long long>(first),
              static_cast<unsigned long long>(first + count - 1),
              static_cast<unsigned long long>(cases[0]), static_cast<unsigned long long>(failed[0]),
              static_cast<unsigned long long>(twice[0]),
              static_cast<unsigned long long>(cases[1]), static_cast<unsigned long long>(failed[1]),
              static_cast<unsigned long long>(twice[1]),
              static_cast<unsigned long long>(acked), static_cast<unsigned long long>(confirmed));
  EXPECT_EQ(failed[0], 0u);
}

}  // namespace
}  // namespace peter::pubsub::testing

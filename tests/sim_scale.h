// Sizes of the large simulation tests. Normally the papers' scale: 1,000
// nodes, several seeds. Built with AddressSanitizer
// (tools/run-sanitized-tests), a 1,000-node run takes about five minutes
// instead of seconds, so there the same tests run on 250 nodes with their
// first seed only: the same code (joins, several routing-table rows,
// leaf-set and tree repair, 10% failures) on a smaller ring, which keeps the
// sanitized part of CI near ten minutes. The full scale is still tested in
// the ordinary build.
#ifndef PETER_TESTS_SIM_SCALE_H_
#define PETER_TESTS_SIM_SCALE_H_

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace peter::testing {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// Nodes in a large simulation test.
inline constexpr int kSimNodes = kSanitized ? 250 : 1000;

// The seeds to run a parameterised simulation test with: all of them
// normally, the first one under the sanitizers.
inline std::vector<uint64_t> SimSeeds(std::initializer_list<uint64_t> seeds) {
  if (kSanitized) return {*seeds.begin()};
  return seeds;
}

}  // namespace peter::testing

#endif  // PETER_TESTS_SIM_SCALE_H_

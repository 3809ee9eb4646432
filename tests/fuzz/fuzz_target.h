// The shape of Peter's fuzz targets (tests/fuzz/*_fuzz.cc). Each defines
//   FuzzOne(data)  - must never crash, hang or leak, whatever `data` is;
//   FuzzSeeds()    - valid inputs to start from (every message type).
// Under clang with PETER_FUZZ=ON each target links libFuzzer
// (tools/run-fuzz); otherwise replay_main.cc turns it into a ctest test that
// replays the seeds and the committed corpus (tests/fuzz/corpus/<target>/,
// where every input a fuzzer found becomes a regression case).
#ifndef PETER_TESTS_FUZZ_FUZZ_TARGET_H_
#define PETER_TESTS_FUZZ_FUZZ_TARGET_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace peter::fuzz {

void FuzzOne(std::string_view data);
std::vector<std::string> FuzzSeeds();

// One default-constructed value of each alternative of a std::variant.
template <typename Variant, size_t... I>
std::vector<Variant> EachAlternative(std::index_sequence<I...>) {
  return {Variant(std::in_place_index<I>)...};
}
template <typename Variant>
std::vector<Variant> EachAlternative() {
  return EachAlternative<Variant>(std::make_index_sequence<std::variant_size_v<Variant>>());
}

// Crashes loudly (libFuzzer and the replay test both report it).
[[noreturn]] void Fail(const char* what);

}  // namespace peter::fuzz

#endif  // PETER_TESTS_FUZZ_FUZZ_TARGET_H_

// The core's random generator: SplitMix64 (Steele, Lea & Flood, 2014), eight
// bytes of state, so that a node costs little memory when a simulation holds
// 100,000 of them (std::mt19937_64 keeps 2.5 KB). Satisfies
// UniformRandomBitGenerator; used for jitter, random picks and shuffles, none
// of which needs more than a well-mixed 64-bit stream.
#ifndef PETER_PASTRY_CORE_RANDOM_H_
#define PETER_PASTRY_CORE_RANDOM_H_

#include <cstdint>
#include <limits>

namespace peter::pastry {

class SplitMix64 {
 public:
  using result_type = uint64_t;
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
  result_type operator()() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

}  // namespace peter::pastry

#endif  // PETER_PASTRY_CORE_RANDOM_H_

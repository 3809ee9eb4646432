// A small, fast, seeded random generator whose output is fully specified
// (SplitMix64), so a simulation gives byte-identical results on every
// platform and standard library. std:: distributions are not used for the
// same reason: their algorithms are implementation-defined.
#ifndef PETER_PASTRY_SIM_RNG_H_
#define PETER_PASTRY_SIM_RNG_H_

#include <cstdint>
#include <limits>

#include "peter/pastry/node_id.h"

namespace peter::pastry::sim {

class Rng {
 public:
  using result_type = uint64_t;

  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    return Finalize(state_);
  }
  uint64_t operator()() { return Next(); }
  static constexpr uint64_t min() { return 0; }
  static constexpr uint64_t max() {
    return std::numeric_limits<uint64_t>::max();
  }

  // Uniform in [0, 1), 53 bits of precision.
  double Uniform01() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n). REQUIRES: n > 0.
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>(
        (static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // True with probability p.
  bool Bernoulli(double p) { return Uniform01() < p; }
  NodeId RandomId() {
    uint64_t hi = Next();
    return NodeId(hi, Next());
  }

  // Derives an independent seed from `seed` and `stream` (e.g. a node index),
  // so adding a consumer does not shift the draws of the others.
  static uint64_t Derive(uint64_t seed, uint64_t stream) {
    return Finalize(Finalize(seed + 0x9E3779B97F4A7C15ULL) ^
                    (stream * 0xD1B54A32D192ED03ULL + 0x632BE59BD9B4E019ULL));
  }

 private:
  static uint64_t Finalize(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  uint64_t state_;
};

}  // namespace peter::pastry::sim

#endif  // PETER_PASTRY_SIM_RNG_H_

// Deterministic randomness for ssd-train's data side (synthetic images, augmentation,
// shuffling). Only std::mt19937's raw 32-bit outputs are used (their sequence is fixed by the
// C++ standard, as is std::seed_seq's algorithm); every distribution is implemented here, so
// results do not depend on how a standard library implements std::uniform_*_distribution.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace ssdtrain {

// SplitMix64 finaliser: a good 64-bit mixer for deriving independent seeds.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Seed for one item of a stream, e.g. (epoch seed, image index) -> per-sample seed.
inline uint64_t derive_seed(uint64_t seed, uint64_t item) { return mix64(seed ^ mix64(item)); }

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
    gen_.seed(seq);
  }

  uint32_t next_u32() { return static_cast<uint32_t>(gen_()); }

  // Uniform in [0, 1), 53 random bits.
  double uniform() {
    const uint64_t a = next_u32() >> 5;  // 27 bits
    const uint64_t b = next_u32() >> 6;  // 26 bits
    return static_cast<double>((a << 26) | b) * (1.0 / 9007199254740992.0);
  }
  // Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  // Uniform integer in [lo, hi] (inclusive), unbiased (rejection sampling).
  int64_t uniform_int(int64_t lo, int64_t hi) {
    if (hi <= lo) return lo;
    const uint64_t range = static_cast<uint64_t>(hi - lo) + 1;
    if (range > 0xFFFFFFFFULL) {  // not needed by this project; 64-bit path for completeness
      const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
      uint64_t v;
      do {
        v = (static_cast<uint64_t>(next_u32()) << 32) | next_u32();
      } while (v >= limit);
      return lo + static_cast<int64_t>(v % range);
    }
    const uint64_t limit = 0x100000000ULL - 0x100000000ULL % range;
    uint64_t v;
    do {
      v = next_u32();
    } while (v >= limit);
    return lo + static_cast<int64_t>(v % range);
  }

  bool bernoulli(double p) { return uniform() < p; }

  // Standard normal (Box-Muller, one value per call).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  // Fisher-Yates shuffle with this generator (std::shuffle's algorithm is unspecified).
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) {
      const size_t j = static_cast<size_t>(uniform_int(0, static_cast<int64_t>(i) - 1));
      std::swap(v[i - 1], v[j]);
    }
  }

 private:
  std::mt19937 gen_;
};

}  // namespace ssdtrain

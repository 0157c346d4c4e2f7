// tinyds/core/rng.h — a seeded, counter-based random number generator.
//
// Same seed, same bits, whatever the thread count: every random draw is a pure function of
// (seed, stream, index) — SplitMix64 mixing of a counter — so a parallel loop that draws element i from
// index i gives identical results with 1 or 16 threads, and no generator state is shared between threads.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tinyds {

// SplitMix64 finaliser (Steele et al. 2014): a bijective 64-bit mix with good avalanche.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed, uint64_t stream = 0) : key_(mix64(seed ^ mix64(stream + 0x1234567ull))) {}
  // The i-th 64-bit value of this stream (stateless: any thread, any order).
  uint64_t at(uint64_t i) const { return mix64(key_ ^ mix64(i)); }
  // Sequential interface for single-threaded code: next value, advancing a counter.
  uint64_t next_u64() { return at(counter_++); }
  // Uniform in [0, 1) with 24 random bits (exactly representable in float).
  float uniform_at(uint64_t i) const { return static_cast<float>(at(i) >> 40) * (1.0f / 16777216.0f); }
  float uniform() { return uniform_at(counter_++); }
  double uniform_double() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  // Standard normal draw from index i (Box-Muller on two derived uniforms).
  float normal_at(uint64_t i) const;
  float normal() { return normal_at(counter_++); }
  // Uniform integer in [lo, hi] (inclusive). hi >= lo.
  int64_t randint(int64_t lo, int64_t hi);
  // A child stream: independent generator derived from this one (for a sub-task or a data split).
  Rng split(uint64_t stream) const { return Rng(key_, stream); }
  uint64_t counter() const { return counter_; }
  void set_counter(uint64_t c) { counter_ = c; }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

// Fills x[0..n) with normal(0, std) draws: x[i] depends only on (rng, i), so threads cannot change it.
void fill_normal(float* x, std::size_t n, float std, const Rng& rng);
void fill_normal(double* x, std::size_t n, double std, const Rng& rng);

}  // namespace tinyds

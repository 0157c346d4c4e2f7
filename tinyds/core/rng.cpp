// tinyds/core/rng.cpp — see rng.h.
#include "tinyds/core/rng.h"

#include <cmath>

#include "tinyds/core/error.h"

namespace tinyds {

float Rng::normal_at(uint64_t i) const {
  // Two independent uniforms from the two halves of one 64-bit draw; u1 in (0, 1] so log(u1) is finite.
  uint64_t r = at(i);
  double u1 = (static_cast<double>(r >> 32) + 1.0) / 4294967296.0;
  double u2 = static_cast<double>(r & 0xFFFFFFFFull) / 4294967296.0;
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

int64_t Rng::randint(int64_t lo, int64_t hi) {
  TINYDS_ASSERT(lo <= hi, "randint(", lo, ", ", hi, ")");
  uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) + 1;
  if (span == 0) return static_cast<int64_t>(next_u64());  // the full 64-bit range
  // Rejection sampling removes modulo bias.
  uint64_t limit = UINT64_MAX - UINT64_MAX % span;
  uint64_t r;
  do { r = next_u64(); } while (r >= limit);
  return lo + static_cast<int64_t>(r % span);
}

template <typename real>
static void fill_normal_impl(real* x, std::size_t n, real std, const Rng& rng) {
#pragma omp parallel for schedule(static)
  for (long long i = 0; i < static_cast<long long>(n); i++) x[i] = static_cast<real>(rng.normal_at(i)) * std;
}
void fill_normal(float* x, std::size_t n, float std, const Rng& rng) { fill_normal_impl(x, n, std, rng); }
void fill_normal(double* x, std::size_t n, double std, const Rng& rng) { fill_normal_impl(x, n, std, rng); }

}  // namespace tinyds

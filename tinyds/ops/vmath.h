// tinyds/ops/vmath.h — two small vectorised helpers whose results do not depend on where the data sits in
// memory or on the thread count (internal to tinyds/ops).
//
// exp_inplace_aligned: std::exp in a loop is not vectorised without fast-math (which tinyds never uses), and the
// exps are most of the non-GEMM time of attention, cross-entropy and SwiGLU. Eigen's array exp is vectorised and
// accurate to a few ulp, but on an arbitrary buffer it runs scalar std::exp on the unaligned ends and packet exp
// in the aligned middle; the two can differ in the last bit, so the same values at another address would give
// other bits. Working in place on a buffer aligned to Eigen's packet alignment makes the scalar/packet split
// depend only on the length n.
//
// lane_sum: a row reduction in double with 8 interleaved partial sums. Which partial sum a term joins depends only
// on its index, so the order of additions is fixed (same bits for any address or thread count); the 8 independent
// chains let the adds overlap and vectorise (one running sum is bound by the latency of each add).
#pragma once
#include <Eigen/Core>
#include <cstddef>

namespace tinyds {

// Alignment every buffer passed to exp_inplace_aligned must have: EIGEN_MAX_ALIGN_BYTES (64 with AVX-512).
constexpr std::size_t kExpAlign = EIGEN_MAX_ALIGN_BYTES > 0 ? EIGEN_MAX_ALIGN_BYTES : 16;

// A scratch buffer with that alignment (Eigen aligns its heap allocations to it).
template <typename real>
using ExpBuffer = Eigen::Array<real, Eigen::Dynamic, 1>;

// x (n) = exp(x), x aligned to kExpAlign (an ExpBuffer's data(), or an alignas(kExpAlign) array).
template <typename real>
inline void exp_inplace_aligned(real* x, long n) {
  Eigen::Map<Eigen::Array<real, Eigen::Dynamic, 1>, Eigen::AlignedMax> a(x, n);
  a = a.exp();
}

// sum_{i < n} term(i), term returning double, in a fixed order: lane l sums the terms i = l mod 8.
template <class Term>
inline double lane_sum(long n, Term term) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  long i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += term(i + l);
  for (int l = 0; i < n; i++, l++) acc[l] += term(i);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace tinyds

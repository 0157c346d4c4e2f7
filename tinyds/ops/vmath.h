// tinyds/ops/vmath.h — small helpers shared by the ops (internal to tinyds/ops): a vectorised exp and a row sum
// whose results do not depend on where the data sits in memory or on the thread count, and the parallel cutoff.
//
// exp_inplace_aligned: std::exp in a loop is not vectorised without fast-math (which tinyds never uses), and the
// exps are most of the non-GEMM time of attention, cross-entropy and SwiGLU. Eigen's array exp is vectorised and
// accurate to a few ulp, but on an arbitrary buffer it runs scalar std::exp on the unaligned ends and packet exp
// in the aligned middle; the two can differ in the last bit, so the same values at another address would give
// other bits. Working in place on an aligned buffer, over a length padded to whole packets, runs every element
// through the packet exp: the bits then depend only on the value.
//
// kParallelMinWork: the size below which the ops' OpenMP loops stay on one thread.
//
// lane_sum: a row reduction in double with 8 interleaved partial sums. Which partial sum a term joins depends only
// on its index, so the order of additions is fixed (same bits for any address or thread count); the 8 independent
// chains let the adds overlap and vectorise (one running sum is bound by the latency of each add).
#pragma once
#include <Eigen/Core>
#include <cstddef>

namespace tinyds {

// Loops with less work than this (elements, or multiply-adds) run on one thread: starting a parallel region costs
// microseconds (much more when other processes share the cores), more than a small op takes (a decode step, a
// unit test's tiny shapes). Results do not depend on it: every op gives the same bits for any thread count.
constexpr long kParallelMinWork = 1 << 15;

// Alignment every buffer passed to exp_inplace_aligned must have: EIGEN_MAX_ALIGN_BYTES (64 with AVX-512).
constexpr std::size_t kExpAlign = EIGEN_MAX_ALIGN_BYTES > 0 ? EIGEN_MAX_ALIGN_BYTES : 16;

// n rounded up to whole packets (16 floats / 8 doubles with AVX-512). exp_inplace_aligned works on that padded
// length so that no element takes Eigen's scalar tail: a scalar std::exp costs ~10x a packet lane, and rows of
// attention are short (t + 1 values), so a scalar tail of up to 15 exps per row would cost more than the rest.
template <typename real>
constexpr long exp_padded(long n) {
  constexpr long p = static_cast<long>(kExpAlign / sizeof(real));
  return (n + p - 1) / p * p;
}

// A scratch buffer with that alignment (Eigen aligns its heap allocations to it); size it exp_padded(n).
template <typename real>
using ExpBuffer = Eigen::Array<real, Eigen::Dynamic, 1>;

// x[0..n) = exp(x[0..n)). x is aligned to kExpAlign and holds exp_padded<real>(n) values (an ExpBuffer of that
// size, or an alignas(kExpAlign) array); the padding x[n..) is overwritten.
template <typename real>
inline void exp_inplace_aligned(real* x, long n) {
  const long np = exp_padded<real>(n);
  for (long i = n; i < np; i++) x[i] = real(0);  // finite padding: exp(0) = 1, computed and ignored
  Eigen::Map<Eigen::Array<real, Eigen::Dynamic, 1>, Eigen::AlignedMax> a(x, np);
  a = a.exp();
}

// sum_{i < n} term(i), term returning double, in a fixed order: lane l sums the terms i = l mod 8.
template <class Term>
inline double lane_sum(long n, Term term) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const long n8 = n / 8 * 8;
  for (long i = 0; i < n8; i += 8) {
    double t[8];  // the 8 terms first, then 8 independent adds: the compiler turns both into vector operations
    for (int l = 0; l < 8; l++) t[l] = term(i + l);
    for (int l = 0; l < 8; l++) acc[l] += t[l];
  }
  for (long i = n8; i < n; i++) acc[i - n8] += term(i);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace tinyds

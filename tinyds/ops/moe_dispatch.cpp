// tinyds/ops/moe_dispatch.cpp — sort (token, slot) pairs by expert, gather token rows into expert order, and
// combine the experts' outputs back with the gate weights (see moe_dispatch.h).
//
// Shapes: N tokens, C width, E experts, K slots per token, P = N*K sorted rows.
// Gradients: dx, dye, dtopk_w WRITTEN (=).
// Determinism: every parallel loop writes disjoint rows, and each sum (over a token's K rows, or over C for a dot
// product) is done by one thread in a fixed order, so the bits never depend on the thread count.
#include "tinyds/ops/vmath.h"
#include "tinyds/ops/moe_dispatch.h"

#include <cstring>
#include <vector>

#include "tinyds/core/error.h"

namespace tinyds {

// pair_pos comes from moe_dispatch_sort; a value outside [0, P) would read or write past the buffers. Checked
// serially before the parallel loops (an exception must not leave an OpenMP region).
static void check_pair_pos(const int* pair_pos, int N, int K, const char* where) {
  const long P = static_cast<long>(N) * K;
  for (long p = 0; p < P; p++)
    if (pair_pos[p] < 0 || pair_pos[p] >= P)
      throw_error(where, ": pair_pos[", p / K, ", ", p % K, "] = ", pair_pos[p], " is outside [0, N*K=", P, ")");
}

void moe_dispatch_sort(int* expert_offsets,  // (E+1) out
                       int* sorted_token,    // (N*K) out
                       int* sorted_slot,     // (N*K) out
                       int* pair_pos,        // (N, K) out
                       const int* topk_idx,  // (N, K)
                       int N, int K, int E) {
  if (N < 0 || K < 1 || E < 1) throw_error("moe_dispatch_sort: need N >= 0, K >= 1, E >= 1, got N=", N, " K=", K,
                                           " E=", E);
  const long P = static_cast<long>(N) * K;
  // 1. count the pairs of each expert
  std::vector<int> count(E, 0);
  for (long p = 0; p < P; p++) {
    const int e = topk_idx[p];
    if (e < 0 || e >= E)
      throw_error("moe_dispatch_sort: topk_idx[", p / K, ", ", p % K, "] = ", e, " is outside [0, E=", E, ")");
    count[e]++;
  }
  // 2. exclusive prefix sum: expert e starts where experts 0..e-1 end
  expert_offsets[0] = 0;
  for (int e = 0; e < E; e++) expert_offsets[e + 1] = expert_offsets[e] + count[e];
  // 3. place the pairs in increasing p = n*K + k order, so each expert's rows keep (n, k) order (stable sort)
  std::vector<int> cursor(expert_offsets, expert_offsets + E);
  for (long p = 0; p < P; p++) {
    const int r = cursor[topk_idx[p]]++;
    sorted_token[r] = static_cast<int>(p / K);
    sorted_slot[r] = static_cast<int>(p % K);
    pair_pos[p] = r;
  }
}

template <typename real>
void moe_gather_forward(real* xe,                // (P, C) out
                        const real* x,           // (N, C)
                        const int* sorted_token,  // (P)
                        int P, int C) {
  for (int r = 0; r < P; r++)
    if (sorted_token[r] < 0)
      throw_error("moe_gather_forward: sorted_token[", r, "] = ", sorted_token[r], " is negative");
#pragma omp parallel for schedule(static) if (static_cast<long>(P) * C >= kParallelMinWork)
  for (int r = 0; r < P; r++)
    std::memcpy(xe + static_cast<long>(r) * C, x + static_cast<long>(sorted_token[r]) * C, sizeof(real) * C);
}

// forward was: xe[r] = x[sorted_token[r]]; token n was copied to its K rows pair_pos[n, 0..K), so
// dx[n] = sum_k dxe[pair_pos[n, k]]. Gathering per token (rather than scattering per row) needs no atomics and
// fixes the order of the K additions.
template <typename real>
void moe_gather_backward(real* dx,             // (N, C) written
                         const real* dxe,      // (P, C)
                         const int* pair_pos,  // (N, K)
                         int N, int K, int C) {
  check_pair_pos(pair_pos, N, K, "moe_gather_backward");
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * K * C >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    real* d = dx + static_cast<long>(n) * C;
    const int* pos = pair_pos + static_cast<long>(n) * K;
    std::memcpy(d, dxe + static_cast<long>(pos[0]) * C, sizeof(real) * C);
    for (int k = 1; k < K; k++) {
      const real* g = dxe + static_cast<long>(pos[k]) * C;
      for (int c = 0; c < C; c++) d[c] += g[c];
    }
  }
}

template <typename real>
void moe_combine_forward(real* out,            // (N, C) out
                         const real* ye,       // (P, C) expert outputs, sorted order
                         const real* topk_w,   // (N, K)
                         const int* pair_pos,  // (N, K)
                         int N, int K, int C) {
  check_pair_pos(pair_pos, N, K, "moe_combine_forward");
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * K * C >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    real* o = out + static_cast<long>(n) * C;
    const int* pos = pair_pos + static_cast<long>(n) * K;
    const real* w = topk_w + static_cast<long>(n) * K;
    for (int c = 0; c < C; c++) o[c] = real(0);
    for (int k = 0; k < K; k++) {  // k order, one thread per token: deterministic
      const real* y = ye + static_cast<long>(pos[k]) * C;
      for (int c = 0; c < C; c++) o[c] += w[k] * y[c];
    }
  }
}

// forward was: out[n] = sum_k w[n,k] * ye[pos[n,k]]
//   d/d ye[pos[n,k]] = w[n,k] * dout[n]      (each sorted row belongs to exactly one (n, k): written once)
//   d/d w[n,k]       = dout[n] . ye[pos[n,k]]
template <typename real>
void moe_combine_backward(real* dye,            // (P, C) written
                          real* dtopk_w,        // (N, K) written
                          const real* dout,     // (N, C)
                          const real* ye,       // (P, C)
                          const real* topk_w,   // (N, K)
                          const int* pair_pos,  // (N, K)
                          int N, int K, int C) {
  check_pair_pos(pair_pos, N, K, "moe_combine_backward");
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * K * C >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    const real* g = dout + static_cast<long>(n) * C;
    for (int k = 0; k < K; k++) {
      const long p = static_cast<long>(n) * K + k;
      const real* y = ye + static_cast<long>(pair_pos[p]) * C;
      real* dy = dye + static_cast<long>(pair_pos[p]) * C;
      const real w = topk_w[p];
      double dot = 0.0;  // C products of either sign: accumulate in double
      for (int c = 0; c < C; c++) {
        dy[c] = w * g[c];
        dot += static_cast<double>(g[c]) * y[c];
      }
      dtopk_w[p] = static_cast<real>(dot);
    }
  }
}

template void moe_gather_forward<float>(float*, const float*, const int*, int, int);
template void moe_gather_forward<double>(double*, const double*, const int*, int, int);
template void moe_gather_backward<float>(float*, const float*, const int*, int, int, int);
template void moe_gather_backward<double>(double*, const double*, const int*, int, int, int);
template void moe_combine_forward<float>(float*, const float*, const float*, const int*, int, int, int);
template void moe_combine_forward<double>(double*, const double*, const double*, const int*, int, int, int);
template void moe_combine_backward<float>(float*, float*, const float*, const float*, const float*, const int*, int,
                                          int, int);
template void moe_combine_backward<double>(double*, double*, const double*, const double*, const double*, const int*,
                                           int, int, int);

}  // namespace tinyds

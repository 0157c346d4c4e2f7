// kernels/moe_grouped_matmul.cu — grouped expert GEMMs: every routed expert's linear layer in ONE launch over the
// experts' contiguous row slices, forward and backward (the three SwiGLU projections w1, w3, w2 of DESIGN 4.2).
//
// Shapes: P sorted rows, E experts, IC input width, OC output width; expert e owns rows [off[e], off[e+1]).
//   out_e     = inp_e @ W_e^T          (n_e, OC)   W_e = weight[e] (OC, IC)
//   dinp_e    = dout_e @ W_e           (n_e, IC)   written
//   dweight_e += dout_e^T @ inp_e      (OC, IC)    accumulated
// CPU reference: one tinyds/ops/matmul.h call per expert (tinyds/model/moe_layer.cpp, routed_experts_*). The
// CPU loops over the experts on the host; a GPU would then need E launches of small GEMMs (a few rows each for a
// fine-grained MoE), each too small to fill the machine. Grouping them is what DeepSeek-V3-style MoE kernels do.
//
// Versions:
//   1: one thread per output element. Forward and dinp: a grid over all P rows; each thread finds its row's expert
//      by a binary search of the offsets (the slices tile [0, P)). dweight: a grid over (E, OC, IC), each thread
//      summing over its expert's rows. Every input is read from global memory once per use: simple, slow.
//   2 (the one the GPU path uses): 16x16 shared-memory tiles, grid (column tiles, row tiles, E). Block (x, y, e)
//      covers rows off[e] + 16y .. of expert e only, so a tile never mixes two experts' weights; blocks past their
//      expert's last row return at once (the grid is sized for the worst case: ceil(P/16) row tiles per expert,
//      since the host does not know the offsets; on a GPU an empty block costs a few cycles).
//      Each loaded element is reused 16 times from shared memory.
// No atomics anywhere: every output (and every dweight element) is summed by one thread in a fixed order, so the
// results are deterministic; they differ from the CPU's (Eigen's) summation order by rounding only.
#include "kernels/common.cuh"
#include "kernels/moe_grouped_matmul.cuh"

#include "tinyds/core/error.h"

namespace tinyds::cuda {

namespace {

constexpr int kTile = 16;

// The expert owning sorted row r: the last e with off[e] <= r (binary search; empty experts have off[e] ==
// off[e+1], and the search skips past them because it looks for the last such e).
__device__ int expert_of_row(const int* off, int E, int r) {
  int lo = 0, hi = E - 1;  // invariant: off[lo] <= r < off[hi + 1]
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (off[mid] <= r) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// ---- version 1: one thread per output element ----

__global__ void moe_grouped_matmul_forward_kernel1(float* out,          // (P, OC)
                                                   const float* inp,     // (P, IC)
                                                   const float* weight,  // (E, OC, IC)
                                                   const int* off,       // (E+1)
                                                   int P, int IC, int OC, int E) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<long>(P) * OC) return;
  const int r = static_cast<int>(i / OC), o = static_cast<int>(i % OC);
  const float* w = weight + (static_cast<long>(expert_of_row(off, E, r)) * OC + o) * IC;
  const float* x = inp + static_cast<long>(r) * IC;
  float acc = 0.0f;
  for (int k = 0; k < IC; k++) acc += x[k] * w[k];
  out[i] = acc;
}

__global__ void moe_grouped_matmul_dinp_kernel1(float* dinp,          // (P, IC)
                                                const float* dout,    // (P, OC)
                                                const float* weight,  // (E, OC, IC)
                                                const int* off, int P, int IC, int OC, int E) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<long>(P) * IC) return;
  const int r = static_cast<int>(i / IC), c = static_cast<int>(i % IC);
  const float* w = weight + static_cast<long>(expert_of_row(off, E, r)) * OC * IC;
  const float* g = dout + static_cast<long>(r) * OC;
  float acc = 0.0f;
  for (int o = 0; o < OC; o++) acc += g[o] * w[static_cast<long>(o) * IC + c];
  dinp[i] = acc;
}

__global__ void moe_grouped_matmul_dweight_kernel1(float* dweight,      // (E, OC, IC) accumulated
                                                   const float* dout,   // (P, OC)
                                                   const float* inp,    // (P, IC)
                                                   const int* off, int IC, int OC, int E) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<long>(E) * OC * IC) return;
  const int e = static_cast<int>(i / (static_cast<long>(OC) * IC));
  const int o = static_cast<int>(i / IC % OC), c = static_cast<int>(i % IC);
  float acc = 0.0f;
  for (int r = off[e]; r < off[e + 1]; r++)
    acc += dout[static_cast<long>(r) * OC + o] * inp[static_cast<long>(r) * IC + c];
  dweight[i] += acc;
}

// ---- version 2: 16x16 shared-memory tiles, grid (column tiles, row tiles, E) ----

// out tile: rows row0 + ty of expert e, columns o0 + tx. Reduction over IC in chunks of 16.
__global__ void moe_grouped_matmul_forward_kernel2(float* out, const float* inp, const float* weight, const int* off,
                                                   int IC, int OC) {
  STATIC_SHARED(float, xs, [kTile][kTile]);  // xs[row][k]   inp tile
  // ws[col][k]: weight tile; +1 column: threads of a warp read ws[tx][k] down a column, which the padding spreads
  // over distinct banks
  STATIC_SHARED(float, ws, [kTile][kTile + 1]);
  const int e = blockIdx.z, tx = threadIdx.x, ty = threadIdx.y;
  const int row0 = off[e] + blockIdx.y * kTile, end = off[e + 1];
  if (row0 >= end) return;  // the whole block leaves together, before any barrier
  const int r = row0 + ty, o = blockIdx.x * kTile + tx;
  const float* w = weight + static_cast<long>(e) * OC * IC;
  float acc = 0.0f;
  for (int k0 = 0; k0 < IC; k0 += kTile) {
    // Out-of-range elements load as 0, so the tail tiles (IC, OC or the slice not multiples of 16) add nothing.
    xs[ty][tx] = r < end && k0 + tx < IC ? inp[static_cast<long>(r) * IC + k0 + tx] : 0.0f;
    const int wo = blockIdx.x * kTile + ty;  // the weight row this thread loads (ty walks the columns of out)
    ws[ty][tx] = wo < OC && k0 + tx < IC ? w[static_cast<long>(wo) * IC + k0 + tx] : 0.0f;
    __syncthreads();  // the tiles are complete
    for (int k = 0; k < kTile; k++) acc += xs[ty][k] * ws[tx][k];
    __syncthreads();  // everyone is done with the tiles before the next chunk overwrites them
  }
  if (r < end && o < OC) out[static_cast<long>(r) * OC + o] = acc;
}

// dinp tile: rows row0 + ty, input columns c0 + tx. Reduction over OC in chunks of 16.
__global__ void moe_grouped_matmul_dinp_kernel2(float* dinp, const float* dout, const float* weight, const int* off,
                                                int IC, int OC) {
  STATIC_SHARED(float, gs, [kTile][kTile]);  // gs[row][o]   dout tile
  STATIC_SHARED(float, ws, [kTile][kTile]);  // ws[o][c]     weight tile (read along a row: no conflicts)
  const int e = blockIdx.z, tx = threadIdx.x, ty = threadIdx.y;
  const int row0 = off[e] + blockIdx.y * kTile, end = off[e + 1];
  if (row0 >= end) return;
  const int r = row0 + ty, c = blockIdx.x * kTile + tx;
  const float* w = weight + static_cast<long>(e) * OC * IC;
  float acc = 0.0f;
  for (int o0 = 0; o0 < OC; o0 += kTile) {
    gs[ty][tx] = r < end && o0 + tx < OC ? dout[static_cast<long>(r) * OC + o0 + tx] : 0.0f;
    ws[ty][tx] = o0 + ty < OC && c < IC ? w[static_cast<long>(o0 + ty) * IC + c] : 0.0f;
    __syncthreads();
    for (int k = 0; k < kTile; k++) acc += gs[ty][k] * ws[k][tx];
    __syncthreads();
  }
  if (r < end && c < IC) dinp[static_cast<long>(r) * IC + c] = acc;
}

// dweight tile of expert e: weight rows o0 + ty, columns c0 + tx; reduction over the expert's rows in chunks of 16.
// Grid (IC tiles, OC tiles, E): every block has work (an empty expert adds 0), and each dweight element is owned
// by one thread — no atomics, unlike a split over row tiles would need.
__global__ void moe_grouped_matmul_dweight_kernel2(float* dweight, const float* dout, const float* inp,
                                                   const int* off, int IC, int OC) {
  // gs[row][o]: dout chunk (gs[k][ty] is one value per half-warp: a broadcast)
  STATIC_SHARED(float, gs, [kTile][kTile]);
  STATIC_SHARED(float, xs, [kTile][kTile]);  // xs[row][c]   inp chunk
  const int e = blockIdx.z, tx = threadIdx.x, ty = threadIdx.y;
  const int o = blockIdx.y * kTile + ty, c = blockIdx.x * kTile + tx;
  const int begin = off[e], end = off[e + 1];
  float acc = 0.0f;
  for (int r0 = begin; r0 < end; r0 += kTile) {  // the same trip count for the whole block: barriers are safe
    const int r = r0 + ty;  // the row this thread loads
    const int og = blockIdx.y * kTile + tx;
    gs[ty][tx] = r < end && og < OC ? dout[static_cast<long>(r) * OC + og] : 0.0f;
    xs[ty][tx] = r < end && c < IC ? inp[static_cast<long>(r) * IC + c] : 0.0f;
    __syncthreads();
    for (int k = 0; k < kTile; k++) acc += gs[k][ty] * xs[k][tx];
    __syncthreads();
  }
  if (o < OC && c < IC) dweight[(static_cast<long>(e) * OC + o) * IC + c] += acc;
}

void check_dims(int P, int IC, int OC, int E, int version, const char* where) {
  if (P < 0 || IC < 1 || OC < 1 || E < 1)
    throw_error(where, ": need P >= 0, IC >= 1, OC >= 1, E >= 1, got P=", P, " IC=", IC, " OC=", OC, " E=", E);
  if (version < 0 || version > 2) throw_error(where, ": no kernel version ", version, " (0, 1, 2)");
  if (E > 65535 || ceil_div(P, kTile) > 65535u) throw_error(where, ": grid too large for P=", P, " E=", E);
}

}  // namespace

void moe_grouped_matmul_forward(float* out, const float* inp, const float* weight, const int* expert_offsets, int P,
                                int IC, int OC, int E, int version) {
  check_dims(P, IC, OC, E, version, "cuda::moe_grouped_matmul_forward");
  if (P == 0) return;
  if (version == 1) {
    const long n = static_cast<long>(P) * OC;
    launch(moe_grouped_matmul_forward_kernel1, dim3(ceil_div(n, 256)), dim3(256), 0, out, inp, weight,
           expert_offsets, P, IC, OC, E);
    return;
  }
  launch(moe_grouped_matmul_forward_kernel2, dim3(ceil_div(OC, kTile), ceil_div(P, kTile), E), dim3(kTile, kTile), 0,
         out, inp, weight, expert_offsets, IC, OC);
}

void moe_grouped_matmul_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                                 const float* weight, const int* expert_offsets, int P, int IC, int OC, int E,
                                 int version) {
  check_dims(P, IC, OC, E, version, "cuda::moe_grouped_matmul_backward");
  if (version == 1) {
    if (dinp && P > 0)
      launch(moe_grouped_matmul_dinp_kernel1, dim3(ceil_div(static_cast<long>(P) * IC, 256)), dim3(256), 0, dinp,
             dout, weight, expert_offsets, P, IC, OC, E);
    launch(moe_grouped_matmul_dweight_kernel1, dim3(ceil_div(static_cast<long>(E) * OC * IC, 256)), dim3(256), 0,
           dweight, dout, inp, expert_offsets, IC, OC, E);
    return;
  }
  if (dinp && P > 0)
    launch(moe_grouped_matmul_dinp_kernel2, dim3(ceil_div(IC, kTile), ceil_div(P, kTile), E), dim3(kTile, kTile), 0,
           dinp, dout, weight, expert_offsets, IC, OC);
  launch(moe_grouped_matmul_dweight_kernel2, dim3(ceil_div(IC, kTile), ceil_div(OC, kTile), E), dim3(kTile, kTile), 0,
         dweight, dout, inp, expert_offsets, IC, OC);
}

}  // namespace tinyds::cuda

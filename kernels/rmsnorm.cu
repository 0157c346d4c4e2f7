// kernels/rmsnorm.cu — RMSNorm on the GPU, three ways to reduce a row. CPU reference: tinyds/ops/rmsnorm.h.
//
// Shapes: N rows (B*T), C width.
//   out[n,c] = inp[n,c] * rstd[n] * weight[c],   rstd[n] = 1 / sqrt(mean_c inp[n,c]^2 + eps)
// Gradients: dinp WRITTEN (=), dweight ACCUMULATED (+=).
//
// The work is one reduction per row (a sum of squares forward, sum_c g w x backward) followed by an elementwise
// pass. The versions differ in who does the reduction:
//   1  one thread per row: the loop of the CPU code, run by N threads. Simple, but only N threads (a few thousand,
//      not enough to fill a GPU) and neighbouring threads read addresses C floats apart (uncoalesced).
//   2  one block of 256 threads per row: each thread sums a strided slice (coalesced: thread t reads c = t, t+256,
//      ...), then the 256 partial sums are added as a tree in __shared__ memory, halving the active threads at each
//      level, with a __syncthreads() between levels.
//   3  one warp (32 threads) per row, 8 rows per block: the partial sums are combined with five __shfl_xor_sync
//      steps (registers only: no shared memory, no block barrier). The default (version 0): for the widths of a
//      small model (C of a few hundred) one warp has enough work, and a warp needs no __syncthreads().
// Backward computes dweight[c] += sum_n dout[n,c] inp[n,c] rstd[n], a sum over ROWS: version 2 lets each row's
// block atomicAdd its share (simple; the order of the adds varies from run to run, so the last bits do too);
// versions 1 and 3 run one thread per column that walks the rows in order (deterministic, like the CPU).
// Sums are in fp32 here (the CPU reference sums in double): the kernel tests' tolerances say what that costs.
#include "kernels/common.cuh"
#include "kernels/reductions.cuh"  // warp_sum: the shuffle butterfly of version 3
#include "kernels/rmsnorm.cuh"

namespace tinyds::cuda {

constexpr int kRowBlock = 256;   // threads per block for versions 1 and 2 (and the dweight kernel)
constexpr int kWarp = 32;        // threads per warp

// ---- forward -----------------------------------------------------------------------------------------------------

// Version 1: thread n normalises row n.
__global__ void rmsnorm_forward_kernel1(float* out, float* rstd, const float* inp, const float* weight, int N, int C,
                                        float eps) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float* x = inp + static_cast<long>(n) * C;
  float* y = out + static_cast<long>(n) * C;
  float ss = 0.0f;
  for (int c = 0; c < C; c++) ss += x[c] * x[c];
  const float r = rsqrtf(ss / C + eps);
  rstd[n] = r;
  for (int c = 0; c < C; c++) y[c] = x[c] * r * weight[c];
}

// Version 2: block n normalises row n; the sum of squares is a tree reduction in shared memory.
__global__ void rmsnorm_forward_kernel2(float* out, float* rstd, const float* inp, const float* weight, int N, int C,
                                        float eps) {
  STATIC_SHARED(float, partial, [kRowBlock]);  // one slot per thread of the block
  const int n = blockIdx.x, t = threadIdx.x;
  const float* x = inp + static_cast<long>(n) * C;
  float* y = out + static_cast<long>(n) * C;
  float ss = 0.0f;
  for (int c = t; c < C; c += kRowBlock) ss += x[c] * x[c];  // stride = block size: coalesced reads
  partial[t] = ss;
  __syncthreads();  // every partial[] stored before any thread reads another's
  for (int stride = kRowBlock / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    // Between levels: the next level reads what this level wrote. Outside the `if`: every thread must reach it.
    __syncthreads();
  }
  const float r = rsqrtf(partial[0] / C + eps);  // every thread reads the total (nobody writes it any more)
  if (t == 0) rstd[n] = r;
  for (int c = t; c < C; c += kRowBlock) y[c] = x[c] * r * weight[c];
}

// Version 3: warp w of the grid normalises row w.
__global__ void rmsnorm_forward_kernel3(float* out, float* rstd, const float* inp, const float* weight, int N, int C,
                                        float eps) {
  const int n = (blockIdx.x * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (n >= N) return;  // the whole warp leaves together (n is the same for its 32 lanes): no partial shuffle
  const float* x = inp + static_cast<long>(n) * C;
  float* y = out + static_cast<long>(n) * C;
  float ss = 0.0f;
  for (int c = lane; c < C; c += kWarp) ss += x[c] * x[c];
  const float r = rsqrtf(warp_sum(ss) / C + eps);
  if (lane == 0) rstd[n] = r;
  for (int c = lane; c < C; c += kWarp) y[c] = x[c] * r * weight[c];
}

// ---- backward ----------------------------------------------------------------------------------------------------
// forward was: out = inp * rstd * weight,  rstd = (mean(inp^2) + eps)^(-1/2). With g = dout[n,:], x = inp[n,:]:
//   dinp_k = r w_k g_k - (r^3 / C) x_k * sum_c g_c w_c x_c        (see tinyds/ops/rmsnorm.cpp for the derivation)
//   dweight_c += sum_n g[n,c] x[n,c] r[n]

// Version 1: thread n computes row n of dinp.
__global__ void rmsnorm_backward_kernel1(float* dinp, const float* dout, const float* inp, const float* weight,
                                         const float* rstd, int N, int C) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const long row = static_cast<long>(n) * C;
  const float r = rstd[n];
  float gwx = 0.0f;
  for (int c = 0; c < C; c++) gwx += dout[row + c] * weight[c] * inp[row + c];
  const float b = r * r * r / C * gwx;
  for (int c = 0; c < C; c++) dinp[row + c] = r * weight[c] * dout[row + c] - b * inp[row + c];
}

// dweight for versions 1 and 3: thread c walks the rows in order. One writer per column, so no atomics, and a fixed
// order of adds, so the same bits every run. Neighbouring threads read neighbouring columns: coalesced.
__global__ void rmsnorm_backward_dweight_kernel1(float* dweight, const float* dout, const float* inp,
                                                 const float* rstd, int N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float acc = 0.0f;
  for (int n = 0; n < N; n++) acc += dout[static_cast<long>(n) * C + c] * inp[static_cast<long>(n) * C + c] * rstd[n];
  dweight[c] += acc;  // accumulated (+=): the caller may sum gradients over several micro-batches
}

// Version 2: block n computes row n of dinp with a shared-memory tree for sum_c g w x, and adds its row's share of
// dweight with atomicAdd (all N blocks add into the same C floats).
__global__ void rmsnorm_backward_kernel2(float* dinp, float* dweight, const float* dout, const float* inp,
                                         const float* weight, const float* rstd, int N, int C) {
  STATIC_SHARED(float, partial, [kRowBlock]);
  const int n = blockIdx.x, t = threadIdx.x;
  const long row = static_cast<long>(n) * C;
  const float r = rstd[n];
  float gwx = 0.0f;
  for (int c = t; c < C; c += kRowBlock) gwx += dout[row + c] * weight[c] * inp[row + c];
  partial[t] = gwx;
  __syncthreads();
  for (int stride = kRowBlock / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  const float b = r * r * r / C * partial[0];
  for (int c = t; c < C; c += kRowBlock) {
    dinp[row + c] = r * weight[c] * dout[row + c] - b * inp[row + c];
    // Blocks of other rows add to the same dweight[c] at the same time: without the atomic, two read-add-write
    // sequences can interleave and one add is lost.
    atomicAdd(&dweight[c], dout[row + c] * inp[row + c] * r);
  }
}

// Version 3: warp w computes row w of dinp; sum_c g w x by shuffles. dweight: rmsnorm_backward_dweight_kernel1.
__global__ void rmsnorm_backward_kernel3(float* dinp, const float* dout, const float* inp, const float* weight,
                                         const float* rstd, int N, int C) {
  const int n = (blockIdx.x * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (n >= N) return;  // whole warps only
  const long row = static_cast<long>(n) * C;
  const float r = rstd[n];
  float gwx = 0.0f;
  for (int c = lane; c < C; c += kWarp) gwx += dout[row + c] * weight[c] * inp[row + c];
  const float b = r * r * r / C * warp_sum(gwx);
  for (int c = lane; c < C; c += kWarp) dinp[row + c] = r * weight[c] * dout[row + c] - b * inp[row + c];
}

// ---- launchers ---------------------------------------------------------------------------------------------------

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps,
                     int version) {
  if (N == 0) return;  // an empty batch: nothing to launch (a grid of 0 blocks is a launch error)
  switch (version) {
    case 1:
      launch(rmsnorm_forward_kernel1, dim3(ceil_div(N, kRowBlock)), dim3(kRowBlock), 0, out, rstd, inp, weight, N, C,
             eps);
      break;
    case 2:
      launch(rmsnorm_forward_kernel2, dim3(N), dim3(kRowBlock), 0, out, rstd, inp, weight, N, C, eps);
      break;
    case 0:
    case 3:
      launch(rmsnorm_forward_kernel3, dim3(ceil_div(static_cast<long>(N) * kWarp, kRowBlock)), dim3(kRowBlock), 0,
             out, rstd, inp, weight, N, C, eps);
      break;
    default:
      throw std::runtime_error("rmsnorm_forward: no kernel version " + std::to_string(version) + " (have 1, 2, 3)");
  }
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C, int version) {
  if (N == 0) return;  // no rows: dinp is empty and dweight gets nothing added
  switch (version) {
    case 1:
      launch(rmsnorm_backward_kernel1, dim3(ceil_div(N, kRowBlock)), dim3(kRowBlock), 0, dinp, dout, inp, weight,
             rstd, N, C);
      launch(rmsnorm_backward_dweight_kernel1, dim3(ceil_div(C, kRowBlock)), dim3(kRowBlock), 0, dweight, dout, inp,
             rstd, N, C);
      break;
    case 2:
      launch(rmsnorm_backward_kernel2, dim3(N), dim3(kRowBlock), 0, dinp, dweight, dout, inp, weight, rstd, N, C);
      break;
    case 0:
    case 3:
      launch(rmsnorm_backward_kernel3, dim3(ceil_div(static_cast<long>(N) * kWarp, kRowBlock)), dim3(kRowBlock), 0,
             dinp, dout, inp, weight, rstd, N, C);
      launch(rmsnorm_backward_dweight_kernel1, dim3(ceil_div(C, kRowBlock)), dim3(kRowBlock), 0, dweight, dout, inp,
             rstd, N, C);
      break;
    default:
      throw std::runtime_error("rmsnorm_backward: no kernel version " + std::to_string(version) + " (have 1, 2, 3)");
  }
}

}  // namespace tinyds::cuda

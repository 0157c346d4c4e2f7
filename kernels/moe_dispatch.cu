// kernels/moe_dispatch.cu — MoE dispatch (sort the (token, slot) pairs by expert, gather token rows into expert
// order) and combine (weighted sum of the experts' outputs back to the tokens), with their backward, on the GPU.
//
// Shapes: N tokens, C width, E routed experts, K experts per token, P = N*K pairs = rows of the sorted buffers.
// CPU reference: tinyds/ops/moe_dispatch.h (.cpp). Gradients: dx, dye, dtopk_w WRITTEN (=).
//
// The sort is a counting sort in three launches:
//   1. count: the expert-load histogram (moe_expert_load, kernels/moe_balance.cu) written into offsets[1..E]
//   2. scan:  offsets[e+1] = offsets[e] + count[e], one block, an inclusive scan in chunks of the block size
//   3. place: one block per expert walks the P pairs in p order, chunk by chunk; a block-wide exclusive scan of
//             "is this pair mine" gives each of its pairs its rank, so expert e's rows keep (n, k) order.
// Why not place with atomics (row = atomicAdd(&cursor[e], 1))? The counts would be right but the order within an
// expert would depend on which thread's atomic lands first: the slices would hold the right pairs in a different
// order on each run, the sorted buffers would differ from the CPU's, and the experts' GEMM sums over rows (the
// weight gradients) would change bits from run to run. The per-expert scan is deterministic and stable; it reads
// topk_idx E times (E = 16..256 passes over N*K ints), which is cheap next to the expert GEMMs it feeds.
//
// Gather and combine need no atomics either: every output row is owned by one thread (or one warp), which sums
// its token's K rows in k order, as the CPU does — the results are the CPU's bits under the emulation (up to a
// fused multiply-add the compiler may form in one build and not the other).
#include "kernels/common.cuh"
#include "kernels/moe_dispatch.cuh"

#include "kernels/moe_balance.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

namespace {

constexpr int kScanBlock = 128;  // threads of the scan and place kernels (a power of two)

// Exclusive prefix sum of v over the block's kScanBlock threads (Hillis-Steele: log2(kScanBlock) steps, each
// adding the value `offset` places to the left). *total gets the block's sum. All threads must call it.
// buf: kScanBlock ints of shared memory.
__device__ int block_exclusive_scan(int* buf, int v, int* total) {
  const int tid = threadIdx.x;
  buf[tid] = v;
  __syncthreads();
  for (int offset = 1; offset < kScanBlock; offset *= 2) {
    const int left = tid >= offset ? buf[tid - offset] : 0;
    __syncthreads();  // everyone has read before anyone writes: the step reads the previous step's values
    buf[tid] += left;
    __syncthreads();
  }
  const int inclusive = buf[tid];
  *total = buf[kScanBlock - 1];
  __syncthreads();  // everyone has read buf before the next call overwrites it
  return inclusive - v;
}

// offsets (E+1): on entry offsets[1..E] hold the counts; on exit offsets[e] = sum of counts before e.
__global__ void moe_offsets_scan_kernel1(int* offsets, int E) {
  STATIC_SHARED(int, buf, [kScanBlock]);
  int carry = 0;  // the sum of all earlier chunks
  for (int c0 = 0; c0 < E; c0 += kScanBlock) {  // the same trip count for every thread: barriers inside are safe
    const int e = c0 + threadIdx.x;
    const int v = e < E ? offsets[e + 1] : 0;
    int chunk_total = 0;
    const int before = block_exclusive_scan(buf, v, &chunk_total);
    if (e < E) offsets[e + 1] = carry + before + v;  // inclusive: expert e ends where e+1 starts
    carry += chunk_total;
  }
  if (threadIdx.x == 0) offsets[0] = 0;
}

// Block e places expert e's pairs at rows offsets[e], offsets[e]+1, ... in increasing p = n*K + k.
__global__ void moe_dispatch_place_kernel1(int* sorted_token,        // (P) out
                                           int* sorted_slot,         // (P) out
                                           int* pair_pos,            // (N, K) out
                                           const int* topk_idx,      // (N, K)
                                           const int* offsets,       // (E+1)
                                           long P, int K) {
  STATIC_SHARED(int, buf, [kScanBlock]);
  const int e = blockIdx.x;
  int row = offsets[e];  // the next free row of expert e
  for (long c0 = 0; c0 < P; c0 += kScanBlock) {
    const long p = c0 + threadIdx.x;
    const int mine = p < P && topk_idx[p] == e ? 1 : 0;
    int chunk_total = 0;
    // rank = how many of this chunk's earlier pairs are expert e's: the stable order within the chunk
    const int rank = block_exclusive_scan(buf, mine, &chunk_total);
    if (mine) {
      const int r = row + rank;
      sorted_token[r] = static_cast<int>(p / K);
      sorted_slot[r] = static_cast<int>(p % K);
      pair_pos[p] = r;
    }
    row += chunk_total;
  }
}

__global__ void moe_gather_forward_kernel1(float* xe,                // (P, C) out
                                           const float* x,           // (N, C)
                                           const int* sorted_token,  // (P)
                                           long P, int C) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= P * C) return;
  const long r = i / C, c = i % C;  // consecutive threads copy consecutive columns: coalesced reads and writes
  xe[i] = x[static_cast<long>(sorted_token[r]) * C + c];
}

// forward was: xe[r] = x[sorted_token[r]]; token n was copied to its K rows pair_pos[n, 0..K), so
// dx[n] = sum_k dxe[pair_pos[n, k]]. One thread per (n, c) gathers its K values: no atomics, a fixed order.
__global__ void moe_gather_backward_kernel1(float* dx,             // (N, C) written
                                            const float* dxe,      // (P, C)
                                            const int* pair_pos,   // (N, K)
                                            int N, int K, int C) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<long>(N) * C) return;
  const long n = i / C, c = i % C;
  const int* pos = pair_pos + n * K;
  float d = dxe[static_cast<long>(pos[0]) * C + c];
  for (int k = 1; k < K; k++) d += dxe[static_cast<long>(pos[k]) * C + c];
  dx[i] = d;
}

__global__ void moe_combine_forward_kernel1(float* out,            // (N, C) out
                                            const float* ye,       // (P, C)
                                            const float* topk_w,   // (N, K)
                                            const int* pair_pos,   // (N, K)
                                            int N, int K, int C) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<long>(N) * C) return;
  const long n = i / C, c = i % C;
  float o = 0.0f;
  for (int k = 0; k < K; k++) o += topk_w[n * K + k] * ye[static_cast<long>(pair_pos[n * K + k]) * C + c];
  out[i] = o;
}

// forward was: out[n] = sum_k w[n,k] * ye[pos[n,k]]
//   dye[pos[n,k]] = w[n,k] * dout[n]          (each sorted row belongs to exactly one (n, k): written once)
//   dtopk_w[n,k]  = dout[n] . ye[pos[n,k]]    (a dot product over C: one warp per pair, lanes over c)
__global__ void moe_combine_backward_kernel1(float* dye,            // (P, C) written
                                             float* dtopk_w,        // (N, K) written
                                             const float* dout,     // (N, C)
                                             const float* ye,       // (P, C)
                                             const float* topk_w,   // (N, K)
                                             const int* pair_pos,   // (N, K)
                                             long P, int K, int C) {
  const int lane = threadIdx.x % 32, warps_per_block = blockDim.x / 32;
  const long p = static_cast<long>(blockIdx.x) * warps_per_block + threadIdx.x / 32;  // this warp's pair
  // A warp whose pair is past the end stays in to the shuffles (they need all 32 lanes) with zero partials.
  const bool live = p < P;
  const long n = live ? p / K : 0;
  const long r = live ? pair_pos[p] : 0;
  const float w = live ? topk_w[p] : 0.0f;
  double dot = 0.0;  // C products of either sign: double partials, as the CPU accumulates in double
  if (live)
    for (int c = lane; c < C; c += 32) {
      const float g = dout[n * C + c];
      dye[r * C + c] = w * g;
      dot += static_cast<double>(g) * ye[r * C + c];
    }
  // Butterfly reduction: after the 5 steps every lane holds the warp's sum.
  for (int mask = 16; mask > 0; mask /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, mask);
  if (live && lane == 0) dtopk_w[p] = static_cast<float>(dot);
}

void check_nkc(int N, int K, int C, const char* where) {
  if (N < 0 || K < 1 || C < 1) throw_error(where, ": need N >= 0, K >= 1, C >= 1, got N=", N, " K=", K, " C=", C);
}

}  // namespace

void moe_dispatch_sort(int* expert_offsets, int* sorted_token, int* sorted_slot, int* pair_pos, const int* topk_idx,
                       int N, int K, int E) {
  if (N < 0 || K < 1 || E < 1)
    throw_error("cuda::moe_dispatch_sort: need N >= 0, K >= 1, E >= 1, got N=", N, " K=", K, " E=", E);
  const long P = static_cast<long>(N) * K;
  moe_expert_load(expert_offsets + 1, topk_idx, N, K, E);  // 1. count[e] into offsets[e+1]
  launch(moe_offsets_scan_kernel1, dim3(1), dim3(kScanBlock), 0, expert_offsets, E);  // 2. offsets
  if (P == 0) return;
  launch(moe_dispatch_place_kernel1, dim3(E), dim3(kScanBlock), 0, sorted_token, sorted_slot, pair_pos, topk_idx,
         expert_offsets, P, K);  // 3. place
}

void moe_gather_forward(float* xe, const float* x, const int* sorted_token, int P, int C) {
  if (P < 0 || C < 1) throw_error("cuda::moe_gather_forward: need P >= 0, C >= 1, got P=", P, " C=", C);
  const long n = static_cast<long>(P) * C;
  if (n == 0) return;
  launch(moe_gather_forward_kernel1, dim3(ceil_div(n, 256)), dim3(256), 0, xe, x, sorted_token, static_cast<long>(P),
         C);
}

void moe_gather_backward(float* dx, const float* dxe, const int* pair_pos, int N, int K, int C) {
  check_nkc(N, K, C, "cuda::moe_gather_backward");
  const long n = static_cast<long>(N) * C;
  if (n == 0) return;
  launch(moe_gather_backward_kernel1, dim3(ceil_div(n, 256)), dim3(256), 0, dx, dxe, pair_pos, N, K, C);
}

void moe_combine_forward(float* out, const float* ye, const float* topk_w, const int* pair_pos, int N, int K, int C) {
  check_nkc(N, K, C, "cuda::moe_combine_forward");
  const long n = static_cast<long>(N) * C;
  if (n == 0) return;
  launch(moe_combine_forward_kernel1, dim3(ceil_div(n, 256)), dim3(256), 0, out, ye, topk_w, pair_pos, N, K, C);
}

void moe_combine_backward(float* dye, float* dtopk_w, const float* dout, const float* ye, const float* topk_w,
                          const int* pair_pos, int N, int K, int C) {
  check_nkc(N, K, C, "cuda::moe_combine_backward");
  const long P = static_cast<long>(N) * K;
  if (P == 0) return;
  const int warps = 4;  // pairs per block
  launch(moe_combine_backward_kernel1, dim3(ceil_div(P, warps)), dim3(32 * warps), 0, dye, dtopk_w, dout, ye, topk_w,
         pair_pos, P, K, C);
}

}  // namespace tinyds::cuda

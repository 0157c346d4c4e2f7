// kernels/reductions.cuh — warp and block reductions shared by the kernels (include after kernels/common.cuh).
//
// A warp reduction is a butterfly of shuffles: after the step with offset o every lane holds the sum (or max) of
// 2o lanes, so five steps (16, 8, 4, 2, 1) give every one of the 32 lanes the whole warp's result, with no shared
// memory and no barrier. A block reduction reduces each warp, parks the 32 (at most) warp results in shared
// memory, and lets every warp reduce those again: every thread of the block gets the result.
//
// The order of additions is fixed by the block size, so a reduction gives the same bits on every run (unlike
// atomicAdd, whose order depends on scheduling). It differs from the CPU's sequential or 8-lane order, which is
// why the kernel tests compare with a tolerance.
#pragma once
#include <cmath>  // INFINITY

namespace tinyds::cuda {

constexpr unsigned kFullMask = 0xffffffffu;  // every lane of the warp takes part in the shuffle

template <typename T>
__device__ __forceinline__ T warp_sum(T x) {
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(kFullMask, x, offset);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
  for (int offset = 16; offset > 0; offset /= 2) x = fmaxf(x, __shfl_xor_sync(kFullMask, x, offset));
  return x;
}

// Sum of x over a 1-D block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
// scratch: a STATIC_SHARED(T, scratch, [32]) array declared by the calling kernel (shared arrays live at kernel scope).
// Every thread of the block must call it (it has barriers).
template <typename T>
__device__ __forceinline__ T block_sum(T x, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  x = warp_sum(x);
  __syncthreads();  // a previous call may still be reading scratch
  if (lane == 0) scratch[warp] = x;
  __syncthreads();  // every warp's partial is in scratch
  x = lane < nwarps ? scratch[lane] : T(0);
  return warp_sum(x);
}

// Max of x over a 1-D block; same contract as block_sum.
__device__ __forceinline__ float block_max(float x, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  x = warp_max(x);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  x = lane < nwarps ? scratch[lane] : -INFINITY;
  return warp_max(x);
}

}  // namespace tinyds::cuda

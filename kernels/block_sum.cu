// kernels/block_sum.cu — the textbook block reduction, and the same kernel missing one barrier. Not used by the
// model: it is the smallest kernel whose result depends on a __syncthreads(), for the emulation's tests and the
// course (notebooks/08_cuda_kernels).
//
// Shapes: B blocks; block b sums inp[256 b .. 256 b + 255] into out[b].
// The tree: 256 partial sums in __shared__ memory; at each level the lower half of the threads adds the upper
// half's value to its own (stride 128, 64, ..., 1), so after 8 levels partial[0] holds the block's sum.
// Barriers: one after the loads (every partial[] written before anyone reads a neighbour's) and one per level
// (a level finished before the next reads it).
#include "kernels/block_sum.cuh"
#include "kernels/common.cuh"

namespace tinyds::cuda {

__global__ void block_sum_kernel(float* out, const float* inp) {
  STATIC_SHARED(float, partial, [kBlockSumThreads]);
  const int t = threadIdx.x;
  partial[t] = inp[blockIdx.x * kBlockSumThreads + t];
  __syncthreads();  // every partial[] written before anyone reads a neighbour's
  for (int stride = kBlockSumThreads / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();  // this level finished before the next reads it
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

// The same reduction without the first barrier: thread t < 128 may read partial[t + 128] before thread t + 128
// has stored its input there, and then adds whatever that shared memory held (on a GPU: what the warps that
// happened to run first left; under the emulation, which runs threads in order up to their next barrier: always
// the NaN every block's shared arrays start with, so the block's sum is NaN).
__global__ void block_sum_missing_barrier_kernel(float* out, const float* inp) {
  STATIC_SHARED(float, partial, [kBlockSumThreads]);
  const int t = threadIdx.x;
  partial[t] = inp[blockIdx.x * kBlockSumThreads + t];
  // (missing: __syncthreads();)
  for (int stride = kBlockSumThreads / 2; stride > 0; stride /= 2) {
    if (t < stride) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

void block_sum(float* out, const float* inp, int B, bool with_barrier) {
  if (B == 0) return;  // a grid of 0 blocks is a launch error
  launch(with_barrier ? block_sum_kernel : block_sum_missing_barrier_kernel, dim3(B), dim3(kBlockSumThreads), 0,
         out, inp);
}

}  // namespace tinyds::cuda

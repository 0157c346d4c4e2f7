// kernels/block_sum.cuh — host launcher of the teaching reduction (kernels/block_sum.cu), on device pointers.
// Shapes: B blocks of kBlockSumThreads inputs each.
#pragma once

namespace tinyds::cuda {

constexpr int kBlockSumThreads = 256;  // threads per block = inputs per block

// out (B)[b] = sum of inp (B * 256)[256 b .. 256 b + 255], one block per sum, a tree in shared memory.
// with_barrier = false runs the same kernel without its first __syncthreads(): a data race, kept to show what the
// barrier prevents (tests/kernels/emulation_test.cpp, notebooks/08_cuda_kernels). Never use it for a result.
void block_sum(float* out, const float* inp, int B, bool with_barrier = true);

}  // namespace tinyds::cuda

// tests/kernels/gdb_step_main.cpp — a tiny program with one emulated kernel, built at -O0 -g, that
// tests/kernels/gdb_step_test.sh steps through in gdb the way kernels/README.md tells students to: a breakpoint
// with a threadIdx / blockIdx condition stops one CUDA thread, and `next` over __syncthreads() comes back to that
// same thread after the rest of the block has run. The script breaks at the line `slot[t] = 10.0f * t;` (found by
// its text) and steps twice: keep the barrier on the line after it.
#include <cstdio>
#include <vector>

#include "kernels/common.cuh"

namespace {

constexpr int kThreads = 64;

// Every thread writes its slot, waits, then reads the slot of thread 63 - t: written by another thread.
__global__ void gdb_step_kernel(float* out) {  // out (2 * kThreads)
  STATIC_SHARED(float, slot, [kThreads]);
  const int t = threadIdx.x;
  slot[t] = 10.0f * t;
  __syncthreads();
  out[blockIdx.x * kThreads + t] = slot[kThreads - 1 - t];
}

}  // namespace

int main() {
  float* d_out = nullptr;
  CUDA_CHECK(cudaMalloc(&d_out, 2 * kThreads * sizeof(float)));
  tinyds::cuda::launch(gdb_step_kernel, dim3(2), dim3(kThreads), 0, d_out);
  std::vector<float> out(2 * kThreads);
  CUDA_CHECK(cudaMemcpy(out.data(), d_out, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaFree(d_out));
  std::printf("out[%d] = %g\n", kThreads + 5, out[kThreads + 5]);  // 10 * (63 - 5) = 580
  return out[kThreads + 5] == 580.0f ? 0 : 1;
}

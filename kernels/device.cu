// kernels/device.cu — see device.cuh. Compiled by nvcc against the CUDA runtime, and by g++ against the emulation.
#include "kernels/device.cuh"

#include "kernels/common.cuh"

namespace tinyds::cuda {

bool emulated() { return !TINYDS_CUDA_NATIVE; }

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

std::string device_name() {
#if TINYDS_CUDA_NATIVE
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
#else
  return "CUDA emulation on the CPU (not a GPU)";
#endif
}

void* device_alloc(std::size_t bytes) {
  void* p = nullptr;
  if (bytes) CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void device_free(void* ptr) {
  if (ptr) CUDA_CHECK(cudaFree(ptr));
}

void copy_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void copy_on_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

void fill_zero(void* ptr, std::size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemset(ptr, 0, bytes));
}

void synchronize() { CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace tinyds::cuda

// kernels/device.cuh — the CUDA runtime calls the model's device path needs (memory, copies, the device's name),
// behind plain C++ functions: tinyds/ (compiled by g++ once) calls these, and the kernel library the executable
// links decides whether they reach a GPU (nvcc build) or the CPU emulation (kernels/emulation/). Every function
// throws std::runtime_error with the failing call on an error.
#pragma once

#include <cstddef>
#include <string>

namespace tinyds::cuda {

// true when these kernels run under the CPU emulation (the g++ build), false on a real GPU.
bool emulated();
// Usable devices: 1 under the emulation, cudaGetDeviceCount on a GPU build (0 without a GPU or driver).
int device_count();
// "NVIDIA H100 80GB HBM3 (sm_90)", or "CUDA emulation on the CPU (not a GPU)".
std::string device_name();

void* device_alloc(std::size_t bytes);  // cudaMalloc; the bytes are not initialised (NaN-filled under emulation)
void device_free(void* ptr);            // cudaFree; nullptr is a no-op
void copy_to_device(void* dst, const void* src, std::size_t bytes);   // host -> device
void copy_to_host(void* dst, const void* src, std::size_t bytes);     // device -> host (waits for the kernels)
void copy_on_device(void* dst, const void* src, std::size_t bytes);   // device -> device
void fill_zero(void* ptr, std::size_t bytes);                         // cudaMemset(ptr, 0, bytes)
void synchronize();                                                   // cudaDeviceSynchronize

}  // namespace tinyds::cuda

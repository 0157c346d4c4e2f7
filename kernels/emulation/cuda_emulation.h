// kernels/emulation/cuda_emulation.h — the subset of CUDA that tinyds kernels use, emulated on the CPU so that the
// same .cu sources compile with g++ and run (slowly, but exactly as written) on a machine without a GPU.
//
// Execution model (kernels/README.md has the long version):
//   launch(kernel, grid, block, smem, args...) runs every block of the grid; blocks run in parallel on OpenMP
//   threads, one block wholly on one OS thread. Inside a block each CUDA thread is a fiber (a stack and a saved
//   register set) and the block's scheduler runs the fibers one after the other. A fiber runs until it finishes or
//   reaches a barrier: __syncthreads() waits for every thread of the block, a warp shuffle / ballot waits for the
//   32 lanes of its warp. So a kernel without barriers runs thread after thread, and a barrier is a real barrier.
//   A barrier that only part of the block (or warp) reaches is an error that names kernel, block and threads.
//
//   STATIC_SHARED(type, name, dims) declares a kernel-scope shared array as `static thread_local`: it exists once
//   per OS thread, and since a block runs wholly on one OS thread, its threads (fibers) share it and other blocks
//   do not. The first thread of a block to reach the declaration fills it with 0xFF bytes (a float or double NaN,
//   -1 as an int), so reading a slot that no thread of this block wrote shows up as NaN instead of as what the
//   previous block on that OS thread left there. (A plain `__shared__` cannot be poisoned, since the macro never
//   sees the array's name: it is a compile error here.)
//   DYNAMIC_SHARED(type, name) points into a per-block buffer of the launch's smem_bytes, filled with 0xFF bytes
//   at block start in the same way.
//   threadIdx / blockIdx / blockDim / gridDim are thread_local variables that the scheduler sets before it resumes a
//   fiber, so `print threadIdx.x` works in gdb.
//   cudaMalloc'd buffers are host memory with guard bytes on both sides, checked after every launch, at cudaFree
//   and at cudaDeviceSynchronize; new buffers are filled with 0xFF (NaN) so an output a kernel forgot to write
//   is caught by the NaN check of the kernel tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers: nothing to do on the CPU --------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Kernel-scope shared arrays are spelled STATIC_SHARED(type, name, dims) (defined below with DYNAMIC_SHARED).
#define __shared__ static_assert(false, "under the CUDA emulation write STATIC_SHARED(type, name, [dims]); instead " \
                                        "of __shared__ type name[dims]; (kernels/common.cuh)");

// ---- built-in types and variables ----------------------------------------------------------------------------------
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};

// Set by the block scheduler before it resumes a fiber (threadIdx) or starts a block (the others).
// (inline: constant-initialised, so reading threadIdx.x is a plain thread-local load.)
inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
constexpr int warpSize = 32;

// ---- runtime API on host memory ------------------------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
};
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetDeviceCount(int* count);

// ---- device math ---------------------------------------------------------------------------------------------------
// expf, logf, sqrtf, fmaxf, fminf, fabsf, tanhf come from <cmath>. The fast intrinsics are the exact functions here.
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline int __float_as_int(float x) {
  int i;
  std::memcpy(&i, &x, sizeof i);
  return i;
}
inline float __int_as_float(int i) {
  float x;
  std::memcpy(&x, &i, sizeof x);
  return x;
}
template <typename T>
inline T __ldg(const T* p) { return *p; }
// CUDA device code has min and max for numbers in the global namespace.
using std::max;
using std::min;

namespace tinyds::cuda::emu {

// ---- barriers (implemented in barriers.cpp) -------------------------------------------------------------------------
// `site` is "file:line" of the call, so that two different barriers can be told apart and named in errors.
void syncthreads(const char* file, int line);
// Every lane puts `value` in; after all lanes of the warp have arrived, returns the value of lane `src_lane`
// (own value when src_lane is outside the warp). mask must be the full warp.
uint64_t warp_exchange(unsigned mask, uint64_t value, int src_lane, const char* what, const char* file, int line);
// Every lane puts `pred` in; returns the bitmask of the lanes whose pred was non-zero.
unsigned warp_ballot(unsigned mask, int pred, const char* what, const char* file, int line);
int lane_id();  // (linear thread index) % 32
void* dynamic_shared_memory();
// Called by every thread that reaches a STATIC_SHARED declaration: the first in each block fills the array with
// 0xFF bytes; the others find it already done for this block and leave what the block has written since.
void static_shared_declared(void* array, size_t bytes);

template <typename T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffles move values of up to 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <typename T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}
// Source lane of each shuffle kind, within segments of `width` lanes (CUDA's semantics).
inline int shfl_src(int lane, int src, int width) { return (lane / width) * width + (src % width); }
inline int shfl_down_src(int lane, unsigned delta, int width) {
  const int seg_end = (lane / width + 1) * width;
  return lane + static_cast<int>(delta) < seg_end ? lane + static_cast<int>(delta) : lane;
}
inline int shfl_up_src(int lane, unsigned delta, int width) {
  const int seg_begin = (lane / width) * width;
  return lane - static_cast<int>(delta) >= seg_begin ? lane - static_cast<int>(delta) : lane;
}
inline int shfl_xor_src(int lane, int lane_mask, int width) {
  const int src = lane ^ lane_mask;
  return src / width == lane / width ? src : lane;
}

// ---- launch ---------------------------------------------------------------------------------------------------------
// One block's threads all run `body(ctx)`; run_grid schedules the blocks and the fibers. Throws std::runtime_error
// (naming the kernel, block and thread) on a bad launch configuration, a divergent barrier, or a write into a
// guard region of a cudaMalloc'd buffer.
void run_grid(const void* kernel_address, dim3 grid, dim3 block, size_t smem_bytes, void (*body)(void*),
              void* ctx);

// Emulation settings. parallel_blocks: run the blocks of a grid on OpenMP threads (default on).
void set_parallel_blocks(bool on);
bool parallel_blocks();
// Block observer, for tracing what each block did (tinyds.kernels' per-block trace): when set, called after each
// block of every launch has finished, with its blockIdx and `user`, on the OS thread that ran the block. Set it with
// parallel_blocks off, so that it is called once per block in block order; nullptr removes it.
using BlockObserver = void (*)(uint3 block_idx, void* user);
void set_block_observer(BlockObserver observer, void* user);
// Name of the function at `address` (from the executable's symbol table), for error messages.
std::string function_name(const void* address);
// The message of the last error that cudaFree / cudaDeviceSynchronize returned (guard region overwritten ...).
std::string last_error_message();
// Number of guard-region faults found so far (tests check it).
long guard_faults();

template <typename Kernel, typename Tuple>
struct LaunchContext {
  Kernel kernel;
  Tuple args;
  static void run(void* p) {
    auto* self = static_cast<LaunchContext*>(p);
    Tuple copy = self->args;  // every CUDA thread gets its own copy of the kernel's parameters
    std::apply(self->kernel, copy);
  }
};

}  // namespace tinyds::cuda::emu

// __syncthreads() and the warp primitives are macros so that the error can name the line of the call.
#define __syncthreads() ::tinyds::cuda::emu::syncthreads(__FILE__, __LINE__)

namespace tinyds::cuda::emu {
template <typename T>
T shfl_sync(unsigned mask, T var, int src_lane, int width, const char* file, int line) {
  return from_bits<T>(warp_exchange(mask, to_bits(var), shfl_src(lane_id(), src_lane, width), "__shfl_sync", file,
                                    line));
}
template <typename T>
T shfl_xor_sync(unsigned mask, T var, int lane_mask, int width, const char* file, int line) {
  return from_bits<T>(warp_exchange(mask, to_bits(var), shfl_xor_src(lane_id(), lane_mask, width),
                                    "__shfl_xor_sync", file, line));
}
template <typename T>
T shfl_down_sync(unsigned mask, T var, unsigned delta, int width, const char* file, int line) {
  return from_bits<T>(warp_exchange(mask, to_bits(var), shfl_down_src(lane_id(), delta, width),
                                    "__shfl_down_sync", file, line));
}
template <typename T>
T shfl_up_sync(unsigned mask, T var, unsigned delta, int width, const char* file, int line) {
  return from_bits<T>(warp_exchange(mask, to_bits(var), shfl_up_src(lane_id(), delta, width), "__shfl_up_sync",
                                    file, line));
}
}  // namespace tinyds::cuda::emu

// The optional `width` argument of the CUDA spelling, through a macro: empty -> 32.
#define TINYDS_EMU_WIDTH(...) ::tinyds::cuda::emu::width_of(__VA_ARGS__)
namespace tinyds::cuda::emu {
inline int width_of() { return 32; }
inline int width_of(int w) { return w; }
}  // namespace tinyds::cuda::emu

#define __shfl_sync(mask, var, src, ...) \
  ::tinyds::cuda::emu::shfl_sync((mask), (var), (src), TINYDS_EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_xor_sync(mask, var, lm, ...) \
  ::tinyds::cuda::emu::shfl_xor_sync((mask), (var), (lm), TINYDS_EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_down_sync(mask, var, d, ...) \
  ::tinyds::cuda::emu::shfl_down_sync((mask), (var), (d), TINYDS_EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_up_sync(mask, var, d, ...) \
  ::tinyds::cuda::emu::shfl_up_sync((mask), (var), (d), TINYDS_EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
// __syncwarp: the lanes of the warp wait for each other (an exchange whose value nobody reads).
#define __syncwarp(...) \
  ((void)::tinyds::cuda::emu::warp_exchange(TINYDS_EMU_MASK(__VA_ARGS__), 0, 0, "__syncwarp", __FILE__, __LINE__))
#define TINYDS_EMU_MASK(...) ::tinyds::cuda::emu::mask_of(__VA_ARGS__)
namespace tinyds::cuda::emu {
inline unsigned mask_of() { return 0xffffffffu; }
inline unsigned mask_of(unsigned m) { return m; }
}  // namespace tinyds::cuda::emu
#define __ballot_sync(mask, pred) \
  ::tinyds::cuda::emu::warp_ballot((mask), (pred), "__ballot_sync", __FILE__, __LINE__)
#define __any_sync(mask, pred) \
  (::tinyds::cuda::emu::warp_ballot((mask), (pred), "__any_sync", __FILE__, __LINE__) != 0u)
#define __all_sync(mask, pred) \
  ((::tinyds::cuda::emu::warp_ballot((mask), !(pred), "__all_sync", __FILE__, __LINE__)) == 0u)

// ---- atomics: real atomics, since blocks run in parallel on OS threads ----------------------------------------------
inline float atomicAdd(float* address, float val) {
  float old, desired;
  __atomic_load(address, &old, __ATOMIC_RELAXED);
  // No native float fetch-add: compare-and-swap until no other thread changed the value in between (on failure
  // `old` is reloaded with the value that is there now).
  do {
    desired = old + val;
  } while (!__atomic_compare_exchange(address, &old, &desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}
inline int atomicAdd(int* address, int val) { return __atomic_fetch_add(address, val, __ATOMIC_RELAXED); }
inline unsigned atomicAdd(unsigned* address, unsigned val) {
  return __atomic_fetch_add(address, val, __ATOMIC_RELAXED);
}
inline unsigned long long atomicAdd(unsigned long long* address, unsigned long long val) {
  return __atomic_fetch_add(address, val, __ATOMIC_RELAXED);
}
inline int atomicSub(int* address, int val) { return __atomic_fetch_sub(address, val, __ATOMIC_RELAXED); }
inline unsigned atomicSub(unsigned* address, unsigned val) {
  return __atomic_fetch_sub(address, val, __ATOMIC_RELAXED);
}
inline int atomicExch(int* address, int val) { return __atomic_exchange_n(address, val, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned* address, unsigned val) {
  return __atomic_exchange_n(address, val, __ATOMIC_RELAXED);
}
inline float atomicExch(float* address, float val) {
  float old;
  __atomic_exchange(address, &val, &old, __ATOMIC_RELAXED);
  return old;
}
template <typename T>
inline T atomic_max_impl(T* address, T val) {
  T old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (old < val && !__atomic_compare_exchange_n(address, &old, val, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
inline int atomicMax(int* address, int val) { return atomic_max_impl(address, val); }
inline unsigned atomicMax(unsigned* address, unsigned val) { return atomic_max_impl(address, val); }
template <typename T>
inline T atomic_min_impl(T* address, T val) {
  T old = __atomic_load_n(address, __ATOMIC_RELAXED);
  while (val < old && !__atomic_compare_exchange_n(address, &old, val, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
inline int atomicMin(int* address, int val) { return atomic_min_impl(address, val); }
inline unsigned atomicMin(unsigned* address, unsigned val) { return atomic_min_impl(address, val); }
template <typename T>
inline T atomic_cas_impl(T* address, T compare, T val) {
  __atomic_compare_exchange_n(address, &compare, val, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;  // the old value whether or not the swap happened (CUDA's contract)
}
inline int atomicCAS(int* address, int compare, int val) { return atomic_cas_impl(address, compare, val); }
inline unsigned atomicCAS(unsigned* address, unsigned compare, unsigned val) {
  return atomic_cas_impl(address, compare, val);
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---- shared memory and launch --------------------------------------------------------------------------------
#define DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::tinyds::cuda::emu::dynamic_shared_memory())
// One copy per OS thread = one copy per running block (see the header comment), poisoned at each block's start.
#define STATIC_SHARED(type, name, dims) \
  static thread_local type name dims;   \
  ::tinyds::cuda::emu::static_shared_declared(&name, sizeof(name))

namespace tinyds::cuda {
// The emulated half of `launch` (the nvcc half is in kernels/common.cuh): runs the whole grid before it returns.
template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem_bytes, Args... args) {
  using Tuple = std::tuple<std::decay_t<Params>...>;
  emu::LaunchContext<void (*)(Params...), Tuple> ctx{kernel, Tuple(static_cast<Params>(args)...)};
  emu::run_grid(reinterpret_cast<const void*>(kernel), grid, block, smem_bytes,
                &emu::LaunchContext<void (*)(Params...), Tuple>::run, &ctx);
}
}  // namespace tinyds::cuda

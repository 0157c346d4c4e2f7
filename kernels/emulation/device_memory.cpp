// kernels/emulation/device_memory.cpp — device memory and the CUDA runtime API on the host. cudaMalloc'd buffers
// are malloc'd with guard bytes on both sides and filled with 0xFF (NaN as float); the guards are checked after
// every launch (launch.cpp), at cudaFree and at cudaDeviceSynchronize. A fault is returned as a cudaError_t, its
// message kept for last_error_message() and printed to stderr.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "kernels/emulation/block_run.h"

namespace tinyds::cuda::emu {

namespace {

constexpr size_t kGuardBytes = 256;
constexpr unsigned char kGuardByte = 0xFD;

struct Allocation {
  unsigned char* base;  // guard, user bytes, guard
  size_t bytes;         // user bytes
  long id;              // allocation number, for messages
};

std::mutex g_alloc_mutex;
std::map<uintptr_t, Allocation> g_allocations;  // by user address
long g_next_id = 0;
std::atomic<long> g_guard_faults{0};
std::string g_last_message;  // guarded by g_alloc_mutex
thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t fail(cudaError_t err, const std::string& message) {
  t_last_error = err;
  {
    std::lock_guard<std::mutex> lock(g_alloc_mutex);
    g_last_message = message;
  }
  std::fprintf(stderr, "cuda emulation: %s\n", message.c_str());
  return err;
}

// "" if both guards of `a` are intact, else what was overwritten (and the guards are restored).
std::string check_guards(Allocation& a) {
  unsigned char* user = a.base + kGuardBytes;
  for (size_t i = 0; i < kGuardBytes; i++) {
    if (user[a.bytes + i] != kGuardByte) {
      std::memset(user + a.bytes, kGuardByte, kGuardBytes);
      g_guard_faults++;
      return "write " + std::to_string(i) + " bytes past the end of cudaMalloc'd buffer #" + std::to_string(a.id) +
             " of " + std::to_string(a.bytes) + " bytes";
    }
    if (a.base[kGuardBytes - 1 - i] != kGuardByte) {
      std::memset(a.base, kGuardByte, kGuardBytes);
      g_guard_faults++;
      return "write " + std::to_string(i + 1) + " bytes before the start of cudaMalloc'd buffer #" +
             std::to_string(a.id) + " of " + std::to_string(a.bytes) + " bytes";
    }
  }
  return "";
}

// True if [p, p + bytes) lies inside one live allocation.
bool inside_allocation(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  const auto addr = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocations.upper_bound(addr);
  if (it == g_allocations.begin()) return false;
  --it;
  return addr + bytes <= it->first + it->second.bytes;
}

}  // namespace

namespace detail {

std::string check_all_guards() {
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  for (auto& [addr, a] : g_allocations) {
    std::string e = check_guards(a);
    if (!e.empty()) return e;
  }
  return "";
}

}  // namespace detail

std::string last_error_message() {
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  return g_last_message;
}

long guard_faults() { return g_guard_faults; }

}  // namespace tinyds::cuda::emu

// ---- the runtime API -------------------------------------------------------------------------------------------------
using namespace tinyds::cuda::emu;
using tinyds::cuda::emu::detail::check_all_guards;

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  if (!ptr) return fail(cudaErrorInvalidValue, "cudaMalloc: null output pointer");
  auto* base = static_cast<unsigned char*>(std::malloc(bytes + 2 * kGuardBytes));
  if (!base) return fail(cudaErrorMemoryAllocation, "cudaMalloc: out of memory for " + std::to_string(bytes) + " bytes");
  std::memset(base, kGuardByte, kGuardBytes);
  std::memset(base + kGuardBytes, 0xFF, bytes);  // NaN as float: an output never written is caught by the tests
  std::memset(base + kGuardBytes + bytes, kGuardByte, kGuardBytes);
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  *ptr = base + kGuardBytes;
  g_allocations[reinterpret_cast<uintptr_t>(*ptr)] = Allocation{base, bytes, g_next_id++};
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  std::string fault;
  {
    std::lock_guard<std::mutex> lock(g_alloc_mutex);
    auto it = g_allocations.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == g_allocations.end()) {
      t_last_error = cudaErrorInvalidDevicePointer;
      g_last_message = "cudaFree: pointer was not returned by cudaMalloc (or was freed already)";
      return cudaErrorInvalidDevicePointer;
    }
    fault = check_guards(it->second);
    std::free(it->second.base);
    g_allocations.erase(it);
  }
  if (!fault.empty()) return fail(cudaErrorIllegalAddress, "cudaFree found a " + fault);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (dst_dev && !inside_allocation(dst, bytes))
    return fail(cudaErrorInvalidValue, "cudaMemcpy: destination range of " + std::to_string(bytes) +
                                           " bytes is not inside one cudaMalloc'd buffer");
  if (src_dev && !inside_allocation(src, bytes))
    return fail(cudaErrorInvalidValue,
                "cudaMemcpy: source range of " + std::to_string(bytes) + " bytes is not inside one cudaMalloc'd buffer");
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!inside_allocation(ptr, bytes))
    return fail(cudaErrorInvalidValue,
                "cudaMemset: range of " + std::to_string(bytes) + " bytes is not inside one cudaMalloc'd buffer");
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  const std::string fault = check_all_guards();
  if (!fault.empty()) return fail(cudaErrorIllegalAddress, "cudaDeviceSynchronize found a " + fault);
  return cudaSuccess;
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = t_last_error;
  t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return t_last_error; }

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;  // the emulated device
  return cudaSuccess;
}

const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

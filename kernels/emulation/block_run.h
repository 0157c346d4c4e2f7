// kernels/emulation/block_run.h — what the files of the emulation share (kernels include cuda_emulation.h, never
// this): the state of the block that an OS thread is running (its fibers, warps, stacks, shared memory), and the
// functions that one file of the emulation calls in another.
//
// Files: fibers.cpp (context switch, fiber stacks, the block scheduler), barriers.cpp (__syncthreads, warp
// exchanges, shared memory), launch.cpp (a grid's blocks on OpenMP threads), device_memory.cpp (cudaMalloc'd
// buffers with guard regions, the runtime API and its fault messages), kernel_names.cpp (a kernel's name for
// messages, from the symbol tables).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <sys/mman.h>

#include "kernels/emulation/cuda_emulation.h"

#if defined(__SANITIZE_ADDRESS__)
#define TINYDS_EMU_ASAN 1
#else
#define TINYDS_EMU_ASAN 0
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace tinyds::cuda::emu::detail {

// A suspended fiber (or the scheduler waiting for one). x86-64: its stack pointer; the saved registers are on that
// stack (fibers.cpp). Elsewhere: a ucontext.
#if defined(__x86_64__)
struct Context {
  void* sp = nullptr;
};
#else
struct Context {
  ucontext_t uc;
};
#endif

// Fiber stacks: 64 KiB is plenty for a kernel (their locals are a few registers' worth); AddressSanitizer's
// instrumented frames are several times larger. A PROT_NONE page below each stack turns an overflow into a crash
// at the faulting line instead of silent corruption of the neighbouring stack.
#if TINYDS_EMU_ASAN
constexpr size_t kStackBytes = 512 * 1024;
#else
constexpr size_t kStackBytes = 64 * 1024;
#endif
constexpr size_t kPageBytes = 4096;

struct Stack {
  char* base = nullptr;  // lowest usable byte (the guard page is just below)
  bool dirty = false;    // its fiber was abandoned mid-run (an error): ASan's shadow must be cleared before reuse
};

enum class State { NotStarted, Ready, AtBlockBarrier, AtWarpBarrier, Done };

struct Fiber {
  Context ctx;
  State state = State::NotStarted;
  uint3 tid{0, 0, 0};
  int stack = -1;              // index into BlockRun::stacks while started and not done
  const char* what = nullptr;  // the barrier it waits at: "__syncthreads()", "__shfl_xor_sync", ...
  const char* file = nullptr;
  int line = 0;
  void* asan_fake_stack = nullptr;
};

struct Warp {
  int lanes = 0;     // lanes that exist (the last warp of a block may be partial)
  int arrived = 0;   // lanes waiting at the current exchange
  unsigned gen = 0;  // exchanges completed: slots alternate between two buffers, see warp_exchange
  uint64_t slots[2][32] = {};
  const char* what = nullptr;
  const char* file = nullptr;
  int line = 0;
};

// Everything one OS thread needs to run blocks; reused from block to block (stacks included).
struct BlockRun {
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<Stack> stacks;
  std::vector<int> free_stacks;
  Context scheduler;
  int current = -1;
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
  const void* kernel = nullptr;
  std::string error;  // set by a fiber that hit a fault; the scheduler throws it
  unsigned char* smem = nullptr;
  size_t smem_capacity = 0;
  std::vector<const void*> static_shared;  // STATIC_SHARED arrays already poisoned in this block
  // ASan: the scheduler's stack, learned when a fiber first starts, and its fake stack while a fiber runs.
  const void* sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
  void* sched_fake_stack = nullptr;

  ~BlockRun() {
    for (Stack& s : stacks) munmap(s.base - kPageBytes, kStackBytes + kPageBytes);
    std::free(smem);
  }
};

// The block this OS thread runs: fibers.cpp's thread_local, reached through a function defined in the same file so
// that no other translation unit touches the thread_local directly (GCC's cross-file TLS wrapper on the fibers'
// stacks gave UBSan null references).
BlockRun& block_run();

// ---- messages (fibers.cpp) -------------------------------------------------------------------------------------
std::string dim_str(uint3 v);  // "(x,y,z)"
std::string dim_str(dim3 v);
int linear_tid(uint3 t);  // x + blockDim.x * (y + blockDim.y * z)
std::string where(const char* what, const char* file, int line);  // "what at file:line"
// Two barrier calls are the same call if file and line agree.
bool same_site(const char* f1, int l1, const char* f2, int l2);
std::string prefix();  // "kernel NAME, block (x,y,z): "

// ---- fibers (fibers.cpp) ---------------------------------------------------------------------------------------
// Called on a fiber: back to the scheduler. A finished fiber passes dying = true and is never resumed.
void leave_fiber(BlockRun& r, Fiber& f, bool dying);
// A fault found on a fiber (bad mask, ...): record it and stop this fiber for good; the scheduler throws.
[[noreturn]] void fail_on_fiber(BlockRun& r, const std::string& message);
// Runs one block to completion on this OS thread. Returns an error message, or "" on success.
std::string run_block(BlockRun& r, dim3 block, size_t smem_bytes);

// ---- device memory (device_memory.cpp) -------------------------------------------------------------------------
// "" if the guards of every live cudaMalloc'd buffer are intact, else what was overwritten (guards restored).
std::string check_all_guards();

}  // namespace tinyds::cuda::emu::detail

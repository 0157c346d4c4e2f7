// kernels/emulation/launch.cpp — a launch: checks the configuration, runs every block of the grid (in parallel on
// OpenMP threads, each block wholly on one OS thread, see fibers.cpp), then reports the first fault of any block
// and any guard region a kernel overwrote.
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

#include "kernels/emulation/block_run.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinyds::cuda::emu {

using namespace detail;

namespace {
std::atomic<bool> g_parallel_blocks{true};
BlockObserver g_block_observer = nullptr;  // set_block_observer (nullptr: none)
void* g_block_observer_user = nullptr;
}  // namespace

void run_grid(const void* kernel, dim3 grid, dim3 block, size_t smem_bytes, void (*body)(void*), void* ctx) {
  const long nthreads = static_cast<long>(block.x) * block.y * block.z;
  const long nblocks = static_cast<long>(grid.x) * grid.y * grid.z;
  // The limits a GPU enforces at launch (compute capability 8.x/9.x without opt-in).
  if (nthreads < 1 || nthreads > 1024 || block.z > 64 || nblocks < 1 || grid.y > 65535 || grid.z > 65535)
    throw std::runtime_error("kernel " + function_name(kernel) + ": invalid launch configuration: grid " +
                             dim_str(grid) + ", block " + dim_str(block) +
                             " (every dimension >= 1, at most 1024 threads per block)");
  if (smem_bytes > 48 * 1024)
    throw std::runtime_error("kernel " + function_name(kernel) + ": " + std::to_string(smem_bytes) +
                             " bytes of dynamic shared memory requested; the default limit is 49152");
  std::mutex error_mutex;
  std::string first_error;
  std::atomic<bool> failed{false};
  auto run_one = [&](long b) {
    if (failed) return;
    BlockRun& r = block_run();
    if (r.smem_capacity < smem_bytes) {
      std::free(r.smem);
      r.smem_capacity = (smem_bytes + 63) / 64 * 64;
      r.smem = static_cast<unsigned char*>(std::aligned_alloc(64, r.smem_capacity));
    }
    r.body = body;
    r.ctx = ctx;
    r.kernel = kernel;
    gridDim = grid;
    blockDim = block;
    blockIdx = uint3{static_cast<unsigned>(b % grid.x), static_cast<unsigned>(b / grid.x % grid.y),
                     static_cast<unsigned>(b / (static_cast<long>(grid.x) * grid.y))};
    std::string e = run_block(r, block, smem_bytes);
    if (e.empty() && g_block_observer) g_block_observer(blockIdx, g_block_observer_user);
    if (!e.empty()) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (first_error.empty()) first_error = e;
      failed = true;
    }
  };
#ifdef _OPENMP
  if (g_parallel_blocks && nblocks > 1 && !omp_in_parallel()) {
    // Blocks are independent by CUDA's rules, so any order and any interleaving is legal; each block still runs
    // wholly on one OS thread (its fibers and its __shared__ arrays live there).
#pragma omp parallel for schedule(dynamic, 1)
    for (long b = 0; b < nblocks; b++) run_one(b);
  } else {
    for (long b = 0; b < nblocks; b++) run_one(b);
  }
#else
  for (long b = 0; b < nblocks; b++) run_one(b);
#endif
  if (!first_error.empty()) throw std::runtime_error(first_error);
  const std::string guard = check_all_guards();
  if (!guard.empty()) throw std::runtime_error("kernel " + function_name(kernel) + ": " + guard);
}

void set_parallel_blocks(bool on) { g_parallel_blocks = on; }
bool parallel_blocks() { return g_parallel_blocks; }
void set_block_observer(BlockObserver observer, void* user) {
  g_block_observer = observer;
  g_block_observer_user = user;
}

}  // namespace tinyds::cuda::emu

// kernels/emulation/barriers.cpp — __syncthreads(), the warp exchanges behind the shuffles, ballots and
// __syncwarp, and the block's shared memory (declared in cuda_emulation.h).
//
// A barrier parks the calling fiber and switches back to the block scheduler (fibers.cpp), which resumes it once
// every thread of the block (for __syncthreads) or every lane of the warp (for an exchange) has arrived.
#include <cstdio>
#include <cstring>
#include <string>

#include "kernels/emulation/block_run.h"

namespace tinyds::cuda::emu {

using namespace detail;

void syncthreads(const char* file, int line) {
  BlockRun& r = block_run();
  Fiber& f = r.fibers[r.current];
  f.state = State::AtBlockBarrier;
  f.what = "__syncthreads()";
  f.file = file;
  f.line = line;
  leave_fiber(r, f, false);  // the scheduler resumes us when the whole block has arrived
}

int lane_id() { return linear_tid(threadIdx) % 32; }

// The lanes write into slots[gen % 2]; the last lane to arrive bumps gen and releases the others, who read from the
// same buffer. A fast lane that goes on to the NEXT exchange writes into the other buffer, so it cannot overwrite
// a value a slower lane has yet to read; and it cannot get two exchanges ahead, because the next one waits for all.
uint64_t warp_exchange(unsigned mask, uint64_t value, int src_lane, const char* what, const char* file, int line) {
  BlockRun& r = block_run();
  const int t = r.current;
  Fiber& f = r.fibers[t];
  Warp& w = r.warps[t / 32];
  const int lane = t % 32;
  const unsigned full = w.lanes == 32 ? 0xffffffffu : (1u << w.lanes) - 1u;
  if ((mask & full) != full)
    fail_on_fiber(r, where(what, file, line) + ": mask 0x" + [&] {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%08x", mask);
      return std::string(buf);
    }() + " leaves out lanes of the warp; the emulation supports full-warp masks only");
  if (w.arrived > 0 && !same_site(w.file, w.line, file, line))
    fail_on_fiber(r, where(what, file, line) + " while other lanes of warp " + std::to_string(t / 32) + " wait at " +
                         where(w.what, w.file, w.line) + ": lanes of a warp must exchange at the same call");
  const unsigned buf = w.gen % 2;
  w.slots[buf][lane] = value;
  w.what = what;
  w.file = file;
  w.line = line;
  if (++w.arrived < w.lanes) {
    f.state = State::AtWarpBarrier;
    f.what = what;
    f.file = file;
    f.line = line;
    leave_fiber(r, f, false);
  } else {  // the last lane: release the others, which run in the scheduler's next round
    w.arrived = 0;
    w.gen++;
    for (int l = 0; l < w.lanes; l++) {
      Fiber& other = r.fibers[t / 32 * 32 + l];
      if (other.state == State::AtWarpBarrier) other.state = State::Ready;
    }
  }
  return src_lane < w.lanes ? w.slots[buf][src_lane] : value;
}

unsigned warp_ballot(unsigned mask, int pred, const char* what, const char* file, int line) {
  // One exchange gives every lane every predicate: read them all from the slots of this exchange.
  BlockRun& r = block_run();
  const int t = r.current;
  Warp& w = r.warps[t / 32];
  const unsigned buf = w.gen % 2;
  warp_exchange(mask, pred != 0, t % 32, what, file, line);
  unsigned bits = 0;
  for (int l = 0; l < w.lanes; l++) bits |= static_cast<unsigned>(w.slots[buf][l] != 0) << l;
  return bits;
}

// ---- shared memory: the per-block buffer of DYNAMIC_SHARED, and STATIC_SHARED arrays poisoned once per block ----
void* dynamic_shared_memory() { return block_run().smem; }

void static_shared_declared(void* array, size_t bytes) {
  BlockRun& r = block_run();
  // A kernel declares a handful of arrays: a linear search is cheaper than any map.
  for (const void* seen : r.static_shared)
    if (seen == array) return;
  r.static_shared.push_back(array);
  std::memset(array, 0xFF, bytes);
}

}  // namespace tinyds::cuda::emu

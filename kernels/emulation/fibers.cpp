// kernels/emulation/fibers.cpp — the CUDA threads of a block as fibers, and the block scheduler that runs them.
//
// One block runs on one OS thread. Its CUDA threads are fibers: each has its own small stack, and the block
// scheduler (on the OS thread's own stack) switches into a fiber, which runs until it finishes or reaches a barrier
// and then switches back. The scheduler walks the fibers in thread order, round after round:
//   - a fiber at __syncthreads() waits until every fiber of the block waits at that same barrier; then all resume;
//   - a fiber at a warp shuffle / ballot waits until every lane of its warp has arrived; the last lane to arrive
//     releases the others and goes on;
//   - if a round ends with nobody able to run and not everybody finished, some barrier was reached by only part of
//     the block (or warp): that is reported as an error naming the kernel, the block and two threads.
// Running threads in order, each up to its next barrier, is a legal GPU schedule, and it is deterministic: a kernel
// that forgets a barrier reads a value that another thread has not written yet, every time.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "kernels/emulation/block_run.h"

#if TINYDS_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace tinyds::cuda::emu::detail {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// Context switch. x86-64: a dozen instructions that save the callee-saved registers (and the SSE/x87 control words)
// on the current stack, store the stack pointer, load the other one and pop its registers. This is ~100x faster
// than swapcontext, which makes a system call per switch to save the signal mask. Other CPUs use ucontext.
// ---------------------------------------------------------------------------------------------------------------
#if defined(__x86_64__)
extern "C" void tinyds_emu_switch(void** save_sp, void* load_sp);
extern "C" void tinyds_emu_trampoline();
asm(R"(
.text
.globl tinyds_emu_switch
.hidden tinyds_emu_switch
.type tinyds_emu_switch,@function
tinyds_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size tinyds_emu_switch, .-tinyds_emu_switch

.globl tinyds_emu_trampoline
.hidden tinyds_emu_trampoline
.type tinyds_emu_trampoline,@function
tinyds_emu_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
.size tinyds_emu_trampoline, .-tinyds_emu_trampoline
)");

// A fresh fiber's stack looks like a suspended switch whose return address is the trampoline, which calls
// entry(arg) with r12 = arg and r13 = entry.
void make_context(Context& c, char* stack_base, size_t size, void (*entry)(void*), void* arg) {
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack_base) + size) & ~uintptr_t(15);
  auto* slot = reinterpret_cast<uint64_t*>(top);
  slot[-1] = reinterpret_cast<uint64_t>(&tinyds_emu_trampoline);  // ret lands here with rsp 16-byte aligned
  slot[-2] = 0;                                                    // rbp
  slot[-3] = 0;                                                    // rbx
  slot[-4] = reinterpret_cast<uint64_t>(arg);                      // r12
  slot[-5] = reinterpret_cast<uint64_t>(entry);                    // r13
  slot[-6] = 0;                                                    // r14
  slot[-7] = 0;                                                    // r15
  uint32_t mxcsr = __builtin_ia32_stmxcsr();
  uint16_t fpucw;
  asm volatile("fnstcw %0" : "=m"(fpucw));
  auto* ctl = reinterpret_cast<uint32_t*>(&slot[-8]);
  ctl[0] = mxcsr;
  ctl[1] = fpucw;
  c.sp = &slot[-8];
}
void switch_context(Context& from, Context& to) { tinyds_emu_switch(&from.sp, to.sp); }
#else
void make_context(Context& c, char* stack_base, size_t size, void (*entry)(void*), void* arg) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack_base;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  // makecontext passes int arguments: split the pointer in two halves.
  auto p = reinterpret_cast<uintptr_t>(arg);
  makecontext(&c.uc, reinterpret_cast<void (*)()>(+[](unsigned hi, unsigned lo, unsigned ehi, unsigned elo) {
                auto fn = reinterpret_cast<void (*)(void*)>((uintptr_t(ehi) << 32) | elo);
                fn(reinterpret_cast<void*>((uintptr_t(hi) << 32) | lo));
              }),
              4, unsigned(p >> 32), unsigned(p), unsigned(reinterpret_cast<uintptr_t>(entry) >> 32),
              unsigned(reinterpret_cast<uintptr_t>(entry)));
}
void switch_context(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
#endif

Stack new_stack() {
  void* p = mmap(nullptr, kStackBytes + kPageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("cuda emulation: cannot map a fiber stack");
  mprotect(p, kPageBytes, PROT_NONE);
  return Stack{static_cast<char*>(p) + kPageBytes, false};
}

// ---- fiber switches, annotated for AddressSanitizer so it knows which stack is live -------------------------------
void enter_fiber(BlockRun& r, int t) {
  r.current = t;
  threadIdx = r.fibers[t].tid;
#if TINYDS_EMU_ASAN
  __sanitizer_start_switch_fiber(&r.sched_fake_stack, r.stacks[r.fibers[t].stack].base, kStackBytes);
#endif
  switch_context(r.scheduler, r.fibers[t].ctx);
#if TINYDS_EMU_ASAN
  __sanitizer_finish_switch_fiber(r.sched_fake_stack, nullptr, nullptr);
#endif
}

void fiber_main(void*) {
  BlockRun& r = block_run();
#if TINYDS_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &r.sched_stack_bottom, &r.sched_stack_size);
#endif
  while (true) {
    Fiber& f = r.fibers[r.current];
    try {
      r.body(r.ctx);
    } catch (const std::exception& e) {
      if (r.error.empty()) r.error = prefix() + "thread " + dim_str(f.tid) + ": " + e.what();
    }
    f.state = State::Done;
    // Threads start in order, so the scheduler's next step would be to start thread current + 1 if it has not
    // started yet. Start it here instead, on this same stack: that saves two switches and a fresh context per
    // thread, and a block without barriers runs as one loop on one stack.
    const int next = r.current + 1;
    if (r.error.empty() && next < static_cast<int>(r.fibers.size()) && r.fibers[next].state == State::NotStarted) {
      Fiber& g = r.fibers[next];
      g.stack = f.stack;
      f.stack = -1;
      g.state = State::Ready;
      r.current = next;
      threadIdx = g.tid;
      continue;
    }
    r.free_stacks.push_back(f.stack);  // reused only after we have switched away from it
    f.stack = -1;
    leave_fiber(r, f, true);
    std::abort();  // unreachable: a finished fiber is never resumed
  }
}

// The error for a round that ended with every unfinished fiber waiting and no barrier complete.
std::string divergence_error(BlockRun& r) {
  const int n = static_cast<int>(r.fibers.size());
  // Prefer a stuck warp exchange: its missing lane is in the same warp.
  int a = -1;
  for (int t = 0; t < n && a < 0; t++)
    if (r.fibers[t].state == State::AtWarpBarrier) a = t;
  for (int t = 0; t < n && a < 0; t++)
    if (r.fibers[t].state == State::AtBlockBarrier) a = t;
  const Fiber& fa = r.fibers[a];
  const bool warp = fa.state == State::AtWarpBarrier;
  const int lo = warp ? a / 32 * 32 : 0, hi = warp ? std::min(n, lo + 32) : n;
  int b = -1;
  for (int t = lo; t < hi && b < 0; t++) {
    const Fiber& f = r.fibers[t];
    if (f.state != fa.state || !same_site(f.file, f.line, fa.file, fa.line)) b = t;
  }
  std::string other = "?";
  if (b >= 0) {
    const Fiber& fb = r.fibers[b];
    other = "thread " + dim_str(fb.tid) +
            (fb.state == State::Done ? std::string(" has exited") : " waits at " + where(fb.what, fb.file, fb.line));
  }
  return prefix() + "thread " + dim_str(fa.tid) + " waits at " + where(fa.what, fa.file, fa.line) + " but " + other +
         (warp ? ": a warp exchange reached by only part of the warp (every lane must take part)"
               : ": a __syncthreads() reached by only part of the block (undefined on a GPU: every thread of the "
                 "block must reach the same barrier)");
}

}  // namespace

namespace {
thread_local BlockRun t_run;
}  // namespace

BlockRun& block_run() { return t_run; }

std::string dim_str(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}
std::string dim_str(dim3 v) { return dim_str(uint3{v.x, v.y, v.z}); }

int linear_tid(uint3 t) { return static_cast<int>(t.x + blockDim.x * (t.y + blockDim.y * t.z)); }

std::string where(const char* what, const char* file, int line) {
  return std::string(what) + " at " + file + ":" + std::to_string(line);
}

// Two barrier calls are the same call if file and line agree (the file strings of one call site may be distinct
// copies when an inline helper is compiled in several files).
bool same_site(const char* f1, int l1, const char* f2, int l2) {
  return l1 == l2 && (f1 == f2 || (f1 && f2 && std::strcmp(f1, f2) == 0));
}

std::string prefix() { return "kernel " + function_name(t_run.kernel) + ", block " + dim_str(blockIdx) + ": "; }

void leave_fiber(BlockRun& r, Fiber& f, bool dying) {
#if TINYDS_EMU_ASAN
  __sanitizer_start_switch_fiber(dying ? nullptr : &f.asan_fake_stack, r.sched_stack_bottom, r.sched_stack_size);
#endif
  switch_context(f.ctx, r.scheduler);
#if TINYDS_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.asan_fake_stack, &r.sched_stack_bottom, &r.sched_stack_size);
#endif
}

[[noreturn]] void fail_on_fiber(BlockRun& r, const std::string& message) {
  Fiber& f = r.fibers[r.current];
  if (r.error.empty()) r.error = prefix() + "thread " + dim_str(f.tid) + ": " + message;
  leave_fiber(r, f, false);
  std::abort();  // unreachable: the scheduler abandons a failed block
}

std::string run_block(BlockRun& r, dim3 block, size_t smem_bytes) {
  const int n = static_cast<int>(block.x * block.y * block.z);
  r.fibers.assign(n, Fiber{});
  for (int t = 0; t < n; t++) {
    const unsigned tx = t % block.x, ty = (t / block.x) % block.y, tz = t / (block.x * block.y);
    r.fibers[t].tid = uint3{tx, ty, tz};
  }
  r.warps.assign((n + 31) / 32, Warp{});
  for (int w = 0; w < static_cast<int>(r.warps.size()); w++) r.warps[w].lanes = std::min(32, n - 32 * w);
  r.error.clear();
  // Dynamic shared memory starts as 0xFF bytes (NaN as float, -1 as int): reads of unwritten slots stand out.
  if (smem_bytes > 0) std::memset(r.smem, 0xFF, smem_bytes);
  r.static_shared.clear();  // so are the STATIC_SHARED arrays, each when the first thread declares it

  while (true) {
    for (int t = 0; t < n; t++) {
      Fiber& f = r.fibers[t];
      if (f.state == State::NotStarted) {
        if (r.free_stacks.empty()) {
          r.stacks.push_back(new_stack());
          r.free_stacks.push_back(static_cast<int>(r.stacks.size()) - 1);
        }
        f.stack = r.free_stacks.back();
        r.free_stacks.pop_back();
        Stack& s = r.stacks[f.stack];
#if TINYDS_EMU_ASAN
        if (s.dirty) ASAN_UNPOISON_MEMORY_REGION(s.base, kStackBytes);
#endif
        s.dirty = false;
        make_context(f.ctx, s.base, kStackBytes, &fiber_main, nullptr);
        f.state = State::Ready;
      }
      if (f.state == State::Ready) enter_fiber(r, t);
      if (!r.error.empty()) break;
    }
    if (!r.error.empty()) break;
    int done = 0, ready = 0, at_block = 0;
    for (const Fiber& f : r.fibers) {
      done += f.state == State::Done;
      ready += f.state == State::Ready;
      at_block += f.state == State::AtBlockBarrier;
    }
    if (done == n) return "";
    if (ready > 0) continue;  // lanes released by a warp exchange during this round
    // Nobody can run: the only way on is a __syncthreads() that every thread of the block waits at.
    bool same = at_block == n;
    for (const Fiber& f : r.fibers) same = same && same_site(f.file, f.line, r.fibers[0].file, r.fibers[0].line);
    if (!same) {
      r.error = divergence_error(r);
      break;
    }
    for (Fiber& f : r.fibers) f.state = State::Ready;
  }
  // Abandon the block: the stacks of unfinished fibers go back to the pool.
  for (Fiber& f : r.fibers) {
    if (f.stack >= 0) {
      r.stacks[f.stack].dirty = true;
      r.free_stacks.push_back(f.stack);
      f.stack = -1;
    }
  }
  return r.error;
}

}  // namespace tinyds::cuda::emu::detail

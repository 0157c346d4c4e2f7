// kernels/emulation/cuda_emulation.cpp — the block scheduler, fibers, warp exchanges and the memory API behind
// cuda_emulation.h.
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
#include "kernels/emulation/cuda_emulation.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define TINYDS_EMU_ASAN 1
#else
#define TINYDS_EMU_ASAN 0
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace tinyds::cuda::emu {
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

struct Context {
  void* sp = nullptr;
};
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
struct Context {
  ucontext_t uc;
};
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

Stack new_stack() {
  void* p = mmap(nullptr, kStackBytes + kPageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::runtime_error("cuda emulation: cannot map a fiber stack");
  mprotect(p, kPageBytes, PROT_NONE);
  return Stack{static_cast<char*>(p) + kPageBytes, false};
}

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
  // ASan: the scheduler's stack, learned when a fiber first starts, and its fake stack while a fiber runs.
  const void* sched_stack_bottom = nullptr;
  size_t sched_stack_size = 0;
  void* sched_fake_stack = nullptr;

  ~BlockRun() {
    for (Stack& s : stacks) munmap(s.base - kPageBytes, kStackBytes + kPageBytes);
    std::free(smem);
  }
};

thread_local BlockRun t_run;
std::atomic<bool> g_parallel_blocks{true};
BlockObserver g_block_observer = nullptr;  // set_block_observer (nullptr: none)
void* g_block_observer_user = nullptr;

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

std::string prefix() {
  return "kernel " + function_name(t_run.kernel) + ", block " + dim_str(blockIdx) + ": ";
}

// ---- fiber switches, annotated for AddressSanitizer so it knows which stack is live ----------------------------------
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

// Called on a fiber: back to the scheduler. A finished fiber passes dying = true and is never resumed.
void leave_fiber(BlockRun& r, Fiber& f, bool dying) {
#if TINYDS_EMU_ASAN
  __sanitizer_start_switch_fiber(dying ? nullptr : &f.asan_fake_stack, r.sched_stack_bottom, r.sched_stack_size);
#endif
  switch_context(f.ctx, r.scheduler);
#if TINYDS_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.asan_fake_stack, &r.sched_stack_bottom, &r.sched_stack_size);
#endif
}

void fiber_main(void*) {
  BlockRun& r = t_run;
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

// A fault found on a fiber (bad mask, ...): record it and stop this fiber for good; the scheduler throws.
[[noreturn]] void fail_on_fiber(BlockRun& r, const std::string& message) {
  Fiber& f = r.fibers[r.current];
  if (r.error.empty()) r.error = prefix() + "thread " + dim_str(f.tid) + ": " + message;
  leave_fiber(r, f, false);
  std::abort();  // unreachable: the scheduler abandons a failed block
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

// Runs one block to completion on this OS thread. Returns an error message, or "" on success.
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

// ---- cudaMalloc'd buffers with guard regions -------------------------------------------------------------------------
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

std::string check_all_guards() {
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  for (auto& [addr, a] : g_allocations) {
    std::string e = check_guards(a);
    if (!e.empty()) return e;
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

// ---- names of kernels, from the executable's symbol table (static functions are not in the dynamic one) ---------
std::string demangle(const char* name) {
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = status == 0 && d ? d : name;
  std::free(d);
  // Drop the parameter list: from the '(' that matches the final ')'.
  if (!s.empty() && s.back() == ')') {
    int depth = 0;
    for (size_t i = s.size(); i-- > 0;) {
      depth += s[i] == ')' ? 1 : s[i] == '(' ? -1 : 0;
      if (depth == 0) {
        s.resize(i);
        break;
      }
    }
  }
  const std::string anon = "(anonymous namespace)::";
  for (size_t i; (i = s.find(anon)) != std::string::npos;) s.erase(i, anon.size());
  return s;
}

std::string elf_symbol_name(const void* address) {
  uintptr_t bias = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* out) {
        *static_cast<uintptr_t*>(out) = info->dlpi_addr;  // the first object listed is the executable
        return 1;
      },
      &bias);
  const int fd = open("/proc/self/exe", O_RDONLY);
  if (fd < 0) return "";
  std::string found;
  Elf64_Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) == sizeof eh && std::memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0) {
    std::vector<Elf64_Shdr> sh(eh.e_shnum);
    const ssize_t want = static_cast<ssize_t>(sizeof(Elf64_Shdr) * eh.e_shnum);
    if (pread(fd, sh.data(), want, static_cast<off_t>(eh.e_shoff)) == want) {
      for (const Elf64_Shdr& s : sh) {
        if (s.sh_type != SHT_SYMTAB || s.sh_link >= sh.size()) continue;
        std::vector<Elf64_Sym> syms(s.sh_size / sizeof(Elf64_Sym));
        const Elf64_Shdr& strs = sh[s.sh_link];
        std::vector<char> names(strs.sh_size + 1, '\0');
        if (pread(fd, syms.data(), s.sh_size, static_cast<off_t>(s.sh_offset)) != static_cast<ssize_t>(s.sh_size) ||
            pread(fd, names.data(), strs.sh_size, static_cast<off_t>(strs.sh_offset)) !=
                static_cast<ssize_t>(strs.sh_size))
          break;
        for (const Elf64_Sym& sym : syms) {
          if (ELF64_ST_TYPE(sym.st_info) == STT_FUNC && sym.st_value + bias == reinterpret_cast<uintptr_t>(address) &&
              sym.st_name < strs.sh_size) {
            found = demangle(&names[sym.st_name]);
            break;
          }
        }
      }
    }
  }
  close(fd);
  return found;
}

}  // namespace

// ---- barriers --------------------------------------------------------------------------------------------------------
void syncthreads(const char* file, int line) {
  BlockRun& r = t_run;
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
  BlockRun& r = t_run;
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
  BlockRun& r = t_run;
  const int t = r.current;
  Warp& w = r.warps[t / 32];
  const unsigned buf = w.gen % 2;
  warp_exchange(mask, pred != 0, t % 32, what, file, line);
  unsigned bits = 0;
  for (int l = 0; l < w.lanes; l++) bits |= static_cast<unsigned>(w.slots[buf][l] != 0) << l;
  return bits;
}

void* dynamic_shared_memory() { return t_run.smem; }

// ---- launch ----------------------------------------------------------------------------------------------------------
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
    BlockRun& r = t_run;
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
void set_block_observer(BlockObserver observer, void* user) {
  g_block_observer = observer;
  g_block_observer_user = user;
}
bool parallel_blocks() { return g_parallel_blocks; }

std::string function_name(const void* address) {
  static std::mutex m;
  static std::map<const void*, std::string> cache;
  std::lock_guard<std::mutex> lock(m);
  auto it = cache.find(address);
  if (it != cache.end()) return it->second;
  std::string name;
  Dl_info info;
  if (dladdr(address, &info) && info.dli_sname && info.dli_saddr == address) name = demangle(info.dli_sname);
  if (name.empty()) name = elf_symbol_name(address);
  if (name.empty()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "at %p", address);
    name = buf;
  }
  return cache[address] = name;
}

std::string last_error_message() {
  std::lock_guard<std::mutex> lock(g_alloc_mutex);
  return g_last_message;
}

long guard_faults() { return g_guard_faults; }

}  // namespace tinyds::cuda::emu

// ---- the runtime API -------------------------------------------------------------------------------------------------
using namespace tinyds::cuda::emu;

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

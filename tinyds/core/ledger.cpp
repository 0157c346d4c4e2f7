// tinyds/core/ledger.cpp — see ledger.h.
#include "tinyds/core/ledger.h"

#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "kernels/device.cuh"
#include "tinyds/core/error.h"

namespace tinyds {

namespace {
constexpr std::size_t kHugePage = std::size_t(2) << 20;  // x86-64's transparent huge page: 2 MiB
// Bookkeeping for live allocations: pointer -> (bytes, cell). A map keeps Buffer free of hidden headers.
struct Live { std::size_t bytes; int place; int role; int cat; };
std::unordered_map<void*, Live>& live_map() { static std::unordered_map<void*, Live> m; return m; }
}  // namespace

const char* category_name(Category c) {
  static const char* names[] = {"weights", "grads", "adam_m", "adam_v", "activations", "kv_cache", "rollout"};
  return names[static_cast<int>(c)];
}
const char* place_name(Place p) { return p == Place::device ? "device" : "host"; }
const char* role_name(Role r) {
  static const char* names[] = {"policy", "reference", "critic", "reward", "teacher"};
  return names[static_cast<int>(r)];
}

Ledger& Ledger::global() { static Ledger g; return g; }

void* Ledger::allocate(std::size_t bytes, Role role, Category cat, Place place) {
  if (bytes > SIZE_MAX - 63)  // the rounding below would wrap around to 0
    throw_error("out of memory allocating ", bytes, " bytes for ", role_name(role), "/", category_name(cat));
  std::size_t rounded = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
  void* p = nullptr;
  if (place == Place::device) {
    try {
      p = cuda::device_alloc(rounded);  // cudaMalloc's pointers are 256-byte aligned
    } catch (const std::exception& e) {
      throw_error("out of device memory allocating ", format_bytes(bytes), " for ", role_name(role), "/",
                  category_name(cat), ": ", e.what());
    }
    cuda::fill_zero(p, rounded);
  } else {
    // A large buffer (weights, activations, kv-caches, rollouts: up to a few GiB) is backed by 2 MiB transparent
    // huge pages where the kernel offers them on request (`madvise` mode). On the 2-core AVX-512 VM, writing 1 GiB
    // of fresh memory took 2.8 s in 4 KiB pages and 0.09 s in huge pages; a GRPO step whose batch outgrew the
    // activation buffer took 4-6 s instead of 2-3 s, and SFT steps ~7% more time (notebooks/EXPERIMENTS.md,
    // "Huge pages").
    const bool huge = rounded >= kHugePage;
    if (huge) rounded = (rounded + kHugePage - 1) / kHugePage * kHugePage;
    p = std::aligned_alloc(huge ? kHugePage : 64, rounded);
    if (!p) throw_error("out of memory allocating ", format_bytes(bytes), " for ", role_name(role), "/", category_name(cat));
#ifdef MADV_HUGEPAGE
    if (huge) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: without huge pages the buffer works as before
#endif
    std::memset(p, 0, rounded);
  }
  std::lock_guard<std::mutex> lock(mu_);
  const int w = static_cast<int>(place), r = static_cast<int>(role), c = static_cast<int>(cat);
  live_map()[p] = Live{bytes, w, r, c};
  cur_[w][r][c] += bytes;
  if (cur_[w][r][c] > peak_[w][r][c]) peak_[w][r][c] = cur_[w][r][c];
  cur_total_[w] += bytes;
  if (cur_total_[w] > peak_total_[w]) peak_total_[w] = cur_total_[w];
  return p;
}

void Ledger::release(void* ptr) {
  if (!ptr) return;
  int place = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_map().find(ptr);
    TINYDS_ASSERT(it != live_map().end(), "release of a pointer the ledger did not allocate");
    const Live& l = it->second;
    place = l.place;
    cur_[l.place][l.role][l.cat] -= l.bytes;
    cur_total_[l.place] -= l.bytes;
    live_map().erase(it);
  }
  if (place == static_cast<int>(Place::device)) cuda::device_free(ptr);
  else std::free(ptr);
}

std::size_t Ledger::current(Role r, Category c, Place p) const {
  std::lock_guard<std::mutex> lock(mu_);
  return cur_[static_cast<int>(p)][static_cast<int>(r)][static_cast<int>(c)];
}
std::size_t Ledger::peak(Role r, Category c, Place p) const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_[static_cast<int>(p)][static_cast<int>(r)][static_cast<int>(c)];
}
std::size_t Ledger::current_total(Place p) const {
  std::lock_guard<std::mutex> lock(mu_);
  return cur_total_[static_cast<int>(p)];
}
std::size_t Ledger::peak_total(Place p) const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_total_[static_cast<int>(p)];
}

void Ledger::reset_peaks() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int w = 0; w < kNumPlaces; w++) {
    for (int r = 0; r < kNumRoles; r++)
      for (int c = 0; c < kNumCategories; c++) peak_[w][r][c] = cur_[w][r][c];
    peak_total_[w] = cur_total_[w];
  }
}

std::string Ledger::table(Place place) const {
  std::lock_guard<std::mutex> lock(mu_);
  const int w = static_cast<int>(place);
  const auto& peak = peak_[w];  // [role][category] of this place
  std::ostringstream os;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%-10s", "peak");
  os << buf;
  for (int c = 0; c < kNumCategories; c++) {
    std::snprintf(buf, sizeof buf, " %12s", category_name(static_cast<Category>(c)));
    os << buf;
  }
  os << "        total\n";
  for (int r = 0; r < kNumRoles; r++) {
    std::size_t row = 0;
    for (int c = 0; c < kNumCategories; c++) row += peak[r][c];
    if (row == 0) continue;
    std::snprintf(buf, sizeof buf, "%-10s", role_name(static_cast<Role>(r)));
    os << buf;
    for (int c = 0; c < kNumCategories; c++) {
      std::snprintf(buf, sizeof buf, " %12s", format_bytes(peak[r][c]).c_str());
      os << buf;
    }
    std::snprintf(buf, sizeof buf, " %12s\n", format_bytes(row).c_str());
    os << buf;
  }
  os << "simultaneous peak of all ledgered " << (place == Place::device ? "device " : "") << "memory: "
     << format_bytes(peak_total_[w]) << "\n";
  return os.str();
}

std::string format_bytes(std::size_t bytes) {
  char buf[32];
  double b = static_cast<double>(bytes);
  if (bytes < 1024) std::snprintf(buf, sizeof buf, "%zu B", bytes);
  else if (b < 1024.0 * 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024);
  else if (b < 1024.0 * 1024 * 1024) std::snprintf(buf, sizeof buf, "%.2f MiB", b / (1024.0 * 1024));
  else std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  return buf;
}

std::size_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  return 0;
}

}  // namespace tinyds

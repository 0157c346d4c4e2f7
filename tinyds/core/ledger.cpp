// tinyds/core/ledger.cpp — see ledger.h.
#include "tinyds/core/ledger.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "tinyds/core/error.h"

namespace tinyds {

namespace {
// Bookkeeping for live allocations: pointer -> (bytes, cell). A map keeps Buffer free of hidden headers.
struct Live { std::size_t bytes; int role; int cat; };
std::unordered_map<void*, Live>& live_map() { static std::unordered_map<void*, Live> m; return m; }
}  // namespace

const char* category_name(Category c) {
  static const char* names[] = {"weights", "grads", "adam_m", "adam_v", "activations", "kv_cache", "rollout"};
  return names[static_cast<int>(c)];
}
const char* role_name(Role r) {
  static const char* names[] = {"policy", "reference", "critic", "reward", "teacher"};
  return names[static_cast<int>(r)];
}

Ledger& Ledger::global() { static Ledger g; return g; }

void* Ledger::allocate(std::size_t bytes, Role role, Category cat) {
  if (bytes > SIZE_MAX - 63)  // the rounding below would wrap around to 0
    throw_error("out of memory allocating ", bytes, " bytes for ", role_name(role), "/", category_name(cat));
  std::size_t rounded = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
  void* p = std::aligned_alloc(64, rounded);
  if (!p) throw_error("out of memory allocating ", format_bytes(bytes), " for ", role_name(role), "/", category_name(cat));
  std::memset(p, 0, rounded);
  std::lock_guard<std::mutex> lock(mu_);
  int r = static_cast<int>(role), c = static_cast<int>(cat);
  live_map()[p] = Live{bytes, r, c};
  cur_[r][c] += bytes;
  if (cur_[r][c] > peak_[r][c]) peak_[r][c] = cur_[r][c];
  cur_total_ += bytes;
  if (cur_total_ > peak_total_) peak_total_ = cur_total_;
  return p;
}

void Ledger::release(void* ptr) {
  if (!ptr) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_map().find(ptr);
    TINYDS_ASSERT(it != live_map().end(), "release of a pointer the ledger did not allocate");
    cur_[it->second.role][it->second.cat] -= it->second.bytes;
    cur_total_ -= it->second.bytes;
    live_map().erase(it);
  }
  std::free(ptr);
}

std::size_t Ledger::current(Role r, Category c) const {
  std::lock_guard<std::mutex> lock(mu_);
  return cur_[static_cast<int>(r)][static_cast<int>(c)];
}
std::size_t Ledger::peak(Role r, Category c) const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_[static_cast<int>(r)][static_cast<int>(c)];
}
std::size_t Ledger::current_total() const { std::lock_guard<std::mutex> lock(mu_); return cur_total_; }
std::size_t Ledger::peak_total() const { std::lock_guard<std::mutex> lock(mu_); return peak_total_; }

void Ledger::reset_peaks() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int r = 0; r < kNumRoles; r++)
    for (int c = 0; c < kNumCategories; c++) peak_[r][c] = cur_[r][c];
  peak_total_ = cur_total_;
}

std::string Ledger::table() const {
  std::lock_guard<std::mutex> lock(mu_);
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
    for (int c = 0; c < kNumCategories; c++) row += peak_[r][c];
    if (row == 0) continue;
    std::snprintf(buf, sizeof buf, "%-10s", role_name(static_cast<Role>(r)));
    os << buf;
    for (int c = 0; c < kNumCategories; c++) {
      std::snprintf(buf, sizeof buf, " %12s", format_bytes(peak_[r][c]).c_str());
      os << buf;
    }
    std::snprintf(buf, sizeof buf, " %12s\n", format_bytes(row).c_str());
    os << buf;
  }
  os << "simultaneous peak of all ledgered memory: " << format_bytes(peak_total_) << "\n";
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

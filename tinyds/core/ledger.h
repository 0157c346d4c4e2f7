// tinyds/core/ledger.h — the memory ledger (DESIGN section 3).
//
// Every large buffer (parameters, gradients, Adam moments, activations, kv-caches, rollout buffers) is
// allocated through the ledger, tagged with a Category and the Role of the model that owns it. The ledger
// tracks current and peak bytes per (role, category) cell and in total; `tinyds memory` prints its table.
// Peaks are per cell: the peak of a row or column sum is tracked separately (the total peak is the true
// simultaneous peak of the process's ledgered memory). Host memory and device memory (the `--device cuda` path:
// cudaMalloc through kernels/device.cuh) are counted apart: each has its own cells, totals and table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include "tinyds/core/error.h"

namespace tinyds {

enum class Category : int { weights, grads, adam_m, adam_v, activations, kv_cache, rollout, count };
enum class Role : int { policy, reference, critic, reward, teacher, count };
constexpr int kNumCategories = static_cast<int>(Category::count);
constexpr int kNumRoles = static_cast<int>(Role::count);

// Where a buffer lives: host memory (malloc) or the CUDA device's (cudaMalloc; host memory with guard bytes under
// the CPU emulation of CUDA).
enum class Place : int { host, device, count };
constexpr int kNumPlaces = static_cast<int>(Place::count);

const char* category_name(Category c);
const char* place_name(Place p);
const char* role_name(Role r);

class Ledger {
 public:
  // The process-wide ledger used by Buffer.
  static Ledger& global();

  // Allocates `bytes` (64-byte aligned, zero-filled) in `place` and records it in cell (place, role, category).
  // A host block of 2 MiB or more starts on a 2 MiB boundary, whole huge pages, with the kernel advised to back it
  // with transparent huge pages (MADV_HUGEPAGE); the ledger still counts the bytes asked for.
  void* allocate(std::size_t bytes, Role role, Category cat, Place place = Place::host);
  // Releases a pointer returned by allocate(); nullptr is a no-op.
  void release(void* ptr);

  std::size_t current(Role r, Category c, Place p = Place::host) const;
  std::size_t peak(Role r, Category c, Place p = Place::host) const;
  std::size_t current_total(Place p = Place::host) const;
  std::size_t peak_total(Place p = Place::host) const;
  // Forgets all peaks (current bytes stay): measure one phase at a time.
  void reset_peaks();
  // A table of peak bytes, one row per role that held memory in `p` since the last reset_peaks(), one column per
  // category.
  std::string table(Place p = Place::host) const;

 private:
  mutable std::mutex mu_;
  std::size_t cur_[kNumPlaces][kNumRoles][kNumCategories] = {};
  std::size_t peak_[kNumPlaces][kNumRoles][kNumCategories] = {};
  std::size_t cur_total_[kNumPlaces] = {}, peak_total_[kNumPlaces] = {};
};

// An owning, ledgered, typed array: Buffer<float> w(n, Role::policy, Category::weights). With Place::device the
// elements are device memory: only kernels (and the copies of tinyds/device/memory.h) may touch them.
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(std::size_t n, Role role, Category cat, Place place = Place::host) { reset(n, role, cat, place); }
  ~Buffer() { Ledger::global().release(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : data_(o.data_), n_(o.n_), place_(o.place_) { o.data_ = nullptr; o.n_ = 0; }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      Ledger::global().release(data_);
      data_ = o.data_; n_ = o.n_; place_ = o.place_;
      o.data_ = nullptr; o.n_ = 0;
    }
    return *this;
  }
  void reset(std::size_t n, Role role, Category cat, Place place = Place::host) {
    if (n > SIZE_MAX / sizeof(T))  // n * sizeof(T) would wrap around to a small allocation
      throw_error("buffer of ", n, " elements of ", sizeof(T), " bytes is too large (", role_name(role), "/",
                  category_name(cat), ")");
    Ledger::global().release(data_);
    data_ = nullptr;  // if allocate() throws, the destructor must not release the old pointer a second time
    n_ = 0;
    if (n) data_ = static_cast<T*>(Ledger::global().allocate(n * sizeof(T), role, cat, place));
    n_ = n;
    place_ = place;
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return n_; }
  Place place() const { return place_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  std::size_t n_ = 0;
  Place place_ = Place::host;
};

// "1.50 MiB"-style formatting used by the ledger table and progress lines.
std::string format_bytes(std::size_t bytes);
// Peak resident set size of this process (VmHWM), in bytes; 0 if unknown.
std::size_t peak_rss_bytes();

}  // namespace tinyds

// tinyds/core/ledger.h — the memory ledger (DESIGN section 3).
//
// Every large buffer (parameters, gradients, Adam moments, activations, kv-caches, rollout buffers) is
// allocated through the ledger, tagged with a Category and the Role of the model that owns it. The ledger
// tracks current and peak bytes per (role, category) cell and in total; `tinyds memory` prints its table.
// Peaks are per cell: the peak of a row or column sum is tracked separately (the total peak is the true
// simultaneous peak of the process's ledgered memory).
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

const char* category_name(Category c);
const char* role_name(Role r);

class Ledger {
 public:
  // The process-wide ledger used by Buffer.
  static Ledger& global();

  // Allocates `bytes` (64-byte aligned, zero-filled) and records it in cell (role, category).
  void* allocate(std::size_t bytes, Role role, Category cat);
  // Releases a pointer returned by allocate(); nullptr is a no-op.
  void release(void* ptr);

  std::size_t current(Role r, Category c) const;
  std::size_t peak(Role r, Category c) const;
  std::size_t current_total() const;
  std::size_t peak_total() const;
  // Forgets all peaks (current bytes stay): measure one phase at a time.
  void reset_peaks();
  // A table of peak (and current) bytes, one row per role that held memory since the last reset_peaks(), one column per category.
  std::string table() const;

 private:
  mutable std::mutex mu_;
  std::size_t cur_[kNumRoles][kNumCategories] = {};
  std::size_t peak_[kNumRoles][kNumCategories] = {};
  std::size_t cur_total_ = 0, peak_total_ = 0;
};

// An owning, ledgered, typed array: Buffer<float> w(n, Role::policy, Category::weights).
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(std::size_t n, Role role, Category cat) { reset(n, role, cat); }
  ~Buffer() { Ledger::global().release(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : data_(o.data_), n_(o.n_) { o.data_ = nullptr; o.n_ = 0; }
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) { Ledger::global().release(data_); data_ = o.data_; n_ = o.n_; o.data_ = nullptr; o.n_ = 0; }
    return *this;
  }
  void reset(std::size_t n, Role role, Category cat) {
    if (n > SIZE_MAX / sizeof(T))  // n * sizeof(T) would wrap around to a small allocation
      throw_error("buffer of ", n, " elements of ", sizeof(T), " bytes is too large (", role_name(role), "/",
                  category_name(cat), ")");
    Ledger::global().release(data_);
    data_ = nullptr;  // if allocate() throws, the destructor must not release the old pointer a second time
    n_ = 0;
    if (n) data_ = static_cast<T*>(Ledger::global().allocate(n * sizeof(T), role, cat));
    n_ = n;
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return n_; }
  T& operator[](std::size_t i) { return data_[i]; }
  const T& operator[](std::size_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  std::size_t n_ = 0;
};

// "1.50 MiB"-style formatting used by the ledger table and progress lines.
std::string format_bytes(std::size_t bytes);
// Peak resident set size of this process (VmHWM), in bytes; 0 if unknown.
std::size_t peak_rss_bytes();

}  // namespace tinyds

// tinyds/core/carver.h — a bump allocator that carves named views out of one buffer.
//
// With base == nullptr it only counts, so the same carving code gives both the size to allocate and the views:
// offsets are never written twice by hand. Every view starts on a 16-element (64-byte for float) boundary.
#pragma once
#include <cstddef>

namespace tinyds {

template <typename T>
struct Carver {
  T* base;
  std::size_t used = 0;
  T* take(std::size_t n) {
    T* p = base ? base + used : nullptr;
    used += (n + 15) / 16 * 16;  // 64-byte aligned starts
    return p;
  }
};

}  // namespace tinyds

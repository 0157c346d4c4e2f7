// tests/float_util.h — element-wise comparisons of float arrays for the decoder tests (header only).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>

namespace tinyds::test {

// max_i |a[i]|   a (n)
inline double max_abs(const float* a, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; i++) m = std::max(m, std::fabs(static_cast<double>(a[i])));
  return m;
}

// max_i |a[i] - b[i]|   a, b (n)
inline double max_diff(const float* a, const float* b, std::size_t n) {
  double m = 0;
  for (std::size_t i = 0; i < n; i++) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

}  // namespace tinyds::test

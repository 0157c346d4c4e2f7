// tests/gradcheck.h — finite-difference gradient checking, header only (used by the op tests and the whole-model
// check).
//
// Use in double precision. For a scalar loss L(x) computed by a callable `loss()` that reads x:
//   numeric_grad(loss, x, i, h)   central difference (L(x + h e_i) - L(x - h e_i)) / 2h, x[i] restored after.
//   numeric_grads(loss, x, n, h)  the same for every element 0..n-1.
//   compare_grads(num, ana, n, abs_floor)  the worst elementwise error between numeric and analytic gradients.
// Error model with h = 1e-5 in double: truncation h^2 |L'''| / 6 ~ 1e-11 |L'''|, rounding ~ eps |L| / h ~
// 1e-11 |L|; on small ops that is |num - ana| ~ 1e-10..1e-9, while a wrong backward (a missing term, a transposed
// index) misses by O(1) relative. That gap is what makes a bound like 1e-6 relative (with an absolute floor for
// near-zero entries, see compare_grads) both safe and sharp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace tinyds::test {

// dL/dx[i] by central difference. `loss` must recompute L from the current contents of x.
template <class F>
double numeric_grad(F&& loss, double* x, std::size_t i, double h = 1e-5) {
  const double saved = x[i];
  x[i] = saved + h;
  const double lp = loss();
  x[i] = saved - h;
  const double lm = loss();
  x[i] = saved;  // restore exactly (not saved + h - h, which may round)
  return (lp - lm) / (2.0 * h);
}

// Numeric gradient for every element of x (n).
template <class F>
std::vector<double> numeric_grads(F&& loss, double* x, std::size_t n, double h = 1e-5) {
  std::vector<double> g(n);
  for (std::size_t i = 0; i < n; i++) g[i] = numeric_grad(loss, x, i, h);
  return g;
}

struct GradReport {
  double max_rel = 0.0;   // max_i |num - ana| / max(abs_floor, |num| + |ana|)
  double max_abs = 0.0;   // max_i |num - ana|
  std::size_t worst = 0;  // index of the element with the largest max_rel
  bool finite = true;     // false if any entry of either gradient is NaN or Inf
};

// Elementwise comparison. abs_floor keeps near-zero entries (where the relative error is meaningless) from
// dominating: below it the check is effectively absolute, |num - ana| / abs_floor.
inline GradReport compare_grads(const double* num, const double* ana, std::size_t n, double abs_floor) {
  GradReport r;
  for (std::size_t i = 0; i < n; i++) {
    if (!std::isfinite(num[i]) || !std::isfinite(ana[i])) r.finite = false;
    const double d = std::fabs(num[i] - ana[i]);
    const double rel = d / std::max(abs_floor, std::fabs(num[i]) + std::fabs(ana[i]));
    r.max_abs = std::max(r.max_abs, d);
    if (rel > r.max_rel) {
      r.max_rel = rel;
      r.worst = i;
    }
  }
  return r;
}

// Convenience: numeric gradients of every element of x against the analytic ones in ana (n).
template <class F>
GradReport check_grad(F&& loss, double* x, const double* ana, std::size_t n, double abs_floor, double h = 1e-5) {
  const std::vector<double> num = numeric_grads(loss, x, n, h);
  return compare_grads(num.data(), ana, n, abs_floor);
}

// sum_i a[i] * b[i]: the random projection loss L = sum(out * R), whose gradient w.r.t. out is exactly R.
inline double dot(const double* a, const double* b, std::size_t n) {
  double s = 0.0;
  for (std::size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

}  // namespace tinyds::test

// tests/ops_util.h — shared helpers for the tests/ops_*.cpp files (doctest-based; see tests/util/gradcheck.h for
// the doctest-free finite-difference core).
//
// run_gradcheck checks one op's backward three ways:
//   1. every element of every input's analytic gradient against central differences (tests/util/gradcheck.h);
//   2. activation gradients are WRITTEN: pre-filled with NaN (first call) and 12345 (second call), the result
//      must be finite and identical both times (a `+=` or an unwritten element would keep the garbage);
//   3. parameter gradients ACCUMULATE: after two calls from zero they are exactly twice the first call's
//      (g + g is exact in floating point, so this is a bitwise check).
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/util/gradcheck.h"
#include "tinyds/core/rng.h"

namespace tinyds::test {

// n normal(0, std) draws from their own stream (fill_normal draws element i from index i, so each tensor needs
// its own stream to be independent of the others).
inline std::vector<double> randn(std::size_t n, uint64_t stream, double std = 1.0) {
  std::vector<double> x(n);
  fill_normal(x.data(), n, std, Rng(1234, stream));
  return x;
}
// Set TINYDS_TEST_VERBOSE=1 to print the observed errors of every check (doctest prints MESSAGE unconditionally,
// which would clutter the whole suite's output).
inline bool verbose() {
  static const bool v = std::getenv("TINYDS_TEST_VERBOSE") != nullptr;
  return v;
}

inline std::vector<float> to_float(const std::vector<double>& x) { return std::vector<float>(x.begin(), x.end()); }

// Tolerance of the gradient check (see tests/util/gradcheck.h for the error model). Observed noise of h = 1e-5 central
// differences on these small ops is |num - ana| <= ~1e-9 (truncation h^2 L''' / 6 dominates, with L''' up to ~100
// for attention). Bound: |num - ana| / max(1e-2, |num| + |ana|) < 1e-6, i.e. 1e-6 relative for entries above 1e-2
// and 1e-8 absolute below it: >= 10x above that noise, and still orders of magnitude below the O(1) relative
// error of any real mistake (a missing term, a wrong sign, a transposed index).
constexpr double kGradRelTol = 1e-6;
constexpr double kGradAbsFloor = 1e-2;

struct GradTensor {
  const char* name;
  std::vector<double>* x;     // the input or weight the loss is differentiated against
  std::vector<double>* grad;  // where backward writes (activation) or accumulates (parameter) its gradient
  bool param;                 // true: gradient accumulates (+=); false: gradient is written (=)
};

// loss(): recomputes L = sum(out * R) from the current inputs. backward(): runs the op's backward with dout = R.
// tol: the bound on every element's max_rel (kGradRelTol unless the caller states another, with its reason).
inline void run_gradcheck(const std::function<double()>& loss, const std::function<void()>& backward,
                          const std::vector<GradTensor>& ts, double tol = kGradRelTol) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& t : ts) std::fill(t.grad->begin(), t.grad->end(), t.param ? 0.0 : nan);
  backward();
  std::vector<std::vector<double>> first;
  for (const auto& t : ts) first.push_back(*t.grad);
  for (const auto& t : ts)
    if (!t.param) std::fill(t.grad->begin(), t.grad->end(), 12345.0);
  backward();
  for (std::size_t k = 0; k < ts.size(); k++) {
    const auto& t = ts[k];
    INFO("tensor ", std::string(t.name));
    bool same = true;
    for (std::size_t i = 0; i < first[k].size(); i++)
      same = same && (*t.grad)[i] == (t.param ? 2.0 * first[k][i] : first[k][i]);
    const char* what = t.param ? "parameter gradient did not accumulate (+=)" : "activation gradient not written (=)";
    CHECK_MESSAGE(same, what);
    GradReport r = check_grad(loss, t.x->data(), first[k].data(), t.x->size(), kGradAbsFloor);
    if (verbose())
      MESSAGE("gradcheck ", std::string(t.name), ": max_rel ", r.max_rel, " max_abs ", r.max_abs, " (n ",
              t.x->size(), ")");
    CHECK(r.finite);
    CHECK_MESSAGE(r.max_rel < tol, "worst element ", r.worst, " numeric vs analytic rel err ", r.max_rel);
  }
  loss();  // leave the op's outputs at the unperturbed inputs for the caller's own checks
}

// Largest |a_i - b_i| / max(|b_i|, rms(b)) between a float result a and its double twin b. The rms of the reference
// is the tensor's natural scale: an entry that is small only because its terms cancelled (a sum of 64 products of
// size ~1 that lands near 0) is judged against the size of those terms, not against its own size.
inline double max_rel_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double ss = 0.0;
  for (double x : b) ss += x * x;
  const double floor = std::max(std::sqrt(ss / std::max<std::size_t>(b.size(), 1)), 1e-300);
  double m = 0.0;
  for (std::size_t i = 0; i < b.size(); i++)
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]) / std::max(std::fabs(b[i]), floor));
  return m;
}

}  // namespace tinyds::test

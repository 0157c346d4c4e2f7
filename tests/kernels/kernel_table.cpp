// tests/kernels/kernel_table.cpp — the registry of kernel rows and the TEST_CASE that runs them all (see
// kernel_table.h).
#include "tests/kernels/kernel_table.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "tests/kernels/kernel_util.h"

namespace tinyds::test {

namespace {
std::vector<std::unique_ptr<KernelCaseList>>& registry() {
  static std::vector<std::unique_ptr<KernelCaseList>> lists;  // a function-local static: no init-order problem
  return lists;
}
}  // namespace

bool register_kernel_cases(std::unique_ptr<KernelCaseList> list) {
  registry().push_back(std::move(list));
  return true;
}

std::vector<KernelCase> every_kernel_case() {
  std::vector<KernelCase> all;
  for (auto& list : registry()) {
    list->cases.clear();
    list->define();
    for (KernelCase& c : list->cases) all.push_back(std::move(c));
    list->cases.clear();
  }
  return all;
}

Comparison compare_output(const Output& o, double atol, double rtol) {
  Comparison c;
  if (o.got.size() != o.ref.size()) {
    c.first_bad = 0;
    c.message = o.name + ": kernel gave " + std::to_string(o.got.size()) + " values, reference " +
                std::to_string(o.ref.size());
    return c;
  }
  for (size_t i = 0; i < o.got.size(); i++) {
    const double got = o.got[i], ref = o.ref[i];
    const double err = std::fabs(got - ref);
    const bool finite = std::isfinite(got);
    if (finite) c.max_abs_error = std::max(c.max_abs_error, err);
    // !(err <= tol) is also true for NaN: a NaN never passes.
    if (c.first_bad < 0 && (!finite || !(err <= atol + rtol * std::fabs(ref)))) {
      c.first_bad = static_cast<long>(i);
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s[%zu]: got %.9g, reference %.9g, |diff| %.3g > %.3g%s", o.name.c_str(), i,
                    got, ref, err, atol + rtol * std::fabs(ref), finite ? "" : " (not finite)");
      c.message = buf;
    }
  }
  return c;
}

}  // namespace tinyds::test

using tinyds::test::KernelCase;

TEST_CASE("kernels/table: every kernel matches its CPU op") {
  const char* filter = std::getenv("TINYDS_KERNEL_FILTER");
  const std::vector<KernelCase> cases = tinyds::test::every_kernel_case();
  CHECK(!cases.empty());
  int run = 0;
  std::printf("%-28s %3s  %-26s %11s  %s\n", "op", "ver", "shape", "max |err|", "result");
  for (const KernelCase& c : cases) {
    if (filter && c.op.find(filter) == std::string::npos) continue;
    run++;
    INFO("op " << c.op << " version " << c.version << " shape " << c.shape << " (tolerance: " << c.why << ")");
    tinyds::test::CaseResult result;
    try {
      result = c.run();
    } catch (const std::exception& e) {
      std::printf("%-28s %3d  %-26s %11s  ERROR %s\n", c.op.c_str(), c.version, c.shape.c_str(), "-", e.what());
      FAIL_CHECK("threw: " << e.what());
      continue;
    }
    CHECK(!result.outputs.empty());
    double max_err = 0;
    std::string bad;
    for (const tinyds::test::Output& o : result.outputs) {
      const tinyds::test::Comparison cmp = tinyds::test::compare_output(o, c.atol, c.rtol);
      max_err = std::max(max_err, cmp.max_abs_error);
      if (cmp.first_bad >= 0 && bad.empty()) bad = cmp.message;
    }
    std::printf("%-28s %3d  %-26s %11.3g  %s\n", c.op.c_str(), c.version, c.shape.c_str(), max_err,
                bad.empty() ? "ok" : ("FAIL " + bad).c_str());
    CHECK_MESSAGE(bad.empty(), bad);
  }
  std::printf("%d kernel rows run\n", run);
  CHECK(run > 0);
}

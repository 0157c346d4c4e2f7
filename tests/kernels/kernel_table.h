// tests/kernels/kernel_table.h — the table of kernel tests (ggml test-backend-ops style): one row per
// (op, kernel version, shape), each comparing a CUDA kernel with its CPU reference in tinyds/ops on the same random
// inputs. Under emulation (g++) the kernels run on the CPU; in the native build (nvcc) on the GPU.
//
// A family's rows live in tests/kernels/<family>_cases.cpp:
//   TINYDS_KERNEL_CASES(rmsnorm) {
//     add(KernelCase{"rmsnorm_forward", 2, "N=7 C=33", 1e-6, 1e-5, "fp32 sums in another order", [] { ... }});
//   }
// `run` returns every output of the kernel beside the reference's (kernel_util.h: compare_outputs, Output).
// The TEST_CASE in kernel_table.cpp runs every row and fails on any element outside |got - ref| <= atol + rtol*|ref|
// and on any NaN/Inf in an output. TINYDS_KERNEL_FILTER=<substring of op> runs only the matching rows.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tinyds::test {

// One output tensor of a kernel and the CPU reference's value of it.
struct Output {
  std::string name;        // "out", "dinp", ...
  std::vector<float> got;  // from the kernel
  std::vector<float> ref;  // from the CPU op
};

struct CaseResult {
  std::vector<Output> outputs;
};

struct KernelCase {
  std::string op;      // "rmsnorm_forward"
  int version;         // kernel version (0 = default)
  std::string shape;   // "N=7 C=33"
  double atol, rtol;   // |got - ref| <= atol + rtol*|ref|, elementwise
  std::string why;     // why this tolerance (summation order in fp32, ...)
  std::function<CaseResult()> run;  // runs the kernel and the CPU reference on the same random inputs
};

// A family's list of rows; TINYDS_KERNEL_CASES defines one and registers it.
struct KernelCaseList {
  virtual ~KernelCaseList() = default;
  virtual void define() = 0;  // calls add() once per row
  void add(KernelCase c) { cases.push_back(std::move(c)); }
  std::vector<KernelCase> cases;
};

// Registers a family (called from static initialisers); every_kernel_case() defines and returns all rows.
bool register_kernel_cases(std::unique_ptr<KernelCaseList> list);
std::vector<KernelCase> every_kernel_case();

}  // namespace tinyds::test

#define TINYDS_KERNEL_CASES(name)                                                                   \
  namespace {                                                                                       \
  struct KernelCases_##name : ::tinyds::test::KernelCaseList {                                      \
    void define() override;                                                                         \
  };                                                                                                \
  const bool kernel_cases_registered_##name =                                                       \
      ::tinyds::test::register_kernel_cases(std::make_unique<KernelCases_##name>());                \
  }                                                                                                 \
  void KernelCases_##name::define()

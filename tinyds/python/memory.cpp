// tinyds/python/memory.cpp — the memory ledger (tinyds/core/ledger.h) and `tinyds memory`'s measurement
// (tinyds/posttrain/memory.h) as data: tables of bytes indexed [role, category], in the orders tinyds.ROLES and
// tinyds.CATEGORIES.
#include <pybind11/stl.h>

#include "tinyds/core/ledger.h"
#include "tinyds/posttrain/memory.h"
#include "tinyds/python/arrays.h"
#include "tinyds/python/module.h"

namespace tinyds::python {

namespace {

// (kNumRoles, kNumCategories) bytes as an int64 array.
py::array_t<int64_t> role_category_table(const std::size_t (&cells)[kNumRoles][kNumCategories]) {
  py::array_t<int64_t> out({kNumRoles, kNumCategories});
  auto o = out.mutable_unchecked<2>();
  for (int r = 0; r < kNumRoles; r++)
    for (int c = 0; c < kNumCategories; c++) o(r, c) = static_cast<int64_t>(cells[r][c]);
  return out;
}

}  // namespace

void bind_memory(py::module_& m) {
  py::list roles, categories;
  for (int r = 0; r < kNumRoles; r++) roles.append(role_name(static_cast<Role>(r)));
  for (int c = 0; c < kNumCategories; c++) categories.append(category_name(static_cast<Category>(c)));
  m.attr("ROLES") = roles;
  m.attr("CATEGORIES") = categories;

  py::module_ ledger = m.def_submodule("ledger", "The process-wide memory ledger (tinyds/core/ledger.h).");
  ledger.def("current", [] {
    std::size_t cells[kNumRoles][kNumCategories];
    for (int r = 0; r < kNumRoles; r++)
      for (int c = 0; c < kNumCategories; c++)
        cells[r][c] = Ledger::global().current(static_cast<Role>(r), static_cast<Category>(c));
    return role_category_table(cells);
  }, "bytes held now, (len(ROLES), len(CATEGORIES))");
  ledger.def("peak", [] {
    std::size_t cells[kNumRoles][kNumCategories];
    for (int r = 0; r < kNumRoles; r++)
      for (int c = 0; c < kNumCategories; c++)
        cells[r][c] = Ledger::global().peak(static_cast<Role>(r), static_cast<Category>(c));
    return role_category_table(cells);
  }, "peak bytes per cell since the last reset_peaks(), (len(ROLES), len(CATEGORIES))");
  ledger.def("peak_total", [] { return Ledger::global().peak_total(); });
  ledger.def("reset_peaks", [] { Ledger::global().reset_peaks(); });
  ledger.def("table", [] { return Ledger::global().table(); }, "the ledger's printed table");

  py::class_<MethodMemory>(m, "MethodMemory", "One post-training method's measured step (tinyds/posttrain/memory.h).")
      .def_readonly("method", &MethodMemory::method)
      .def_readonly("sequences", &MethodMemory::sequences)
      .def_readonly("columns", &MethodMemory::columns)
      .def_property_readonly("peak", [](const MethodMemory& mm) { return role_category_table(mm.peak); },
                             "peak bytes of each (role, category) cell during the step")
      .def_property_readonly("predicted", [](const MethodMemory& mm) { return role_category_table(mm.predicted); },
                             "the analytic prediction of the weights/grads/adam_m/adam_v cells (others 0)")
      .def_readonly("peak_total", &MethodMemory::peak_total)
      .def_readonly("seconds", &MethodMemory::seconds);

  m.def(
      "measure_memory",
      [](const Config& cfg, int prompts, int num_generations, int response_length, const std::vector<std::string>& methods,
         uint64_t seed) {
        MemoryOptions o;
        o.prompts = prompts;
        o.num_generations = num_generations;
        o.response_length = response_length;
        o.methods = methods;
        o.seed = seed;
        return measure_memory(cfg, nullptr, o);
      },
      py::arg("config"), py::arg("prompts") = 4, py::arg("num_generations") = 8, py::arg("response_length") = 64,
      py::arg("methods") = std::vector<std::string>{"sft", "dpo", "ppo", "ppo+rm", "grpo"}, py::arg("seed") = 1234,
      "one measured step of each method, as `tinyds memory` runs them (list of MethodMemory)");
  m.def("memory_report", &memory_report, py::arg("measurements"), "the table `tinyds memory` prints");
}

}  // namespace tinyds::python

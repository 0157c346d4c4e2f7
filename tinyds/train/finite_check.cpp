// tinyds/train/finite_check.cpp — see finite_check.h.
#include "tinyds/train/finite_check.h"

#include <cmath>

namespace tinyds {

std::vector<NamedTensor> layout_tensors(const ParamLayout& layout, const float* values, const std::string& prefix) {
  std::vector<NamedTensor> out;
  for (const TensorSpec& t : layout.tensors()) out.push_back({prefix + t.name, values + t.offset, t.numel});
  return out;
}

std::string first_nonfinite_tensor(const std::vector<NamedTensor>& tensors) {
  for (const NamedTensor& t : tensors)
    for (std::size_t i = 0; i < t.numel; i++)
      if (!std::isfinite(t.data[i])) return t.name;
  return "";
}

std::string first_nonfinite_tensor(const ParamLayout& layout, const float* values) {
  return first_nonfinite_tensor(layout_tensors(layout, values));
}

void throw_diverged(int step, const std::string& what, const DivergenceHint& hint) {
  throw_error("training diverged at step ", step, ": ", what,
              ". The last checkpoint written before this step and metrics.jsonl up to it are kept. Usual causes: "
              "a learning rate too high (lower ", hint.lr, "), gradient clipping off (", hint.clip,
              " 0; try 1), too short a warmup (", hint.warmup, ").");
}

void check_step_finite(int step, double objective, const std::vector<NamedTensor>& grads, const DivergenceHint& hint) {
  const std::string bad = first_nonfinite_tensor(grads);
  if (!std::isfinite(objective))
    throw_diverged(step, "the loss is " + std::to_string(objective) +
                             (bad.empty() ? "" : " (first non-finite gradient: '" + bad + "')"), hint);
  if (!bad.empty()) throw_diverged(step, "the gradient of '" + bad + "' holds NaN or Inf (the loss is finite)", hint);
}

void check_step_finite(int step, double objective, const ParamLayout& layout, const float* grads,
                       const DivergenceHint& hint) {
  check_step_finite(step, objective, layout_tensors(layout, grads), hint);
}

void check_params_finite(int step, const std::vector<NamedTensor>& params, const DivergenceHint& hint) {
  const std::string bad = first_nonfinite_tensor(params);
  if (!bad.empty()) throw_diverged(step, "the optimizer update made parameter '" + bad + "' NaN or Inf", hint);
}

void check_params_finite(int step, const ParamLayout& layout, const float* params, const DivergenceHint& hint) {
  check_params_finite(step, layout_tensors(layout, params), hint);
}

}  // namespace tinyds

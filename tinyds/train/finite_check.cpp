// tinyds/train/finite_check.cpp — see finite_check.h.
#include "tinyds/train/finite_check.h"

#include <cmath>

#include "tinyds/core/error.h"

namespace tinyds {

std::string first_nonfinite_tensor(const ParamLayout& layout, const float* values) {
  for (const TensorSpec& t : layout.tensors())
    for (std::size_t i = 0; i < t.numel; i++)
      if (!std::isfinite(values[t.offset + i])) return t.name;
  return "";
}

void throw_diverged(int step, const std::string& what) {
  throw_error("training diverged at step ", step, ": ", what,
              ". The last checkpoint written before this step and metrics.jsonl up to it are kept. Usual causes: "
              "a learning rate too high (lower --lr), gradient clipping off (--grad-clip 0; try 1), too short a "
              "warmup (--warmup).");
}

void check_step_finite(int step, double objective, const ParamLayout& layout, const float* grads) {
  const std::string bad = first_nonfinite_tensor(layout, grads);
  if (!std::isfinite(objective))
    throw_diverged(step, "the loss is " + std::to_string(objective) +
                             (bad.empty() ? "" : " (first non-finite gradient: '" + bad + "')"));
  if (!bad.empty()) throw_diverged(step, "the gradient of '" + bad + "' holds NaN or Inf (the loss is finite)");
}

void check_params_finite(int step, const ParamLayout& layout, const float* params) {
  const std::string bad = first_nonfinite_tensor(layout, params);
  if (!bad.empty()) throw_diverged(step, "the optimizer update made parameter '" + bad + "' NaN or Inf");
}

}  // namespace tinyds

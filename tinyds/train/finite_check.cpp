// tinyds/train/finite_check.cpp — see finite_check.h.
#include "tinyds/train/finite_check.h"

#include <cmath>

#include "tinyds/device/memory.h"

namespace tinyds {

namespace {

// true when some value of x (n, host memory) is NaN or Inf.
bool any_nonfinite(const float* x, std::size_t n) {
  for (std::size_t i = 0; i < n; i++)
    if (!std::isfinite(x[i])) return true;
  return false;
}

}  // namespace

std::vector<NamedTensor> layout_tensors(const ParamLayout& layout, const float* values, const std::string& prefix) {
  std::vector<NamedTensor> out;
  for (const TensorSpec& t : layout.tensors()) out.push_back({prefix + t.name, values + t.offset, t.numel});
  return out;
}

std::string first_nonfinite_tensor(const std::vector<NamedTensor>& tensors) {
  // On cuda the tensors are device memory: each is read through a host copy (the host never reads device memory).
  const bool on_cuda = dev::on_cuda<float>();
  std::vector<float> host;
  for (const NamedTensor& t : tensors) {
    const float* x = t.data;
    if (on_cuda) {
      host.resize(t.numel);
      dev::to_host(host.data(), t.data, t.numel);
      x = host.data();
    }
    if (any_nonfinite(x, t.numel)) return t.name;
  }
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

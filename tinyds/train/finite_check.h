// tinyds/train/finite_check.h — stopping a diverged run before it damages anything.
//
// Shapes: every array below is laid out like the parameters (ParamLayout: one allocation, tensors back to back);
// grads and the AdamW moments m, v use the same layout.
// Training checks each step: the objective and every gradient finite (before the optimizer step), then every
// parameter finite (after it). The first failure stops the run with an error naming the step (1-based, as in
// metrics.jsonl) and the first non-finite tensor by its checkpoint name, and suggesting the usual causes, so
// the last good checkpoint on disk is never replaced by a diverged one (save_checkpoint refuses one too).
#pragma once
#include <string>

#include "tinyds/model/params.h"

namespace tinyds {

// The checkpoint name of the first tensor of `layout` with a NaN or Inf in `values` (layout.total() floats),
// or "" when every value is finite.
std::string first_nonfinite_tensor(const ParamLayout& layout, const float* values);

// Throws the divergence error: "training diverged at step <step>: <what>" and the usual causes.
[[noreturn]] void throw_diverged(int step, const std::string& what);

// Step `step` (1-based) after forward and backward: the objective and the gradients (layout of the params).
void check_step_finite(int step, double objective, const ParamLayout& layout, const float* grads);
// Step `step` after the optimizer update: the parameters.
void check_params_finite(int step, const ParamLayout& layout, const float* params);

}  // namespace tinyds

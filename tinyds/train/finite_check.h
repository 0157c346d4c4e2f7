// tinyds/train/finite_check.h — stopping a diverged run before it damages anything.
//
// Shapes: a ParamLayout array is laid out like the parameters (one allocation, tensors back to back); grads and
// the AdamW moments m, v use the same layout. A NamedTensor is any other array to check (a critic's value head).
// Every trainer (pretrain / sft, distill, rm, dpo, grpo, ppo) checks each step: the objective and every gradient
// finite (before the optimizer step), then every parameter finite (after it); a forward that fails (the MoE router
// refuses non-finite logits) is the same divergence. The first failure stops the run with an error naming the
// step (1-based, as in metrics.jsonl) and the first non-finite tensor by its checkpoint name, and suggesting the
// usual causes, so the last good checkpoint on disk is never replaced by a diverged one (save_checkpoint refuses
// one too) and metrics.jsonl ends at the last good step.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/model/params.h"

namespace tinyds {

// One array to check, under the name an error reports for it. The checks read `data` on this thread's current
// device (tinyds/device/device.h): on cuda it is device memory, copied to the host tensor by tensor to be read.
struct NamedTensor {
  std::string name;
  const float* data;  // (numel) in the current device's memory
  std::size_t numel;
};

// The tensors of `layout` over `values` (layout.total() floats), each named "<prefix><checkpoint name>".
std::vector<NamedTensor> layout_tensors(const ParamLayout& layout, const float* values, const std::string& prefix = "");

// The name of the first tensor with a NaN or Inf, or "" when every value is finite.
std::string first_nonfinite_tensor(const std::vector<NamedTensor>& tensors);
std::string first_nonfinite_tensor(const ParamLayout& layout, const float* values);

// The command-line options a divergence error suggests changing (their names differ between commands).
struct DivergenceHint {
  const char* lr = "--lr";
  const char* clip = "--grad-clip";
  const char* warmup = "--warmup";
};
// The hint of the post-training commands (distill, rm, dpo, grpo), which clip with --max-grad-norm.
inline DivergenceHint posttrain_hint() { return {"--lr", "--max-grad-norm", "--warmup"}; }

// Throws the divergence error: "training diverged at step <step>: <what>" and the usual causes.
[[noreturn]] void throw_diverged(int step, const std::string& what, const DivergenceHint& hint = {});

// Step `step` (1-based) after forward and backward: the objective and the gradients.
void check_step_finite(int step, double objective, const std::vector<NamedTensor>& grads,
                       const DivergenceHint& hint = {});
void check_step_finite(int step, double objective, const ParamLayout& layout, const float* grads,
                       const DivergenceHint& hint = {});
// Step `step` after the optimizer update: the parameters.
void check_params_finite(int step, const std::vector<NamedTensor>& params, const DivergenceHint& hint = {});
void check_params_finite(int step, const ParamLayout& layout, const float* params, const DivergenceHint& hint = {});

// Runs f (a forward, or a forward and backward, of step `step`) and returns what it returns; an Error from it (the
// MoE router refuses non-finite logits) is reported as the divergence it is, with the original message.
template <typename F>
decltype(auto) diverged_if_throws(int step, const DivergenceHint& hint, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw_diverged(step, std::string("the forward or backward pass failed: ") + e.what(), hint);
  }
}

}  // namespace tinyds

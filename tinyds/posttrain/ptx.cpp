// tinyds/posttrain/ptx.cpp — see ptx.h.
#include "tinyds/posttrain/ptx.h"

#include "tinyds/device/device.h"
#include "tinyds/device/ops.h"

namespace tinyds {

double ptx_gradient(Transformer<float>& policy, const Batch& b, float gamma) {
  const double objective = policy.forward(b.inputs.data(), b.targets.data(), b.B, b.T);
  policy.backward();
  OnDevice scope(policy.device());
  dev::scale_inplace(policy.grads(), gamma, static_cast<long>(policy.num_params()));
  return objective;
}

std::unique_ptr<BatchSource> ptx_batches(const Config& cfg, const Tokenizer& tok) {
  return std::make_unique<BatchSource>(cfg, training_problems(cfg, ""), tok, /*mask_prompt=*/true);
}

}  // namespace tinyds

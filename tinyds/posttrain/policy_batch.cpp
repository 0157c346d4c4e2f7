// tinyds/posttrain/policy_batch.cpp — see policy_batch.h.
#include "tinyds/posttrain/policy_batch.h"

#include <algorithm>

namespace tinyds {

PolicyBatch pack_for_forward(const Rollout& r, int pad, Role role) {
  PolicyBatch pb;
  pb.B = r.B;
  int max_len = 0;
  for (int b = 0; b < r.B; b++) max_len = std::max(max_len, r.length(b));
  pb.T = std::max(1, max_len - 1);
  const std::size_t BT = static_cast<std::size_t>(pb.B) * pb.T;
  pb.inputs.reset(BT, role, Category::rollout);
  pb.targets.reset(BT, role, Category::rollout);
  pb.mask.reset(BT, role, Category::rollout);
  pb.old_logprobs.reset(BT, role, Category::rollout);
  for (int b = 0; b < r.B; b++) {
    const int n = r.length(b);
    const int* seq = r.row(b);
    for (int t = 0; t < pb.T; t++) {
      const std::size_t o = static_cast<std::size_t>(b) * pb.T + t;
      pb.inputs[o] = t < n - 1 ? seq[t] : pad;              // inputs = seq[:-1]
      pb.targets[o] = t + 1 < n ? seq[t + 1] : -1;          // targets = seq[1:]; -1 is masked in the forward
      // Column t's logits predict position t+1: that token's mask and lp_old (t+1 < n whenever mask is 1).
      pb.mask[o] = t + 1 < r.T ? r.mask_row(b)[t + 1] : 0.0f;
      pb.old_logprobs[o] = t + 1 < r.T ? r.logprob_row(b)[t + 1] : 0.0f;
    }
  }
  return pb;
}

}  // namespace tinyds

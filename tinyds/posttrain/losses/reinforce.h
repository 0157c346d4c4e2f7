// tinyds/posttrain/losses/reinforce.h — vanilla policy gradient (REINFORCE, Williams 1992) with the group-mean baseline:
// the simplest RL loss, and what GRPO reduces to on-policy without clipping, KL or std scaling.
//
// Shapes: B = num_prompts * G sequences in consecutive groups of G, T completion positions.
//   baseline:  A_i = R_i - mean_{j in group(i)} R_j     (grpo_advantages with scale_rewards = false)
//   loss:      L = -(1/B) sum_i A_i sum_t m[i, t] lp[i, t]
// so dL/dlp[i, t] = -A_i m / B: each completion's log-likelihood is pushed up in proportion to how much better
// than its siblings it scored. (GRPO's dr_grpo gradient at lp == lp_old with beta = 0 is this gradient divided by
// max_completion_length; the test checks that.)
// Conventions: dlp WRITTEN (=). Masks 0/1.
#pragma once

namespace tinyds {

// advantages (B) written: R - group mean.   rewards (B), G >= 2 divides B. Returns the number of degenerate
// groups (all rewards equal: zero advantage).
template <typename real>
int reinforce_advantages(real* advantages, const real* rewards, int B, int G);

// lp (B, T), advantages (B), mask (B, T). Returns L.
template <typename real>
double reinforce_loss_forward(const real* lp, const real* advantages, const real* mask, int B, int T);

// dlp (B, T) written: -dloss * A_i m[i, t] / B.
template <typename real>
void reinforce_loss_backward(real* dlp, double dloss, const real* advantages, const real* mask, int B, int T);

}  // namespace tinyds

// tinyds/posttrain/losses/grpo.h — Group Relative Policy Optimization (DeepSeekMath arXiv 2402.03300, Eq. 3-4) and its
// variants Dr. GRPO (arXiv 2503.20783) and DAPO (arXiv 2503.14476), written with trl's GRPOTrainer names.
//
// Shapes: B = num_prompts * G sequences, G = num_generations completions per prompt, stored as consecutive groups
// (rows g*G .. g*G+G-1 answer prompt g, trl's layout); T completion positions. Per-token tensors (B, T).
// 1. grpo_advantages: per group, A_i = (R_i - mean(R)) / (std(R) + 1e-4)  (std unbiased, as torch.std and trl)
//    scale_rewards = false (Dr. GRPO) drops the division: A_i = R_i - mean(R).
//    A group whose rewards are all equal is degenerate: no signal, A = 0 exactly (counted; DAPO's dynamic sampling
//    drops such groups).
// 2. grpo_loss: per token, with ratio r = exp(lp - lp_old) against the policy that sampled the completions,
//      l_t = -min(r A, clip(r, 1 - epsilon, 1 + epsilon_high) A) + beta * k3(lp, lp_ref)
//    k3 = exp(lp_ref - lp) - (lp_ref - lp) - 1 is added to the LOSS, not the reward (kl.h for its gradient).
//    Aggregation (loss_type), with m the completion mask and n_i = sum_t m[i, t]:
//      grpo:    (1/B) sum_i (1/n_i) sum_t m l                (mean of per-sequence token means; the paper)
//      bnpo:    sum_{i,t} m l / sum_{i,t} m                  (token mean over the batch)
//      dapo:    the same as bnpo here; trl normalises by the token count of the whole global batch, which differs
//               from bnpo only across gradient-accumulation steps / processes
//      dr_grpo: sum_{i,t} m l / (B * max_completion_length) (a constant: no length bias)
// Conventions: dlp WRITTEN (=). Masks are 0/1. Errors (tinyds::Error) name the field and value.
#pragma once
#include <optional>

namespace tinyds {

enum class GRPOLossType { grpo, bnpo, dapo, dr_grpo };
const char* grpo_loss_type_name(GRPOLossType t);  // "grpo", "bnpo", "dapo", "dr_grpo"

struct GRPOConfig {
  double beta = 0.04;                   // k3 KL weight (paper 0.04; trl now 0.0; R1-Zero 0.001)
  double epsilon = 0.2;                 // lower clip: ratio >= 1 - epsilon (paper / trl 0.2)
  std::optional<double> epsilon_high;   // upper clip 1 + epsilon_high; unset = epsilon (trl's None); DAPO 0.28
  int num_generations = 8;              // G, completions per prompt (trl 8; R1-Zero 16); >= 2
  GRPOLossType loss_type = GRPOLossType::grpo;  // the paper's; trl now defaults to dapo
  bool scale_rewards = true;            // divide by the group std (false: Dr. GRPO)
  int max_completion_length = 256;      // dr_grpo's constant denominator (trl default 256), e.g. 256

  double clip_high() const { return epsilon_high.value_or(epsilon); }
};

struct GRPOGroupStats {
  int num_groups = 0;
  int degenerate_groups = 0;  // groups whose rewards are all equal (zero advantage)
  double reward_mean = 0.0;   // mean reward over the batch
  double reward_std = 0.0;    // mean over groups of the (unbiased) group std
};

struct GRPOStats {
  double loss = 0.0;
  double kl = 0.0;               // masked mean of k3 (reported even when beta = 0 if lp_ref is given)
  double clip_ratio_low = 0.0;   // fraction of tokens with r < 1 - epsilon and A < 0 (clipped from below)
  double clip_ratio_high = 0.0;  // fraction of tokens with r > 1 + epsilon_high and A > 0 (clipped from above)
  double clip_ratio = 0.0;       // their sum: tokens whose gradient the clip removed
};

// advantages (B) written.   rewards (B); B must be a multiple of num_generations.
template <typename real>
GRPOGroupStats grpo_advantages(real* advantages, const real* rewards, int B, const GRPOConfig& cfg);

// lp (B, T) current policy, lp_old (B, T) sampling policy, lp_ref (B, T) reference (may be nullptr when
// beta == 0), advantages (B), mask (B, T)
template <typename real>
GRPOStats grpo_loss_forward(const real* lp, const real* lp_old, const real* lp_ref, const real* advantages,
                            const real* mask, int B, int T, const GRPOConfig& cfg);

// dlp (B, T) written: dloss * w_i m [ (-A_i r, or 0 where the clip is active) + beta (1 - exp(lp_ref - lp)) ],
// w_i the aggregation weight of row i (see above).
template <typename real>
void grpo_loss_backward(real* dlp, double dloss, const real* lp, const real* lp_old, const real* lp_ref,
                        const real* advantages, const real* mask, int B, int T, const GRPOConfig& cfg);

}  // namespace tinyds

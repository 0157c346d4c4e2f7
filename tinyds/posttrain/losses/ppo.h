// tinyds/posttrain/losses/ppo.h — PPO for language models (Schulman et al. 2017; trl PPOTrainer, "The N implementation
// details of RLHF with PPO"): per-token KL-penalised rewards, then the clipped policy and value losses.
//
// Shapes: B sequences, T completion positions, n = B*T. All per-token tensors are (B, T); scores (B).
// One PPO iteration:
//   1. rollout: lp_old (the sampling policy's log-probs), lp_ref (frozen reference), values_old (critic), scores
//   2. ppo_rewards:   r_t = -kl_coef (lp_old - lp_ref)   (k1 KL penalty per token, kl.h)
//                     r_t += score at the last completion token of the row
//   3. compute_gae (gae.h) -> advantages, returns;  masked_whiten(advantages) (gae.h; unbiased variance)
//   4. for num_ppo_epochs passes: new lp and values from the current policy and critic, then
//        ratio  = exp(lp - lp_old)
//        L_pg   = masked mean of max(-A ratio, -A clip(ratio, 1 - cliprange, 1 + cliprange))
//        V_clip = clip(V, V_old - cliprange_value, V_old + cliprange_value)
//        L_vf   = 0.5 * masked mean of max((V - R)^2, (V_clip - R)^2)
//        L      = L_pg + vf_coef * L_vf
// The critic is a separate model with its own optimizer: dvalues flows into it, dlp into the policy.
// Conventions: dlp and dvalues WRITTEN (=). Masks are 0/1. Errors (tinyds::Error) name the field and value.
#pragma once

namespace tinyds {

struct PPOConfig {  // defaults: trl PPOConfig / DESIGN 6
  double kl_coef = 0.05;         // beta_kl of the per-token k1 penalty in the reward
  double gamma = 1.0;            // discount
  double lam = 0.95;             // GAE lambda
  double cliprange = 0.2;        // policy ratio clip epsilon
  double cliprange_value = 0.2;  // value clip epsilon (around values_old)
  double vf_coef = 0.1;          // weight of the value loss
  int num_ppo_epochs = 4;        // passes over each rollout batch (used by the trainer, not by the loss)
};

struct PPOStats {
  double loss = 0.0;         // pg_loss + vf_coef * vf_loss
  double pg_loss = 0.0;
  double vf_loss = 0.0;      // includes the 0.5
  double pg_clipfrac = 0.0;  // fraction of tokens where the clipped policy term was the larger one (trl)
  double vf_clipfrac = 0.0;  // same for the value term
  double approxkl = 0.0;     // 0.5 * masked mean (lp - lp_old)^2 (trl's approxkl, the k2 estimator)
  double ratio_mean = 0.0;   // masked mean of exp(lp - lp_old)
};

// rewards (B, T) written: -kl_coef (lp_old - lp_ref) on completion tokens, plus scores[i] on the last token with
// mask 1 in row i; 0 on masked positions. A row without any completion token is an error (nowhere for the score).
//   lp_old (B, T), lp_ref (B, T), scores (B), mask (B, T)
template <typename real>
void ppo_rewards(real* rewards, const real* lp_old, const real* lp_ref, const real* scores, const real* mask,
                 int B, int T, double kl_coef);

// lp (n) current policy, values (n) current critic, lp_old (n), values_old (n) from the rollout,
// advantages (n) (whitened), returns (n), mask (n)
template <typename real>
PPOStats ppo_loss_forward(const real* lp, const real* values, const real* lp_old, const real* values_old,
                          const real* advantages, const real* returns, const real* mask, long n,
                          const PPOConfig& cfg);

// dlp (n), dvalues (n) written (see the derivation in ppo.cpp).
template <typename real>
void ppo_loss_backward(real* dlp, real* dvalues, double dloss, const real* lp, const real* values,
                       const real* lp_old, const real* values_old, const real* advantages, const real* returns,
                       const real* mask, long n, const PPOConfig& cfg);

}  // namespace tinyds

// tinyds/posttrain/losses/gae.h — Generalized Advantage Estimation (Schulman et al. 2016, arXiv 1506.02438) and masked
// whitening: the advantage side of PPO.
//
// Shapes: B sequences, T positions. rewards, values, mask, advantages, returns are all (B, T).
// Per row, walking t backwards over the positions with m = 1 (a masked position is not a step of the episode):
//   delta_t = r_t + gamma V_{t+1} - V_t           (V after the last completion token is 0: the episode ended)
//   A_t     = delta_t + gamma lam A_{t+1}          (GAE Eq. 16, the recursive form)
//   R_t     = A_t + V_t                            (the value target, "returns")
// Masked positions get A = R = 0. For a completion mask that is one contiguous block this is exactly trl's PPO
// (which zero-fills values and rewards after the end and runs the recursion over the whole row).
// These are targets, not functions to differentiate: advantages and returns are constants in the PPO loss.
#pragma once

namespace tinyds {

// advantages (B, T), returns (B, T) written.   rewards (B, T), values (B, T), mask (B, T) 0/1
//   gamma: discount (trl default 1.0), lam: GAE lambda (trl default 0.95); both in [0, 1]
template <typename real>
void compute_gae(real* advantages, real* returns, const real* rewards, const real* values, const real* mask,
                 int B, int T, double gamma, double lam);

// out (n) = (x - mean) / sqrt(var + 1e-8) over the positions with mask 1, with the UNBIASED variance
// var = sum m (x - mean)^2 / (sum m - 1) (trl masked_whiten); masked positions get 0. shift_mean = false adds the
// mean back (trl's option for rewards). Needs at least 2 unmasked positions (else tinyds::Error).
//   x (n), mask (n) 0/1; out may alias x.
template <typename real>
void masked_whiten(real* out, const real* x, const real* mask, long n, bool shift_mean = true);

}  // namespace tinyds

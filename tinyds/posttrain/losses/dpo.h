// tinyds/posttrain/losses/dpo.h — Direct Preference Optimization (Rafailov et al. 2023) and its IPO variant.
//
// Shapes: B preference pairs, T positions per completion. lp_w, lp_ref_w, mask_w (B, T) are the chosen
// completion's per-token log-probs under the policy and the frozen reference and its 0/1 completion mask; the _l
// tensors are the rejected completion's. Per pair i, the sequence log-prob is
//   s(lp, m)_i = sum_t m lp                    (trl default)
//             or sum_t m lp / sum_t m          (length_normalize; DeepSeekMath A.1.4 writes the per-token mean)
//   h_i = [s(lp_w) - s(lp_ref_w)] - [s(lp_l) - s(lp_ref_l)]          (the implicit reward margin, over beta)
//   sigmoid (DPO, default):  l_i = -log sigmoid(beta h_i)
//   ipo (Azar et al. 2023):  l_i = (h_i - 1 / (2 beta))^2, always with per-token means (as trl and the IPO paper)
//   L = (1/B) sum_i l_i
// Reported rewards (trl's names): chosen = beta (s(lp_w) - s(lp_ref_w)), rejected = beta (s(lp_l) - s(lp_ref_l)),
// margin = chosen - rejected, accuracy = fraction of pairs with chosen > rejected.
// Conventions: dlp_w, dlp_l WRITTEN (=); the reference is frozen. Errors (tinyds::Error): B or T < 1, beta <= 0,
// a mask value other than 0/1, an empty completion when per-token means are used.
#pragma once

namespace tinyds {

enum class DPOLossType { sigmoid, ipo };  // trl's loss_type "sigmoid" (default) and "ipo"

struct DPOConfig {
  double beta = 0.1;                              // trl / DESIGN 6 default 0.1 (IPO's tau reads the same field)
  DPOLossType loss_type = DPOLossType::sigmoid;   // trl default "sigmoid"
  bool length_normalize = false;                  // per-token mean instead of the sum (sigmoid only; ipo always)
};

struct DPOStats {
  double loss = 0.0;
  double rewards_chosen = 0.0;    // mean beta (s_w - s_ref_w)
  double rewards_rejected = 0.0;  // mean beta (s_l - s_ref_l)
  double rewards_margin = 0.0;    // mean (chosen - rejected)
  double rewards_accuracy = 0.0;  // fraction of pairs with chosen > rejected
};

// lp_w, lp_ref_w, mask_w, lp_l, lp_ref_l, mask_l: all (B, T)
template <typename real>
DPOStats dpo_loss_forward(const real* lp_w, const real* lp_ref_w, const real* mask_w, const real* lp_l,
                          const real* lp_ref_l, const real* mask_l, int B, int T, const DPOConfig& cfg);

// dlp_w (B, T), dlp_l (B, T) written: dloss / B * dl_i/dh_i * (+-) m / (1 or sum_t m).
template <typename real>
void dpo_loss_backward(real* dlp_w, real* dlp_l, double dloss, const real* lp_w, const real* lp_ref_w,
                       const real* mask_w, const real* lp_l, const real* lp_ref_l, const real* mask_l, int B, int T,
                       const DPOConfig& cfg);

}  // namespace tinyds

// tinyds/posttrain/losses/dpo.cpp — DPO sigmoid and IPO losses on per-token log-probs (see dpo.h).
//
// Shapes: B pairs, T positions.  h_i = (s_w - s_ref_w) - (s_l - s_ref_l).  Gradients: dlp_w, dlp_l WRITTEN (=).
#include "tinyds/posttrain/losses/dpo.h"

#include "tinyds/core/error.h"
#include "tinyds/posttrain/losses/mask.h"
#include "tinyds/posttrain/losses/stable.h"

namespace tinyds {

static bool per_token_mean(const DPOConfig& cfg) {
  return cfg.loss_type == DPOLossType::ipo || cfg.length_normalize;
}

template <typename real>
static void check_dpo_args(const real* mask_w, const real* mask_l, int B, int T, const DPOConfig& cfg,
                           const char* where) {
  if (B < 1) throw_error(where, ": B = ", B, " pairs, need at least 1");
  if (T < 1) throw_error(where, ": T = ", T, " must be >= 1");
  if (!(cfg.beta > 0.0)) throw_error(where, ": beta = ", cfg.beta, " must be > 0");
  if (cfg.loss_type != DPOLossType::sigmoid && cfg.loss_type != DPOLossType::ipo)
    throw_error(where, ": loss_type = ", static_cast<int>(cfg.loss_type), " is not sigmoid or ipo");
  const long n = static_cast<long>(B) * T;
  detail::check_mask(mask_w, n, where, "mask_w");
  detail::check_mask(mask_l, n, where, "mask_l");
  if (per_token_mean(cfg))
    for (int i = 0; i < B; i++) {
      if (detail::mask_count(mask_w + static_cast<long>(i) * T, T) == 0.0)
        throw_error(where, ": pair ", i, ": mask_w is all 0 (an empty chosen completion has no per-token mean)");
      if (detail::mask_count(mask_l + static_cast<long>(i) * T, T) == 0.0)
        throw_error(where, ": pair ", i, ": mask_l is all 0 (an empty rejected completion has no per-token mean)");
    }
}

// The weight of each masked token in the sequence log-prob of row i: 1 (sum) or 1 / sum_t m (per-token mean).
template <typename real>
static double token_weight(const real* mask_row, int T, const DPOConfig& cfg) {
  return per_token_mean(cfg) ? 1.0 / detail::mask_count(mask_row, T) : 1.0;
}

// s(lp) - s(lp_ref) for row i: the policy's log-ratio to the reference, summed or averaged over the completion.
template <typename real>
static double seq_log_ratio(const real* lp, const real* lp_ref, const real* m, int T, const DPOConfig& cfg) {
  double s = 0.0;
  for (int t = 0; t < T; t++)
    s += static_cast<double>(m[t]) * (static_cast<double>(lp[t]) - static_cast<double>(lp_ref[t]));
  return s * token_weight(m, T, cfg);
}

template <typename real>
DPOStats dpo_loss_forward(const real* lp_w,      // (B, T) policy, chosen
                          const real* lp_ref_w,  // (B, T) reference, chosen
                          const real* mask_w,    // (B, T)
                          const real* lp_l,      // (B, T) policy, rejected
                          const real* lp_ref_l,  // (B, T) reference, rejected
                          const real* mask_l,    // (B, T)
                          int B, int T, const DPOConfig& cfg) {
  check_dpo_args(mask_w, mask_l, B, T, cfg, "dpo_loss_forward");
  DPOStats st;
  for (int i = 0; i < B; i++) {
    const long o = static_cast<long>(i) * T;
    const double rw = seq_log_ratio(lp_w + o, lp_ref_w + o, mask_w + o, T, cfg);
    const double rl = seq_log_ratio(lp_l + o, lp_ref_l + o, mask_l + o, T, cfg);
    const double h = rw - rl;
    if (cfg.loss_type == DPOLossType::sigmoid) {
      st.loss += detail::softplus(-cfg.beta * h);  // -log sigmoid(beta h), overflow-free
    } else {
      const double e = h - 1.0 / (2.0 * cfg.beta);  // IPO regresses the margin onto 1 / (2 beta)
      st.loss += e * e;
    }
    st.rewards_chosen += cfg.beta * rw;
    st.rewards_rejected += cfg.beta * rl;
    st.rewards_accuracy += rw > rl ? 1.0 : 0.0;
  }
  st.loss /= B;
  st.rewards_chosen /= B;
  st.rewards_rejected /= B;
  st.rewards_margin = st.rewards_chosen - st.rewards_rejected;
  st.rewards_accuracy /= B;
  return st;
}

// forward was: L = (1/B) sum_i l(h_i),  h_i = s_w - s_ref_w - (s_l - s_ref_l),  s = w_i sum_t m lp
//   sigmoid: l = softplus(-beta h)  =>  dl/dh = -beta sigmoid(-beta h)
//   ipo:     l = (h - 1/(2 beta))^2  =>  dl/dh = 2 (h - 1/(2 beta))
//   dh/dlp_w[i,t] = w_i m_w[i,t],  dh/dlp_l[i,t] = -w_i m_l[i,t]   (w = 1, or 1 / sum_t m for per-token means)
template <typename real>
void dpo_loss_backward(real* dlp_w,           // (B, T) written
                       real* dlp_l,           // (B, T) written
                       double dloss,          // dL_total / dL
                       const real* lp_w,      // (B, T)
                       const real* lp_ref_w,  // (B, T)
                       const real* mask_w,    // (B, T)
                       const real* lp_l,      // (B, T)
                       const real* lp_ref_l,  // (B, T)
                       const real* mask_l,    // (B, T)
                       int B, int T, const DPOConfig& cfg) {
  check_dpo_args(mask_w, mask_l, B, T, cfg, "dpo_loss_backward");
  for (int i = 0; i < B; i++) {
    const long o = static_cast<long>(i) * T;
    const double h = seq_log_ratio(lp_w + o, lp_ref_w + o, mask_w + o, T, cfg) -
                     seq_log_ratio(lp_l + o, lp_ref_l + o, mask_l + o, T, cfg);
    const double dl_dh = cfg.loss_type == DPOLossType::sigmoid ? -cfg.beta * detail::sigmoid(-cfg.beta * h)
                                                               : 2.0 * (h - 1.0 / (2.0 * cfg.beta));
    const double g = dloss / B * dl_dh;
    const double ww = token_weight(mask_w + o, T, cfg), wl = token_weight(mask_l + o, T, cfg);
    for (int t = 0; t < T; t++) {
      dlp_w[o + t] = static_cast<real>(g * ww * static_cast<double>(mask_w[o + t]));
      dlp_l[o + t] = static_cast<real>(-g * wl * static_cast<double>(mask_l[o + t]));
    }
  }
}

template DPOStats dpo_loss_forward<float>(const float*, const float*, const float*, const float*, const float*,
                                          const float*, int, int, const DPOConfig&);
template DPOStats dpo_loss_forward<double>(const double*, const double*, const double*, const double*,
                                           const double*, const double*, int, int, const DPOConfig&);
template void dpo_loss_backward<float>(float*, float*, double, const float*, const float*, const float*,
                                       const float*, const float*, const float*, int, int, const DPOConfig&);
template void dpo_loss_backward<double>(double*, double*, double, const double*, const double*, const double*,
                                        const double*, const double*, const double*, int, int, const DPOConfig&);

}  // namespace tinyds

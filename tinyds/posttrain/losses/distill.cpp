// tinyds/posttrain/losses/distill.cpp — alpha T^2 KL + (1 - alpha) CE distillation loss (see distill.h).
//
// Shapes: N rows, V vocab.  z_s = student / T, z_t = teacher / T, p = softmax(z), q = softmax(student) (T = 1).
// Gradients: dstudent_logits WRITTEN (=). Rows are independent, so results do not depend on the thread count.
#include "tinyds/posttrain/losses/distill.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/posttrain/losses/row_softmax.h"

namespace tinyds {

static void check_distill_args(const int* targets, int N, int V, const DistillConfig& cfg, const char* where) {
  if (N < 0) throw_error(where, ": N = ", N, " must be >= 0");
  if (V < 1) throw_error(where, ": V = ", V, " must be >= 1");
  if (!(cfg.alpha >= 0.0 && cfg.alpha <= 1.0)) throw_error(where, ": alpha = ", cfg.alpha, " must be in [0, 1]");
  if (!(cfg.temperature > 0.0)) throw_error(where, ": temperature = ", cfg.temperature, " must be > 0");
  if (cfg.divergence != DistillDivergence::forward_kl && cfg.divergence != DistillDivergence::reverse_kl)
    throw_error(where, ": divergence = ", static_cast<int>(cfg.divergence), " is not forward_kl or reverse_kl");
  for (int n = 0; n < N; n++)
    if (targets[n] >= V)
      throw_error(where, ": targets[", n, "] = ", targets[n], " is outside the vocab [0, V=", V, ")");
}

// One row's KL at temperature T: forward sum p_t (log p_t - log p_s), reverse sum p_s (log p_s - log p_t).
static double row_kl(const double* logp_s, const double* logp_t, int V, DistillDivergence div) {
  const double* a = div == DistillDivergence::forward_kl ? logp_t : logp_s;  // the distribution sampled from
  const double* b = div == DistillDivergence::forward_kl ? logp_s : logp_t;
  double kl = 0.0;
  for (int v = 0; v < V; v++) kl += std::exp(a[v]) * (a[v] - b[v]);
  return kl;
}

static int count_unmasked(const int* targets, int N) {
  int c = 0;
  for (int n = 0; n < N; n++) c += targets[n] >= 0 ? 1 : 0;
  return c;
}

template <typename real>
DistillStats distill_loss_forward(const real* student_logits,  // (N, V)
                                  const real* teacher_logits,  // (N, V)
                                  const int* targets,          // (N), < 0 = masked
                                  int N, int V, const DistillConfig& cfg) {
  check_distill_args(targets, N, V, cfg, "distill_loss_forward");
  const double T = cfg.temperature;
  std::vector<double> logp_s(V), logp_t(V), logq(V);
  DistillStats st;
  for (int n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    const long off = static_cast<long>(n) * V;
    detail::row_log_softmax(logp_s.data(), student_logits + off, V, T);
    detail::row_log_softmax(logp_t.data(), teacher_logits + off, V, T);
    detail::row_log_softmax(logq.data(), student_logits + off, V, 1.0);  // the hard-label term is at T = 1
    st.kl += row_kl(logp_s.data(), logp_t.data(), V, cfg.divergence);
    st.ce += -logq[targets[n]];
  }
  const double n_tok = std::max(count_unmasked(targets, N), 1);  // all masked: loss 0, not 0/0
  st.kl /= n_tok;
  st.ce /= n_tok;
  st.loss = cfg.alpha * T * T * st.kl + (1.0 - cfg.alpha) * st.ce;
  return st;
}

// forward was: L = (1/n_tok) sum_n [alpha T^2 KL_n(z_s) + (1 - alpha) CE_n(student)],  z_s = student / T
//   forward KL_n = sum p_t (log p_t - log p_s):   dKL/dz_s[u] = p_s[u] - p_t[u]
//   reverse KL_n = sum p_s (log p_s - log p_t):   dKL/dz_s[u] = p_s[u] (log p_s[u] - log p_t[u] - KL_n)
//     (from d log p_s[v]/dz[u] = [u == v] - p_s[u], as in entropy_backward)
//   dz_s/dstudent = 1/T, so the soft term contributes alpha T^2 (1/T) dKL/dz = alpha T dKL/dz
//   CE_n = lse(student) - student[t]:   dCE/dstudent[u] = q[u] - [u == t]
template <typename real>
void distill_loss_backward(real* dstudent_logits,        // (N, V) written
                           double dloss,                 // dL_total / dL
                           const real* student_logits,   // (N, V)
                           const real* teacher_logits,   // (N, V)
                           const int* targets,           // (N)
                           int N, int V, const DistillConfig& cfg) {
  check_distill_args(targets, N, V, cfg, "distill_loss_backward");
  const double T = cfg.temperature;
  const double g = dloss / std::max(count_unmasked(targets, N), 1);
  std::vector<double> logp_s(V), logp_t(V), logq(V);
  for (int n = 0; n < N; n++) {
    real* dx = dstudent_logits + static_cast<long>(n) * V;
    if (targets[n] < 0) {
      for (int v = 0; v < V; v++) dx[v] = real(0);
      continue;
    }
    const long off = static_cast<long>(n) * V;
    detail::row_log_softmax(logp_s.data(), student_logits + off, V, T);
    detail::row_log_softmax(logp_t.data(), teacher_logits + off, V, T);
    detail::row_log_softmax(logq.data(), student_logits + off, V, 1.0);
    const double kl = row_kl(logp_s.data(), logp_t.data(), V, cfg.divergence);
    for (int v = 0; v < V; v++) {
      const double ps = std::exp(logp_s[v]);
      const double dkl = cfg.divergence == DistillDivergence::forward_kl
                             ? ps - std::exp(logp_t[v])
                             : ps * (logp_s[v] - logp_t[v] - kl);
      const double dce = std::exp(logq[v]) - (v == targets[n] ? 1.0 : 0.0);
      dx[v] = static_cast<real>(g * (cfg.alpha * T * dkl + (1.0 - cfg.alpha) * dce));
    }
  }
}

template DistillStats distill_loss_forward<float>(const float*, const float*, const int*, int, int,
                                                  const DistillConfig&);
template DistillStats distill_loss_forward<double>(const double*, const double*, const int*, int, int,
                                                   const DistillConfig&);
template void distill_loss_backward<float>(float*, double, const float*, const float*, const int*, int, int,
                                           const DistillConfig&);
template void distill_loss_backward<double>(double*, double, const double*, const double*, const int*, int, int,
                                            const DistillConfig&);

}  // namespace tinyds

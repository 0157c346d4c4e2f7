// tinyds/posttrain/losses/reward_model.cpp — Bradley-Terry pairwise loss (see reward_model.h).
//
// Shapes: P pairs.  d = r_w - r_l,  L = mean softplus(-d).  Gradients: dr_w, dr_l WRITTEN (=).
#include "tinyds/posttrain/losses/reward_model.h"

#include <cmath>

#include "tinyds/core/error.h"
#include "tinyds/posttrain/losses/stable.h"

namespace tinyds {

template <typename real>
RewardModelStats reward_model_loss_forward(const real* r_w,  // (P) rewards of the chosen completions
                                           const real* r_l,  // (P) rewards of the rejected completions
                                           int P) {
  if (P < 1) throw_error("reward_model_loss_forward: P = ", P, " pairs, need at least 1");
  RewardModelStats s;
  for (int p = 0; p < P; p++) {
    const double d = static_cast<double>(r_w[p]) - static_cast<double>(r_l[p]);
    s.loss += detail::softplus(-d);  // -log sigmoid(d), without exp overflow for large |d|
    s.accuracy += d > 0.0 ? 1.0 : 0.0;
    s.mean_margin += d;
  }
  s.loss /= P;
  s.accuracy /= P;
  s.mean_margin /= P;
  return s;
}

// forward was: L = (1/P) sum_p softplus(-d_p),  d_p = r_w[p] - r_l[p]
//   d softplus(-d) / dd = -sigmoid(-d)   =>   dr_w = -sigmoid(-d) / P,  dr_l = +sigmoid(-d) / P
template <typename real>
void reward_model_loss_backward(real* dr_w,        // (P) written
                                real* dr_l,        // (P) written
                                double dloss,      // dL_total / dL
                                const real* r_w,   // (P)
                                const real* r_l,   // (P)
                                int P) {
  if (P < 1) throw_error("reward_model_loss_backward: P = ", P, " pairs, need at least 1");
  for (int p = 0; p < P; p++) {
    const double d = static_cast<double>(r_w[p]) - static_cast<double>(r_l[p]);
    const double g = -dloss * detail::sigmoid(-d) / P;
    dr_w[p] = static_cast<real>(g);
    dr_l[p] = static_cast<real>(-g);
  }
}

template RewardModelStats reward_model_loss_forward<float>(const float*, const float*, int);
template RewardModelStats reward_model_loss_forward<double>(const double*, const double*, int);
template void reward_model_loss_backward<float>(float*, float*, double, const float*, const float*, int);
template void reward_model_loss_backward<double>(double*, double*, double, const double*, const double*, int);

}  // namespace tinyds

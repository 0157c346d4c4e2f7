// tinyds/posttrain/losses/reward_model.h — Bradley-Terry loss of a reward model on preference pairs.
//
// Shapes: P pairs. r_w (P) = r(x, y_chosen), r_l (P) = r(x, y_rejected): the scalar head on the last token's
// hidden state (DESIGN 6). Bradley-Terry: P(y_w > y_l) = sigmoid(r_w - r_l), so the negative log-likelihood is
//   L = (1/P) sum_p -log sigmoid(r_w[p] - r_l[p]) = (1/P) sum_p softplus(-(r_w[p] - r_l[p]))
// (trl RewardTrainer: -logsigmoid(chosen - rejected).mean(), without its optional margin term).
// Conventions: dr_w, dr_l WRITTEN (=). P < 1 throws tinyds::Error.
#pragma once

namespace tinyds {

struct RewardModelStats {
  double loss = 0.0;
  double accuracy = 0.0;     // fraction of pairs with r_w > r_l
  double mean_margin = 0.0;  // mean of r_w - r_l
};

// r_w (P), r_l (P)
template <typename real>
RewardModelStats reward_model_loss_forward(const real* r_w, const real* r_l, int P);

// dr_w (P), dr_l (P) written: dr_w = -dloss * sigmoid(-(r_w - r_l)) / P, dr_l = -dr_w.
template <typename real>
void reward_model_loss_backward(real* dr_w, real* dr_l, double dloss, const real* r_w, const real* r_l, int P);

}  // namespace tinyds

// tinyds/posttrain/losses/distill.h — knowledge distillation from a teacher's logits (Hinton et al. 2015).
//
// Shapes: N rows (B*T token positions), V vocab. A target < 0 is masked: the row adds nothing to the loss and gets
// a zero gradient. With p^T = softmax(logits / T) and n_tok = max(#unmasked rows, 1):
//   L = (1/n_tok) sum_{unmasked n} [ alpha * T^2 * KL_n + (1 - alpha) * CE_n ]
//   forward KL (default):  KL_n = KL(p_teacher^T || p_student^T) = sum_v p_t (log p_t - log p_s)
//   reverse KL (option):   KL_n = KL(p_student^T || p_teacher^T) = sum_v p_s (log p_s - log p_t)
//   CE_n = -log softmax(student_logits[n])[target]   (hard labels at temperature 1)
// Why T^2: the soft term's gradient w.r.t. the logits scales as 1/T (d/dz of KL is p_s - p_t, and z = logits / T),
// and p_s - p_t itself shrinks ~1/T for large T; multiplying by T^2 keeps the soft and hard terms' gradients
// comparable when T changes (Hinton et al. §2).
// trl's GKDTrainer instead uses T = 1 scaling without T^2 and a generalised JSD (beta between forward and reverse);
// tinyds offers the two endpoints.
// Conventions: dstudent_logits WRITTEN (=); the teacher is frozen (no teacher gradient).
#pragma once

namespace tinyds {

enum class DistillDivergence { forward_kl, reverse_kl };

struct DistillConfig {
  double alpha = 0.5;        // weight of the soft (KL) term, in [0, 1]; 1 - alpha weights the hard CE. e.g. 0.5
  double temperature = 2.0;  // T > 0, softens both distributions; Hinton et al. use 1..20. e.g. 2.0
  DistillDivergence divergence = DistillDivergence::forward_kl;  // forward KL(teacher || student) is the default
};

struct DistillStats {
  double loss = 0.0;
  double kl = 0.0;  // mean KL_n over unmasked rows (at temperature T, before alpha and T^2)
  double ce = 0.0;  // mean CE_n over unmasked rows
};

// student_logits (N, V), teacher_logits (N, V), targets (N) (< 0 = masked)
template <typename real>
DistillStats distill_loss_forward(const real* student_logits, const real* teacher_logits, const int* targets,
                                  int N, int V, const DistillConfig& cfg);

// dstudent_logits (N, V) written: dloss / n_tok * [ alpha * T * dKL_n/dz + (1 - alpha) (softmax(s) - onehot) ],
// where dKL/dz = p_s - p_t (forward) or p_s (log p_s - log p_t - KL_n) (reverse), z = student_logits / T.
template <typename real>
void distill_loss_backward(real* dstudent_logits, double dloss, const real* student_logits,
                           const real* teacher_logits, const int* targets, int N, int V, const DistillConfig& cfg);

}  // namespace tinyds

// tinyds/posttrain/critic.h — the PPO critic (value model): a transformer trunk and a scalar value head.
//
// Shapes: B sequences, T positions, N = B*T rows, C d_model.
//
//   x_L = Trunk(tokens)                       (N, C)  final hidden state, before the final norm (final_hidden())
//   V   = x_L @ w_v + b_v                     (N)     one value per position: V[b, t] estimates the return of the
//                                                     state that has seen tokens[b, 0..t] (the position whose
//                                                     logits predict token t+1, so V lines up with the policy's
//                                                     per-token log-probs in a PolicyBatch)
//
// The trunk is a whole Transformer of the policy's architecture (DESIGN 6: "a separate model, same architecture,
// scalar value head"), initialised from the policy checkpoint as trl does with its value model. Its output head
// and final norm are carried but unused (backward_from_hidden gives them no gradient): that is the same memory a
// copy of the policy costs, which is the point of the PPO-vs-GRPO comparison.
// The value head (w_v (C), b_v (1)) is one ledgered allocation of C + 1 numbers under the critic's role, with
// its own gradient and Adam moments (CriticAdamW). It starts at zero: the critic first predicts V = 0 for every
// state, and the trunk receives gradient from the second update on (dx_L = dV w_v).
// A reward model has the same shape (trunk + scalar head, read at the last completion token) and is built as
// Critic(cfg, Role::reward), frozen.
//
// Conventions: parameter gradients ACCUMULATE (+=) into the trunk's and the head's grads; zero_grad() clears both.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/core/ledger.h"
#include "tinyds/model/transformer.h"
#include "tinyds/train/finite_check.h"
#include "tinyds/train/optimizer.h"

namespace tinyds {

template <typename real>
class Critic {
 public:
  explicit Critic(const ModelConfig& cfg, Role role = Role::critic);

  Transformer<real>& trunk() { return trunk_; }
  const Transformer<real>& trunk() const { return trunk_; }
  int d_model() const { return trunk_.config().d_model; }
  // The value head: w_v = head()[0..C), b_v = head()[C].
  real* head() { return head_.data(); }               // (C + 1)
  const real* head() const { return head_.data(); }
  real* head_grads();                                 // (C + 1), same layout; allocated on first use (a frozen
                                                      // reward model never holds gradients)
  std::size_t head_size() const { return head_.size(); }
  // Trunk parameters + value head (C + 1).
  std::size_t num_params() const { return trunk_.num_params() + head_.size(); }

  // tokens (B, T). Writes and returns V (B, T) (also values()). B*T may change between calls.
  const real* forward(const int* tokens, int B, int T);
  const real* values() const { return values_.data(); }  // (B, T) of the last forward
  // dvalues (B, T) of the last forward: d/dw_v, d/db_v and the trunk's gradients ACCUMULATED.
  void backward(const real* dvalues);
  void zero_grad();

 private:
  Transformer<real> trunk_;
  Role role_;
  Buffer<real> head_, dhead_;  // (C + 1) weights / grads
  Buffer<real> values_;        // (N) activations
  Buffer<real> dxL_;           // (N, C) activations: gradient w.r.t. x_L handed to the trunk
  int B_ = 0, T_ = 0;
};

extern template class Critic<float>;
extern template class Critic<double>;

// AdamW over a Critic<float>: the trunk with the shared AdamW (train/optimizer.h), the head with its own two
// moment buffers (Category adam_m / adam_v under `role`: Role::critic for PPO's critic, Role::reward when
// `tinyds rm` trains a reward model). w_v decays like a matrix, b_v does not.
class CriticAdamW {
 public:
  explicit CriticAdamW(Critic<float>& critic, Role role = Role::critic);
  void step(const AdamWSettings& s);
  AdamW& trunk() { return trunk_; }
  int t() const { return trunk_.t(); }

 private:
  Critic<float>& critic_;
  AdamW trunk_;
  Buffer<float> m_, v_;  // (C + 1)
};

// L2 norm of the critic's whole gradient (trunk and head), and clipping of both to max_norm (> 0; 0 = off).
// Returns the norm before clipping.
double critic_clip_grad_norm(Critic<float>& critic, double max_norm);

// The critic's parameters / gradients as named tensors for the divergence checks (train/finite_check.h): the
// trunk's by checkpoint name after `prefix`, then "<head>.weight" (C) and "<head>.bias" (1), as save_scalar_head
// names them.
std::vector<NamedTensor> critic_params_named(const Critic<float>& critic, const std::string& prefix,
                                             const std::string& head);
std::vector<NamedTensor> critic_grads_named(Critic<float>& critic, const std::string& prefix, const std::string& head);

// The scalar head alone as a small safetensors file: tensors "<name>.weight" (C) and "<name>.bias" (1), metadata
// "format" = "tinyds-<name>" with '_' as '-' (PPO writes "value_head" next to its critic's trunk checkpoint,
// `tinyds rm` writes "reward_head" next to the reward model's). The trunk is an ordinary checkpoint (checkpoint.h).
void save_scalar_head(const std::string& path, const Critic<float>& critic, const std::string& name);
// Reads it back into critic.head(); errors name the file and the tensor (absent, or C differs from the trunk's).
void load_scalar_head(const std::string& path, Critic<float>& critic, const std::string& name);

}  // namespace tinyds

// tinyds/model/transformer.h — the dense pre-norm transformer: forward, hand-written backward, init.
//
// Shapes: B batch, T time, N = B*T rows, C d_model, V vocab, H heads, Hkv kv heads, D head_dim, F ffn_hidden.
//
//   x = embed[tokens]                                      (N, C)
//   for each layer:  h = x + Attn(RMSNorm(x))              pre-norm residual blocks (DESIGN section 4)
//                    x = h + FFN(RMSNorm(h))               FFN(a) = w2(silu(w1 a) * w3 a)
//   logits = head(RMSNorm(x))                              (N, V)
//   loss = mean over unmasked targets of cross-entropy     (targets < 0 are masked)
//
// All parameters live in one ledgered allocation (see params.h), and so do their gradients; the forward
// activations live in one allocation viewed through ActivationViews (below), and the backward pass's scratch
// in another. The class is a template over `real` so the whole model can be checked against finite
// differences in double precision; training uses Transformer<float>.
#pragma once
#include <cstdint>
#include <vector>

#include "tinyds/core/ledger.h"
#include "tinyds/model/config.h"
#include "tinyds/model/mla.h"
#include "tinyds/model/params.h"

namespace tinyds {

// What the forward pass keeps for the backward pass, per layer (named exactly by the line that makes it).
template <typename real>
struct LayerActivations {
  real* attn_in;    // (N, C)        RMSNorm(x)                      input of the attention projections
  real* attn_rstd;  // (N)           1/rms of x                      saved by rmsnorm_forward
  real* q;          // (B, T, H, D)  RoPE(attn_in @ wq^T)
  real* k;          // (B, T, Hkv, D) RoPE(attn_in @ wk^T)
  real* v;          // (B, T, Hkv, D) attn_in @ wv^T
  real* att;        // (B, H, T, T)  causal softmax probabilities
  real* att_out;    // (N, H*D)      att @ v, heads concatenated
  MlaActivations<real> mla;  // attention mla: its own saved tensors (q, k, v, att, ... above are nullptr)
  real* h;          // (N, C)        x + att_out @ wo^T              residual after attention
  real* ffn_in;     // (N, C)        RMSNorm(h)
  real* ffn_rstd;   // (N)
  real* a1;         // (N, F)        ffn_in @ w1^T                   gate pre-activation
  real* a3;         // (N, F)        ffn_in @ w3^T                   up projection
  real* gate;       // (N, F)        silu(a1) * a3
  real* out;        // (N, C)        h + gate @ w2^T                 the block's output (next layer's x)
};

template <typename real>
struct ActivationViews {
  real* x0;          // (N, C)  embed[tokens]
  std::vector<LayerActivations<real>> layers;
  real* final_in;    // (N, C)  RMSNorm(x_L)
  real* final_rstd;  // (N)
  real* logits;      // (N, V)
  real* losses;      // (N)     per-position cross-entropy (0 where masked)
  real* lse;         // (N)     log-sum-exp of each logits row
  real* scratch;     // (N, C)  a projection's output before it is added to the residual (not saved)
  MlaForwardScratch<real> mla_fwd;  // attention mla: forward scratch shared by all layers
};

// Scratch for the backward pass (nothing here outlives one backward call).
template <typename real>
struct BackwardViews {
  real* dres;      // (N, C)   gradient flowing along the residual stream
  real* dnorm_in;  // (N, C)   gradient w.r.t. a normed input (attn_in / ffn_in / final_in)
  real* dtmp;      // (N, C)
  real* dq;        // (N, H*D)
  real* dk;        // (N, Hkv*D)
  real* dv;        // (N, Hkv*D)
  real* datt_out;  // (N, H*D)
  real* dgate;     // (N, F)
  real* da1;       // (N, F)
  real* da3;       // (N, F)
  real* dlogits;   // (N, V)
  real* dlosses;   // (N)
  MlaBackwardScratch<real> mla_bwd;  // attention mla: backward scratch shared by all layers
};

template <typename real>
class Transformer {
 public:
  explicit Transformer(const ModelConfig& cfg, Role role = Role::policy);

  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  std::size_t num_params() const { return layout_.total(); }
  real* params() { return params_.data(); }
  const real* params() const { return params_.data(); }
  // Gradients (allocated on first use, same layout as params).
  real* grads();
  const ModelParams<real>& param_view() const { return pview_; }

  // Normal(0, init_std) matrices, output projections (wo, w2) scaled by 1/sqrt(2 n_layer) (GPT-2), norm gains 1.
  // Deterministic in the seed; each tensor draws from its own stream.
  void init_weights(uint64_t seed);

  // tokens (B, T); targets (B, T) or nullptr. Computes logits (B, T, V); returns the mean cross-entropy over
  // targets >= 0 (0 if targets is nullptr or all are masked). B*T may vary between calls.
  double forward(const int* tokens, const int* targets, int B, int T);
  // d(mean loss)/d(params), ACCUMULATED into grads(). Needs the preceding forward() to have had targets.
  void backward();
  void zero_grad();

  const real* logits() const { return acts_.logits; }   // (B, T, V) of the last forward
  int last_B() const { return B_; }
  int last_T() const { return T_; }
  int num_targets() const { return num_targets_; }      // unmasked targets in the last forward

 private:
  void ensure_activations(int B, int T);
  void ensure_backward_scratch();
  void layer_forward(int l, const real* x);
  void layer_backward(int l, const real* x);
  MlaDims<real> mla_dims() const;
  const ModelParams<real>& grad_view();

  ModelConfig cfg_;
  Role role_;
  ParamLayout layout_;
  Buffer<real> params_, grads_;
  ModelParams<real> pview_, gview_;  // named views into params_ and grads_, built once
  Buffer<real> act_buf_, bwd_buf_;
  ActivationViews<real> acts_{};
  BackwardViews<real> bwd_{};
  int B_ = 0, T_ = 0, num_targets_ = 0;
  std::size_t act_capacity_ = 0, bwd_capacity_ = 0;  // elements currently allocated
  std::vector<int> tokens_, targets_;
};

extern template class Transformer<float>;
extern template class Transformer<double>;

}  // namespace tinyds

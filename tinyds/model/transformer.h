// tinyds/model/transformer.h — the DeepSeek-style pre-norm transformer: forward, hand-written backward, init.
//
// Shapes: B batch, T time, N = B*T rows, C d_model, V vocab, H heads, Hkv kv heads, D head_dim, F ffn_hidden.
//
//   x = embed[tokens]                                      (N, C)
//   for each layer:  h = x + Attn(RMSNorm(x))              pre-norm residual blocks (DESIGN section 4)
//                    x = h + FFN(RMSNorm(h))               Attn: mha/gqa/mqa or MLA (mla.h)
//                                                          FFN: dense SwiGLU w2(silu(w1 a) * w3 a) in the first
//                                                          n_dense_layers, MoE (moe_layer.h) after them
//   logits = head(RMSNorm(x))                              (N, V)
//   main_loss = mean over unmasked targets of cross-entropy     (targets < 0 are masked)
//   mtp_loss  = lambda/D sum_k CE of MTP module k (mtp.h: predicts the token k+1 places ahead; V3 Eq. 21-25)
//   balance   = sum over MoE layers of their balance losses (seqaux / aux, when on; moe_layer.h)
//   objective = main_loss + mtp_loss + balance              what forward() returns and backward() differentiates
//
// All parameters live in one ledgered allocation (see params.h), and so do their gradients; the forward
// activations live in one allocation viewed through ActivationViews (below), and the backward pass's scratch
// in another. The class is a template over `real` so the whole model can be checked against finite
// differences in double precision; training uses Transformer<float>.
//
// Device (tinyds/device/device.h): a model built for Device::cuda keeps every one of these allocations in device
// memory (Place::device), runs every op as a CUDA kernel (tinyds/device/ops.h) and touches its memory from the host
// only through the dev:: copies (tinyds/device/memory.h): the per-token losses and the MoE expert offsets are copied
// back to the host, the tokens, targets and loss weights copied up. Its pointer accessors (params(), grads(),
// logits(), moe_bias(), ...) then return device pointers; the *_to_host / *_from_host methods copy.
// Transformer<double> is CPU only (the kernels are fp32).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/core/ledger.h"
#include "tinyds/core/timer.h"
#include "tinyds/device/device.h"
#include "tinyds/model/config.h"
#include "tinyds/model/ffn.h"
#include "tinyds/model/mla.h"
#include "tinyds/model/moe_layer.h"
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
  FfnActivations<real> ffn;  // dense FFN: a1, a3, act (N, F) of ffn_in (model/ffn.h); nullptr in MoE layers
  MoeActivations<real> moe;  // MoE layers: the router's and experts' saved tensors (moe_layer.h)
  real* out;        // (N, C)        h + FFN(ffn_in)                 the block's output (next layer's x)
};

// Multi-Token Prediction module k's own saved tensors (its block's are layers[n_layer + k]); model/mtp.h.
template <typename real>
struct MtpActivations {
  real* hn;          // (N, C)   RMSNorm(h^{k-1}; hnorm)
  real* hn_rstd;     // (N)
  real* emb;         // (N, C)   embed[tokens[i+k]]: module k (1-based) sees the token k places ahead (mtp.h)
  real* en;          // (N, C)   RMSNorm(emb; enorm)
  real* en_rstd;     // (N)
  real* cat;         // (N, 2C)  [hn, en] per row (V3 Eq. 21's concatenation)
  real* m;           // (N, C)   cat @ proj^T: the input of the module's block
  real* final_in;    // (N, C)   RMSNorm(h^k; norm)   (the main model's final norm: shared with the head)
  real* final_rstd;  // (N)
  real* logits;      // (N, V)   final_in @ head^T
  real* losses;      // (N)
  real* lse;         // (N)
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
  std::vector<MtpActivations<real>> mtp;  // mtp_depth modules
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
  FfnScratch<real> ffn_bwd;  // dense FFN: dact, da1, da3 (N, F); its dx1 is dtmp above
  real* dlogits;   // (N, V)
  real* dlosses;   // (N)
  MlaBackwardScratch<real> mla_bwd;  // attention mla: backward scratch shared by all layers
  MoeBackwardScratch<real> moe_bwd;  // MoE layers: backward scratch shared by all of them
  real* dcat;      // (N, 2C)  MTP: gradient w.r.t. [hn, en]
  real* dcarry;    // (N, C)   MTP: gradient w.r.t. h^{k-1} carried down to the module before (then to x_L)
};

// Which balance losses a MoE layer computes: those the config names (training), or none (inference).
enum class MoeLosses { configured, off };
// The MoE layer dims of this model for B sequences of T tokens.
MoeDims moe_dims_of(const ModelConfig& m, int B, int T, MoeLosses losses);

template <typename real>
class Transformer {
 public:
  explicit Transformer(const ModelConfig& cfg, Role role = Role::policy, Device device = Device::cpu);

  const ModelConfig& config() const { return cfg_; }
  Device device() const { return device_; }  // where the tensors live and the ops run
  const ParamLayout& layout() const { return layout_; }
  std::size_t num_params() const { return layout_.total(); }
  // In the model's place (device pointers on cuda: read them through the host copies below).
  real* params() { return params_.data(); }
  const real* params() const { return params_.data(); }
  // Gradients (allocated on first use, same layout as params).
  real* grads();
  const ModelParams<real>& param_view() const { return pview_; }

  // Host copies of the parameters, gradients and MoE biases, whatever the device: host arrays of num_params()
  // (params, grads) or moe_bias_size() (biases) elements, in the layout's order.
  void params_from_host(const real* host);
  void params_to_host(real* host) const;
  void grads_to_host(real* host);  // allocates the gradients on first use, as grads() does
  void moe_bias_from_host(const real* host);
  void moe_bias_to_host(real* host) const;

  // Normal(0, init_std) matrices, output projections (wo, w2) scaled by 1/sqrt(2 n_layer) (GPT-2), norm gains 1.
  // Deterministic in the seed; each tensor draws from its own stream. Drawn on the host (then copied to the
  // device on cuda): the same numbers on both devices.
  void init_weights(uint64_t seed);

  // tokens (B, T); targets (B, T) or nullptr: HOST arrays on both devices. Computes logits (B, T, V) in the model's
  // place; returns the objective main_loss +
  // mtp_loss + balance_loss (each 0 when off; with targets == nullptr only the MoE balance part and no MTP).
  // B*T may vary between calls.
  double forward(const int* tokens, const int* targets, int B, int T);
  // d(objective)/d(params), ACCUMULATED into grads(). Needs the preceding forward() to have had targets.
  void backward();
  // The same with an arbitrary upstream gradient of the main logits: d(sum dlogits * logits + balance)/d(params),
  // ACCUMULATED. For losses computed outside the model (post-training). dlogits (B, T, V) of the last forward
  // (which may have had no targets), in the model's place; the MTP modules are not involved.
  void backward_from_logits(const real* dlogits);
  // The same from a gradient w.r.t. the final hidden state x_L (B, T, C) (before the final norm): for heads that
  // read x_L instead of the logits (the critic's value head, the reward model's score head). The output head and
  // final norm get no gradient. dxL in the model's place.
  void backward_from_hidden(const real* dxL);
  void zero_grad();

  // Normalise the next forwards' main loss by `main` unmasked targets and MTP module k's by mtp[k], instead of
  // their own counts (0 or an empty vector: their own). Data-parallel replicas (train/data_parallel.h) pass the
  // whole batch's counts, so that their gradients add up to the whole batch's.
  void set_loss_denominators(int main, const std::vector<int>& mtp) { main_denom_ = main; mtp_denom_ = mtp; }

  double main_loss() const { return main_loss_; }        // parts of the last forward's objective
  double mtp_loss() const { return mtp_loss_; }
  double balance_loss() const { return balance_loss_; }

  // ---- MoE router biases (DESIGN 4.3): buffers, not parameters ----
  int num_moe_layers() const { return static_cast<int>(moe_layers_.size()); }
  real* moe_bias() { return moe_bias_.data(); }                      // (num_moe_layers, E)
  const real* moe_bias() const { return moe_bias_.data(); }
  std::size_t moe_bias_size() const { return moe_bias_.size(); }
  std::vector<std::string> moe_bias_names() const;                    // "<layer prefix>ffn.gate.bias" each
  int moe_slot(int l) const { return moe_slot_[l]; }                  // layer l's row of moe_bias(), or -1
  // After the optimizer step: bias += gamma * sign(mean(load) - load) per MoE layer that ran in the last forward,
  // with its loads (no-op unless balance has "bias"). Called by the supervised trainers only: preference and RL
  // training keep the biases frozen (moe_balance.h says why).
  void update_moe_bias();
  // The same from given loads, one row per MoE layer that ran, in moe_load()'s order (data-parallel replicas sum
  // theirs first).
  void update_moe_bias(const std::vector<std::vector<int>>& loads);
  // Per MoE layer that ran in the last forward (the MTP blocks run only when it had targets), in layer order.
  // Read from the dispatch's expert offsets (E+1 ints per layer, copied to the host on cuda).
  std::vector<double> moe_maxvio() const;            // MaxVio
  std::vector<std::vector<int>> moe_load() const;    // (E) routed pairs per expert

  // Time every forward/backward phase (attention, FFN/MoE, MTP, head) into `into` (nullptr: off, the default).
  void set_phase_times(PhaseTimes* into) { phases_ = into; }

  // ---- Multi-Token Prediction (model/mtp.h) ----
  const real* mtp_logits(int k) const { return acts_.mtp[k].logits; }  // (B, T, V) of module k, last forward

  const real* logits() const { return acts_.logits; }   // (B, T, V) of the last forward
  const LayerActivations<real>& layer_activations(int l) const { return acts_.layers[l]; }  // of the last forward
  const real* final_hidden() const {                    // (B, T, C) x_L of the last forward (before the final norm)
    return cfg_.n_layer ? acts_.layers[cfg_.n_layer - 1].out : acts_.x0;
  }
  int last_B() const { return B_; }
  int last_T() const { return T_; }
  int num_targets() const { return num_targets_; }      // unmasked targets in the last forward

 private:
  void ensure_activations(int B, int T);
  void upload_tokens(const int* tokens, const int* targets, int N);  // into tokens_dev_, targets_dev_
  void ensure_backward_scratch();
  void layer_forward(int l, const real* x);
  void layer_backward(int l, const real* x);
  void backward_trunk(const real* dxL_extra);   // from bwd_.dlogits down to the embedding
  void backward_layers();                       // from bwd_.dres = d(x_L) down to the embedding
  void mtp_forward(const int* tokens, const int* targets);  // model/mtp.cpp
  void mtp_backward();                                      // leaves d(x_L) from the MTP modules in bwd_.dcarry
  int mtp_denominator(int k) const {                        // what MTP module k's summed CE is divided by
    return k < static_cast<int>(mtp_denom_.size()) && mtp_denom_[k] > 0 ? mtp_denom_[k] : mtp_num_targets_[k];
  }
  MlaDims<real> mla_dims() const;
  MoeDims moe_dims() const;  // of the last forward's batch, with the configured balance losses
  bool ran_in_last_forward(int l) const { return l < cfg_.n_layer || mtp_ran_; }
  const ModelParams<real>& grad_view();

  ModelConfig cfg_;
  Role role_;
  Device device_;                     // where every Buffer below lives (dev::place_of) and the ops run
  ParamLayout layout_;
  Buffer<real> params_, grads_;
  ModelParams<real> pview_, gview_;  // named views into params_ and grads_, built once
  Buffer<real> act_buf_, bwd_buf_;
  Buffer<int> act_int_buf_;           // the MoE layers' routing indices
  // The last forward's tokens and targets (N each) and, per MTP module, its embedded tokens and targets (N each),
  // in the model's place: the ops read them there. The host copies are tokens_, targets_, mtp_tokens_, mtp_targets_.
  Buffer<int> tok_buf_;
  int* tokens_dev_ = nullptr;         // (N)
  int* targets_dev_ = nullptr;        // (N), or nullptr when the last forward had none
  std::vector<int*> mtp_tokens_dev_, mtp_targets_dev_;  // per module (N)
  Buffer<int> load_buf_;              // (E) the loads of one MoE layer, for the bias update on the device
  Buffer<real> moe_bias_;             // (num_moe_layers, E) router biases (Category::weights)
  std::vector<int> moe_layers_;       // the layer index of each MoE layer
  std::vector<int> moe_slot_;         // per layer: its MoE index, or -1
  ActivationViews<real> acts_{};
  BackwardViews<real> bwd_{};
  PhaseTimes* phases_ = nullptr;
  bool mtp_ran_ = false;              // did the last forward run the MTP modules (it had targets)?
  int B_ = 0, T_ = 0, num_targets_ = 0;
  int main_denom_ = 0;                              // set_loss_denominators (0: num_targets_)
  std::vector<int> mtp_denom_;                      // set_loss_denominators (empty: mtp_num_targets_)
  double main_loss_ = 0, mtp_loss_ = 0, balance_loss_ = 0;
  std::vector<int> mtp_num_targets_;                // per module: unmasked MTP targets of the last forward
  std::vector<std::vector<int>> mtp_tokens_, mtp_targets_;  // per module (N): embedded tokens, targets
  std::size_t act_capacity_ = 0, bwd_capacity_ = 0;  // elements currently allocated
  std::vector<int> tokens_, targets_;
};

// Unmasked targets of MTP module k (0-based; it predicts targets[i + k + 1] within each row) in targets (B, T).
int mtp_target_count(const int* targets, int B, int T, int k);

extern template class Transformer<float>;
extern template class Transformer<double>;

}  // namespace tinyds

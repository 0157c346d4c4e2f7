// tinyds/model/params.h — where every parameter lives.
//
// All parameters of a model sit in ONE allocation (so the optimizer, grad clipping and checkpointing are one
// loop over one array), laid out layer by layer in the order of ParamLayout::tensors(). Forward and backward
// never compute offsets by hand: they ask for a per-layer view (LayerParams) of the params or of the grads
// (the grads use the same layout). Tensor names follow DeepSeek-V3's inference/model.py.
//
// Shapes: V vocab, C d_model, H heads, Hkv kv heads, D head_dim, F ffn_hidden.
//   embed                    (V, C)
//   layers.{l}.attn_norm     (C)
//   layers.{l}.attn.wq       (H*D, C)
//   layers.{l}.attn.wk       (Hkv*D, C)
//   layers.{l}.attn.wv       (Hkv*D, C)
//   layers.{l}.attn.wo       (C, H*D)
//   (attention mla instead: layers.{l}.attn.{wq_a (Q,C), q_norm (Q), wq_b (H*(D+R),Q), wkv_a (L+R,C), kv_norm (L),
//    wkv_b (H*2D,L), wo (C,H*D)}; see model/mla.h)
//   layers.{l}.ffn_norm      (C)
//   layers.{l}.ffn.w1        (F, C)     gate projection        dense FFN (l < n_dense_layers, or no MoE)
//   layers.{l}.ffn.w3        (F, C)     up projection
//   layers.{l}.ffn.w2        (C, F)     down projection
//   (MoE layers instead, Fe = moe_inter_dim, S = Ns*Fe: layers.{l}.ffn.{gate (E,C) the router, experts.w1 (E,Fe,C),
//    experts.w3 (E,Fe,C), experts.w2 (E,C,Fe), shared_experts.w1 (S,C), shared_experts.w3 (S,C),
//    shared_experts.w2 (C,S)}; see model/moe_layer.h)
//   norm                     (C)
//   head                     (V, C)     untied from embed (DeepSeek-V3 default)
//   mtp.{k}.hnorm            (C)        Multi-Token Prediction module k (model/mtp.h): RMSNorm of h^{k-1}
//   mtp.{k}.enorm            (C)        RMSNorm of the embedding of token t+k+1
//   mtp.{k}.proj             (C, 2C)    M_k (V3 Eq. 21)
//   mtp.{k}.block.*                     one transformer block, named like a layer (its FFN is MoE iff the model's is)
// Not parameters (no gradient, never touched by AdamW, saved in checkpoints): each MoE layer's router bias
// "<layer>.ffn.gate.bias" (E), held by the model (Transformer::moe_bias()).
// Layer index l in [0, n_layer) is a main block; l = n_layer + k is MTP module k's block.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/model/config.h"
#include "tinyds/model/ffn.h"
#include "tinyds/model/mla.h"
#include "tinyds/model/moe_layer.h"

namespace tinyds {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  std::size_t offset = 0;  // in elements from the start of the allocation
  std::size_t numel = 0;
  bool decay = false;      // AdamW weight decay applies (matrices yes; norm gains no)
};

class ParamLayout {
 public:
  explicit ParamLayout(const ModelConfig& cfg);
  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  std::size_t total() const { return total_; }
  // The spec of a named tensor; throws naming the tensor if absent.
  const TensorSpec& find(const std::string& name) const;

 private:
  enum class Decay { no, yes };  // does AdamW's weight decay apply to the tensor?
  void add(const std::string& name, std::vector<int64_t> shape, Decay decay);
  void add_block(const ModelConfig& c, int l);
  std::vector<TensorSpec> tensors_;
  std::size_t total_ = 0;
};

// Named pointers into one layer of a parameter (or gradient) array.
template <typename real>
struct LayerParams {
  real* attn_norm;  // (C)
  real* wq;         // (H*D, C)       mha/gqa/mqa only (nullptr for mla)
  real* wk;         // (Hkv*D, C)     mha/gqa/mqa only
  real* wv;         // (Hkv*D, C)     mha/gqa/mqa only
  real* wo;         // (C, H*D)       mha/gqa/mqa only (mla's is mla.wo)
  real* ffn_norm;   // (C)
  real* w1;         // (F, C)         dense FFN only (nullptr in MoE layers)
  real* w3;         // (F, C)
  real* w2;         // (C, F)
  MlaParams<real> mla;  // attention mla only (all nullptr otherwise)
  MoeWeights<real> moe; // MoE layers only (all nullptr otherwise)
};

// A dense layer's FFN weights as the SwiGLU feed-forward takes them (model/ffn.h).
template <typename real>
FfnWeights<real> dense_ffn_weights(const LayerParams<real>& p) {
  return FfnWeights<real>{p.w1, p.w3, p.w2};
}

// One Multi-Token Prediction module's own tensors (its block is layers[n_layer + k]).
template <typename real>
struct MtpParams {
  real* hnorm;  // (C)
  real* enorm;  // (C)
  real* proj;   // (C, 2C)
};

template <typename real>
struct ModelParams {
  real* embed;                             // (V, C)
  std::vector<LayerParams<real>> layers;   // n_layer main blocks, then mtp_depth MTP blocks
  real* norm;                              // (C)
  real* head;                              // (V, C)
  std::vector<MtpParams<real>> mtp;        // mtp_depth modules
};

// The checkpoint-name prefix of layer l: "layers.{l}." or, for l = n_layer + k, "mtp.{k}.block.".
std::string layer_prefix(const ModelConfig& cfg, int l);
// The names of the MoE router biases (buffers, not parameters): "<layer prefix>ffn.gate.bias" for every MoE layer,
// main layers first, then the MTP blocks. Empty for a dense model.
std::vector<std::string> moe_bias_names(const ModelConfig& cfg);

// Views `base` (an array of layout.total() elements: params or grads) through named pointers.
template <typename real>
ModelParams<real> view_params(real* base, const ParamLayout& layout, const ModelConfig& cfg);

}  // namespace tinyds

// tinyds/model/params.cpp — see params.h.
#include "tinyds/model/params.h"

#include "tinyds/core/error.h"

namespace tinyds {

std::string layer_prefix(const ModelConfig& cfg, int l) {
  if (l < cfg.n_layer) return "layers." + std::to_string(l) + ".";
  return "mtp." + std::to_string(l - cfg.n_layer) + ".block.";
}

std::vector<std::string> moe_bias_names(const ModelConfig& cfg) {
  std::vector<std::string> names;
  for (int l = 0; l < cfg.n_layer + cfg.mtp_depth; l++)
    if (is_moe_layer(cfg, l)) names.push_back(layer_prefix(cfg, l) + "ffn.gate.bias");
  return names;
}

ParamLayout::ParamLayout(const ModelConfig& c) {
  const int64_t V = c.vocab_size, C = c.d_model;
  add("embed", {V, C}, Decay::yes);
  for (int l = 0; l < c.n_layer; l++) add_block(c, l);
  add("norm", {C}, Decay::no);
  add("head", {V, C}, Decay::yes);
  for (int k = 0; k < c.mtp_depth; k++) {
    std::string p = "mtp." + std::to_string(k) + ".";
    add(p + "hnorm", {C}, Decay::no);
    add(p + "enorm", {C}, Decay::no);
    add(p + "proj", {C, 2 * C}, Decay::yes);
    add_block(c, c.n_layer + k);
  }
}

// One transformer block: attention (dense kinds or MLA) and FFN (dense SwiGLU or MoE).
void ParamLayout::add_block(const ModelConfig& c, int l) {
  const int64_t C = c.d_model, H = c.n_head, Hkv = c.n_kv_head, D = c.head_dim, F = c.ffn_hidden;
  const std::string p = layer_prefix(c, l);
  add(p + "attn_norm", {C}, Decay::no);
  if (c.attention == AttentionKind::mla) {
    const int64_t Q = c.q_lora_rank, L = c.kv_lora_rank, R = c.rope_dim;
    add(p + "attn.wq_a", {Q, C}, Decay::yes);
    add(p + "attn.q_norm", {Q}, Decay::no);
    add(p + "attn.wq_b", {H * (D + R), Q}, Decay::yes);
    add(p + "attn.wkv_a", {L + R, C}, Decay::yes);
    add(p + "attn.kv_norm", {L}, Decay::no);
    add(p + "attn.wkv_b", {H * 2 * D, L}, Decay::yes);
    add(p + "attn.wo", {C, H * D}, Decay::yes);
  } else {
    add(p + "attn.wq", {H * D, C}, Decay::yes);
    add(p + "attn.wk", {Hkv * D, C}, Decay::yes);
    add(p + "attn.wv", {Hkv * D, C}, Decay::yes);
    add(p + "attn.wo", {C, H * D}, Decay::yes);
  }
  add(p + "ffn_norm", {C}, Decay::no);
  if (is_moe_layer(c, l)) {
    const int64_t E = c.n_routed_experts, Fe = c.moe_inter_dim, S = static_cast<int64_t>(c.n_shared_experts) * Fe;
    add(p + "ffn.gate", {E, C}, Decay::yes);
    add(p + "ffn.experts.w1", {E, Fe, C}, Decay::yes);
    add(p + "ffn.experts.w3", {E, Fe, C}, Decay::yes);
    add(p + "ffn.experts.w2", {E, C, Fe}, Decay::yes);
    if (S > 0) {
      add(p + "ffn.shared_experts.w1", {S, C}, Decay::yes);
      add(p + "ffn.shared_experts.w3", {S, C}, Decay::yes);
      add(p + "ffn.shared_experts.w2", {C, S}, Decay::yes);
    }
  } else {
    add(p + "ffn.w1", {F, C}, Decay::yes);
    add(p + "ffn.w3", {F, C}, Decay::yes);
    add(p + "ffn.w2", {C, F}, Decay::yes);
  }
}

void ParamLayout::add(const std::string& name, std::vector<int64_t> shape, Decay decay) {
  TensorSpec t;
  t.name = name;
  t.numel = 1;
  for (int64_t d : shape) t.numel *= static_cast<std::size_t>(d);
  t.shape = std::move(shape);
  // Round each tensor's start up to 16 elements (64 bytes for float): aligned rows for vectorised GEMM.
  t.offset = (total_ + 15) / 16 * 16;
  t.decay = decay == Decay::yes;
  total_ = t.offset + t.numel;
  tensors_.push_back(std::move(t));
}

const TensorSpec& ParamLayout::find(const std::string& name) const {
  for (const TensorSpec& t : tensors_)
    if (t.name == name) return t;
  throw_error("no parameter tensor named '", name, "'");
}

template <typename real>
ModelParams<real> view_params(real* base, const ParamLayout& layout, const ModelConfig& cfg) {
  auto at = [&](const std::string& name) { return base + layout.find(name).offset; };
  ModelParams<real> p;
  p.embed = at("embed");
  const bool mla = cfg.attention == AttentionKind::mla;
  for (int l = 0; l < cfg.n_layer + cfg.mtp_depth; l++) {
    const std::string s = layer_prefix(cfg, l);
    LayerParams<real> lp{};
    lp.attn_norm = at(s + "attn_norm");
    if (mla) {
      lp.mla = MlaParams<real>{at(s + "attn.wq_a"), at(s + "attn.q_norm"), at(s + "attn.wq_b"), at(s + "attn.wkv_a"),
                               at(s + "attn.kv_norm"), at(s + "attn.wkv_b"), at(s + "attn.wo")};
    } else {
      lp.wq = at(s + "attn.wq"); lp.wk = at(s + "attn.wk"); lp.wv = at(s + "attn.wv"); lp.wo = at(s + "attn.wo");
    }
    lp.ffn_norm = at(s + "ffn_norm");
    if (is_moe_layer(cfg, l)) {
      const bool shared = cfg.n_shared_experts > 0;
      lp.moe = MoeWeights<real>{at(s + "ffn.gate"), at(s + "ffn.experts.w1"), at(s + "ffn.experts.w3"),
                                at(s + "ffn.experts.w2"), shared ? at(s + "ffn.shared_experts.w1") : nullptr,
                                shared ? at(s + "ffn.shared_experts.w3") : nullptr,
                                shared ? at(s + "ffn.shared_experts.w2") : nullptr};
    } else {
      lp.w1 = at(s + "ffn.w1"); lp.w3 = at(s + "ffn.w3"); lp.w2 = at(s + "ffn.w2");
    }
    p.layers.push_back(lp);
  }
  p.norm = at("norm");
  p.head = at("head");
  for (int k = 0; k < cfg.mtp_depth; k++) {
    const std::string s = "mtp." + std::to_string(k) + ".";
    p.mtp.push_back(MtpParams<real>{at(s + "hnorm"), at(s + "enorm"), at(s + "proj")});
  }
  return p;
}

template ModelParams<float> view_params(float*, const ParamLayout&, const ModelConfig&);
template ModelParams<double> view_params(double*, const ParamLayout&, const ModelConfig&);

}  // namespace tinyds

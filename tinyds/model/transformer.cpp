// tinyds/model/transformer.cpp — see transformer.h. Forward and backward of each block sit side by side;
// every backward line names the forward line it differentiates.
#include "tinyds/model/transformer.h"

#include <algorithm>
#include <cmath>

#include "tinyds/core/carver.h"
#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/ops/attention.h"
#include "tinyds/ops/cross_entropy.h"
#include "tinyds/ops/embedding.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/residual.h"
#include "tinyds/ops/rmsnorm.h"
#include "tinyds/ops/rope.h"
#include "tinyds/ops/swiglu.h"

namespace tinyds {

namespace {

template <typename real>
MlaDims<real> mla_dims_of(const ModelConfig& m, int B, int T) {
  return MlaDims<real>{B, T, m.d_model, m.n_head, m.head_dim, m.rope_dim, m.kv_lora_rank, m.q_lora_rank,
                       real(m.norm_eps), real(m.rope_theta), 0};
}

template <typename real>
ActivationViews<real> carve_activations(Carver<real>& c, const ModelConfig& m, int B, int T) {
  const std::size_t N = static_cast<std::size_t>(B) * T, C = m.d_model, V = m.vocab_size;
  const std::size_t HD = static_cast<std::size_t>(m.n_head) * m.head_dim, KD = static_cast<std::size_t>(m.n_kv_head) * m.head_dim;
  const std::size_t F = m.ffn_hidden, att = static_cast<std::size_t>(B) * m.n_head * T * T;
  ActivationViews<real> a{};
  a.x0 = c.take(N * C);
  for (int l = 0; l < m.n_layer; l++) {
    LayerActivations<real> L{};
    L.attn_in = c.take(N * C); L.attn_rstd = c.take(N);
    if (m.attention == AttentionKind::mla) {
      L.mla = carve_mla_activations<real>(c, mla_dims_of<real>(m, B, T));
    } else {
      L.q = c.take(N * HD); L.k = c.take(N * KD); L.v = c.take(N * KD);
      L.att = c.take(att); L.att_out = c.take(N * HD);
    }
    L.h = c.take(N * C);
    L.ffn_in = c.take(N * C); L.ffn_rstd = c.take(N);
    L.a1 = c.take(N * F); L.a3 = c.take(N * F); L.gate = c.take(N * F); L.out = c.take(N * C);
    a.layers.push_back(L);
  }
  a.final_in = c.take(N * C); a.final_rstd = c.take(N);
  a.logits = c.take(N * V); a.losses = c.take(N); a.lse = c.take(N);
  a.scratch = c.take(N * C);
  if (m.attention == AttentionKind::mla) a.mla_fwd = carve_mla_forward_scratch<real>(c, mla_dims_of<real>(m, B, T));
  return a;
}

template <typename real>
BackwardViews<real> carve_backward(Carver<real>& c, const ModelConfig& m, int B, int T) {
  const std::size_t N = static_cast<std::size_t>(B) * T, C = m.d_model, V = m.vocab_size, F = m.ffn_hidden;
  const std::size_t HD = static_cast<std::size_t>(m.n_head) * m.head_dim, KD = static_cast<std::size_t>(m.n_kv_head) * m.head_dim;
  BackwardViews<real> b{};
  b.dres = c.take(N * C); b.dnorm_in = c.take(N * C); b.dtmp = c.take(N * C);
  if (m.attention == AttentionKind::mla) {
    b.mla_bwd = carve_mla_backward_scratch<real>(c, mla_dims_of<real>(m, B, T));
  } else {
    b.dq = c.take(N * HD); b.dk = c.take(N * KD); b.dv = c.take(N * KD); b.datt_out = c.take(N * HD);
  }
  b.dgate = c.take(N * F); b.da1 = c.take(N * F); b.da3 = c.take(N * F);
  b.dlogits = c.take(N * V); b.dlosses = c.take(N);
  return b;
}

}  // namespace

template <typename real>
Transformer<real>::Transformer(const ModelConfig& cfg, Role role) : cfg_(cfg), role_(role), layout_(cfg) {
  params_.reset(layout_.total(), role_, Category::weights);
  pview_ = view_params(params_.data(), layout_, cfg_);  // the allocation never moves: build the views once
}

template <typename real>
real* Transformer<real>::grads() {
  if (grads_.size() == 0) {
    grads_.reset(layout_.total(), role_, Category::grads);
    gview_ = view_params(grads_.data(), layout_, cfg_);
  }
  return grads_.data();
}

template <typename real>
const ModelParams<real>& Transformer<real>::grad_view() {
  grads();  // allocates on first use
  return gview_;
}

template <typename real>
void Transformer<real>::zero_grad() {
  real* g = grads();
  std::fill(g, g + layout_.total(), real(0));
}

template <typename real>
void Transformer<real>::init_weights(uint64_t seed) {
  Rng rng(seed);
  const real std0 = cfg_.init_std;
  const real proj_scale = real(1) / std::sqrt(real(2 * cfg_.n_layer));  // GPT-2: residual projections shrink with depth
  const auto& ts = layout_.tensors();
  for (std::size_t i = 0; i < ts.size(); i++) {
    const TensorSpec& t = ts[i];
    real* p = params_.data() + t.offset;
    if (t.shape.size() == 1) {  // RMSNorm gains start at 1
      std::fill(p, p + t.numel, real(1));
      continue;
    }
    bool residual_proj = t.name.find("attn.wo") != std::string::npos || t.name.find("ffn.w2") != std::string::npos;
    fill_normal(p, t.numel, residual_proj ? std0 * proj_scale : std0, rng.split(i));
  }
}

template <typename real>
MlaDims<real> Transformer<real>::mla_dims() const {
  return mla_dims_of<real>(cfg_, B_, T_);
}

template <typename real>
void Transformer<real>::ensure_activations(int B, int T) {
  Carver<real> count{nullptr};
  carve_activations(count, cfg_, B, T);
  if (count.used > act_capacity_) {
    act_buf_.reset(count.used, role_, Category::activations);
    act_capacity_ = count.used;
  }
  Carver<real> carve{act_buf_.data()};
  acts_ = carve_activations(carve, cfg_, B, T);
}

template <typename real>
void Transformer<real>::ensure_backward_scratch() {
  Carver<real> count{nullptr};
  carve_backward(count, cfg_, B_, T_);
  if (count.used > bwd_capacity_) {
    bwd_buf_.reset(count.used, role_, Category::activations);
    bwd_capacity_ = count.used;
  }
  Carver<real> carve{bwd_buf_.data()};
  bwd_ = carve_backward(carve, cfg_, B_, T_);
}

// ---------------------------------------------------------------------------------------------------------
// One block: h = x + Attn(RMSNorm(x)); out = h + FFN(RMSNorm(h))
// ---------------------------------------------------------------------------------------------------------
template <typename real>
void Transformer<real>::layer_forward(int l, const real* x) {
  const ModelConfig& m = cfg_;
  const int B = B_, T = T_, N = B * T, C = m.d_model, H = m.n_head, Hkv = m.n_kv_head, D = m.head_dim, F = m.ffn_hidden;
  const LayerParams<real>& p = pview_.layers[l];
  LayerActivations<real>& a = acts_.layers[l];
  const real theta = m.rope_theta, scale = real(1) / std::sqrt(real(D));

  rmsnorm_forward(a.attn_in, a.attn_rstd, x, p.attn_norm, N, C, real(m.norm_eps));
  if (m.attention == AttentionKind::mla) {
    // Multi-head Latent Attention (model/mla.h): latent queries and keys/values, decoupled RoPE.
    mla_forward(acts_.scratch, a.mla, acts_.mla_fwd, a.attn_in, p.mla, mla_dims());
  } else {
    matmul_forward(a.q, a.attn_in, p.wq, (const real*)nullptr, N, C, H * D);
    matmul_forward(a.k, a.attn_in, p.wk, (const real*)nullptr, N, C, Hkv * D);
    matmul_forward(a.v, a.attn_in, p.wv, (const real*)nullptr, N, C, Hkv * D);
    rope_forward(a.q, a.q, B, T, H, D, 0, theta);  // rotate queries and keys in place
    rope_forward(a.k, a.k, B, T, Hkv, D, 0, theta);
    attention_forward(a.att_out, a.att, a.q, a.k, a.v, B, T, H, Hkv, D, D, scale);
    matmul_forward(acts_.scratch, a.att_out, p.wo, (const real*)nullptr, N, H * D, C);
  }
  residual_forward(a.h, x, acts_.scratch, static_cast<long>(N) * C);

  rmsnorm_forward(a.ffn_in, a.ffn_rstd, a.h, p.ffn_norm, N, C, real(m.norm_eps));
  matmul_forward(a.a1, a.ffn_in, p.w1, (const real*)nullptr, N, C, F);
  matmul_forward(a.a3, a.ffn_in, p.w3, (const real*)nullptr, N, C, F);
  swiglu_forward(a.gate, a.a1, a.a3, static_cast<long>(N) * F);
  matmul_forward(acts_.scratch, a.gate, p.w2, (const real*)nullptr, N, F, C);
  residual_forward(a.out, a.h, acts_.scratch, static_cast<long>(N) * C);
}

// On entry bwd_.dres holds d(out); on exit it holds d(x). Parameter gradients accumulate.
template <typename real>
void Transformer<real>::layer_backward(int l, const real* x) {
  const ModelConfig& m = cfg_;
  const int B = B_, T = T_, N = B * T, C = m.d_model, H = m.n_head, Hkv = m.n_kv_head, D = m.head_dim, F = m.ffn_hidden;
  const long NC = static_cast<long>(N) * C;
  const LayerParams<real>& p = pview_.layers[l];
  const LayerParams<real>& g = grad_view().layers[l];
  const LayerActivations<real>& a = acts_.layers[l];
  const BackwardViews<real>& d = bwd_;
  const real theta = m.rope_theta, scale = real(1) / std::sqrt(real(D));

  // forward: out = h + gate @ w2^T    -> d(h) gets dres directly (kept in dres), d(gate) through w2
  matmul_backward(d.dgate, g.w2, (real*)nullptr, d.dres, a.gate, p.w2, N, F, C);
  // forward: gate = silu(a1) * a3
  swiglu_backward(d.da1, d.da3, d.dgate, a.a1, a.a3, static_cast<long>(N) * F);
  // forward: a1 = ffn_in @ w1^T;  a3 = ffn_in @ w3^T   (ffn_in feeds both: its gradients sum)
  matmul_backward(d.dnorm_in, g.w1, (real*)nullptr, d.da1, a.ffn_in, p.w1, N, C, F);
  matmul_backward(d.dtmp, g.w3, (real*)nullptr, d.da3, a.ffn_in, p.w3, N, C, F);
  add_inplace(d.dnorm_in, d.dtmp, NC);
  // forward: ffn_in = RMSNorm(h)
  rmsnorm_backward(d.dtmp, g.ffn_norm, d.dnorm_in, a.h, p.ffn_norm, a.ffn_rstd, N, C);
  add_inplace(d.dres, d.dtmp, NC);  // dres = d(h): the residual path plus the FFN branch

  if (m.attention == AttentionKind::mla) {
    // forward: h = x + MLA(attn_in)
    mla_backward(d.dnorm_in, g.mla, d.mla_bwd, d.dres, a.attn_in, a.mla, p.mla, mla_dims());
  } else {
    // forward: h = x + att_out @ wo^T
    matmul_backward(d.datt_out, g.wo, (real*)nullptr, d.dres, a.att_out, p.wo, N, H * D, C);
    // forward: att_out = attention(q, k, v)
    attention_backward(d.dq, d.dk, d.dv, d.datt_out, a.q, a.k, a.v, a.att, B, T, H, Hkv, D, D, scale);
    // forward: q = RoPE(q), k = RoPE(k)   (in place; undo the rotation on the gradients)
    rope_backward(d.dq, d.dq, B, T, H, D, 0, theta);
    rope_backward(d.dk, d.dk, B, T, Hkv, D, 0, theta);
    // forward: q, k, v = attn_in @ {wq, wk, wv}^T   (attn_in feeds all three)
    matmul_backward(d.dnorm_in, g.wq, (real*)nullptr, d.dq, a.attn_in, p.wq, N, C, H * D);
    matmul_backward(d.dtmp, g.wk, (real*)nullptr, d.dk, a.attn_in, p.wk, N, C, Hkv * D);
    add_inplace(d.dnorm_in, d.dtmp, NC);
    matmul_backward(d.dtmp, g.wv, (real*)nullptr, d.dv, a.attn_in, p.wv, N, C, Hkv * D);
    add_inplace(d.dnorm_in, d.dtmp, NC);
  }
  // forward: attn_in = RMSNorm(x)
  rmsnorm_backward(d.dtmp, g.attn_norm, d.dnorm_in, x, p.attn_norm, a.attn_rstd, N, C);
  add_inplace(d.dres, d.dtmp, NC);  // dres = d(x)
}

// ---------------------------------------------------------------------------------------------------------
// The whole model
// ---------------------------------------------------------------------------------------------------------
template <typename real>
double Transformer<real>::forward(const int* tokens, const int* targets, int B, int T) {
  const ModelConfig& m = cfg_;
  if (B < 1 || T < 1) throw_error("forward: batch ", B, " x ", T, " is empty");
  if (T > m.max_seq_len) throw_error("forward: sequence length ", T, " exceeds model.max_seq_len = ", m.max_seq_len);
  const int N = B * T, C = m.d_model, V = m.vocab_size;
  for (int i = 0; i < N; i++) {
    if (tokens[i] < 0 || tokens[i] >= V) throw_error("forward: token ", tokens[i], " at position ", i, " is outside the vocab [0, ", V, ")");
    if (targets && targets[i] >= V) throw_error("forward: target ", targets[i], " at position ", i, " is outside the vocab");
  }
  B_ = B; T_ = T;
  ensure_activations(B, T);
  tokens_.assign(tokens, tokens + N);
  if (targets) targets_.assign(targets, targets + N); else targets_.clear();
  const ModelParams<real>& p = pview_;

  embedding_forward(acts_.x0, tokens, p.embed, N, C);
  const real* x = acts_.x0;
  for (int l = 0; l < m.n_layer; l++) {
    layer_forward(l, x);
    x = acts_.layers[l].out;
  }
  rmsnorm_forward(acts_.final_in, acts_.final_rstd, x, p.norm, N, C, real(m.norm_eps));
  matmul_forward(acts_.logits, acts_.final_in, p.head, (const real*)nullptr, N, C, V);

  num_targets_ = 0;
  if (!targets) return 0.0;
  cross_entropy_forward(acts_.losses, acts_.lse, acts_.logits, targets, N, V);
  double sum = 0;
  for (int i = 0; i < N; i++)
    if (targets[i] >= 0) { sum += acts_.losses[i]; num_targets_++; }
  return num_targets_ ? sum / num_targets_ : 0.0;
}

template <typename real>
void Transformer<real>::backward() {
  if (targets_.empty()) throw_error("backward: the last forward() had no targets");
  const ModelConfig& m = cfg_;
  const int N = B_ * T_, C = m.d_model, V = m.vocab_size;
  ensure_backward_scratch();
  const ModelParams<real>& p = pview_;
  const ModelParams<real>& g = grad_view();
  const BackwardViews<real>& d = bwd_;

  // forward: loss = sum_n losses[n] / num_targets  (masked positions contribute nothing)
  const real inv = num_targets_ ? real(1) / real(num_targets_) : real(0);
  for (int i = 0; i < N; i++) d.dlosses[i] = targets_[i] >= 0 ? inv : real(0);
  cross_entropy_backward(d.dlogits, d.dlosses, acts_.logits, acts_.lse, targets_.data(), N, V);
  // forward: logits = final_in @ head^T
  matmul_backward(d.dnorm_in, g.head, (real*)nullptr, d.dlogits, acts_.final_in, p.head, N, C, V);
  // forward: final_in = RMSNorm(x_L)
  const real* xL = m.n_layer ? acts_.layers[m.n_layer - 1].out : acts_.x0;
  rmsnorm_backward(d.dres, g.norm, d.dnorm_in, xL, p.norm, acts_.final_rstd, N, C);
  for (int l = m.n_layer - 1; l >= 0; l--) layer_backward(l, l ? acts_.layers[l - 1].out : acts_.x0);
  // forward: x0 = embed[tokens]
  embedding_backward(g.embed, d.dres, tokens_.data(), N, C);
}

template class Transformer<float>;
template class Transformer<double>;

}  // namespace tinyds

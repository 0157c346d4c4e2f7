// tinyds/model/transformer.cpp — see transformer.h. Forward and backward of each block sit side by side;
// every backward line names the forward line it differentiates.
#include "tinyds/model/transformer.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "tinyds/core/carver.h"
#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/device/memory.h"
#include "tinyds/device/ops.h"

namespace tinyds {

namespace {

template <typename real>
MlaDims<real> mla_dims_of(const ModelConfig& m, int B, int T) {
  return MlaDims<real>{B, T, m.d_model, m.n_head, m.head_dim, m.rope_dim, m.kv_lora_rank, m.q_lora_rank,
                       real(m.norm_eps), real(m.rope_theta), 0};
}

}  // namespace

MoeDims moe_dims_of(const ModelConfig& m, int B, int T, MoeLosses losses) {
  const bool with_losses = losses == MoeLosses::configured;
  const BalanceModes bal = parse_balance(m.balance);
  MoeDims d{};
  d.N = B * T; d.B = B; d.T = T; d.C = m.d_model;
  d.E = m.n_routed_experts; d.K = m.n_activated_experts; d.F = m.moe_inter_dim; d.Ns = m.n_shared_experts;
  d.score = parse_score_func(m.score_func);
  d.route_scale = m.route_scale;
  d.n_group = m.n_expert_groups; d.topk_group = m.n_limited_groups;
  d.seqaux = with_losses && bal.seqaux; d.alpha_seq = m.seq_aux_alpha;
  d.aux = with_losses && bal.aux; d.alpha_aux = m.aux_alpha;
  return d;
}

namespace {

template <typename real>
ActivationViews<real> carve_activations(Carver<real>& c, Carver<int>& ic, const ModelConfig& m, int B, int T) {
  const std::size_t N = static_cast<std::size_t>(B) * T, C = m.d_model, V = m.vocab_size;
  const std::size_t HD = static_cast<std::size_t>(m.n_head) * m.head_dim, KD = static_cast<std::size_t>(m.n_kv_head) * m.head_dim;
  const std::size_t F = m.ffn_hidden, att = static_cast<std::size_t>(B) * m.n_head * T * T;
  ActivationViews<real> a{};
  a.x0 = c.take(N * C);
  for (int l = 0; l < m.n_layer + m.mtp_depth; l++) {
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
    if (is_moe_layer(m, l))
      L.moe = carve_moe_activations<real>(c, ic, moe_dims_of(m, B, T, MoeLosses::configured));
    else { L.ffn.a1 = c.take(N * F); L.ffn.a3 = c.take(N * F); L.ffn.act = c.take(N * F); }
    L.out = c.take(N * C);
    a.layers.push_back(L);
  }
  for (int k = 0; k < m.mtp_depth; k++) {
    MtpActivations<real> t{};
    t.hn = c.take(N * C); t.hn_rstd = c.take(N); t.emb = c.take(N * C); t.en = c.take(N * C); t.en_rstd = c.take(N);
    t.cat = c.take(2 * N * C); t.m = c.take(N * C);
    t.final_in = c.take(N * C); t.final_rstd = c.take(N); t.logits = c.take(N * V); t.losses = c.take(N);
    t.lse = c.take(N);
    a.mtp.push_back(t);
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
  b.ffn_bwd.dact = c.take(N * F); b.ffn_bwd.da1 = c.take(N * F); b.ffn_bwd.da3 = c.take(N * F);
  b.ffn_bwd.dx1 = b.dtmp;  // the FFN uses dtmp only inside its backward
  b.dlogits = c.take(N * V); b.dlosses = c.take(N);
  if (m.n_routed_experts > 0)
    b.moe_bwd = carve_moe_scratch<real>(c, moe_dims_of(m, B, T, MoeLosses::configured));
  if (m.mtp_depth > 0) { b.dcat = c.take(2 * N * C); b.dcarry = c.take(N * C); }
  return b;
}

}  // namespace

template <typename real>
Transformer<real>::Transformer(const ModelConfig& cfg, Role role, Device device)
    : cfg_(cfg), role_(role), device_(device), layout_(cfg) {
  if (!std::is_same_v<real, float> && device_ == Device::cuda)
    throw_error("Transformer: Device::cuda needs Transformer<float> (the CUDA kernels are fp32); the double model "
                "(finite-difference checks) runs on Device::cpu only");
  OnDevice scope(device_);
  const Place place = dev::place_of(device_);
  params_.reset(layout_.total(), role_, Category::weights, place);
  pview_ = view_params(params_.data(), layout_, cfg_);  // the allocation never moves: build the views once
  moe_slot_.assign(cfg_.n_layer + cfg_.mtp_depth, -1);
  for (int l = 0; l < cfg_.n_layer + cfg_.mtp_depth; l++)
    if (is_moe_layer(cfg_, l)) { moe_slot_[l] = static_cast<int>(moe_layers_.size()); moe_layers_.push_back(l); }
  if (!moe_layers_.empty()) {  // zero bias: routing starts from the scores alone
    moe_bias_.reset(moe_layers_.size() * cfg_.n_routed_experts, role_, Category::weights, place);
    dev::zero(moe_bias_.data(), moe_bias_.size());
    load_buf_.reset(cfg_.n_routed_experts, role_, Category::activations, place);
  }
}

template <typename real>
void Transformer<real>::params_from_host(const real* host) {
  OnDevice scope(device_);
  dev::from_host(params_.data(), host, layout_.total());
}

template <typename real>
void Transformer<real>::params_to_host(real* host) const {
  OnDevice scope(device_);
  dev::to_host(host, params_.data(), layout_.total());
}

template <typename real>
void Transformer<real>::grads_to_host(real* host) {
  OnDevice scope(device_);
  dev::to_host(host, grads(), layout_.total());
}

template <typename real>
void Transformer<real>::moe_bias_from_host(const real* host) {
  OnDevice scope(device_);
  dev::from_host(moe_bias_.data(), host, moe_bias_.size());
}

template <typename real>
void Transformer<real>::moe_bias_to_host(real* host) const {
  OnDevice scope(device_);
  dev::to_host(host, moe_bias_.data(), moe_bias_.size());
}

template <typename real>
std::vector<std::string> Transformer<real>::moe_bias_names() const {
  return tinyds::moe_bias_names(cfg_);
}

template <typename real>
MoeDims Transformer<real>::moe_dims() const {
  return moe_dims_of(cfg_, B_, T_, MoeLosses::configured);
}

template <typename real>
void Transformer<real>::update_moe_bias() {
  if (!parse_balance(cfg_.balance).bias || B_ == 0) return;
  update_moe_bias(moe_load());
}

template <typename real>
void Transformer<real>::update_moe_bias(const std::vector<std::vector<int>>& loads) {
  if (!parse_balance(cfg_.balance).bias || B_ == 0) return;
  OnDevice scope(device_);
  const int E = cfg_.n_routed_experts;
  std::size_t row = 0;  // loads has one row per MoE layer that ran in the last forward, in layer order
  for (std::size_t i = 0; i < moe_layers_.size(); i++) {
    if (!ran_in_last_forward(moe_layers_[i])) continue;
    if (row >= loads.size() || static_cast<int>(loads[row].size()) != E)
      throw_error("update_moe_bias: loads has ", loads.size(), " rows, expected one of ", E, " experts per MoE layer that ran");
    dev::from_host(load_buf_.data(), loads[row].data(), E);  // the loads are host counts: copy them up
    dev::moe_update_bias(moe_bias_.data() + i * E, load_buf_.data(), E, real(cfg_.bias_update_speed));
    row++;
  }
  if (row != loads.size()) throw_error("update_moe_bias: loads has ", loads.size(), " rows, ", row, " MoE layers ran");
}

template <typename real>
std::vector<double> Transformer<real>::moe_maxvio() const {
  std::vector<double> v;
  if (B_ == 0) return v;
  OnDevice scope(device_);  // moe_layer_maxvio copies each layer's expert offsets to the host
  for (int l : moe_layers_)
    if (ran_in_last_forward(l)) v.push_back(moe_layer_maxvio(acts_.layers[l].moe, moe_dims()));
  return v;
}

template <typename real>
std::vector<std::vector<int>> Transformer<real>::moe_load() const {
  std::vector<std::vector<int>> v;
  if (B_ == 0) return v;
  OnDevice scope(device_);  // moe_layer_load copies each layer's expert offsets to the host
  for (int l : moe_layers_) {
    if (!ran_in_last_forward(l)) continue;
    std::vector<int> load(cfg_.n_routed_experts);
    moe_layer_load(load.data(), acts_.layers[l].moe, moe_dims());
    v.push_back(load);
  }
  return v;
}

template <typename real>
real* Transformer<real>::grads() {
  if (grads_.size() == 0) {
    grads_.reset(layout_.total(), role_, Category::grads, dev::place_of(device_));  // zero-filled
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
  OnDevice scope(device_);
  dev::zero(grads(), layout_.total());
}

template <typename real>
void Transformer<real>::init_weights(uint64_t seed) {
  OnDevice scope(device_);
  std::vector<real> host(layout_.total());  // drawn on the host on both devices, then copied to the model's place
  Rng rng(seed);
  const real std0 = cfg_.init_std;
  const real proj_scale = real(1) / std::sqrt(real(2 * cfg_.n_layer));  // GPT-2: residual projections shrink with depth
  const auto& ts = layout_.tensors();
  for (std::size_t i = 0; i < ts.size(); i++) {
    const TensorSpec& t = ts[i];
    real* p = host.data() + t.offset;
    if (t.shape.size() == 1) {  // RMSNorm gains start at 1
      std::fill(p, p + t.numel, real(1));
      continue;
    }
    // Residual projections: attn.wo and every FFN down projection (ffn.w2, ffn.experts.w2, ffn.shared_experts.w2).
    auto ends_with = [&](const std::string& suffix) {
      return t.name.size() >= suffix.size() && t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    bool residual_proj = ends_with("attn.wo") || ends_with(".w2");
    fill_normal(p, t.numel, residual_proj ? std0 * proj_scale : std0, rng.split(i));
  }
  dev::from_host(params_.data(), host.data(), host.size());
}

template <typename real>
MlaDims<real> Transformer<real>::mla_dims() const {
  return mla_dims_of<real>(cfg_, B_, T_);
}

template <typename real>
void Transformer<real>::ensure_activations(int B, int T) {
  Carver<real> count{nullptr};
  Carver<int> icount{nullptr};
  carve_activations(count, icount, cfg_, B, T);
  if (count.used > act_capacity_) {
    act_buf_.reset(count.used, role_, Category::activations, dev::place_of(device_));
    act_capacity_ = count.used;
  }
  if (icount.used > act_int_buf_.size())
    act_int_buf_.reset(icount.used, role_, Category::activations, dev::place_of(device_));
  Carver<real> carve{act_buf_.data()};
  Carver<int> icarve{act_int_buf_.data()};
  acts_ = carve_activations(carve, icarve, cfg_, B, T);
}

// tokens_, targets_ (host) and tokens_dev_, targets_dev_ (the model's place) of the forward; the MTP modules'
// slots are carved here too and filled by mtp_forward.
template <typename real>
void Transformer<real>::upload_tokens(const int* tokens, const int* targets, int N) {
  const int Dm = cfg_.mtp_depth;
  Carver<int> count{nullptr};  // (1 + Dm) pairs of N ints, each view rounded up to 16 by the carver
  for (int i = 0; i < 2 * (1 + Dm); i++) count.take(N);
  if (count.used > tok_buf_.size()) tok_buf_.reset(count.used, role_, Category::activations, dev::place_of(device_));
  Carver<int> c{tok_buf_.data()};
  tokens_dev_ = c.take(N);
  targets_dev_ = c.take(N);
  mtp_tokens_dev_.assign(Dm, nullptr);
  mtp_targets_dev_.assign(Dm, nullptr);
  for (int k = 0; k < Dm; k++) { mtp_tokens_dev_[k] = c.take(N); mtp_targets_dev_[k] = c.take(N); }
  tokens_.assign(tokens, tokens + N);
  dev::from_host(tokens_dev_, tokens, N);
  if (targets) {
    targets_.assign(targets, targets + N);
    dev::from_host(targets_dev_, targets, N);
  } else {
    targets_.clear();
    targets_dev_ = nullptr;
  }
}

template <typename real>
void Transformer<real>::ensure_backward_scratch() {
  Carver<real> count{nullptr};
  carve_backward(count, cfg_, B_, T_);
  if (count.used > bwd_capacity_) {
    bwd_buf_.reset(count.used, role_, Category::activations, dev::place_of(device_));
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

  {
    ScopedPhase phase(phases_, m.attention == AttentionKind::mla ? "mla fwd" : "attention fwd");
    dev::rmsnorm_forward(a.attn_in, a.attn_rstd, x, p.attn_norm, N, C, real(m.norm_eps));
    if (m.attention == AttentionKind::mla) {
      // Multi-head Latent Attention (model/mla.h): latent queries and keys/values, decoupled RoPE.
      mla_forward(acts_.scratch, a.mla, acts_.mla_fwd, a.attn_in, p.mla, mla_dims());
    } else {
      dev::matmul_forward(a.q, a.attn_in, p.wq, N, C, H * D);
      dev::matmul_forward(a.k, a.attn_in, p.wk, N, C, Hkv * D);
      dev::matmul_forward(a.v, a.attn_in, p.wv, N, C, Hkv * D);
      dev::rope_forward(a.q, a.q, B, T, H, D, 0, theta);  // rotate queries and keys in place
      dev::rope_forward(a.k, a.k, B, T, Hkv, D, 0, theta);
      dev::attention_forward(a.att_out, a.att, a.q, a.k, a.v, B, T, H, Hkv, D, D, scale);
      dev::matmul_forward(acts_.scratch, a.att_out, p.wo, N, H * D, C);
    }
    dev::residual_forward(a.h, x, acts_.scratch, static_cast<long>(N) * C);
  }

  ScopedPhase phase(phases_, moe_slot_[l] >= 0 ? "moe fwd" : "dense ffn fwd");
  dev::rmsnorm_forward(a.ffn_in, a.ffn_rstd, a.h, p.ffn_norm, N, C, real(m.norm_eps));
  if (moe_slot_[l] >= 0) {
    // Fine-grained MoE with shared experts (model/moe_layer.h); the bias only chooses experts.
    const real* bias = moe_bias_.data() + static_cast<std::size_t>(moe_slot_[l]) * m.n_routed_experts;
    balance_loss_ += moe_layer_forward(acts_.scratch, a.moe, a.ffn_in, p.moe, bias, moe_dims());
  } else {
    // Dense SwiGLU feed-forward (model/ffn.h): w2(silu(w1 ffn_in) * w3 ffn_in).
    ffn_forward(acts_.scratch, a.ffn, a.ffn_in, dense_ffn_weights(p), N, C, F);
  }
  dev::residual_forward(a.out, a.h, acts_.scratch, static_cast<long>(N) * C);
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

  {
    ScopedPhase phase(phases_, moe_slot_[l] >= 0 ? "moe bwd" : "dense ffn bwd");
    if (moe_slot_[l] >= 0) {
      // forward: out = h + moe_layer(ffn_in)   (the objective holds its balance loss with weight 1)
      moe_layer_backward(d.dnorm_in, g.moe, d.dres, real(1), a.moe, a.ffn_in, p.moe, moe_dims(), d.moe_bwd);
    } else {
      // forward: out = h + ffn(ffn_in)    -> d(h) gets dres directly (kept in dres), d(ffn_in) through the FFN
      dev::zero(d.dnorm_in, NC);  // ffn_backward accumulates
      ffn_backward(d.dnorm_in, dense_ffn_weights(g), d.ffn_bwd, d.dres, a.ffn, a.ffn_in, dense_ffn_weights(p), N, C,
                   F);
    }
    // forward: ffn_in = RMSNorm(h)
    dev::rmsnorm_backward(d.dtmp, g.ffn_norm, d.dnorm_in, a.h, p.ffn_norm, a.ffn_rstd, N, C);
    dev::add_inplace(d.dres, d.dtmp, NC);  // dres = d(h): the residual path plus the FFN branch
  }

  ScopedPhase phase(phases_, m.attention == AttentionKind::mla ? "mla bwd" : "attention bwd");
  if (m.attention == AttentionKind::mla) {
    // forward: h = x + MLA(attn_in)
    mla_backward(d.dnorm_in, g.mla, d.mla_bwd, d.dres, a.attn_in, a.mla, p.mla, mla_dims());
  } else {
    // forward: h = x + att_out @ wo^T
    dev::matmul_backward(d.datt_out, g.wo, d.dres, a.att_out, p.wo, N, H * D, C);
    // forward: att_out = attention(q, k, v)
    dev::attention_backward(d.dq, d.dk, d.dv, d.datt_out, a.q, a.k, a.v, a.att, B, T, H, Hkv, D, D, scale);
    // forward: q = RoPE(q), k = RoPE(k)   (in place; undo the rotation on the gradients)
    dev::rope_backward(d.dq, d.dq, B, T, H, D, 0, theta);
    dev::rope_backward(d.dk, d.dk, B, T, Hkv, D, 0, theta);
    // forward: q, k, v = attn_in @ {wq, wk, wv}^T   (attn_in feeds all three)
    dev::matmul_backward(d.dnorm_in, g.wq, d.dq, a.attn_in, p.wq, N, C, H * D);
    dev::matmul_backward(d.dtmp, g.wk, d.dk, a.attn_in, p.wk, N, C, Hkv * D);
    dev::add_inplace(d.dnorm_in, d.dtmp, NC);
    dev::matmul_backward(d.dtmp, g.wv, d.dv, a.attn_in, p.wv, N, C, Hkv * D);
    dev::add_inplace(d.dnorm_in, d.dtmp, NC);
  }
  // forward: attn_in = RMSNorm(x)
  dev::rmsnorm_backward(d.dtmp, g.attn_norm, d.dnorm_in, x, p.attn_norm, a.attn_rstd, N, C);
  dev::add_inplace(d.dres, d.dtmp, NC);  // dres = d(x)
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
  OnDevice scope(device_);
  B_ = B; T_ = T;
  ensure_activations(B, T);
  upload_tokens(tokens, targets, N);
  const ModelParams<real>& p = pview_;

  main_loss_ = mtp_loss_ = balance_loss_ = 0;  // layer_forward adds each MoE layer's balance loss
  mtp_ran_ = false;  // the MTP blocks run only with targets: their routing activations are then stale
  dev::embedding_forward(acts_.x0, tokens_dev_, p.embed, N, C);
  const real* x = acts_.x0;
  for (int l = 0; l < m.n_layer; l++) {
    layer_forward(l, x);
    x = acts_.layers[l].out;
  }
  {
    ScopedPhase phase(phases_, "head + loss fwd");
    dev::rmsnorm_forward(acts_.final_in, acts_.final_rstd, x, p.norm, N, C, real(m.norm_eps));
    dev::matmul_forward(acts_.logits, acts_.final_in, p.head, N, C, V);
    num_targets_ = 0;
    if (!targets) return balance_loss_;
    dev::cross_entropy_forward(acts_.losses, acts_.lse, acts_.logits, targets_dev_, N, V);
    std::vector<real> losses(N);  // summed on the host, in position order, on both devices
    dev::to_host(losses.data(), acts_.losses, N);
    double sum = 0;
    for (int i = 0; i < N; i++)
      if (targets[i] >= 0) { sum += losses[i]; num_targets_++; }
    const int denom = main_denom_ > 0 ? main_denom_ : num_targets_;
    main_loss_ = denom ? sum / denom : 0.0;
  }
  if (m.mtp_depth > 0) mtp_forward(tokens, targets);  // sets mtp_loss_, adds the MTP blocks' balance losses
  mtp_ran_ = m.mtp_depth > 0;
  return main_loss_ + mtp_loss_ + balance_loss_;
}

template <typename real>
void Transformer<real>::backward() {
  if (targets_.empty()) throw_error("backward: the last forward() had no targets");
  OnDevice scope(device_);
  const int N = B_ * T_, V = cfg_.vocab_size;
  ensure_backward_scratch();
  const BackwardViews<real>& d = bwd_;
  // The MTP modules first: they leave their gradient w.r.t. x_L (their h^0) in dcarry.
  if (cfg_.mtp_depth > 0) mtp_backward();
  // forward: main_loss = sum_n losses[n] / num_targets  (masked positions contribute nothing)
  const int denom = main_denom_ > 0 ? main_denom_ : num_targets_;
  const real inv = num_targets_ && denom ? real(1) / real(denom) : real(0);
  std::vector<real> dlosses(N);  // filled on the host, copied to the model's place
  for (int i = 0; i < N; i++) dlosses[i] = targets_[i] >= 0 ? inv : real(0);
  dev::from_host(d.dlosses, dlosses.data(), N);
  dev::cross_entropy_backward(d.dlogits, d.dlosses, acts_.logits, acts_.lse, targets_dev_, N, V);
  backward_trunk(cfg_.mtp_depth > 0 ? d.dcarry : nullptr);
}

template <typename real>
void Transformer<real>::backward_from_logits(const real* dlogits) {
  if (B_ == 0) throw_error("backward_from_logits: no forward() yet");
  OnDevice scope(device_);
  ensure_backward_scratch();
  const long NV = static_cast<long>(B_) * T_ * cfg_.vocab_size;
  dev::copy(bwd_.dlogits, dlogits, NV);
  backward_trunk(nullptr);
}

// From d(logits) (in bwd_.dlogits) down to the embedding; dxL_extra (N, C) or nullptr is a further gradient
// w.r.t. x_L (from the MTP modules).
template <typename real>
void Transformer<real>::backward_trunk(const real* dxL_extra) {
  const ModelConfig& m = cfg_;
  const int N = B_ * T_, C = m.d_model, V = m.vocab_size;
  const ModelParams<real>& p = pview_;
  const ModelParams<real>& g = grad_view();
  const BackwardViews<real>& d = bwd_;
  {
    ScopedPhase phase(phases_, "head + loss bwd");
    // forward: logits = final_in @ head^T
    dev::matmul_backward(d.dnorm_in, g.head, d.dlogits, acts_.final_in, p.head, N, C, V);
    // forward: final_in = RMSNorm(x_L)
    const real* xL = final_hidden();
    dev::rmsnorm_backward(d.dres, g.norm, d.dnorm_in, xL, p.norm, acts_.final_rstd, N, C);
  }
  if (dxL_extra) dev::add_inplace(d.dres, dxL_extra, static_cast<long>(N) * C);  // x_L also fed the MTP modules
  backward_layers();
}

template <typename real>
void Transformer<real>::backward_from_hidden(const real* dxL) {
  if (B_ == 0) throw_error("backward_from_hidden: no forward() yet");
  OnDevice scope(device_);
  ensure_backward_scratch();
  const long NC = static_cast<long>(B_) * T_ * cfg_.d_model;
  dev::copy(bwd_.dres, dxL, NC);
  backward_layers();
}

template <typename real>
void Transformer<real>::backward_layers() {
  const int N = B_ * T_, C = cfg_.d_model;
  for (int l = cfg_.n_layer - 1; l >= 0; l--) layer_backward(l, l ? acts_.layers[l - 1].out : acts_.x0);
  // forward: x0 = embed[tokens]
  dev::embedding_backward(grad_view().embed, bwd_.dres, tokens_dev_, N, C);
}

template class Transformer<float>;
template class Transformer<double>;

}  // namespace tinyds

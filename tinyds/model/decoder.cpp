// tinyds/model/decoder.cpp — Decoder: the whole model, one token per sequence per step, with a kv-cache.
//
// Shapes: B sequences, C d_model, V vocab, F ffn_hidden, H heads, Hkv kv heads, D head dim, L/R/Q MLA ranks.
// Forward only (decoding has no backward); every op is the one Transformer::layer_forward uses, run on the
// B rows of the current position instead of the B*T rows of a sequence.
#include "tinyds/model/decoder.h"

#include "tinyds/core/error.h"
#include "tinyds/model/decode_dense.h"
#include "tinyds/model/mla_decode.h"
#include "tinyds/ops/embedding.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/residual.h"
#include "tinyds/ops/rmsnorm.h"
#include "tinyds/ops/swiglu.h"

namespace tinyds {

const char* mla_path_name(MlaPath p) { return p == MlaPath::naive ? "naive" : "absorbed"; }

KvCacheKind kv_cache_kind_of(AttentionKind a) {
  switch (a) {
    case AttentionKind::mha: return KvCacheKind::mha;
    case AttentionKind::gqa: return KvCacheKind::gqa;
    case AttentionKind::mqa: return KvCacheKind::mqa;
    case AttentionKind::mla: return KvCacheKind::mla;
  }
  throw_error("kv_cache_kind_of: unknown attention kind ", static_cast<int>(a));
}

KvCacheDims kv_cache_dims_of(const ModelConfig& m, int B, int Tmax) {
  KvCacheDims d;
  d.n_layer = m.n_layer; d.B = B; d.Tmax = Tmax; d.H = m.n_head; d.n_kv_head = m.n_kv_head; d.D = m.head_dim;
  d.L = m.kv_lora_rank; d.R = m.rope_dim;  // 0 for the dense kinds, which do not use them
  return d;
}

namespace {
int checked_batch(int B) {
  if (B < 1) throw_error("Decoder: batch B = ", B, " must be at least 1");
  return B;
}
int checked_tmax(int Tmax, const ModelConfig& m) {
  // RoPE positions beyond max_seq_len are positions the full forward refuses, so the decoder does too.
  if (Tmax < 1 || Tmax > m.max_seq_len)
    throw_error("Decoder: Tmax = ", Tmax, " must be in [1, model.max_seq_len = ", m.max_seq_len, "]");
  return Tmax;
}
}  // namespace

Decoder::Decoder(const Transformer<float>& model, int B, int Tmax, MlaPath path, Role role)
    : model_(model),
      // view_params wants a mutable base; the decoder only ever reads through these pointers.
      p_(view_params(const_cast<float*>(model.params()), model.layout(), model.config())),
      B_(checked_batch(B)), Tmax_(checked_tmax(Tmax, model.config())), path_(path),
      cache_(kv_cache_kind_of(model.config().attention), kv_cache_dims_of(model.config(), B, Tmax), role),
      moe_(role) {
  const ModelConfig& m = model.config();
  const std::size_t b = B, C = m.d_model, F = m.ffn_hidden, V = m.vocab_size;
  scratch_.reset(b * (4 * C + 1 + 3 * F + V), role, Category::activations);
  float* s = scratch_.data();
  x_ = s; s += b * C;        // (B, C) residual stream entering a layer
  h_ = s; s += b * C;        // (B, C) residual after attention
  xn_ = s; s += b * C;       // (B, C) a normed input (attention, FFN or final norm)
  tmp_ = s; s += b * C;      // (B, C) a sublayer's output before it joins the residual
  rstd_ = s; s += b;         // (B)    1/rms (rmsnorm_forward writes it; decoding has no use for it)
  a1_ = s; s += b * F;       // (B, F) gate pre-activation
  a3_ = s; s += b * F;       // (B, F) up projection
  gate_ = s; s += b * F;     // (B, F) silu(a1) * a3
  logits_ = s;               // (B, V)
}

// One block on the B rows of the current position: x_ (B, C) in, x_ (B, C) out.
void Decoder::layer_step(int l) {
  const ModelConfig& m = model_.config();
  const int B = B_, C = m.d_model, F = m.ffn_hidden;
  const LayerParams<float>& p = p_.layers[l];
  const float eps = m.norm_eps;
  rmsnorm_forward(xn_, rstd_, x_, p.attn_norm, B, C, eps);
  if (m.attention == AttentionKind::mla) {
    const MlaDims<float> d{B, 1, C, m.n_head, m.head_dim, m.rope_dim, m.kv_lora_rank, m.q_lora_rank,
                           eps, m.rope_theta, pos_};
    if (path_ == MlaPath::naive) mla_decode_naive(tmp_, xn_, p.mla, d, cache_, l, pos_);
    else mla_decode_absorbed(tmp_, xn_, p.mla, d, cache_, l, pos_);
  } else {
    const DenseAttnParams<float> ap{p.wq, p.wk, p.wv, p.wo};
    const DenseAttnDims<float> d{B, C, m.n_head, m.n_kv_head, m.head_dim, m.rope_theta};
    dense_attention_decode(tmp_, xn_, ap, d, cache_, l, pos_);
  }
  residual_forward(h_, x_, tmp_, static_cast<long>(B) * C);

  rmsnorm_forward(xn_, rstd_, h_, p.ffn_norm, B, C, eps);
  if (model_.moe_slot(l) >= 0) {
    // The B rows as B one-token sequences; no balance losses at inference. The bias still chooses the experts.
    const MoeDims d = moe_dims_of(m, B, 1, false);
    const float* bias = model_.moe_bias() + static_cast<std::size_t>(model_.moe_slot(l)) * m.n_routed_experts;
    moe_layer_forward(tmp_, moe_.activations(d), xn_, p.moe, bias, d);
  } else {
    matmul_forward(a1_, xn_, p.w1, (const float*)nullptr, B, C, F);  // N = B: one row per sequence
    matmul_forward(a3_, xn_, p.w3, (const float*)nullptr, B, C, F);
    swiglu_forward(gate_, a1_, a3_, static_cast<long>(B) * F);
    matmul_forward(tmp_, gate_, p.w2, (const float*)nullptr, B, F, C);
  }
  residual_forward(x_, h_, tmp_, static_cast<long>(B) * C);
}

void Decoder::truncate(int pos) {
  if (pos < 0 || pos > pos_) throw_error("Decoder::truncate: position ", pos, " is outside [0, ", pos_, "]");
  pos_ = pos;  // rows >= pos are stale but never read: step p reads rows 0..p after writing row p
}

const float* Decoder::step(const int* tokens) {
  const ModelConfig& m = model_.config();
  const int B = B_, C = m.d_model, V = m.vocab_size;
  if (pos_ >= Tmax_)
    throw_error("Decoder::step: position ", pos_, " is past the cache (Tmax = ", Tmax_, "); call reset()");
  for (int b = 0; b < B; b++)
    if (tokens[b] < 0 || tokens[b] >= V)
      throw_error("Decoder::step: token ", tokens[b], " of sequence ", b, " at position ", pos_,
                  " is outside the vocab [0, ", V, ")");
  embedding_forward(x_, tokens, p_.embed, B, C);
  for (int l = 0; l < m.n_layer; l++) layer_step(l);
  rmsnorm_forward(xn_, rstd_, x_, p_.norm, B, C, m.norm_eps);
  matmul_forward(logits_, xn_, p_.head, (const float*)nullptr, B, C, V);
  pos_++;
  return logits_;
}

}  // namespace tinyds

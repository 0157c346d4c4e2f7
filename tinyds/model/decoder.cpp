// tinyds/model/decoder.cpp — Decoder: the whole model, one token per sequence per step, with a kv-cache.
//
// Shapes: B sequences, C d_model, V vocab, F ffn_hidden, H heads, Hkv kv heads, D head dim, L/R/Q MLA ranks.
// Forward only (decoding has no backward); every op is the one Transformer::layer_forward uses, run on the
// B*T rows of the new positions (T = 1 for step()) instead of the rows of whole sequences.
#include "tinyds/model/decoder.h"

#include <algorithm>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/device/memory.h"
#include "tinyds/device/ops.h"
#include "tinyds/model/decode_dense.h"
#include "tinyds/model/ffn.h"
#include "tinyds/model/mla_decode.h"

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
MlaPath checked_path(MlaPath path, const Transformer<float>& model) {
  if (model.device() == Device::cuda && model.config().attention == AttentionKind::mla && path == MlaPath::naive)
    throw_error("Decoder: the naive MLA path runs on the CPU only (its per-head loops have no kernel); "
                "use the absorbed path (the default) with --device cuda");
  if (model.device() == Device::cuda && model.config().attention != AttentionKind::mla)
    throw_error("Decoder: ", attention_kind_name(model.config().attention),
                " attention has no decode kernel; decoding on cuda needs an mla model (e.g. the nano, small or base "
                "presets), or --device cpu");
  return path;
}
}  // namespace

Decoder::Decoder(const Transformer<float>& model, int B, int Tmax, MlaPath path, Role role)
    : model_(model),
      // view_params wants a mutable base; the decoder only ever reads through these pointers.
      p_(view_params(const_cast<float*>(model.params()), model.layout(), model.config())),
      B_(checked_batch(B)), Tmax_(checked_tmax(Tmax, model.config())), path_(checked_path(path, model)),
      role_(role), place_(dev::place_of(model.device())),
      cache_(kv_cache_kind_of(model.config().attention), kv_cache_dims_of(model.config(), B, Tmax), role, place_),
      moe_(role, place_) {
  OnDevice scope(model_.device());
  ensure_rows(B);  // one token per sequence: what step() needs
}

void Decoder::ensure_rows(int rows) {
  if (rows <= rows_) return;
  const ModelConfig& m = model_.config();
  const std::size_t r = rows, C = m.d_model, F = m.ffn_hidden, V = m.vocab_size;
  // hidden() must survive a regrow (mtp_step may grow the scratch while hidden() is still the caller's input).
  std::vector<float> kept_hidden;
  if (rows_) {
    kept_hidden.resize(static_cast<std::size_t>(rows_) * C);
    dev::to_host(kept_hidden.data(), hidden_, kept_hidden.size());
  }
  scratch_.reset(r * (7 * C + 1 + 3 * F + 2 * V), role_, Category::activations, place_);
  tokens_.reset(r, role_, Category::activations, place_);  // (rows) the step's input tokens, uploaded
  float* s = scratch_.data();
  x_ = s; s += r * C;        // (rows, C) residual stream entering a layer
  h_ = s; s += r * C;        // (rows, C) residual after attention
  xn_ = s; s += r * C;       // (rows, C) a normed input (attention, FFN or final norm)
  tmp_ = s; s += r * C;      // (rows, C) a sublayer's output before it joins the residual
  rstd_ = s; s += r;         // (rows)    1/rms (rmsnorm_forward writes it; decoding has no use for it)
  a1_ = s; s += r * F;       // (rows, F) gate pre-activation
  a3_ = s; s += r * F;       // (rows, F) up projection
  act_ = s; s += r * F;      // (rows, F) silu(a1) * a3
  logits_ = s; s += r * V;   // (rows, V) main logits
  hidden_ = s; s += r * C;   // (rows, C) x_L of the last main step (hidden())
  cat_ = s; s += 2 * r * C;  // (rows, 2C) MTP: [RMSNorm(x_L; hnorm), RMSNorm(emb; enorm)]
  mtp_logits_ = s;           // (rows, V) MTP draft logits
  dev::from_host(hidden_, kept_hidden.data(), kept_hidden.size());
  rows_ = rows;
}

// One block on the n*T rows of the new positions of the first n sequences (n = B, or fewer in prefill_shared and
// step_first): x_ (n, T, C) in, x_ (n, T, C) out. l is the model's layer index (n_layer + k for MTP module k's
// block); `cache` layer `cache_layer` holds its rows 0..pos-1.
void Decoder::layer_step(int l, KvCache<float>& cache, int cache_layer, int pos, int T, int n) {
  const ModelConfig& m = model_.config();
  const int B = n, N = B * T, C = m.d_model, F = m.ffn_hidden;
  const LayerParams<float>& p = p_.layers[l];
  const float eps = m.norm_eps;
  dev::rmsnorm_forward(xn_, rstd_, x_, p.attn_norm, N, C, eps);
  if (m.attention == AttentionKind::mla) {
    const MlaDims<float> d{B, T, C, m.n_head, m.head_dim, m.rope_dim, m.kv_lora_rank, m.q_lora_rank,
                           eps, m.rope_theta, pos};
    if (path_ == MlaPath::naive) mla_decode_naive(tmp_, xn_, p.mla, d, cache, cache_layer, pos);
    else mla_decode_absorbed(tmp_, xn_, p.mla, d, cache, cache_layer, pos);
  } else {
    const DenseAttnParams<float> ap{p.wq, p.wk, p.wv, p.wo};
    const DenseAttnDims<float> d{B, C, m.n_head, m.n_kv_head, m.head_dim, m.rope_theta, T};
    dense_attention_decode(tmp_, xn_, ap, d, cache, cache_layer, pos);
  }
  dev::residual_forward(h_, x_, tmp_, static_cast<long>(N) * C);

  dev::rmsnorm_forward(xn_, rstd_, h_, p.ffn_norm, N, C, eps);
  if (model_.moe_slot(l) >= 0) {
    // The N rows as N one-token sequences; no balance losses at inference. The bias still chooses the experts.
    const MoeDims d = moe_dims_of(m, N, 1, MoeLosses::off);
    const float* bias = model_.moe_bias() + static_cast<std::size_t>(model_.moe_slot(l)) * m.n_routed_experts;
    moe_layer_forward(tmp_, moe_.activations(d), xn_, p.moe, bias, d);
  } else {
    // One row per new token through the dense SwiGLU feed-forward (model/ffn.h).
    ffn_forward(tmp_, FfnActivations<float>{a1_, a3_, act_}, xn_, dense_ffn_weights(p), N, C, F);
  }
  dev::residual_forward(x_, h_, tmp_, static_cast<long>(N) * C);
}

void Decoder::truncate(int pos) {
  if (pos < 0 || pos > pos_) throw_error("Decoder::truncate: position ", pos, " is outside [0, ", pos_, "]");
  pos_ = pos;  // rows >= pos are stale but never read: step p reads rows 0..p after writing row p
  // MTP row p embedded the token at p+1: rows p >= pos-1 saw a token that is now forgotten.
  mtp_pos_ = std::min(mtp_pos_, std::max(pos - 1, 0));
}

void Decoder::check_tokens(const int* tokens, int n, int T, int pos, const char* where) const {
  const int V = model_.config().vocab_size;
  for (int b = 0; b < n; b++)
    for (int t = 0; t < T; t++) {
      const int tok = tokens[b * T + t];
      if (tok < 0 || tok >= V)
        throw_error(where, ": token ", tok, " of sequence ", b, " at position ", pos + t,
                    " is outside the vocab [0, ", V, ")");
    }
}

void Decoder::run(const int* tokens, int T, int n, const char* where) {
  const ModelConfig& m = model_.config();
  const int N = n * T, C = m.d_model, V = m.vocab_size;
  if (T < 1) throw_error(where, ": T = ", T, " new tokens per sequence must be at least 1");
  if (pos_ + T > Tmax_)
    throw_error(where, ": position ", pos_ + T - 1, " is past the cache (Tmax = ", Tmax_, "); call reset()");
  check_tokens(tokens, n, T, pos_, where);
  OnDevice scope(model_.device());
  ensure_rows(N);
  dev::from_host(tokens_.data(), tokens, N);  // the host's tokens, where the embedding reads them
  dev::embedding_forward(x_, tokens_.data(), p_.embed, N, C);
  for (int l = 0; l < m.n_layer; l++) layer_step(l, cache_, l, pos_, T, n);
  dev::copy(hidden_, x_, static_cast<std::size_t>(N) * C);  // x_L: the MTP drafter's input
  dev::rmsnorm_forward(xn_, rstd_, x_, p_.norm, N, C, m.norm_eps);
  dev::matmul_forward(logits_, xn_, p_.head, N, C, V);
}

const float* Decoder::step_many(const int* tokens, int T) {
  run(tokens, T, B_, "Decoder::step");
  pos_ += T;
  last_T_ = T;
  return logits_;
}

const float* Decoder::step_first(const int* tokens, int n) {
  if (n < 1 || n > B_) throw_error("Decoder::step_first: n = ", n, " sequences must be in [1, B = ", B_, "]");
  run(tokens, 1, n, "Decoder::step");
  pos_ += 1;
  last_T_ = 1;
  return logits_;
}

void Decoder::move_sequence(int src, int dst) {
  OnDevice scope(model_.device());
  cache_.copy_rows(src, dst, 0, pos_);
}

void Decoder::prefill_shared(const int* tokens, int T, const std::vector<int>& source) {
  const char* where = "Decoder::prefill_shared";
  if (static_cast<int>(source.size()) != B_)
    throw_error(where, ": source has ", source.size(), " entries for ", B_, " sequences");
  int n = 0;  // the sources: sequences 0..n-1
  while (n < B_ && source[n] == n) n++;
  for (int b = 0; b < B_; b++)
    if (source[b] < 0 || source[b] >= n || (b >= n && source[b] == b))
      throw_error(where, ": sequence ", b, " takes its rows from ", source[b], ", which is not one of the ", n,
                  " sources (the first sequences, each its own source)");
  run(tokens, T, n, where);
  OnDevice scope(model_.device());
  for (int b = n; b < B_; b++) cache_.copy_rows(source[b], b, pos_, T);
  pos_ += T;
  last_T_ = T;
}

// The MTP module-0 step (decode twin of Transformer::mtp_forward for k = 0; formulas in decoder.h and mtp.h).
const float* Decoder::mtp_step(const float* hidden, const int* next_tokens, int T) {
  const ModelConfig& m = model_.config();
  if (!has_mtp())
    throw_error("Decoder::mtp_step: the model has mtp_depth = ", m.mtp_depth, ": no MTP module to draft with");
  if (T < 1) throw_error("Decoder::mtp_step: T = ", T, " must be at least 1");
  if (mtp_pos_ + T > pos_)
    throw_error("Decoder::mtp_step: MTP positions ", mtp_pos_, "..", mtp_pos_ + T - 1,
                " need the main model's x_L there, but it has decoded only positions 0..", pos_ - 1);
  check_tokens(next_tokens, B_, T, mtp_pos_ + 1, "Decoder::mtp_step");
  const int N = B_ * T, C = m.d_model, V = m.vocab_size;
  const float eps = m.norm_eps;
  const MtpParams<float>& mp = p_.mtp[0];
  OnDevice scope(model_.device());
  if (!mtp_cache_) {
    // Allocated on the first draft, so decoders that never draft (rollouts, plain sampling) do not pay for it.
    // MTP module 0's block is an ordinary block (same attention kind and dims): a one-layer cache of that kind.
    KvCacheDims d = kv_cache_dims_of(m, B_, Tmax_);
    d.n_layer = 1;
    mtp_cache_ = std::make_unique<KvCache<float>>(kv_cache_kind_of(m.attention), d, role_, place_);
  }
  // A regrow would move hidden_, which `hidden` may point into: read it from a copy then.
  Buffer<float> hidden_copy;
  if (N > rows_) {
    hidden_copy.reset(static_cast<std::size_t>(N) * C, role_, Category::activations, place_);
    dev::copy(hidden_copy.data(), hidden, hidden_copy.size());
    hidden = hidden_copy.data();
    ensure_rows(N);
  }
  dev::from_host(tokens_.data(), next_tokens, N);
  // cat = [RMSNorm(x_L; hnorm), RMSNorm(embed[token p+1]; enorm)]           V3 Eq. 21 ([h; emb], as mtp.h)
  dev::rmsnorm_forward(xn_, rstd_, hidden, mp.hnorm, N, C, eps);
  dev::embedding_forward(tmp_, tokens_.data(), p_.embed, N, C);
  dev::rmsnorm_forward(h_, rstd_, tmp_, mp.enorm, N, C, eps);
  dev::copy_cols(cat_, 2 * C, 0, xn_, C, 0, N, C);  // (N, 2C) columns [0, C): the normed x_L
  dev::copy_cols(cat_, 2 * C, C, h_, C, 0, N, C);   //          columns [C, 2C): the normed embedding
  dev::matmul_forward(x_, cat_, mp.proj, N, 2 * C, C);
  // h^1 = Block_0(m): layer n_layer of the model, with its own one-layer cache   V3 Eq. 22
  layer_step(m.n_layer, *mtp_cache_, 0, mtp_pos_, T, B_);
  // draft logits = head(RMSNorm(h^1; norm)): the main model's shared norm and head   V3 Eq. 23
  dev::rmsnorm_forward(xn_, rstd_, x_, p_.norm, N, C, eps);
  dev::matmul_forward(mtp_logits_, xn_, p_.head, N, C, V);
  mtp_pos_ += T;
  return mtp_logits_;
}

}  // namespace tinyds

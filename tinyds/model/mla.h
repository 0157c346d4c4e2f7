// tinyds/model/mla.h — Multi-head Latent Attention (DeepSeek-V2 §2.1, V3 §2.1.1; DESIGN section 4.1), the
// training block: forward and hand-written backward.
//
// Shapes: B batch, T time, N = B*T rows, C model width, H heads, D per-head content (no-rope) dim = value dim,
// R rope dim, L kv latent rank (d_c, kv_lora_rank), Q query latent rank (d_c', q_lora_rank).
//
//   c_Q  = RMSNorm(x @ wq_a^T; q_norm)                           (N, Q)        query latent
//   q    = c_Q @ wq_b^T  -> per head [q_C (D); q_R (R)]          (B, T, H, D+R)
//   q_R  = RoPE(q_R)                                             per head, position pos0 + t
//   c_KV = RMSNorm(x @ wkv_a[0:L]^T; kv_norm)                    (N, L)        cached at decode
//   k_R  = RoPE(x @ wkv_a[L:L+R]^T)                              (N, R)        ONE key for all heads, cached
//   [k_C; v] per head = c_KV @ wkv_b^T                           (B, T, H, 2D)
//   k    = per head [k_C (D); k_R (R)]                           (B, T, H, D+R)  k_R copied into every head
//   o    = causal softmax(q k^T / sqrt(D+R)) v                   (B, T, H, D)
//   out  = o @ wo^T                                              (N, C)
//
// The block is the attention sublayer only: its input x is the already-normed residual (RMSNorm(h) in the
// model) and out is added to the residual by the caller. Parameter names and (out, in) shapes follow
// DeepSeek-V3's inference/model.py. wkv_a's rows 0..L-1 make c_KV and rows L..L+R-1 make k_R, so the block
// runs them as two GEMMs on the two row blocks of the one weight (no split copy).
//
// Conventions (DESIGN section 3): parameter gradients ACCUMULATE (+=); dx is WRITTEN (=).
// Memory: the saved activations (MlaActivations) and the scratch (MlaForwardScratch, MlaBackwardScratch) are
// views into caller-owned buffers, carved by carve_mla_* with any bump allocator that has `real* take(size_t)`
// (the model's Carver in transformer.cpp fits; with a null base it only counts).
#pragma once
#include <cstddef>

#include "tinyds/core/ledger.h"

namespace tinyds {

template <typename real>
struct MlaDims {
  int B, T;       // batch, time (the decoders: T new tokens per sequence from their `pos`; they ignore pos0)
  int C;          // model width, e.g. 256
  int H;          // heads, e.g. 8
  int D;          // per-head content dim of q/k and value dim (qk_nope_head_dim = v_head_dim), e.g. 32
  int R;          // rope dim (qk_rope_head_dim), even, e.g. 16
  int L;          // kv latent rank (kv_lora_rank), e.g. 64
  int Q;          // query latent rank (q_lora_rank), e.g. 96
  real eps;       // RMSNorm epsilon of q_norm and kv_norm, e.g. 1e-5
  real theta;     // RoPE base, e.g. 10000
  int pos0;       // position of row t = pos0 + t (0 in training)
};

// Named pointers to one MLA block's parameters (or to their gradients: same shapes).
template <typename real>
struct MlaParams {
  real* wq_a;     // (Q, C)          W_DQ
  real* q_norm;   // (Q)
  real* wq_b;     // (H*(D+R), Q)    per head: D rows of W_UQ, then R rows of W_QR
  real* wkv_a;    // (L+R, C)        L rows of W_DKV, then R rows of W_KR
  real* kv_norm;  // (L)
  real* wkv_b;    // (H*2D, L)       per head: D rows of W_UK, then D rows of W_UV
  real* wo;       // (C, H*D)        W_O
};

// What the forward keeps for the backward (named by the line that makes it; see the header legend).
template <typename real>
struct MlaActivations {
  real* cq_pre;    // (N, Q)          x @ wq_a^T
  real* cq_rstd;   // (N)             1/rms of cq_pre
  real* cq;        // (N, Q)          c_Q = RMSNorm(cq_pre)
  real* q;         // (B, T, H, D+R)  c_Q @ wq_b^T, rope part rotated
  real* ckv_pre;   // (N, L)          x @ wkv_a[0:L]^T
  real* ckv_rstd;  // (N)             1/rms of ckv_pre
  real* ckv;       // (N, L)          c_KV = RMSNorm(ckv_pre)         (what the MLA kv-cache stores)
  real* kr;        // (N, R)          k_R = RoPE(x @ wkv_a[L:]^T)     (what the MLA kv-cache stores)
  real* k;         // (B, T, H, D+R)  per head [k_C; k_R]
  real* v;         // (B, T, H, D)
  real* att;       // (B, H, T, T)    causal softmax probabilities
  real* o;         // (N, H*D)        attention output, heads concatenated
};

// Forward-only scratch (overwritten by every forward; may be shared by all layers).
template <typename real>
struct MlaForwardScratch {
  real* kv;  // (N, H*2D)  c_KV @ wkv_b^T, per head [k_C; v], before the split into k and v
  real* qr;  // (N, H*R)   the rope part of q gathered contiguous for rope_forward
};

// Backward-only scratch (may be shared by all layers).
template <typename real>
struct MlaBackwardScratch {
  real* dq;      // (N, H*(D+R))
  real* dk;      // (N, H*(D+R))
  real* dv;      // (N, H*D)
  real* dov;     // (N, H*D)     gradient of o
  real* dkv;     // (N, H*2D)
  real* dqr;     // (N, H*R)
  real* dcq;     // (N, Q)
  real* dcq_pre; // (N, Q)
  real* dckv;    // (N, L)
  real* dckv_pre;// (N, L)
  real* dkr;     // (N, R)
  real* dxtmp;   // (N, C)
};

// Each carve_* takes its views from c in a fixed order; with a counting carver (null base) c.used is the size.
template <typename real, class Carver>
MlaActivations<real> carve_mla_activations(Carver& c, const MlaDims<real>& d) {
  const std::size_t N = static_cast<std::size_t>(d.B) * d.T, H = d.H, D = d.D, R = d.R;
  MlaActivations<real> a;
  a.cq_pre = c.take(N * d.Q); a.cq_rstd = c.take(N); a.cq = c.take(N * d.Q);
  a.q = c.take(N * H * (D + R));
  a.ckv_pre = c.take(N * d.L); a.ckv_rstd = c.take(N); a.ckv = c.take(N * d.L); a.kr = c.take(N * R);
  a.k = c.take(N * H * (D + R)); a.v = c.take(N * H * D);
  a.att = c.take(static_cast<std::size_t>(d.B) * H * d.T * d.T);
  a.o = c.take(N * H * D);
  return a;
}

template <typename real, class Carver>
MlaForwardScratch<real> carve_mla_forward_scratch(Carver& c, const MlaDims<real>& d) {
  const std::size_t N = static_cast<std::size_t>(d.B) * d.T, H = d.H;
  MlaForwardScratch<real> s;
  s.kv = c.take(N * H * 2 * d.D);
  s.qr = c.take(N * H * d.R);
  return s;
}

template <typename real, class Carver>
MlaBackwardScratch<real> carve_mla_backward_scratch(Carver& c, const MlaDims<real>& d) {
  const std::size_t N = static_cast<std::size_t>(d.B) * d.T, H = d.H, D = d.D, R = d.R;
  MlaBackwardScratch<real> s;
  s.dq = c.take(N * H * (D + R)); s.dk = c.take(N * H * (D + R)); s.dv = c.take(N * H * D);
  s.dov = c.take(N * H * D); s.dkv = c.take(N * H * 2 * D); s.dqr = c.take(N * H * R);
  s.dcq = c.take(N * d.Q); s.dcq_pre = c.take(N * d.Q);
  s.dckv = c.take(N * d.L); s.dckv_pre = c.take(N * d.L); s.dkr = c.take(N * R);
  s.dxtmp = c.take(N * d.C);
  return s;
}

// One block's activations and both scratches in one ledgered allocation (Category::activations): what a
// standalone user (the tests, a single-block demo) needs; the model carves the same views from its own buffers.
template <typename real>
struct MlaWorkspace {
  MlaWorkspace(const MlaDims<real>& d, Role role = Role::policy);
  MlaActivations<real> acts;
  MlaForwardScratch<real> fwd;
  MlaBackwardScratch<real> bwd;
  Buffer<real> buf;  // owns the memory the three views point into
};

// Throws tinyds::Error naming the field if a dim is not positive or R is odd; `where` names the caller.
template <typename real>
void mla_check_dims(const MlaDims<real>& d, const char* where);

// out (N, C) = MLA(x (N, C)); fills a (saved for backward) and s (scratch).
template <typename real>
void mla_forward(real* out, const MlaActivations<real>& a, const MlaForwardScratch<real>& s, const real* x,
                 const MlaParams<real>& p, const MlaDims<real>& d);

// dx (N, C) written; every gradient in g accumulated (+=). dout (N, C); a from the matching forward.
template <typename real>
void mla_backward(real* dx, const MlaParams<real>& g, const MlaBackwardScratch<real>& s, const real* dout,
                  const real* x, const MlaActivations<real>& a, const MlaParams<real>& p, const MlaDims<real>& d);

// Per-head layout helpers (exposed for the decoders). All work on rows of N = B*T tokens.
// gather:  qr (N, H, R) = the last R of each head of q (N, H, D+R).   scatter: the inverse (writes only those).
// Like every op of mla_forward / mla_backward they run on this thread's current device (tinyds/device/ops.h).
template <typename real>
void mla_gather_rope_part(real* qr, const real* q, int N, int H, int D, int R);
template <typename real>
void mla_scatter_rope_part(real* q, const real* qr, int N, int H, int D, int R);

}  // namespace tinyds

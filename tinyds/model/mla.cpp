// tinyds/model/mla.cpp — the MLA training block, forward and backward side by side (see mla.h for the math).
//
// Shapes: B batch, T time, N = B*T, C width, H heads, D content/value head dim, R rope dim, L kv latent rank,
// Q query latent rank. Per-head tensors are row-major (N, H, width): head h of row n starts at (n*H + h)*width.
// Gradients: parameters ACCUMULATE (+=), dx and every scratch gradient is WRITTEN (=).
#include "tinyds/model/mla.h"

#include <cmath>

#include "tinyds/core/carver.h"
#include "tinyds/core/error.h"
#include "tinyds/device/ops.h"

namespace tinyds {

namespace {

// The column moves below are ops (tinyds/ops/copy_cols.h, kernels/copy_cols.cu): on cuda they run on the device.
// copy_cols(dst, dst_width, dcol, src, src_width, scol, N, w): dst[n, dcol + i] = src[n, scol + i], i < w.

// forward: k[n, h] = [kv[n, h, 0:D] (k_C); kr[n] (k_R)];  v[n, h] = kv[n, h, D:2D]
//   k (N, H, D+R), v (N, H, D), kv (N, H, 2D), kr (N, R)
template <typename real>
void assemble_keys_values(real* k, real* v, const real* kv, const real* kr, int N, int H, int D, int R) {
  for (int h = 0; h < H; h++) {
    dev::copy_cols(k, H * (D + R), h * (D + R), kv, H * 2 * D, h * 2 * D, N, D);
    dev::copy_cols(k, H * (D + R), h * (D + R) + D, kr, R, 0, N, R);  // the one rope key, copied into every head
    dev::copy_cols(v, H * D, h * D, kv, H * 2 * D, h * 2 * D + D, N, D);
  }
}

// backward of assemble_keys_values: dkv (N, H, 2D) written; dkr (N, R) written = SUM over heads of the rope
// part of dk, because forward copied the one k_R into all H heads (a broadcast's gradient is a sum).
template <typename real>
void assemble_keys_values_backward(real* dkv, real* dkr, const real* dk, const real* dv, int N, int H, int D, int R) {
  for (int h = 0; h < H; h++) {
    dev::copy_cols(dkv, H * 2 * D, h * 2 * D, dk, H * (D + R), h * (D + R), N, D);
    dev::copy_cols(dkv, H * 2 * D, h * 2 * D + D, dv, H * D, h * D, N, D);
  }
  dev::sum_head_cols(dkr, dk, N, H, D + R, D, R);  // dkr[n] = sum_h dk[n, h, D:D+R], heads in order: deterministic
}

}  // namespace

template <typename real>
void mla_gather_rope_part(real* qr,       // (N, H, R)
                          const real* q,  // (N, H, D+R)
                          int N, int H, int D, int R) {
  for (int h = 0; h < H; h++) dev::copy_cols(qr, H * R, h * R, q, H * (D + R), h * (D + R) + D, N, R);
}

template <typename real>
void mla_scatter_rope_part(real* q,         // (N, H, D+R) only the rope parts written
                           const real* qr,  // (N, H, R)
                           int N, int H, int D, int R) {
  for (int h = 0; h < H; h++) dev::copy_cols(q, H * (D + R), h * (D + R) + D, qr, H * R, h * R, N, R);
}

template <typename real>
void mla_check_dims(const MlaDims<real>& d, const char* where) {
  const char* names[] = {"B", "T", "C", "H", "D", "R", "L", "Q"};
  const int vals[] = {d.B, d.T, d.C, d.H, d.D, d.R, d.L, d.Q};
  for (int i = 0; i < 8; i++)
    if (vals[i] <= 0) throw_error(where, ": MLA dim ", names[i], " = ", vals[i], " must be positive");
  if (d.R % 2 != 0) throw_error(where, ": MLA rope dim R = ", d.R, " must be even (RoPE rotates pairs)");
  if (d.pos0 < 0) throw_error(where, ": MLA start position pos0 = ", d.pos0, " must be >= 0");
}

template <typename real>
MlaWorkspace<real>::MlaWorkspace(const MlaDims<real>& d, Role role) {
  mla_check_dims(d, "MlaWorkspace");
  Carver<real> count{nullptr};
  carve_mla_activations(count, d);
  carve_mla_forward_scratch(count, d);
  carve_mla_backward_scratch(count, d);
  buf.reset(count.used, role, Category::activations);
  Carver<real> c{buf.data()};
  acts = carve_mla_activations(c, d);
  fwd = carve_mla_forward_scratch(c, d);
  bwd = carve_mla_backward_scratch(c, d);
}

// ---------------------------------------------------------------------------------------------------------
// Forward
// ---------------------------------------------------------------------------------------------------------
template <typename real>
void mla_forward(real* out,                        // (N, C)
                 const MlaActivations<real>& a,    // saved for backward
                 const MlaForwardScratch<real>& s,
                 const real* x,                    // (N, C) the normed block input
                 const MlaParams<real>& p, const MlaDims<real>& d) {
  mla_check_dims(d, "mla_forward");
  const int B = d.B, T = d.T, N = B * T, C = d.C, H = d.H, D = d.D, R = d.R, L = d.L, Q = d.Q;

  // Queries: c_Q = RMSNorm(x W_DQ^T);  [q_C; q_R] = c_Q wq_b^T;  q_R = RoPE(q_R)
  dev::matmul_forward(a.cq_pre, x, p.wq_a, N, C, Q);
  dev::rmsnorm_forward(a.cq, a.cq_rstd, a.cq_pre, p.q_norm, N, Q, d.eps);
  dev::matmul_forward(a.q, a.cq, p.wq_b, N, Q, H * (D + R));
  mla_gather_rope_part(s.qr, a.q, N, H, D, R);  // rope_forward wants the (B, T, H, R) parts contiguous
  dev::rope_forward(s.qr, s.qr, B, T, H, R, d.pos0, d.theta);
  mla_scatter_rope_part(a.q, s.qr, N, H, D, R);

  // Key/value latent and the shared rope key: rows 0..L-1 of wkv_a give c_KV, rows L..L+R-1 give k_R.
  dev::matmul_forward(a.ckv_pre, x, p.wkv_a, N, C, L);
  dev::rmsnorm_forward(a.ckv, a.ckv_rstd, a.ckv_pre, p.kv_norm, N, L, d.eps);
  dev::matmul_forward(a.kr, x, p.wkv_a + static_cast<long>(L) * C, N, C, R);
  dev::rope_forward(a.kr, a.kr, B, T, 1, R, d.pos0, d.theta);  // ONE head: the same rotated key serves every head

  // Per-head keys and values from the latent: [k_C; v] = c_KV wkv_b^T;  k = [k_C; k_R]
  dev::matmul_forward(s.kv, a.ckv, p.wkv_b, N, L, H * 2 * D);
  assemble_keys_values(a.k, a.v, s.kv, a.kr, N, H, D, R);

  // Causal attention with keys of width D+R and values of width D; the scale uses the full key width.
  const real scale = real(1) / std::sqrt(real(D + R));
  dev::attention_forward(a.o, a.att, a.q, a.k, a.v, B, T, H, H, D + R, D, scale);
  dev::matmul_forward(out, a.o, p.wo, N, H * D, C);
}

// ---------------------------------------------------------------------------------------------------------
// Backward: each step names the forward line it differentiates, in reverse order.
// ---------------------------------------------------------------------------------------------------------
template <typename real>
void mla_backward(real* dx,                          // (N, C) written
                  const MlaParams<real>& g,          // gradients, accumulated
                  const MlaBackwardScratch<real>& s,
                  const real* dout,                  // (N, C)
                  const real* x,                     // (N, C) the forward's input
                  const MlaActivations<real>& a, const MlaParams<real>& p, const MlaDims<real>& d) {
  mla_check_dims(d, "mla_backward");
  const int B = d.B, T = d.T, N = B * T, C = d.C, H = d.H, D = d.D, R = d.R, L = d.L, Q = d.Q;
  const long NC = static_cast<long>(N) * C;
  const real scale = real(1) / std::sqrt(real(D + R));

  // forward: out = o @ wo^T
  dev::matmul_backward(s.dov, g.wo, dout, a.o, p.wo, N, H * D, C);
  // forward: o = attention(q, k, v)
  dev::attention_backward(s.dq, s.dk, s.dv, s.dov, a.q, a.k, a.v, a.att, B, T, H, H, D + R, D, scale);

  // Query side. forward: q_R = RoPE(q_R)  (undo the rotation on the rope part of dq, in its contiguous copy)
  mla_gather_rope_part(s.dqr, s.dq, N, H, D, R);
  dev::rope_backward(s.dqr, s.dqr, B, T, H, R, d.pos0, d.theta);
  mla_scatter_rope_part(s.dq, s.dqr, N, H, D, R);
  // forward: q = c_Q @ wq_b^T
  dev::matmul_backward(s.dcq, g.wq_b, s.dq, a.cq, p.wq_b, N, Q, H * (D + R));
  // forward: c_Q = RMSNorm(cq_pre)
  dev::rmsnorm_backward(s.dcq_pre, g.q_norm, s.dcq, a.cq_pre, p.q_norm, a.cq_rstd, N, Q);
  // forward: cq_pre = x @ wq_a^T    (dx starts here: written)
  dev::matmul_backward(dx, g.wq_a, s.dcq_pre, x, p.wq_a, N, C, Q);

  // Key/value side. forward: k = [k_C; k_R] per head, v  (dk_R = sum over heads)
  assemble_keys_values_backward(s.dkv, s.dkr, s.dk, s.dv, N, H, D, R);
  // forward: [k_C; v] = c_KV @ wkv_b^T
  dev::matmul_backward(s.dckv, g.wkv_b, s.dkv, a.ckv, p.wkv_b, N, L, H * 2 * D);
  // forward: c_KV = RMSNorm(ckv_pre)
  dev::rmsnorm_backward(s.dckv_pre, g.kv_norm, s.dckv, a.ckv_pre, p.kv_norm, a.ckv_rstd, N, L);
  // forward: ckv_pre = x @ wkv_a[0:L]^T   (x feeds three projections: their gradients sum into dx)
  dev::matmul_backward(s.dxtmp, g.wkv_a, s.dckv_pre, x, p.wkv_a, N, C, L);
  dev::add_inplace(dx, s.dxtmp, NC);
  // forward: k_R = RoPE(x @ wkv_a[L:L+R]^T)
  dev::rope_backward(s.dkr, s.dkr, B, T, 1, R, d.pos0, d.theta);
  const long kr_rows = static_cast<long>(L) * C;  // offset of the k_R row block in wkv_a
  dev::matmul_backward(s.dxtmp, g.wkv_a + kr_rows, s.dkr, x, p.wkv_a + kr_rows, N, C, R);
  dev::add_inplace(dx, s.dxtmp, NC);
}

template struct MlaWorkspace<float>;
template void mla_check_dims<float>(const MlaDims<float>&, const char*);
template void mla_forward<float>(float*, const MlaActivations<float>&, const MlaForwardScratch<float>&,
                               const float*, const MlaParams<float>&, const MlaDims<float>&);
template void mla_backward<float>(float*, const MlaParams<float>&, const MlaBackwardScratch<float>&, const float*,
                                const float*, const MlaActivations<float>&, const MlaParams<float>&,
                                const MlaDims<float>&);
template void mla_gather_rope_part<float>(float*, const float*, int, int, int, int);
template void mla_scatter_rope_part<float>(float*, const float*, int, int, int, int);

template struct MlaWorkspace<double>;
template void mla_check_dims<double>(const MlaDims<double>&, const char*);
template void mla_forward<double>(double*, const MlaActivations<double>&, const MlaForwardScratch<double>&,
                               const double*, const MlaParams<double>&, const MlaDims<double>&);
template void mla_backward<double>(double*, const MlaParams<double>&, const MlaBackwardScratch<double>&, const double*,
                                const double*, const MlaActivations<double>&, const MlaParams<double>&,
                                const MlaDims<double>&);
template void mla_gather_rope_part<double>(double*, const double*, int, int, int, int);
template void mla_scatter_rope_part<double>(double*, const double*, int, int, int, int);

}  // namespace tinyds

// tinyds/model/mtp.cpp — Multi-Token Prediction modules: forward and hand-written backward (formulas in mtp.h).
//
// Shapes: B batch, T time, N = B*T, C d_model, V vocab. Module index k here is 0-based (paper's k = k + 1).
#include <algorithm>
#include <cstring>

#include "tinyds/model/mtp.h"
#include "tinyds/model/transformer.h"
#include "tinyds/ops/cross_entropy.h"
#include "tinyds/ops/embedding.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/residual.h"
#include "tinyds/ops/rmsnorm.h"

namespace tinyds {

int mtp_target_count(const int* targets, int B, int T, int k) {
  int n = 0;
  for (int b = 0; b < B; b++)
    for (int i = 0; i + k + 1 < T; i++) n += targets[static_cast<long>(b) * T + i + k + 1] >= 0;
  return n;
}

template <typename real>
void Transformer<real>::mtp_forward(const int* tokens, const int* targets) {
  const ModelConfig& m = cfg_;
  const int B = B_, T = T_, N = B * T, C = m.d_model, V = m.vocab_size, Dm = m.mtp_depth;
  const real eps = real(m.norm_eps);
  const ModelParams<real>& p = pview_;
  mtp_tokens_.assign(Dm, std::vector<int>(N));
  mtp_targets_.assign(Dm, std::vector<int>(N));
  mtp_num_targets_.assign(Dm, 0);
  const real* h_prev = final_hidden();  // h^0 = x_L   (N, C)
  double sum_ce = 0;
  for (int k = 0; k < Dm; k++) {
    MtpActivations<real>& a = acts_.mtp[k];
    const MtpParams<real>& mp = p.mtp[k];
    std::vector<int>& etok = mtp_tokens_[k];
    std::vector<int>& tgt = mtp_targets_[k];
    const int ahead = k + 1;  // module k sees the token `ahead` places after i and predicts targets[i + ahead]
    for (int b = 0; b < B; b++)
      for (int i = 0; i < T; i++) {
        const bool inside = i + ahead < T;
        etok[b * T + i] = inside ? tokens[b * T + i + ahead] : 0;
        tgt[b * T + i] = inside ? targets[b * T + i + ahead] : -1;
      }
    // cat = [RMSNorm(h^{k-1}; hnorm), RMSNorm(embed[etok]; enorm)]          V3 Eq. 21
    rmsnorm_forward(a.hn, a.hn_rstd, h_prev, mp.hnorm, N, C, eps);
    embedding_forward(a.emb, etok.data(), p.embed, N, C);
    rmsnorm_forward(a.en, a.en_rstd, a.emb, mp.enorm, N, C, eps);
    for (int n = 0; n < N; n++) {
      std::copy(a.hn + static_cast<long>(n) * C, a.hn + static_cast<long>(n + 1) * C, a.cat + 2L * n * C);
      std::copy(a.en + static_cast<long>(n) * C, a.en + static_cast<long>(n + 1) * C, a.cat + 2L * n * C + C);
    }
    matmul_forward(a.m, a.cat, mp.proj, N, 2 * C, C);
    // h^k = Block_k(m)                                                      V3 Eq. 22
    const int l = m.n_layer + k;
    layer_forward(l, a.m);
    h_prev = acts_.layers[l].out;
    // logits_k = head(RMSNorm(h^k; norm)), shared head and norm              V3 Eq. 23
    rmsnorm_forward(a.final_in, a.final_rstd, h_prev, p.norm, N, C, eps);
    matmul_forward(a.logits, a.final_in, p.head, N, C, V);
    cross_entropy_forward(a.losses, a.lse, a.logits, tgt.data(), N, V);
    double sum = 0;
    for (int i = 0; i < N; i++)
      if (tgt[i] >= 0) { sum += a.losses[i]; mtp_num_targets_[k]++; }
    const int denom = mtp_denominator(k);
    if (denom) sum_ce += sum / denom;
  }
  mtp_loss_ = m.mtp_lambda / Dm * sum_ce;                                  // V3 Eq. 25
}

template <typename real>
void Transformer<real>::mtp_backward() {
  const ModelConfig& m = cfg_;
  const int N = B_ * T_, C = m.d_model, V = m.vocab_size, Dm = m.mtp_depth;
  const long NC = static_cast<long>(N) * C;
  const ModelParams<real>& p = pview_;
  const ModelParams<real>& g = grad_view();
  const BackwardViews<real>& d = bwd_;
  std::fill(d.dcarry, d.dcarry + NC, real(0));  // d(h^D) from a module D+1: none
  for (int k = Dm - 1; k >= 0; k--) {
    const MtpActivations<real>& a = acts_.mtp[k];
    const MtpParams<real>& mp = p.mtp[k];
    const MtpParams<real>& mg = g.mtp[k];
    const int l = m.n_layer + k;
    const real* hk = acts_.layers[l].out;
    // forward: L_MTP = lambda / D * sum_k mean CE_k  -> each counted target gets lambda / (D * count_k)
    const std::vector<int>& tgt = mtp_targets_[k];
    const int denom = mtp_denominator(k);
    const real w = mtp_num_targets_[k] && denom ? real(m.mtp_lambda) / real(Dm) / real(denom) : real(0);
    for (int i = 0; i < N; i++) d.dlosses[i] = tgt[i] >= 0 ? w : real(0);
    cross_entropy_backward(d.dlogits, d.dlosses, a.logits, a.lse, tgt.data(), N, V);
    // forward: logits_k = final_in @ head^T;  final_in = RMSNorm(h^k; norm)
    matmul_backward(d.dnorm_in, g.head, d.dlogits, a.final_in, p.head, N, C, V);
    rmsnorm_backward(d.dres, g.norm, d.dnorm_in, hk, p.norm, a.final_rstd, N, C);
    add_inplace(d.dres, d.dcarry, NC);  // h^k also fed module k+1 (through its hnorm)
    // forward: h^k = Block_k(m)   (layer_backward turns d(h^k) in dres into d(m))
    layer_backward(l, a.m);
    // forward: m = cat @ proj^T
    matmul_backward(d.dcat, mg.proj, d.dres, a.cat, mp.proj, N, 2 * C, C);
    // forward: cat = [hn, en]: split the gradient (dnorm_in <- d(hn), dtmp <- d(en))
    for (int n = 0; n < N; n++) {
      std::copy(d.dcat + 2L * n * C, d.dcat + 2L * n * C + C, d.dnorm_in + static_cast<long>(n) * C);
      std::copy(d.dcat + 2L * n * C + C, d.dcat + 2L * (n + 1) * C, d.dtmp + static_cast<long>(n) * C);
    }
    // forward: en = RMSNorm(emb; enorm); emb = embed[etok]   (dres is free again: reuse it for d(emb))
    rmsnorm_backward(d.dres, mg.enorm, d.dtmp, a.emb, mp.enorm, a.en_rstd, N, C);
    embedding_backward(g.embed, d.dres, mtp_tokens_[k].data(), N, C);
    // forward: hn = RMSNorm(h^{k-1}; hnorm)  -> carried to module k-1 (or to x_L when k = 0)
    const real* h_prev = k ? acts_.layers[l - 1].out : final_hidden();
    rmsnorm_backward(d.dcarry, mg.hnorm, d.dnorm_in, h_prev, mp.hnorm, a.hn_rstd, N, C);
  }
}

template void Transformer<float>::mtp_forward(const int*, const int*);
template void Transformer<float>::mtp_backward();
template void Transformer<double>::mtp_forward(const int*, const int*);
template void Transformer<double>::mtp_backward();

}  // namespace tinyds

// tinyds/model/mtp.cpp — Multi-Token Prediction modules: forward and hand-written backward (formulas in mtp.h).
//
// Shapes: B batch, T time, N = B*T, C d_model, V vocab. Module index k here is 0-based (paper's k = k + 1).
#include <algorithm>

#include "tinyds/device/memory.h"
#include "tinyds/device/ops.h"
#include "tinyds/model/mtp.h"
#include "tinyds/model/transformer.h"

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
    dev::from_host(mtp_tokens_dev_[k], etok.data(), N);  // the ops read them in the model's place
    dev::from_host(mtp_targets_dev_[k], tgt.data(), N);
    // cat = [RMSNorm(h^{k-1}; hnorm), RMSNorm(embed[etok]; enorm)]          V3 Eq. 21
    dev::rmsnorm_forward(a.hn, a.hn_rstd, h_prev, mp.hnorm, N, C, eps);
    dev::embedding_forward(a.emb, mtp_tokens_dev_[k], p.embed, N, C);
    dev::rmsnorm_forward(a.en, a.en_rstd, a.emb, mp.enorm, N, C, eps);
    dev::copy_cols(a.cat, 2 * C, 0, a.hn, C, 0, N, C);  // cat row n = [hn row n, en row n]
    dev::copy_cols(a.cat, 2 * C, C, a.en, C, 0, N, C);
    dev::matmul_forward(a.m, a.cat, mp.proj, N, 2 * C, C);
    // h^k = Block_k(m)                                                      V3 Eq. 22
    const int l = m.n_layer + k;
    layer_forward(l, a.m);
    h_prev = acts_.layers[l].out;
    // logits_k = head(RMSNorm(h^k; norm)), shared head and norm              V3 Eq. 23
    dev::rmsnorm_forward(a.final_in, a.final_rstd, h_prev, p.norm, N, C, eps);
    dev::matmul_forward(a.logits, a.final_in, p.head, N, C, V);
    dev::cross_entropy_forward(a.losses, a.lse, a.logits, mtp_targets_dev_[k], N, V);
    std::vector<real> losses(N);  // summed on the host, in position order, on both devices
    dev::to_host(losses.data(), a.losses, N);
    double sum = 0;
    for (int i = 0; i < N; i++)
      if (tgt[i] >= 0) { sum += losses[i]; mtp_num_targets_[k]++; }
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
  dev::zero(d.dcarry, NC);  // d(h^D) from a module D+1: none
  std::vector<real> dlosses(N);
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
    for (int i = 0; i < N; i++) dlosses[i] = tgt[i] >= 0 ? w : real(0);  // on the host, then copied up
    dev::from_host(d.dlosses, dlosses.data(), N);
    dev::cross_entropy_backward(d.dlogits, d.dlosses, a.logits, a.lse, mtp_targets_dev_[k], N, V);
    // forward: logits_k = final_in @ head^T;  final_in = RMSNorm(h^k; norm)
    dev::matmul_backward(d.dnorm_in, g.head, d.dlogits, a.final_in, p.head, N, C, V);
    dev::rmsnorm_backward(d.dres, g.norm, d.dnorm_in, hk, p.norm, a.final_rstd, N, C);
    dev::add_inplace(d.dres, d.dcarry, NC);  // h^k also fed module k+1 (through its hnorm)
    // forward: h^k = Block_k(m)   (layer_backward turns d(h^k) in dres into d(m))
    layer_backward(l, a.m);
    // forward: m = cat @ proj^T
    dev::matmul_backward(d.dcat, mg.proj, d.dres, a.cat, mp.proj, N, 2 * C, C);
    // forward: cat = [hn, en]: split the gradient (dnorm_in <- d(hn), dtmp <- d(en))
    dev::copy_cols(d.dnorm_in, C, 0, d.dcat, 2 * C, 0, N, C);
    dev::copy_cols(d.dtmp, C, 0, d.dcat, 2 * C, C, N, C);
    // forward: en = RMSNorm(emb; enorm); emb = embed[etok]   (dres is free again: reuse it for d(emb))
    dev::rmsnorm_backward(d.dres, mg.enorm, d.dtmp, a.emb, mp.enorm, a.en_rstd, N, C);
    dev::embedding_backward(g.embed, d.dres, mtp_tokens_dev_[k], N, C);
    // forward: hn = RMSNorm(h^{k-1}; hnorm)  -> carried to module k-1 (or to x_L when k = 0)
    const real* h_prev = k ? acts_.layers[l - 1].out : final_hidden();
    dev::rmsnorm_backward(d.dcarry, mg.hnorm, d.dnorm_in, h_prev, mp.hnorm, a.hn_rstd, N, C);
  }
}

template void Transformer<float>::mtp_forward(const int*, const int*);
template void Transformer<float>::mtp_backward();
template void Transformer<double>::mtp_forward(const int*, const int*);
template void Transformer<double>::mtp_backward();

}  // namespace tinyds

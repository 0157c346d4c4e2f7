// kernels/bench.cpp — timing of the kernels for `tinyds bench --kernels` (see bench.h).
// Shapes: rmsnorm N 1024 rows x C 1024; matmul N = IC = OC = 256; residual, swiglu, adamw n = 1M elements;
// attention B 4, T 128, H 8, D 32 (causal); embedding / rope / cross-entropy / router N = 2048 rows (C 256, V 128,
// E 16 experts top-2); grouped expert GEMM P = 2048 (token, expert) rows, IC 256, OC 128, E 16 equal slices;
// MoE dispatch, combine and balance N 2048 tokens, C 256, E 16, K 2 (16 sequences of 128 for the sequence-wise
// loss); MLA absorbed decode B 4 sequences, 1 new token, H 8, D 32, R 16, L 64 over 512 cached rows.
// The post-training and sampling rows are in bench_posttrain.cpp.
#include "kernels/bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/adamw.cuh"
#include "kernels/attention.cuh"
#include "kernels/bench_util.h"
#include "kernels/common.cuh"
#include "kernels/cross_entropy.cuh"
#include "kernels/embedding.cuh"
#include "kernels/matmul.cuh"
#include "kernels/mla_decode.cuh"
#include "kernels/moe_balance.cuh"
#include "kernels/moe_dispatch.cuh"
#include "kernels/moe_grouped_matmul.cuh"
#include "kernels/moe_router.cuh"
#include "kernels/residual.cuh"
#include "kernels/rmsnorm.cuh"
#include "kernels/rope.cuh"
#include "kernels/swiglu.cuh"

namespace tinyds::cuda {

namespace bench {

namespace {

// Median seconds per call over `reps` calls, after one warm-up call.
double time_call(const std::function<void()>& call, int reps) {
  call();
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<double> t;
  for (int r = 0; r < reps; r++) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    CUDA_CHECK(cudaDeviceSynchronize());  // launches return before the GPU has finished (native build)
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

void time_rows(const std::vector<Row>& rows, int reps) {
  for (const Row& r : rows) {
    const double s = time_call(r.call, reps);
    const double rate = r.flops > 0 ? r.flops / s * 1e-9 : r.bytes / s * 1e-9;
    std::printf("%-20s %3d  %-16s %12.3f  %.2f %s\n", r.op.c_str(), r.version, r.shape.c_str(), s * 1e3, rate,
                r.flops > 0 ? "GFLOP/s" : "GB/s");
    std::fflush(stdout);  // a row at a time: the whole table takes a while under the emulation
  }
}

}  // namespace bench

namespace {

using namespace bench;

// residual, rmsnorm, matmul, attention, swiglu, AdamW, global norm, embedding, rope, cross-entropy, the MoE router
// and the grouped expert GEMM.
int time_model_rows(int reps) {
  const long n_res = 1L << 20;
  const int N = 1024, C = 1024, M = 256;
  Buffer a(n_res, 1), b(n_res, 2), out(n_res, 3);
  Buffer x(static_cast<size_t>(N) * C, 4), y(static_cast<size_t>(N) * C, 5), dy(static_cast<size_t>(N) * C, 6);
  Buffer w(C, 7), dw(C, 8), rstd(N, 9);
  Buffer mi(M * M, 10), mw(M * M, 11), mb(M, 12), mo(M * M, 13), mdo(M * M, 14), mdi(M * M, 15), mdw(M * M, 16),
      mdb(M, 17);
  rmsnorm_forward(y.p, rstd.p, x.p, w.p, N, C, 1e-5f);  // a valid rstd for the backward rows

  std::vector<Row> rows;
  const double f = sizeof(float);
  rows.push_back({"residual_forward", 1, "n=1M", 0, 3 * f * n_res, [&] { residual_forward(out.p, a.p, b.p, n_res, 1); }});
  for (int v = 1; v <= 3; v++) {
    rows.push_back({"rmsnorm_forward", v, "N=1024 C=1024", 0, 2 * f * N * C,
                    [&, v] { rmsnorm_forward(y.p, rstd.p, x.p, w.p, N, C, 1e-5f, v); }});
    rows.push_back({"rmsnorm_backward", v, "N=1024 C=1024", 0, 3 * f * N * C,
                    [&, v] { rmsnorm_backward(y.p, dw.p, dy.p, x.p, w.p, rstd.p, N, C, v); }});
  }
  const int max_matmul = TINYDS_CUDA_NATIVE ? 4 : 3;
  for (int v = 1; v <= max_matmul; v++) {
    rows.push_back({"matmul_forward", v, "256x256x256", 2.0 * M * M * M, 0,
                    [&, v] { matmul_forward(mo.p, mi.p, mw.p, mb.p, M, M, M, v); }});
    rows.push_back({"matmul_backward", v, "256x256x256", 4.0 * M * M * M, 0,
                    [&, v] { matmul_backward(mdi.p, mdw.p, mdb.p, mdo.p, mi.p, mw.p, M, M, M, v); }});
  }

  // Attention (causal): QK^T and PV over the lower triangle, 2 * B*H*T*T/2 * (Dk + Dv) FLOPs forward, twice that
  // backward.
  const int AB = 4, AT = 128, AH = 8, AD = 32;
  const double att_flops = 2.0 * AB * AH * (AT * (AT + 1) / 2.0) * (AD + AD);
  Buffer q(static_cast<size_t>(AB) * AT * AH * AD, 20), k(static_cast<size_t>(AB) * AT * AH * AD, 21),
      v(static_cast<size_t>(AB) * AT * AH * AD, 22), ao(static_cast<size_t>(AB) * AT * AH * AD, 23),
      att(static_cast<size_t>(AB) * AH * AT * AT, 24), dq(static_cast<size_t>(AB) * AT * AH * AD, 25),
      dk(static_cast<size_t>(AB) * AT * AH * AD, 26), dv(static_cast<size_t>(AB) * AT * AH * AD, 27);
  const float ascale = 1.0f / 5.656854f;  // 1 / sqrt(D)
  attention_forward(ao.p, att.p, q.p, k.p, v.p, AB, AT, AH, AH, AD, AD, ascale, 1);  // valid att for backward
  for (int ver = 1; ver <= 2; ver++)
    rows.push_back({"attention_forward", ver, "B4 T128 H8 D32", att_flops, 0,
                    [&, ver] { attention_forward(ao.p, att.p, q.p, k.p, v.p, AB, AT, AH, AH, AD, AD, ascale, ver); }});
  rows.push_back({"attention_backward", 1, "B4 T128 H8 D32", 2 * att_flops, 0,
                  [&] { attention_backward(dq.p, dk.p, dv.p, ao.p, q.p, k.p, v.p, att.p, AB, AT, AH, AH, AD, AD, ascale, 1); }});
  rows.push_back({"swiglu_forward", 1, "n=1M", 0, 3 * f * n_res, [&] { swiglu_forward(out.p, a.p, b.p, n_res, 1); }});
  Buffer adam_m(n_res, 28), adam_v(n_res, 29);
  CUDA_CHECK(cudaMemset(adam_v.p, 0, n_res * sizeof(float)));  // the second moment is never negative
  rows.push_back({"adamw_update", 1, "n=1M", 0, 7 * f * n_res,  // reads p, g, m, v; writes p, m, v
                  [&] { adamw_update(out.p, a.p, adam_m.p, adam_v.p, n_res, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 3, 1); }});
  for (int ver = 1; ver <= 2; ver++)
    rows.push_back({"global_norm", ver, "n=1M", 0, f * n_res, [&, ver] { global_norm(rstd.p, a.p, n_res, ver); }});

  // Rows of tokens: embedding, rope, cross-entropy, the MoE router, the grouped expert GEMM.
  const int RN = 2048, RC = 256, RV = 128, RE = 16, RK = 2, RIC = 256, ROC = 128;
  std::vector<int> tokens_host(RN), offsets_host(RE + 1);
  for (int i = 0; i < RN; i++) tokens_host[i] = (i * 37) % RV;
  for (int e = 0; e <= RE; e++) offsets_host[e] = e * (RN / RE);
  DeviceArray<int> tokens(tokens_host), offsets(offsets_host),
      topk_idx(std::vector<int>(static_cast<size_t>(RN) * RK));
  Buffer wte(static_cast<size_t>(RV) * RC, 30), emb(static_cast<size_t>(RN) * RC, 31), dwte(static_cast<size_t>(RV) * RC, 32),
      logits(static_cast<size_t>(RN) * RV, 33), losses(RN, 34), lse(RN, 35), dlogits(static_cast<size_t>(RN) * RV, 36),
      rlogits(static_cast<size_t>(RN) * RE, 37), rbias(RE, 38), rscores(static_cast<size_t>(RN) * RE, 39),
      topk_w(static_cast<size_t>(RN) * RK, 40), ginp(static_cast<size_t>(RN) * RIC, 41),
      gw(static_cast<size_t>(RE) * ROC * RIC, 42), gout(static_cast<size_t>(RN) * ROC, 43);
  rows.push_back({"embedding_forward", 1, "N2048 C256", 0, 2 * f * RN * RC,
                  [&] { embedding_forward(emb.p, tokens.p, wte.p, RN, RC, 1); }});
  for (int ver = 1; ver <= 2; ver++)
    rows.push_back({"embedding_backward", ver, "N2048 C256", 0, 2 * f * RN * RC,
                    [&, ver] { embedding_backward(dwte.p, emb.p, tokens.p, RN, RC, ver); }});
  rows.push_back({"rope_forward", 1, "B16 T128 H1 R256", 0, 2 * f * RN * RC,
                  [&] { rope_forward(emb.p, emb.p, 16, 128, 1, RC, 0, 10000.0f, 1); }});
  cross_entropy_forward(losses.p, lse.p, logits.p, tokens.p, RN, RV, 1);  // a valid lse for the backward row
  rows.push_back({"cross_entropy_fwd", 1, "N2048 V128", 0, f * RN * RV,
                  [&] { cross_entropy_forward(losses.p, lse.p, logits.p, tokens.p, RN, RV, 1); }});
  rows.push_back({"cross_entropy_bwd", 1, "N2048 V128", 0, 2 * f * RN * RV,
                  [&] { cross_entropy_backward(dlogits.p, losses.p, logits.p, lse.p, tokens.p, RN, RV, 1); }});
  for (int ver = 1; ver <= 2; ver++)
    rows.push_back({"moe_router_forward", ver, "N2048 E16 K2", 0, 2 * f * RN * RE, [&, ver] {
                      moe_router_forward(rscores.p, topk_idx.p, topk_w.p, rlogits.p, rbias.p, RN, RE, RK,
                                         ScoreFunc::sigmoid, 1.0f, 1, 1, ver);
                    }});
  for (int ver = 1; ver <= 2; ver++)
    rows.push_back({"moe_grouped_matmul", ver, "P2048 256->128", 2.0 * RN * RIC * ROC, 0, [&, ver] {
                      moe_grouped_matmul_forward(gout.p, ginp.p, gw.p, offsets.p, RN, RIC, ROC, RE, ver);
                    }});

  time_rows(rows, reps);
  return static_cast<int>(rows.size());
}

// The MoE dispatch (counting sort, gather, combine), the load histogram, bias update and balance losses, and MLA's
// absorbed decode attention.
int time_moe_mla_rows(int reps) {
  const double f = sizeof(float);
  std::vector<Row> rows;
  const int N = 2048, C = 256, E = 16, K = 2, P = N * K, SB = 16, ST = N / SB;
  std::vector<int> topk_host(static_cast<size_t>(P));
  for (int i = 0; i < N; i++)
    for (int k = 0; k < K; k++) topk_host[i * K + k] = (i * 7 + k * 5) % E;  // K distinct experts per token
  DeviceArray<int> topk_idx(topk_host), offsets{std::vector<int>(E + 1)}, sorted_token{std::vector<int>(P)},
      sorted_slot{std::vector<int>(P)}, pair_pos{std::vector<int>(P)}, load{std::vector<int>(E)};
  Buffer x(static_cast<size_t>(N) * C, 90), xe(static_cast<size_t>(P) * C, 91), dx(static_cast<size_t>(N) * C, 92),
      topk_w(P, 93, 0.0f, 1.0f), dtopk_w(P, 94), scores(static_cast<size_t>(N) * E, 95, 0.0f, 1.0f),
      dscores(static_cast<size_t>(N) * E, 96), dye(static_cast<size_t>(P) * C, 99),
      fseq(static_cast<size_t>(SB) * E, 97), bias(E, 98);
  // Valid sort outputs and loads for the rows that read them.
  moe_dispatch_sort(offsets.p, sorted_token.p, sorted_slot.p, pair_pos.p, topk_idx.p, N, K, E);
  moe_expert_load(load.p, topk_idx.p, N, K, E);
  rows.push_back({"moe_dispatch_sort", 1, "N2048 E16 K2", 0, 4 * f * P, [&] {
                    moe_dispatch_sort(offsets.p, sorted_token.p, sorted_slot.p, pair_pos.p, topk_idx.p, N, K, E);
                  }});
  rows.push_back({"moe_gather_forward", 1, "N2048 C256 K2", 0, 2 * f * P * C,
                  [&] { moe_gather_forward(xe.p, x.p, sorted_token.p, P, C); }});
  rows.push_back({"moe_gather_backward", 1, "N2048 C256 K2", 0, f * (P + N) * C,
                  [&] { moe_gather_backward(dx.p, xe.p, pair_pos.p, N, K, C); }});
  rows.push_back({"moe_combine_forward", 1, "N2048 C256 K2", 0, f * (P + N) * C,
                  [&] { moe_combine_forward(dx.p, xe.p, topk_w.p, pair_pos.p, N, K, C); }});
  rows.push_back({"moe_combine_backward", 1, "N2048 C256 K2", 0, f * (2 * P + N) * C,
                  [&] { moe_combine_backward(dye.p, dtopk_w.p, dx.p, xe.p, topk_w.p, pair_pos.p, N, K, C); }});
  rows.push_back({"moe_expert_load", 1, "N2048 E16 K2", 0, f * P,
                  [&] { moe_expert_load(load.p, topk_idx.p, N, K, E); }});
  rows.push_back({"moe_update_bias", 1, "E16", 0, 3 * f * E, [&] { moe_update_bias(bias.p, load.p, E, 1e-3f); }});
  rows.push_back({"moe_maxvio", 1, "E16", 0, f * E, [&] { (void)moe_maxvio(load.p, E); }});
  rows.push_back({"moe_seqaux_forward", 1, "B16 T128 E16 K2", 0, f * (N * E + P),
                  [&] { (void)moe_seqaux_forward(fseq.p, scores.p, topk_idx.p, SB, ST, E, K, 1e-4f); }});
  rows.push_back({"moe_seqaux_backward", 1, "B16 T128 E16", 0, 2 * f * N * E,
                  [&] { moe_seqaux_backward(dscores.p, 1.0f, fseq.p, scores.p, SB, ST, E, 1e-4f); }});
  rows.push_back({"moe_aux_forward", 1, "N2048 E16 K2", 0, f * (N * E + P),
                  [&] { (void)moe_aux_forward(fseq.p, scores.p, topk_idx.p, N, E, K, 1e-4f); }});
  rows.push_back({"moe_aux_backward", 1, "N2048 E16", 0, 2 * f * N * E,
                  [&] { moe_aux_backward(dscores.p, 1.0f, fseq.p, scores.p, N, E, 1e-4f); }});

  // MLA absorbed decode: one new token per sequence attending to 512 cached latent rows. Per (b, h): q_lat and
  // o = W_UV o_lat are D*L multiply-adds each; the scores (L + R) and o_lat (L) per cached row.
  const int MB = 4, MT = 1, MH = 8, MD = 32, MR = 16, ML = 64, Tmax = 512, pos = Tmax - MT;
  const double rows_seen = pos + 1;
  const double mla_flops = 2.0 * MB * MT * MH * (2.0 * MD * ML + rows_seen * (2 * ML + MR));
  Buffer q(static_cast<size_t>(MB) * MT * MH * (MD + MR), 100), ckv(static_cast<size_t>(MB) * Tmax * ML, 101),
      kr(static_cast<size_t>(MB) * Tmax * MR, 102), wkv_b(static_cast<size_t>(MH) * 2 * MD * ML, 103),
      o(static_cast<size_t>(MB) * MT * MH * MD, 104);
  for (int ver = 1; ver <= 2; ver++)
    rows.push_back({"mla_decode_absorbed", ver, "B4 H8 L64 n512", mla_flops, 0, [&, ver] {
                      mla_decode_attention_absorbed(o.p, q.p, ckv.p, kr.p, wkv_b.p, MB, MT, MH, MD, MR, ML, Tmax, pos,
                                                    ver);
                    }});
  time_rows(rows, reps);
  return static_cast<int>(rows.size());
}

}  // namespace

int bench_kernels(int reps) {
  if (!TINYDS_CUDA_NATIVE)
    std::printf("kernels under the CPU emulation of CUDA: these are CPU times of the emulated kernels (fibers, one\n"
                "block per OpenMP thread), NOT GPU figures; they show what each version costs to emulate.\n");
  std::printf("%-20s %3s  %-16s %12s  %s\n", "op", "ver", "shape", "ms/call", "rate");
  std::fflush(stdout);
  return time_model_rows(reps) + time_moe_mla_rows(reps) + time_posttrain_rows(reps);
}

}  // namespace tinyds::cuda

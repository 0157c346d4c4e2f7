// kernels/bench_posttrain.cpp — timing of the post-training and sampling kernels for `tinyds bench --kernels`
// (see bench.h). Shapes: B 64 sequences x T 256 positions (n = 16384 tokens; GRPO groups of G = 8); log-probs and
// entropy N 2048 rows x V 512; sampling N 256 rows x V 1024 (temperature 1, top-k 50, top-p 0.9).
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "kernels/bench_util.h"
#include "kernels/gae.cuh"
#include "kernels/grpo.cuh"
#include "kernels/kl.cuh"
#include "kernels/logprobs.cuh"
#include "kernels/ppo.cuh"
#include "kernels/sampling.cuh"

namespace tinyds::cuda::bench {

int time_posttrain_rows(int reps) {
  const double f = sizeof(float);
  std::vector<Row> rows;

  // Log-probs of the sampled tokens and the entropy, forward and backward: one block per row of logits.
  const int N = 2048, V = 512;
  std::vector<int> targets_host(N);
  for (int i = 0; i < N; i++) targets_host[i] = i % 9 == 0 ? -1 : (i * 37) % V;  // every 9th row masked
  DeviceArray<int> targets(targets_host);
  Buffer logits(static_cast<size_t>(N) * V, 50), lp_rows(N, 51), dlp_rows(N, 52),
      dlogits(static_cast<size_t>(N) * V, 53);
  rows.push_back({"logprobs_forward", 1, "N2048 V512", 0, f * N * V,
                  [&] { logprobs_forward(lp_rows.p, logits.p, targets.p, N, V, 1.0, 1); }});
  rows.push_back({"logprobs_backward", 1, "N2048 V512", 0, 2 * f * N * V,
                  [&] { logprobs_backward(dlogits.p, dlp_rows.p, logits.p, targets.p, N, V, 1.0, 1); }});
  rows.push_back({"entropy_forward", 1, "N2048 V512", 0, f * N * V,
                  [&] { entropy_forward(lp_rows.p, logits.p, targets.p, N, V, 1.0, 1); }});
  rows.push_back({"entropy_backward", 1, "N2048 V512", 0, 2 * f * N * V,
                  [&] { entropy_backward(dlogits.p, dlp_rows.p, logits.p, targets.p, N, V, 1.0, 1); }});

  // Per-token losses over (B, T): log-probs near log(1/V), a mask whose first 32 positions are the prompt (0).
  const int B = 64, T = 256;
  const long n = static_cast<long>(B) * T;
  std::vector<float> mask_host(n);
  for (long i = 0; i < n; i++) mask_host[i] = i % T >= 32 ? 1.0f : 0.0f;
  DeviceArray<float> mask(mask_host);
  Buffer lp(n, 60, -6.5f, -5.5f), lp_old(n, 61, -6.5f, -5.5f), lp_ref(n, 62, -6.5f, -5.5f), dlp(n, 63),
      values(n, 64), values_old(n, 65), adv(n, 66), returns(n, 67), rewards(n, 68), dvalues(n, 69), kl(n, 70),
      scores(B, 71), seq_rewards(B, 72), seq_adv(B, 73), stats(16, 74);
  GRPOConfig gcfg;  // G = 8, beta 0.04: the k3 term is on
  PPOConfig pcfg;
  rows.push_back({"grpo_advantages", 1, "B64 G8", 0, 2 * f * B,
                  [&] { grpo_advantages(seq_adv.p, seq_rewards.p, B, gcfg, 1); }});
  rows.push_back({"grpo_loss_forward", 1, "B64 T256", 0, 4 * f * n, [&] {
                    grpo_loss_forward(stats.p, lp.p, lp_old.p, lp_ref.p, seq_adv.p, mask.p, B, T, gcfg, 1);
                  }});
  rows.push_back({"grpo_loss_backward", 1, "B64 T256", 0, 5 * f * n, [&] {
                    grpo_loss_backward(dlp.p, 1.0, lp.p, lp_old.p, lp_ref.p, seq_adv.p, mask.p, B, T, gcfg, 1);
                  }});
  rows.push_back({"ppo_rewards", 1, "B64 T256", 0, 4 * f * n, [&] {
                    ppo_rewards(rewards.p, lp_old.p, lp_ref.p, scores.p, mask.p, B, T, pcfg.kl_coef, 1);
                  }});
  rows.push_back({"ppo_loss_forward", 1, "n=16384", 0, 7 * f * n, [&] {
                    ppo_loss_forward(stats.p, lp.p, values.p, lp_old.p, values_old.p, adv.p, returns.p, mask.p, n,
                                     pcfg, 1);
                  }});
  rows.push_back({"ppo_loss_backward", 1, "n=16384", 0, 9 * f * n, [&] {
                    ppo_loss_backward(dlp.p, dvalues.p, 1.0, lp.p, values.p, lp_old.p, values_old.p, adv.p,
                                      returns.p, mask.p, n, pcfg, 1);
                  }});
  rows.push_back({"compute_gae", 1, "B64 T256", 0, 5 * f * n, [&] {
                    compute_gae(adv.p, returns.p, rewards.p, values.p, mask.p, B, T, pcfg.gamma, pcfg.lam, 1);
                  }});
  rows.push_back({"masked_whiten", 1, "n=16384", 0, 3 * f * n,
                  [&] { masked_whiten(adv.p, returns.p, mask.p, n, true, 1); }});
  // (Names spelled here: this library does not link the CPU ops' kl_estimator_name.)
  const std::pair<KLEstimator, const char*> estimators[] = {
      {KLEstimator::k1, "k1"}, {KLEstimator::k2, "k2"}, {KLEstimator::k3, "k3"}};
  for (const auto& estimator : estimators) {
    const KLEstimator k = estimator.first;
    const std::string shape = std::string("n=16384 ") + estimator.second;
    rows.push_back({"kl_forward", 1, shape, 0, 3 * f * n, [&, k] { kl_forward(kl.p, lp.p, lp_ref.p, n, k, 1); }});
    rows.push_back({"kl_backward", 1, shape, 0, 4 * f * n,
                    [&, k] { kl_backward(dlp.p, kl.p, lp.p, lp_ref.p, n, k, 1); }});
  }

  // Next-token sampling: one block per row ranks the whole row (V <= 4096 in shared memory).
  const int SN = 256, SV = 1024;
  std::vector<double> uniforms_host(SN);
  for (int i = 0; i < SN; i++) uniforms_host[i] = (i + 0.5) / SN;
  DeviceArray<double> uniforms(uniforms_host);
  DeviceArray<int> sampled{std::vector<int>(SN)};
  Buffer slogits(static_cast<size_t>(SN) * SV, 80, -4.0f, 4.0f);
  rows.push_back({"sample_tokens", 1, "N256 V1024", 0, f * SN * SV,
                  [&] { sample_tokens(sampled.p, slogits.p, uniforms.p, SN, SV, 1.0f, 50, 0.9f, 1); }});

  time_rows(rows, reps);
  return static_cast<int>(rows.size());
}

}  // namespace tinyds::cuda::bench

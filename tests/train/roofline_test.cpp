// tests/train/roofline_test.cpp — the per-kernel FLOPs, bytes and launches of `tinyds bench --device cuda
// --analysis` against counts made another way: the GEMM FLOPs against 6 N_active (train/bench.h, itself checked
// against a hand count in bench_test.cpp), the launches of a dense step counted by hand from
// Transformer::forward / backward, one matmul's bytes by hand, and the bound of a kernel on a made-up device.
// Shapes: B batch, T time, N = B*T, C d_model, V vocab, H heads, Hkv kv heads, D head_dim, F ffn_hidden, L n_layer.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "tinyds/model/config.h"
#include "tinyds/train/bench.h"
#include "tinyds/train/roofline.h"

using namespace tinyds;

namespace {

// The tiny GQA config of bench_test.cpp: every width different (H*D 24, Hkv*D 12, C 16, F 20, V 32).
ModelConfig tiny_dense() {
  ModelConfig m;
  m.vocab_size = 32; m.max_seq_len = 16; m.n_layer = 2; m.d_model = 16; m.attention = AttentionKind::gqa;
  m.n_head = 4; m.n_kv_head = 2; m.head_dim = 6; m.ffn_hidden = 20;
  return m;
}

// Its DeepSeek-style variant (MLA, 4 experts top-2 + 1 shared, first layer dense, one MTP module); N*K = 2*8*2 = 32
// pairs divide evenly among E = 4 experts, as the analysis assumes (a balanced router).
ModelConfig tiny_deepseek() {
  ModelConfig m = tiny_dense();
  m.attention = AttentionKind::mla; m.n_kv_head = 4; m.q_lora_rank = 8; m.kv_lora_rank = 10; m.rope_dim = 4;
  m.n_routed_experts = 4; m.n_activated_experts = 2; m.n_shared_experts = 1; m.moe_inter_dim = 12;
  m.n_dense_layers = 1; m.mtp_depth = 1; m.balance = "bias";
  return m;
}

double sum_flops(const std::vector<KernelCost>& ks, bool matmul_only, bool attention_only) {
  double s = 0;
  for (const KernelCost& k : ks) {
    const bool is_matmul = k.kernel.rfind("matmul", 0) == 0, is_attention = k.kernel.rfind("attention", 0) == 0;
    if ((matmul_only && is_matmul) || (attention_only && is_attention)) s += k.calls * k.flops;
  }
  return s;
}

}  // namespace

TEST_CASE("train/roofline: GEMM and attention FLOPs of a step equal the model's 6 N_active and attention count") {
  const int B = 2, T = 8;
  for (const ModelConfig& m : {tiny_dense(), tiny_deepseek()}) {
    CAPTURE(attention_kind_name(m.attention));
    const std::vector<KernelCost> ks = training_step_kernels(m, B, T);
    const FlopCount f = training_flops_per_token(m, T);
    // Integers far below 2^53 (a few million): exact in double, so equality.
    CHECK(sum_flops(ks, true, false) == f.matmul_flops * B * T);
    CHECK(sum_flops(ks, false, true) == f.attention_flops * B * T);
  }
}

TEST_CASE("train/roofline: launches of a dense step match a count from Transformer::forward and backward") {
  const ModelConfig m = tiny_dense();
  long launches = 0;
  for (const KernelCost& k : training_step_kernels(m, 2, 8)) launches += k.calls;
  // Per block, forward: attn rmsnorm 1, wq wk wv 3, rope q k 2, attention 1, wo 1, residual 1, ffn rmsnorm 1,
  // w1 w3 2, swiglu 1, w2 1, residual 1 = 15. Backward: w2 2 (dinp, dweight), swiglu 1, w1 w3 4, add_inplace 2,
  // memset of dnorm_in 1, ffn rmsnorm 2 (dinp, dweight), add_inplace 1, wo 2, attention 1, rope 2, wq 2, wk wv 4,
  // add_inplace 2, attn rmsnorm 2, add_inplace 1 = 29. 44 per block.
  // Outside the blocks: memset grads 1, embedding 1 + 1, final rmsnorm 1 + 2, head 1 + 2, cross-entropy 1 + 1,
  // global norm 1, clip 1, AdamW 1 = 14.
  CHECK(launches == 44 * m.n_layer + 14);
}

TEST_CASE("train/roofline: a matmul's bytes, blocks and bound by hand") {
  const ModelConfig m = tiny_dense();
  const int B = 2, T = 8, N = B * T, C = 16, V = 32;
  const KernelCost* head = nullptr;
  const std::vector<KernelCost> ks = training_step_kernels(m, B, T);
  for (const KernelCost& k : ks)
    if (k.kernel == "matmul fwd" && k.phase == "head + loss") head = &k;
  REQUIRE(head != nullptr);
  CHECK(head->calls == 1);
  CHECK(head->flops == 2.0 * N * C * V);
  CHECK(head->bytes == 4.0 * (N * C + V * C + N * V));  // read x and W once, write the logits once
  CHECK(head->blocks == 1);                             // one 64x64 tile covers (16, 32)

  // A made-up device: 10 TFLOP/s FP32, 100 TF32, 200 BF16, 1000 GB/s, 4 SMs.
  const DevicePeak dev{"x", "test device", 10.0, 100.0, 200.0, 1000.0, 4};
  KernelCost k{"matmul fwd", "mla", "", 1, 2e9, 1e6, 2, true};  // 2 GFLOP, 1 MB: 2000 FLOP/byte
  KernelBound b = kernel_bound(k, dev);
  CHECK(b.intensity == doctest::Approx(2000.0));
  CHECK_FALSE(b.memory_bound);
  CHECK(b.roofline_fp32_s == doctest::Approx(2e9 / 10e12));
  CHECK(b.roofline_tf32_s == doctest::Approx(2e9 / 100e12));
  // v3: half the FP32 peak, on 2 of 4 SMs: a quarter of the peak
  CHECK(b.tinyds_v3_s == doctest::Approx(2e9 / (10e12 * 0.5 * 0.5)));
  KernelCost e{"adamw", "optimizer", "", 3, 1e6, 1e8, 100, false};  // 0.01 FLOP/byte: memory-bound
  b = kernel_bound(e, dev);
  CHECK(b.memory_bound);
  CHECK(b.roofline_fp32_s == doctest::Approx(1e8 / 1e12));
  CHECK(b.roofline_tf32_s == doctest::Approx(1e8 / 1e12));  // not a GEMM: no tensor cores
  CHECK(b.tinyds_v3_s == doctest::Approx(1e8 / 1e12));      // 100 blocks fill the 4 SMs
  const StepBound s = step_bound({k, e}, dev, 1e-3);  // a 1 ms launch floor exceeds both kernels' times
  CHECK(s.launches == 4);
  CHECK(s.flops == doctest::Approx(2e9 + 3e6));
  CHECK(s.tinyds_v3_launch_s == doctest::Approx(4e-3));
  CHECK(s.tinyds_v3_s == doctest::Approx(2e9 / 2.5e12 + 3e-4));
}

TEST_CASE("train/roofline: bad batch shapes are refused") {
  CHECK_THROWS(training_step_kernels(tiny_dense(), 0, 8));
  CHECK_THROWS(training_step_kernels(tiny_dense(), 2, 0));
}

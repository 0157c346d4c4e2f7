// tests/train/bench_test.cpp — the figures `tinyds bench` prints: the FLOP count per training token against a
// count made by hand, the GEMM probe, the step timer, the op profile's call counts, and the PyTorch runner's
// command line and its failure path (no crash without python).
// Shapes: B batch, T time, C d_model, V vocab, H heads, Hkv kv heads, D head_dim, F ffn_hidden, L n_layer.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>

#include "tinyds/core/error.h"
#include "tinyds/model/config.h"
#include "tinyds/train/bench.h"
#include "tinyds/train/bench_profile.h"
#include "tinyds/train/bench_torch.h"

using namespace tinyds;

namespace {

// A tiny GQA config whose widths are all different (H*D 24 != C 16 != F 20), so mixing up two of them in the
// count changes the result.
ModelConfig tiny_model() {
  ModelConfig m;
  m.vocab_size = 32; m.max_seq_len = 16; m.n_layer = 2; m.d_model = 16; m.attention = AttentionKind::gqa;
  m.n_head = 4; m.n_kv_head = 2; m.head_dim = 6; m.ffn_hidden = 20;
  return m;
}

}  // namespace

TEST_CASE("train/bench: flops per token match a hand count of the matmul shapes") {
  const ModelConfig m = tiny_model();
  const int T = 8;
  // By hand, (out x in) of every matrix used as a GEMM; C 16, H*D 4*6 = 24, Hkv*D 2*6 = 12, F 20, V 32:
  const long per_layer = 24 * 16    // wq (H*D, C)
                         + 12 * 16  // wk (Hkv*D, C)
                         + 12 * 16  // wv (Hkv*D, C)
                         + 16 * 24  // wo (C, H*D)
                         + 20 * 16  // w1 (F, C)
                         + 20 * 16  // w3 (F, C)
                         + 16 * 20; // w2 (C, F)
  const long matmul_params = 2 * per_layer + 32 * 16;  // 2 layers + head (V, C); embed is a lookup, not a GEMM
  const FlopCount f = training_flops_per_token(m, T);
  CHECK(f.matmul_params == matmul_params);
  // Integers well below 2^53: exact in double, so equality is the right comparison.
  CHECK(f.matmul_flops == 6.0 * matmul_params);
  // 3 (fwd + bwd) * 2 (QK^T, PV) * 2 (mul + add) * L * T * H * D / 2 (causal) = 6 * 2 * 8 * 4 * 6
  CHECK(f.attention_flops == 6.0 * 2 * 8 * 4 * 6);
  CHECK(f.per_token() == f.matmul_flops + f.attention_flops);

  // A second route: all parameters minus the embed lookup (V, C) and the 1-D norm gains (2 per layer + final).
  Config c = Config::preset("nano-dense");
  c.model = m;
  CHECK(f.matmul_params == c.num_params() - 32 * 16 - (2 * 2 + 1) * 16);
}

TEST_CASE("train/bench: flops of a DeepSeek-style model count active parameters only") {
  ModelConfig m = tiny_model();
  m.attention = AttentionKind::mla; m.n_kv_head = 4; m.q_lora_rank = 8; m.kv_lora_rank = 10; m.rope_dim = 4;
  m.n_routed_experts = 4; m.n_activated_experts = 2; m.n_shared_experts = 1; m.moe_inter_dim = 12;
  m.n_dense_layers = 1; m.mtp_depth = 1;
  const int T = 8;
  // By hand (C 16, H 4, D 6, R 4, Q 8, L 10, F 20, Fe 12, E 4, K 2, V 32):
  const long mla = 8 * 16            // wq_a (Q, C)
                   + 4 * (6 + 4) * 8 // wq_b (H*(D+R), Q)
                   + (10 + 4) * 16   // wkv_a (L+R, C)
                   + 4 * 2 * 6 * 10  // wkv_b (H*2D, L)
                   + 16 * 4 * 6;     // wo (C, H*D)
  const long dense_ffn = 3 * 20 * 16;
  const long moe_ffn = 4 * 16                // gate (E, C): every token scores every expert
                       + 3 * 12 * 16 * 2     // experts w1, w3, w2: K = 2 of the E = 4 experts' (Fe x C) each
                       + 3 * 12 * 16;        // the shared expert (Ns Fe = 12)
  const long head = 32 * 16;
  const long active = (mla + dense_ffn) + (mla + moe_ffn)  // layer 0 dense, layer 1 MoE
                      + (16 * 32 + mla + moe_ffn)          // the MTP module: proj (C, 2C) and its (MoE) block
                      + 2 * head;                          // the head, for the main model and the MTP module
  const FlopCount f = training_flops_per_token(m, T);
  CHECK(f.matmul_params == active);
  CHECK(f.matmul_flops == 6.0 * active);
  // 3 blocks (2 + the MTP block) x 3 (fwd + bwd) x 2 (mul + add) x T/2 x H x ((D + R) for QK^T + D for PV)
  CHECK(f.attention_flops == 3.0 * 6 * 4 * 4 * (10 + 6));
}

TEST_CASE("train/bench: gemm probe returns a positive rate and rejects bad sizes") {
  const double g = gemm_gflops(64, 3);
  CHECK(std::isfinite(g));
  CHECK(g > 0);
  CHECK_THROWS_AS(gemm_gflops(0, 3), Error);
  CHECK_THROWS_AS(gemm_gflops(64, 0), Error);
}

TEST_CASE("train/bench: median of odd and even counts") {
  CHECK(median_of({3.0, 1.0, 2.0}) == 2.0);
  CHECK(median_of({4.0, 1.0, 3.0, 2.0}) == 2.5);  // mean of the middle two
  CHECK_THROWS_AS(median_of({}), Error);
}

TEST_CASE("train/bench: training step timer runs full steps on the nano preset") {
  const Config c = Config::preset("nano-dense");
  const StepTimes st = time_training_steps(c, 1, 2, 7);
  REQUIRE(st.step_s.size() == 2);  // warmup steps are not recorded
  CHECK(st.forward_s.size() == 2);
  for (double s : st.step_s) CHECK(s > 0);
  CHECK(st.num_params == c.num_params());
  // A fresh model (init std 0.02) on uniform random targets predicts ~uniformly: loss ~ log V. After two
  // AdamW steps at lr 3e-3 it can move a little; 0.5 nats is far from any other plausible value.
  CHECK(std::fabs(st.last_loss - std::log(double(c.model.vocab_size))) < 0.5);
  CHECK_THROWS_AS(time_training_steps(c, 0, 0, 7), Error);
}

TEST_CASE("train/bench: op profile counts every call of a training step") {
  const Config c = Config::preset("nano-dense");  // gqa: wk/wv differ from wq in shape, so rows do not all merge
  const int L = c.model.n_layer;
  std::map<std::string, int> calls;
  for (const OpProfileRow& r : profile_training_ops(c, 1)) {
    CHECK(r.ms_per_call > 0);
    CHECK(r.reps >= 1);
    calls[r.op] += r.calls;
  }
  // Counted from Transformer::forward / backward: 7 projections per layer + head, 2 norms per layer + final.
  CHECK(calls["matmul fwd"] == 7 * L + 1);
  CHECK(calls["matmul bwd"] == 7 * L + 1);
  CHECK(calls["rmsnorm fwd"] == 2 * L + 1);
  CHECK(calls["attention fwd"] == L);
  CHECK(calls["rope fwd"] == 2 * L);  // q and k
  CHECK(calls["swiglu bwd"] == L);
  CHECK(calls["cross_entropy fwd"] == 1);
  CHECK(calls["adamw step"] == 1);
  CHECK(calls["grad norm + clip"] == 1);
}

TEST_CASE("train/bench: torch command passes the whole config, and a missing python is reported, not thrown") {
  Config c = Config::preset("nano-dense");
  c.model = tiny_model();
  const std::string cmd = torch_bench_command("/usr/bin/python3", "/x/it's/bench_torch.py", c, 2, 1, 4);
  for (const char* part : {"--json", "--batch 2", "--seq 16", "--threads 2", "--warmup 1", "--steps 4",
                           "--vocab-size 32", "--max-seq-len 16", "--n-layer 2", "--d-model 16", "--attention gqa",
                           "--n-head 4", "--n-kv-head 2", "--head-dim 6", "--ffn-hidden 20", "--rope-theta 10000",
                           "--norm-eps 9.99999975e-06"})  // 1e-5f printed with 9 digits: it round-trips
    CHECK_MESSAGE(cmd.find(part) != std::string::npos, part);
  CHECK(cmd.find("'/x/it'\\''s/bench_torch.py'") != std::string::npos);  // quoted for the shell

  const TorchBenchResult r = run_torch_bench("/nonexistent/python3", "/x/bench_torch.py", c, 2, 1, 4);
  CHECK_FALSE(r.ok);
  CHECK(r.why.find("/nonexistent/python3") != std::string::npos);

  // An interpreter that fails (as python does without torch: a traceback and exit status 1) or prints no JSON.
  const std::string script = std::string(TINYDS_SOURCE_DIR) + "/tests/reference/bench_torch.py";
  const TorchBenchResult failed = run_torch_bench("/bin/false", script, c, 2, 1, 4);
  CHECK_FALSE(failed.ok);
  CHECK(failed.why.find("exit status 1") != std::string::npos);
  const TorchBenchResult no_json = run_torch_bench("/bin/echo", script, c, 2, 1, 4);
  CHECK_FALSE(no_json.ok);
  CHECK(no_json.why.find("no JSON") != std::string::npos);
  CHECK(no_json.notes.size() == 1);  // echo's one line, kept as a note
}

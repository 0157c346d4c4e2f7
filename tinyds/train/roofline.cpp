// tinyds/train/roofline.cpp — see roofline.h. Shapes as there. The launches follow Transformer::forward / backward
// (model/transformer.cpp), mla.cpp, moe_layer.cpp, ffn.cpp, mtp.cpp and the trainer's optimizer step, op by op.
#include "tinyds/train/roofline.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "tinyds/core/error.h"
#include "tinyds/model/params.h"

namespace tinyds {

namespace {

constexpr double kF = 4.0;        // bytes per float
constexpr int kGemmTile = 64;     // matmul version 3: a block computes a 64x64 tile of the output
constexpr int kElementBlock = 256;  // threads per block of the elementwise kernels

long ceil_div(long a, long b) { return (a + b - 1) / b; }
std::string dims(long rows, long in, long out) {
  return "(" + std::to_string(rows) + ", " + std::to_string(in) + ") -> " + std::to_string(out);
}

// Collects launches; identical (kernel, phase, shape) rows merge.
class StepKernels {
 public:
  void add(const std::string& kernel, const std::string& phase, const std::string& shape, long calls, double flops,
           double bytes, long blocks, bool gemm = false) {
    if (calls <= 0) return;
    const auto key = std::make_tuple(kernel, phase, shape);
    const auto it = index_.find(key);
    if (it != index_.end()) { rows_[it->second].calls += calls; return; }
    index_[key] = rows_.size();
    rows_.push_back(KernelCost{kernel, phase, shape, calls, flops, bytes, blocks, gemm});
  }

  // out (rows, out) = inp (rows, in) @ W^T
  void matmul_fwd(const std::string& ph, long rows, long in, long out, long calls = 1) {
    add("matmul fwd", ph, dims(rows, in, out), calls, 2.0 * rows * in * out, kF * (rows * in + out * in + rows * out),
        ceil_div(out, kGemmTile) * ceil_div(rows, kGemmTile), true);
  }
  // dinp (rows, in) = dout @ W (written); dweight (out, in) += dout^T @ inp (read and written)
  void matmul_bwd(const std::string& ph, long rows, long in, long out, long calls = 1) {
    add("matmul bwd dinp", ph, dims(rows, in, out), calls, 2.0 * rows * in * out,
        kF * (rows * out + out * in + rows * in), ceil_div(in, kGemmTile) * ceil_div(rows, kGemmTile), true);
    add("matmul bwd dweight", ph, dims(rows, in, out), calls, 2.0 * rows * in * out,
        kF * (rows * out + rows * in + 2 * out * in), ceil_div(in, kGemmTile) * ceil_div(out, kGemmTile), true);
  }
  // n elements read `reads` times and written `writes` times, `flops_per` each; one thread per element
  void elementwise(const std::string& kernel, const std::string& ph, long n, int reads, int writes, double flops_per,
                   long calls = 1) {
    add(kernel, ph, "n " + std::to_string(n), calls, flops_per * n, kF * n * (reads + writes),
        std::max(1L, ceil_div(n, kElementBlock)));
  }
  // rmsnorm over (rows, C): forward reads inp, writes out; backward (kernel3 + the dweight kernel) reads dout and
  // inp twice, writes dinp. Version 3 is a warp per row: 8 rows per 256-thread block.
  void rmsnorm_fwd(const std::string& ph, long rows, long C) {
    add("rmsnorm fwd", ph, "(" + std::to_string(rows) + ", " + std::to_string(C) + ")", 1, 4.0 * rows * C,
        kF * (2 * rows * C + C + rows), ceil_div(rows, 8));
  }
  void rmsnorm_bwd(const std::string& ph, long rows, long C) {
    const std::string s = "(" + std::to_string(rows) + ", " + std::to_string(C) + ")";
    add("rmsnorm bwd", ph, s, 1, 6.0 * rows * C, kF * (3 * rows * C + rows + C), ceil_div(rows, 8));
    add("rmsnorm bwd dweight", ph, s, 1, 3.0 * rows * C, kF * (2 * rows * C + rows + 2 * C), ceil_div(C, kElementBlock));
  }
  // one copy of w columns of each of `rows` rows (MLA's per-head column copies, MTP's concatenation)
  void copy_cols(const std::string& ph, long rows, long w, long calls) {
    add("copy_cols", ph, "(" + std::to_string(rows) + ", " + std::to_string(w) + ")", calls, 0, kF * 2 * rows * w,
        std::max(1L, ceil_div(rows * w, kElementBlock)));
  }
  void rope(const std::string& kernel, const std::string& ph, long N, long H, long R) {
    // 6 FLOPs per rotated pair (4 multiplies, 2 adds) = 3 per element; in place
    add(kernel, ph, "(" + std::to_string(N) + ", " + std::to_string(H) + ", " + std::to_string(R) + ")", 1,
        3.0 * N * H * R, kF * 2 * N * H * R, std::max(1L, ceil_div(N * H * R / 2, kElementBlock)));
  }
  // causal attention over (B, T, H) with keys dqk and values dv wide; att (B, H, T, T) is written forward (the op
  // returns it) and read backward. Forward version 2: 8 query rows per block; backward version 1: a block per row.
  void attention(const std::string& ph, long B, long T, long H, long dqk, long dv) {
    const long N = B * T;
    const double causal = double(T) * T / 2;  // (query, key) pairs a sequence's head scores: T^2/2 (llm.c's count)
    const std::string s = "B " + std::to_string(B) + ", T " + std::to_string(T) + ", H " + std::to_string(H) +
                          ", " + std::to_string(dqk) + "/" + std::to_string(dv);
    add("attention fwd", ph, s, 1, 2.0 * B * H * causal * (dqk + dv),
        kF * (N * H * (2 * dqk + 2 * dv) + double(B) * H * T * T), ceil_div(T, 8) * B * H, true);
    add("attention bwd", ph, s, 1, 4.0 * B * H * causal * (dqk + dv),
        kF * (N * H * (4 * dqk + 3 * dv) + double(B) * H * T * T), T * B * H, true);
  }
  std::vector<KernelCost> rows() const { return rows_; }

 private:
  std::vector<KernelCost> rows_;
  std::map<std::tuple<std::string, std::string, std::string>, std::size_t> index_;
};

// SwiGLU FFN of hidden F on `rows` rows (model/ffn.cpp), forward and backward; dx accumulates (add_inplace).
void ffn(StepKernels& k, const std::string& ph, long rows, long C, long F, long calls = 1) {
  k.matmul_fwd(ph, rows, C, F, 2 * calls);  // a1 = x w1^T, a3 = x w3^T
  k.elementwise("swiglu fwd", ph, rows * F, 2, 1, 5, calls);  // silu(a1) * a3: exp, add, divide, 2 multiplies
  k.matmul_fwd(ph, rows, F, C, calls);
  k.matmul_bwd(ph, rows, F, C, calls);
  k.elementwise("swiglu bwd", ph, rows * F, 3, 2, 10, calls);
  k.matmul_bwd(ph, rows, C, F, 2 * calls);
  k.elementwise("add_inplace", ph, rows * C, 2, 1, 1, 2 * calls);
}

// Multi-head Latent Attention (model/mla.cpp), forward and backward.
void mla(StepKernels& k, const ModelConfig& m, long B, long T) {
  const long N = B * T, C = m.d_model, H = m.n_head, D = m.head_dim, R = m.rope_dim, Q = m.q_lora_rank,
             L = m.kv_lora_rank;
  const std::string ph = "mla";
  // forward
  k.matmul_fwd(ph, N, C, Q);
  k.rmsnorm_fwd(ph, N, Q);
  k.matmul_fwd(ph, N, Q, H * (D + R));
  k.copy_cols(ph, N, R, 2 * H);  // the rope parts of q gathered, rotated, scattered back: a copy per head each way
  k.rope("rope fwd", ph, N, H, R);
  k.matmul_fwd(ph, N, C, L);
  k.rmsnorm_fwd(ph, N, L);
  k.matmul_fwd(ph, N, C, R);
  k.rope("rope fwd", ph, N, 1, R);
  k.matmul_fwd(ph, N, L, H * 2 * D);
  k.copy_cols(ph, N, D, 2 * H);  // assemble k_C and v per head
  k.copy_cols(ph, N, R, H);      // the one k_R into every head
  k.attention(ph, B, T, H, D + R, D);
  k.matmul_fwd(ph, N, H * D, C);
  // backward
  k.matmul_bwd(ph, N, H * D, C);
  k.copy_cols(ph, N, R, 2 * H);
  k.rope("rope bwd", ph, N, H, R);
  k.matmul_bwd(ph, N, Q, H * (D + R));
  k.rmsnorm_bwd(ph, N, Q);
  k.matmul_bwd(ph, N, C, Q);
  k.copy_cols(ph, N, D, 2 * H);  // dkv from dk, dv per head
  k.add("sum_head_cols", ph, "(" + std::to_string(N) + ", " + std::to_string(H) + ", " + std::to_string(R) + ")", 1,
        double(N) * H * R, kF * (N * H * R + N * R), std::max(1L, ceil_div(N * R, kElementBlock)));  // dk_R
  k.matmul_bwd(ph, N, L, H * 2 * D);
  k.rmsnorm_bwd(ph, N, L);
  k.matmul_bwd(ph, N, C, L);
  k.rope("rope bwd", ph, N, 1, R);
  k.matmul_bwd(ph, N, C, R);
  k.elementwise("add_inplace", ph, N * C, 2, 1, 1, 2);
}

// Multi-head / grouped-query attention (model/transformer.cpp), forward and backward.
void mha(StepKernels& k, const ModelConfig& m, long B, long T) {
  const long N = B * T, C = m.d_model, H = m.n_head, Hkv = m.n_kv_head, D = m.head_dim;
  const std::string ph = "attention";
  k.matmul_fwd(ph, N, C, H * D);
  k.matmul_fwd(ph, N, C, Hkv * D, 2);
  k.rope("rope fwd", ph, N, H, D);
  k.rope("rope fwd", ph, N, Hkv, D);
  k.attention(ph, B, T, H, D, D);  // (with Hkv < H the kernel reads each k/v head for H/Hkv query heads)
  k.matmul_fwd(ph, N, H * D, C);
  k.matmul_bwd(ph, N, H * D, C);
  k.rope("rope bwd", ph, N, H, D);
  k.rope("rope bwd", ph, N, Hkv, D);
  k.matmul_bwd(ph, N, C, H * D);
  k.matmul_bwd(ph, N, C, Hkv * D, 2);
  k.elementwise("add_inplace", ph, N * C, 2, 1, 1, 2);
}

// Fine-grained MoE with shared experts (model/moe_layer.cpp), forward and backward, bias balancing.
void moe(StepKernels& k, const ModelConfig& m, long N) {
  const long C = m.d_model, E = m.n_routed_experts, K = m.n_activated_experts, Fe = m.moe_inter_dim,
             S = static_cast<long>(m.n_shared_experts) * Fe, P = N * K;
  const std::string ph = "moe";
  const std::string ne = "(" + std::to_string(N) + ", " + std::to_string(E) + ")";
  k.matmul_fwd(ph, N, C, E);  // router logits
  k.add("moe router fwd", ph, ne, 1, 5.0 * N * E, kF * (2 * N * E + 2 * N * K + E), ceil_div(N, 8));
  // the counting sort: histogram, scan (one block), place (one block per expert, each reading topk_idx)
  k.add("moe dispatch count", ph, ne, 1, 0, kF * (P + E), std::max(1L, ceil_div(P, kElementBlock)));
  k.add("moe dispatch scan", ph, ne, 1, double(E), kF * 2 * E, 1);
  k.add("moe dispatch place", ph, ne, 1, 0, kF * (E * P + 3 * P), E);
  k.elementwise("moe gather fwd", ph, P * C, 1, 1, 0);
  // routed experts: one SwiGLU FFN per expert on its P/E rows (a balanced router), then the weighted combine
  ffn(k, ph, P / E, C, Fe, E);
  k.elementwise("memset dxe", ph, P * C, 0, 1, 0);
  k.add("moe combine fwd", ph, "(" + std::to_string(N) + ", " + std::to_string(K) + ", " + std::to_string(C) + ")",
        1, 2.0 * P * C, kF * (P * C + N * C + N * K), std::max(1L, ceil_div(N * C, kElementBlock)));
  if (S > 0) {
    ffn(k, ph, N, C, S);
    k.elementwise("add_inplace", ph, N * C, 2, 1, 1);  // out = routed + shared
  }
  k.add("moe combine bwd", ph, "(" + std::to_string(N) + ", " + std::to_string(K) + ", " + std::to_string(C) + ")",
        1, 3.0 * P * C, kF * (N * C + 2 * P * C + 2 * N * K), std::max(1L, ceil_div(P, 8)));
  k.add("moe gather bwd", ph, "(" + std::to_string(N) + ", " + std::to_string(K) + ", " + std::to_string(C) + ")",
        1, double(P) * C, kF * (P * C + N * C), std::max(1L, ceil_div(N * C, kElementBlock)));
  k.add("moe router bwd", ph, ne, 1, 5.0 * N * E, kF * (2 * N * E + 2 * N * K), std::max(1L, ceil_div(N, 128)));
  k.matmul_bwd(ph, N, C, E);
  k.elementwise("add_inplace", ph, N * C, 2, 1, 1);
  // after the optimizer step: expert loads and the bias update (sign of the load's deviation, V3 Eq. 16's bias)
  k.add("moe load + bias", ph, ne, 2, double(E), kF * (P + 2 * E), 1);
}

// One transformer block (layer l of the trunk or an MTP module's block), forward and backward.
void block(StepKernels& k, const ModelConfig& m, long B, long T, bool moe_layer) {
  const long N = B * T, C = m.d_model;
  const std::string att = m.attention == AttentionKind::mla ? "mla" : "attention";
  const std::string ffn_ph = moe_layer ? "moe" : "dense ffn";
  k.rmsnorm_fwd(att, N, C);
  if (m.attention == AttentionKind::mla) mla(k, m, B, T); else mha(k, m, B, T);
  k.elementwise("residual fwd", att, N * C, 2, 1, 1);
  k.rmsnorm_fwd(ffn_ph, N, C);
  if (moe_layer) {
    moe(k, m, N);
  } else {
    k.elementwise("memset dnorm_in", ffn_ph, N * C, 0, 1, 0);  // the dense FFN's backward accumulates into it
    ffn(k, ffn_ph, N, C, m.ffn_hidden);
  }
  k.elementwise("residual fwd", ffn_ph, N * C, 2, 1, 1);
  k.rmsnorm_bwd(ffn_ph, N, C);
  k.elementwise("add_inplace", ffn_ph, N * C, 2, 1, 1);
  k.rmsnorm_bwd(att, N, C);
  k.elementwise("add_inplace", att, N * C, 2, 1, 1);
}

// The output head and its loss on N rows (main model or an MTP module), forward and backward.
void head(StepKernels& k, const std::string& ph, long N, long C, long V) {
  const std::string nv = "(" + std::to_string(N) + ", " + std::to_string(V) + ")";
  k.rmsnorm_fwd(ph, N, C);
  k.matmul_fwd(ph, N, C, V);
  k.add("cross_entropy fwd", ph, nv, 1, 3.0 * N * V, kF * (N * V + 3 * N), N);  // max, exp, sum; a block per row
  k.add("cross_entropy bwd", ph, nv, 1, 3.0 * N * V, kF * (2 * N * V + 3 * N), N);
  k.matmul_bwd(ph, N, C, V);
  k.rmsnorm_bwd(ph, N, C);
}

}  // namespace

std::vector<KernelCost> training_step_kernels(const ModelConfig& m, int B, int T) {
  if (B < 1 || T < 1) throw_error("training_step_kernels: need B >= 1 and T >= 1 (got B ", B, ", T ", T, ")");
  StepKernels k;
  const long N = static_cast<long>(B) * T, C = m.d_model, V = m.vocab_size;
  const long Np = static_cast<long>(ParamLayout(m).total());
  k.elementwise("memset grads", "optimizer", Np, 0, 1, 0);  // zero_grad
  k.elementwise("embedding fwd", "embedding", N * C, 1, 1, 0);
  k.elementwise("embedding bwd", "embedding", N * C, 2, 1, 1);  // dwte rows += dout rows
  for (int l = 0; l < m.n_layer; l++) block(k, m, B, T, is_moe_layer(m, l));
  head(k, "head + loss", N, C, V);
  for (int d = 0; d < m.mtp_depth; d++) {
    // module d: [RMSNorm(h), RMSNorm(embed[token + d + 1])] -> proj -> a block -> the shared norm and head
    k.rmsnorm_fwd("mtp", N, C);
    k.elementwise("embedding fwd", "mtp", N * C, 1, 1, 0);
    k.rmsnorm_fwd("mtp", N, C);
    k.copy_cols("mtp", N, C, 2);  // the concatenation [hn, en]
    k.matmul_fwd("mtp", N, 2 * C, C);
    block(k, m, B, T, is_moe_layer(m, m.n_layer + d));
    head(k, "mtp", N, C, V);
    k.elementwise("add_inplace", "mtp", N * C, 2, 1, 1, 2);  // dcarry into dres, and into d(x_L)
    k.matmul_bwd("mtp", N, 2 * C, C);
    k.copy_cols("mtp", N, C, 2);  // split d(cat)
    k.rmsnorm_bwd("mtp", N, C);
    k.elementwise("embedding bwd", "mtp", N * C, 2, 1, 1);
    k.rmsnorm_bwd("mtp", N, C);
  }
  // grad norm (version 2: one block, a fixed tree), clip, AdamW (reads p, g, m, v; writes p, m, v)
  k.add("global_norm", "optimizer", "n " + std::to_string(Np), 1, 2.0 * Np, kF * Np, 1);
  k.elementwise("clip_grad_norm", "optimizer", Np, 1, 1, 1);
  k.elementwise("adamw", "optimizer", Np, 4, 3, 15);
  return k.rows();
}

KernelBound kernel_bound(const KernelCost& k, const DevicePeak& dev) {
  KernelBound b;
  const double fp32 = dev.fp32_tflops * 1e12, tf32 = dev.tf32_tflops * 1e12, bw = dev.mem_gbps * 1e9;
  const double t_mem = k.bytes / bw;
  b.intensity = k.bytes > 0 ? k.flops / k.bytes : 0;
  b.memory_bound = t_mem > k.flops / fp32;
  b.roofline_fp32_s = std::max(k.flops / fp32, t_mem);
  b.roofline_tf32_s = std::max(k.flops / (k.gemm ? tf32 : fp32), t_mem);
  // The current kernels: the GEMMs (matmul version 3) at most at half the FP32 peak (roofline.h), everything on
  // min(blocks, SMs) SMs.
  const double fill = std::min(1.0, double(std::max(1L, k.blocks)) / dev.sm_count);
  const bool tiled_gemm = k.gemm && k.kernel.rfind("matmul", 0) == 0;
  const double compute = (tiled_gemm ? 0.5 : 1.0) * fp32 * fill;
  b.tinyds_v3_s = std::max(k.flops / compute, t_mem / fill);
  return b;
}

StepBound step_bound(const std::vector<KernelCost>& kernels, const DevicePeak& dev, double launch_s) {
  StepBound s;
  for (const KernelCost& k : kernels) {
    const KernelBound b = kernel_bound(k, dev);
    s.flops += k.calls * k.flops;
    if (k.gemm) s.gemm_flops += k.calls * k.flops;
    s.bytes += k.calls * k.bytes;
    s.launches += k.calls;
    s.roofline_fp32_s += k.calls * b.roofline_fp32_s;
    s.roofline_tf32_s += k.calls * b.roofline_tf32_s;
    s.tinyds_v3_s += k.calls * b.tinyds_v3_s;
    s.tinyds_v3_launch_s += k.calls * std::max(b.tinyds_v3_s, launch_s);
    s.roofline_tf32_launch_s += k.calls * std::max(b.roofline_tf32_s, launch_s);
  }
  return s;
}

}  // namespace tinyds

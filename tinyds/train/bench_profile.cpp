// tinyds/train/bench_profile.cpp — see bench_profile.h.
// Shapes: B batch, T time, N = B*T rows, C d_model, V vocab, H heads, Hkv kv heads, D head_dim, F ffn_hidden.
#include "tinyds/train/bench_profile.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <Eigen/Core>

#include "tinyds/core/rng.h"
#include "tinyds/core/timer.h"
#include "tinyds/model/params.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/ops/attention.h"
#include "tinyds/ops/cross_entropy.h"
#include "tinyds/ops/embedding.h"
#include "tinyds/ops/matmul.h"
#include "tinyds/ops/residual.h"
#include "tinyds/ops/rmsnorm.h"
#include "tinyds/ops/rope.h"
#include "tinyds/ops/swiglu.h"
#include "tinyds/train/bench.h"
#include "tinyds/train/optimizer.h"

namespace tinyds {

namespace {

// Eigen-aligned like the model's own (64-byte aligned) activation buffers, so vectorised loops see the same
// alignment in isolation as in the model.
using Vec = std::vector<float, Eigen::aligned_allocator<float>>;

Vec randn(std::size_t n, uint64_t stream, float std = 1.0f) {
  Vec x(n);
  fill_normal(x.data(), n, std, Rng(777, stream));
  return x;
}

std::string shape_str(std::initializer_list<long> dims) {
  std::ostringstream os;
  os << "(";
  bool first = true;
  for (long d : dims) { os << (first ? "" : ",") << d; first = false; }
  os << ")";
  return os.str();
}

// Collects the rows; an (op, shape) already timed only gains calls and a name (it would take the same time).
class Profiler {
 public:
  explicit Profiler(int min_reps) : min_reps_(min_reps) {}

  template <class F>
  void add(const std::string& op, const std::string& shape, const std::string& what, int calls, F&& run) {
    if (calls <= 0) return;
    for (OpProfileRow& r : rows_) {
      if (r.op == op && r.shape == shape) {
        r.calls += calls;
        if (r.what.find(what) == std::string::npos) r.what += " " + what;
        return;
      }
    }
    OpProfileRow row{op, shape, what, calls, 0, 0};
    run();  // untimed: first touch of the outputs, Eigen's packing buffers, OpenMP thread start-up
    std::vector<double> times;
    Timer spent;
    // At least min_reps, and enough to spend ~30 ms on fast ops (a 50 us op measured 5 times is noise).
    while (times.size() < static_cast<std::size_t>(min_reps_) || (spent.seconds() < 0.03 && times.size() < 50)) {
      Timer t;
      run();
      times.push_back(t.seconds());
    }
    row.ms_per_call = 1e3 * median_of(times);
    row.reps = static_cast<int>(times.size());
    rows_.push_back(row);
  }
  std::vector<OpProfileRow> rows() const { return rows_; }

 private:
  int min_reps_;
  std::vector<OpProfileRow> rows_;
};

struct Dims {
  int B, T, N, C, V, H, Hkv, D, F, L;
  float theta, eps;
  explicit Dims(const Config& cfg)
      : B(cfg.train.batch_size), T(cfg.train.seq_len), N(B * T), C(cfg.model.d_model), V(cfg.model.vocab_size),
        H(cfg.model.n_head), Hkv(cfg.model.n_kv_head), D(cfg.model.head_dim), F(cfg.model.ffn_hidden),
        L(cfg.model.n_layer), theta(cfg.model.rope_theta), eps(cfg.model.norm_eps) {}
};

// Every projection of a step (Transformer::layer_forward and forward): forward and backward on its shape.
void profile_matmuls(Profiler& p, const Dims& d) {
  struct Proj { const char* name; int IC, OC, calls; };
  const Proj projs[] = {
      {"wq", d.C, d.H * d.D, d.L},   {"wk", d.C, d.Hkv * d.D, d.L}, {"wv", d.C, d.Hkv * d.D, d.L},
      {"wo", d.H * d.D, d.C, d.L},   {"w1", d.C, d.F, d.L},         {"w3", d.C, d.F, d.L},
      {"w2", d.F, d.C, d.L},         {"head", d.C, d.V, 1}};
  for (const Proj& pr : projs) {
    Vec inp = randn(std::size_t(d.N) * pr.IC, 1), w = randn(std::size_t(pr.OC) * pr.IC, 2, 0.02f);
    Vec out(std::size_t(d.N) * pr.OC), dout = randn(out.size(), 3);
    Vec dinp(inp.size()), dw(w.size(), 0.0f);
    const std::string shape = shape_str({d.N, pr.IC}) + " -> " + shape_str({d.N, pr.OC});
    p.add("matmul fwd", shape, pr.name, pr.calls,
          [&] { matmul_forward(out.data(), inp.data(), w.data(), d.N, pr.IC, pr.OC); });
    // forward was out = inp @ w^T: backward is two GEMMs (dinp = dout @ w, dw += dout^T @ inp)
    p.add("matmul bwd", shape, pr.name, pr.calls, [&] {
      matmul_backward(dinp.data(), dw.data(), dout.data(), inp.data(), w.data(), d.N, pr.IC, pr.OC);
    });
  }
}

// Attention and RoPE at the layer's shapes: q (B, T, H, D), k and v (B, T, Hkv, D), att (B, H, T, T).
void profile_attention(Profiler& p, const Dims& d) {
  const float scale = 1.0f / std::sqrt(float(d.D)), theta = d.theta;
  Vec q = randn(std::size_t(d.N) * d.H * d.D, 10), k = randn(std::size_t(d.N) * d.Hkv * d.D, 11);
  Vec v = randn(k.size(), 12), out(q.size()), att(std::size_t(d.B) * d.H * d.T * d.T);
  Vec dout = randn(q.size(), 13), dq(q.size()), dk(k.size()), dv(v.size()), rot(q.size());
  const std::string qkv = "q " + shape_str({d.B, d.T, d.H, d.D}) + ", kv " + shape_str({d.B, d.T, d.Hkv, d.D});
  p.add("attention fwd", qkv, "causal softmax(q k^T) v", d.L, [&] {
    attention_forward(out.data(), att.data(), q.data(), k.data(), v.data(), d.B, d.T, d.H, d.Hkv, d.D, d.D, scale);
  });
  // backward reads the probabilities the forward above left in att
  p.add("attention bwd", qkv, "dq dk dv", d.L, [&] {
    attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), att.data(), d.B,
                       d.T, d.H, d.Hkv, d.D, d.D, scale);
  });
  struct Rot { const char* name; int heads; };
  for (const Rot r : {Rot{"q", d.H}, Rot{"k", d.Hkv}}) {
    const std::string shape = shape_str({d.B, d.T, r.heads, d.D});
    p.add("rope fwd", shape, r.name, d.L,
          [&] { rope_forward(rot.data(), q.data(), d.B, d.T, r.heads, d.D, 0, theta); });
    p.add("rope bwd", shape, r.name, d.L,
          [&] { rope_backward(rot.data(), dout.data(), d.B, d.T, r.heads, d.D, 0, theta); });
  }
}

// RMSNorm, SwiGLU, residual adds, embedding and cross-entropy (the memory-bound ops).
void profile_pointwise(Profiler& p, const Dims& d) {
  const std::size_t NC = std::size_t(d.N) * d.C, NF = std::size_t(d.N) * d.F, NV = std::size_t(d.N) * d.V;
  Vec x = randn(NC, 20), y(NC), dy = randn(NC, 21), dx(NC), w = randn(d.C, 22), dw(d.C, 0.0f), rstd(d.N);
  const std::string nc = shape_str({d.N, d.C});
  // 2 per layer (attn_norm, ffn_norm) + the final norm
  p.add("rmsnorm fwd", nc, "attn ffn final", 2 * d.L + 1,
        [&] { rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), d.N, d.C, d.eps); });
  p.add("rmsnorm bwd", nc, "attn ffn final", 2 * d.L + 1,
        [&] { rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), d.N, d.C); });
  // residual_forward: 2 per layer; add_inplace in backward: 5 per layer (layer_backward's gradient sums)
  p.add("residual add", nc, "h, out", 2 * d.L, [&] { residual_forward(y.data(), x.data(), dy.data(), long(NC)); });
  p.add("grad add", nc, "branch gradient sums", 5 * d.L, [&] { add_inplace(dx.data(), dy.data(), long(NC)); });

  Vec a1 = randn(NF, 23), a3 = randn(NF, 24), gate(NF), dgate = randn(NF, 25), da1(NF), da3(NF);
  const std::string nf = shape_str({d.N, d.F});
  p.add("swiglu fwd", nf, "silu(a1) * a3", d.L, [&] { swiglu_forward(gate.data(), a1.data(), a3.data(), long(NF)); });
  p.add("swiglu bwd", nf, "da1 da3", d.L,
        [&] { swiglu_backward(da1.data(), da3.data(), dgate.data(), a1.data(), a3.data(), long(NF)); });

  Rng rng(99);
  std::vector<int> tokens(d.N);  // (N) uniform in [0, V), every target valid
  for (int& t : tokens) t = static_cast<int>(rng.randint(0, d.V - 1));
  Vec wte = randn(std::size_t(d.V) * d.C, 26, 0.02f), dwte(wte.size(), 0.0f);
  p.add("embedding fwd", shape_str({d.V, d.C}) + "[" + std::to_string(d.N) + "]", "embed", 1,
        [&] { embedding_forward(y.data(), tokens.data(), wte.data(), d.N, d.C); });
  p.add("embedding bwd", shape_str({d.V, d.C}) + "[" + std::to_string(d.N) + "]", "embed", 1,
        [&] { embedding_backward(dwte.data(), dy.data(), tokens.data(), d.N, d.C); });

  Vec logits = randn(NV, 27), losses(d.N), lse(d.N), dlogits(NV), dlosses(d.N, 1.0f / d.N);
  const std::string nv = shape_str({d.N, d.V});
  p.add("cross_entropy fwd", nv, "loss", 1,
        [&] { cross_entropy_forward(losses.data(), lse.data(), logits.data(), tokens.data(), d.N, d.V); });
  p.add("cross_entropy bwd", nv, "dlogits", 1, [&] {
    cross_entropy_backward(dlogits.data(), dlosses.data(), logits.data(), lse.data(), tokens.data(), d.N, d.V);
  });
}

// The optimizer side of a step over all parameters: zero_grad, grad norm + clip, AdamW.
void profile_optimizer(Profiler& p, const Config& cfg) {
  ParamLayout layout(cfg.model);
  const std::size_t n = layout.total();
  Vec params = randn(n, 30, 0.02f), grads = randn(n, 31, 1e-3f);
  AdamW adam(layout, Role::policy);
  const TrainConfig& tc = cfg.train;
  const AdamWSettings as{tc.lr, tc.beta1, tc.beta2, tc.adam_eps, tc.weight_decay};
  const std::string all = "(" + std::to_string(n) + ") all params";
  p.add("zero_grad", all, "fill 0", 1, [&] { std::fill(grads.begin(), grads.end(), 0.0f); });
  grads = randn(n, 31, 1e-3f);  // the norm below needs non-zero gradients
  p.add("grad norm + clip", all, "global_norm, clip_grad_norm", 1, [&] {
    const double norm = global_norm(grads.data(), n);
    // max_norm just below the norm: the scaling pass always runs (as when a step is clipped), and the scale
    // is ~1 so repeated calls never shrink the gradients toward denormals
    clip_grad_norm(grads.data(), n, norm, norm * (1.0 - 1e-6));
  });
  p.add("adamw step", all, "AdamW::step", 1, [&] { adam.step(params.data(), grads.data(), as); });
}

}  // namespace

std::vector<OpProfileRow> profile_training_ops(const Config& cfg, int min_reps) {
  const Dims d(cfg);
  Profiler p(std::max(1, min_reps));
  profile_matmuls(p, d);
  profile_attention(p, d);
  profile_pointwise(p, d);
  profile_optimizer(p, cfg);
  return p.rows();
}

}  // namespace tinyds

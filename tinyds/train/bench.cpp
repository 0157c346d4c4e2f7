// tinyds/train/bench.cpp — see bench.h. Shapes: B batch, T time, N = B*T, C d_model, V vocab, H heads, D head_dim.
#include "tinyds/train/bench.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <Eigen/Dense>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/device.cuh"
#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/core/timer.h"
#include "tinyds/device/optimizer.h"
#include "tinyds/model/params.h"
#include "tinyds/model/transformer.h"
#include "tinyds/ops/adamw.h"
#include "tinyds/train/optimizer.h"

namespace tinyds {

double median_of(std::vector<double> v) {
  TINYDS_ASSERT(!v.empty(), "median of an empty list");
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double load_average_1min() {
  std::ifstream f("/proc/loadavg");
  double load = -1;
  if (!(f >> load)) return -1;
  return load;
}

MachineInfo machine_info() {
  MachineInfo info;
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    key.erase(key.find_last_not_of(" \t") + 1);  // "model name\t: AMD EPYC" -> "model name"
    if (key == "processor") info.logical_cpus++;
    if (key == "model name" && info.cpu_model.empty()) {
      const std::size_t start = line.find_first_not_of(" \t", colon + 1);
      info.cpu_model = start == std::string::npos ? "" : line.substr(start);
    }
  }
  if (info.cpu_model.empty()) info.cpu_model = "unknown";
#ifdef _OPENMP
  info.omp_threads = omp_get_max_threads();
#endif
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  info.omp_wait_policy = wait ? wait : "";
  info.load_avg_1min = load_average_1min();
  return info;
}

double gemm_gflops(int n, int reps) {
  if (n < 1 || reps < 1) throw_error("gemm_gflops: need n >= 1 and reps >= 1 (got n = ", n, ", reps = ", reps, ")");
  using MatR = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  MatR a(n, n), b(n, n), c(n, n);  // (n, n) each, row-major like every tinyds activation
  const Rng rng(4242);
  fill_normal(a.data(), a.size(), 1.0f, rng.split(0));
  fill_normal(b.data(), b.size(), 1.0f, rng.split(1));
  c.noalias() = a * b;  // untimed: first touch of c and Eigen's packing buffers
  std::vector<double> times;
  for (int r = 0; r < reps; r++) {
    Timer t;
    c.noalias() = a * b;
    times.push_back(t.seconds());
  }
  // Keep the product observable so the compiler cannot drop the loop.
  volatile float sink = c(n - 1, n - 1);
  (void)sink;
  return 2.0 * n * double(n) * n / median_of(times) / 1e9;
}

FlopCount training_flops_per_token(const ModelConfig& m, int T) {
  FlopCount f;
  ParamLayout layout(m);
  // Counted on ACTIVE parameters (Kaplan et al.'s 6N with N the weights a token multiplies): every matrix but the
  // embedding (a lookup); of the routed experts' (E, F, C) tensors only the K of E a token uses; the output head
  // once more per MTP module (shared, and applied to each module's hidden state).
  const double routed_share = m.n_routed_experts > 0 ? double(m.n_activated_experts) / m.n_routed_experts : 0.0;
  double active = 0;
  for (const TensorSpec& t : layout.tensors()) {
    if (t.name == "embed" || t.shape.size() < 2) continue;
    active += t.shape.size() == 3 ? routed_share * double(t.numel) : double(t.numel);
    if (t.name == "head") active += m.mtp_depth * double(t.numel);
  }
  f.matmul_params = static_cast<int64_t>(active);
  f.matmul_flops = 6.0 * active;
  // 3 (fwd + bwd) * 2 (mul + add) * (QK^T over dqk + PV over dv) * H * T/2 (a query sees T/2 keys on average),
  // for each block (the MTP blocks too). MLA scores over D + R dims (content + rope) and averages D-dim values.
  const double dqk = m.head_dim + (m.attention == AttentionKind::mla ? m.rope_dim : 0), dv = m.head_dim;
  f.attention_flops = 3.0 * 2.0 * (m.n_layer + m.mtp_depth) * double(T) / 2.0 * m.n_head * (dqk + dv);
  return f;
}

StepTimes time_training_steps(const Config& cfg, int warmup, int steps, uint64_t seed,
                              void (*on_step)(int i, int total), Device device, bool profile) {
  if (warmup < 0 || steps < 1)
    throw_error("bench: need --warmup >= 0 and --steps >= 1 (got ", warmup, ", ", steps, ")");
  const ModelConfig& m = cfg.model;
  const TrainConfig& tc = cfg.train;
  const int B = tc.batch_size, T = tc.seq_len, N = B * T;
  Transformer<float> model(m, Role::policy, device);
  model.init_weights(seed);
  AdamW adam(model.layout(), Role::policy, device);
  OnDevice scope(device);  // the norm and clip below run where the gradients live
  const AdamWSettings as{tc.lr, tc.beta1, tc.beta2, tc.adam_eps, tc.weight_decay};

  Rng rng(seed + 1);
  std::vector<int> tokens(N), targets(N);  // (B, T) each, uniform in [0, V), no masked target
  for (int i = 0; i < N; i++) tokens[i] = static_cast<int>(rng.randint(0, m.vocab_size - 1));
  for (int i = 0; i < N; i++) targets[i] = static_cast<int>(rng.randint(0, m.vocab_size - 1));

  StepTimes st;
  st.num_params = static_cast<int64_t>(model.num_params());
  const std::size_t n = model.num_params();
  PhaseTimes phases;
  const bool on_cuda = device == Device::cuda;
  if (on_cuda && profile) phases.sync = cuda::synchronize;
  // The end of a timed span: on cuda, when its kernels have run (always at the step's end, at phases with profile).
  auto finish = [&](bool always) {
    if (on_cuda && (always || profile)) cuda::synchronize();
  };
  for (int s = 0; s < warmup + steps; s++) {
    if (s == warmup) model.set_phase_times(&phases);  // time the phases of the timed steps only
    Timer step, phase;
    model.zero_grad();
    st.last_loss = model.forward(tokens.data(), targets.data(), B, T);
    finish(false);
    const double fwd = phase.seconds();
    phase.reset();
    model.backward();
    finish(false);
    const double bwd = phase.seconds();
    phase.reset();
    const double norm = dev::global_norm(model.grads(), n);
    if (tc.grad_clip > 0) dev::clip_grad_norm(model.grads(), n, norm, double(tc.grad_clip));
    finish(false);
    const double clip = phase.seconds();
    phase.reset();
    adam.step(model.params(), model.grads(), as);
    finish(true);
    const double opt = phase.seconds();
    const double total = step.seconds();
    if (s >= warmup) {
      st.step_s.push_back(total);
      st.forward_s.push_back(fwd);
      st.backward_s.push_back(bwd);
      st.clip_s.push_back(clip);
      st.adamw_s.push_back(opt);
    }
    if (on_step) on_step(s, warmup + steps);
  }
  for (const auto& [name, sec] : phases.seconds) st.phase_s.emplace_back(name, sec / steps);
  return st;
}

}  // namespace tinyds

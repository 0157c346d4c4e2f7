// tinyds/train/bench.cpp — see bench.h. Shapes: B batch, T time, N = B*T, C d_model, V vocab, H heads, D head_dim.
#include "tinyds/train/bench.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <Eigen/Dense>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"
#include "tinyds/core/timer.h"
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
  for (const TensorSpec& t : layout.tensors())
    if (t.shape.size() == 2 && t.name != "embed") f.matmul_params += static_cast<int64_t>(t.numel);
  f.matmul_flops = 6.0 * double(f.matmul_params);
  // 3 (fwd + bwd) * 2 (QK^T and PV) * 2 (mul + add) * n_layer * T * H * D / 2: on average a query sees T/2 keys.
  f.attention_flops = 3.0 * 2.0 * 2.0 * m.n_layer * double(T) * m.n_head * m.head_dim / 2.0;
  return f;
}

StepTimes time_training_steps(const Config& cfg, int warmup, int steps, uint64_t seed,
                              void (*on_step)(int i, int total)) {
  if (warmup < 0 || steps < 1)
    throw_error("bench: need --warmup >= 0 and --steps >= 1 (got ", warmup, ", ", steps, ")");
  const ModelConfig& m = cfg.model;
  const TrainConfig& tc = cfg.train;
  const int B = tc.batch_size, T = tc.seq_len, N = B * T;
  Transformer<float> model(m);
  model.init_weights(seed);
  AdamW adam(model.layout(), Role::policy);
  const AdamWSettings as{tc.lr, tc.beta1, tc.beta2, tc.adam_eps, tc.weight_decay};

  Rng rng(seed + 1);
  std::vector<int> tokens(N), targets(N);  // (B, T) each, uniform in [0, V), no masked target
  for (int i = 0; i < N; i++) tokens[i] = static_cast<int>(rng.randint(0, m.vocab_size - 1));
  for (int i = 0; i < N; i++) targets[i] = static_cast<int>(rng.randint(0, m.vocab_size - 1));

  StepTimes st;
  st.num_params = static_cast<int64_t>(model.num_params());
  const std::size_t n = model.num_params();
  for (int s = 0; s < warmup + steps; s++) {
    Timer step, phase;
    model.zero_grad();
    st.last_loss = model.forward(tokens.data(), targets.data(), B, T);
    const double fwd = phase.seconds();
    phase.reset();
    model.backward();
    const double bwd = phase.seconds();
    phase.reset();
    const double norm = global_norm(model.grads(), n);
    if (tc.grad_clip > 0) clip_grad_norm(model.grads(), n, norm, double(tc.grad_clip));
    const double clip = phase.seconds();
    phase.reset();
    adam.step(model.params(), model.grads(), as);
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
  return st;
}

}  // namespace tinyds

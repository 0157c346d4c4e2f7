// tinyds/train/bench.h — what `tinyds bench` measures: the machine's fp32 GEMM peak, the FLOPs of one training
// token, and the time of full training steps.
//
// Shapes: B batch, T time, N = B*T, C d_model, V vocab, H heads, Hkv kv heads, D head_dim, F ffn_hidden.
//
// FLOPs per token of training (Kaplan et al. 2020, as in llm.c's MFU):
//   6 * N_matmul + attention
//   N_matmul  = ACTIVE parameters of the matrices used as matmuls: every matrix except `embed` (a row lookup,
//               not a GEMM; norm gains are 1-D), the routed experts' (E, F, C) tensors counted K/E (a token uses
//               K of the E experts), and the head once more per MTP module (shared by the main model and each module)
//   6         = 2 (multiply + add) * 3 (forward, backward to the input, backward to the weight)
//   attention = 3 (fwd + bwd) * 2 (multiply + add) * blocks * T/2 (causal half) * H * (dqk + dv)
//               blocks = n_layer + mtp_depth; dqk = D (+ R for MLA), dv = D
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/device/device.h"
#include "tinyds/model/config.h"

namespace tinyds {

// ---- the machine ----

struct MachineInfo {
  std::string cpu_model;       // "model name" of /proc/cpuinfo, e.g. "AMD EPYC" ("unknown" if absent)
  int logical_cpus = 0;        // "processor" entries of /proc/cpuinfo
  int omp_threads = 1;         // omp_get_max_threads() (1 without OpenMP)
  std::string omp_wait_policy; // the OMP_WAIT_POLICY environment variable, "" if unset
  double load_avg_1min = -1;   // /proc/loadavg (-1 if unreadable): on shared cores a high load slows everything
};
MachineInfo machine_info();
double load_average_1min();   // -1 if /proc/loadavg is unreadable

// GFLOP/s of Eigen's fp32 GEMM C = A B on square row-major n x n matrices: 2 n^3 / (median time of `reps`
// products, after one untimed product). Uses Eigen's own OpenMP threading, like matmul_forward.
double gemm_gflops(int n, int reps);

// ---- FLOPs ----

struct FlopCount {
  int64_t matmul_params = 0;     // N_matmul (above)
  double matmul_flops = 0;       // 6 * N_matmul, per token
  double attention_flops = 0;    // 3 * 2 * (n_layer + mtp_depth) * T/2 * H * (dqk + dv), per token
  double per_token() const { return matmul_flops + attention_flops; }
};
// Counted from the model's ParamLayout on active parameters (every matrix but `embed`, K/E of the routed experts,
// the head once more per MTP module), T the training sequence length.
FlopCount training_flops_per_token(const ModelConfig& m, int T);

// ---- training steps ----

// One full training step: zero_grad, forward with targets, backward, global_norm + clip_grad_norm, AdamW step.
struct StepTimes {
  std::vector<double> step_s;      // every timed step, seconds
  std::vector<double> forward_s;   // the phases of each timed step (zero_grad is counted with forward)
  std::vector<double> backward_s;
  std::vector<double> clip_s;      // global_norm + clip_grad_norm
  std::vector<double> adamw_s;
  int64_t num_params = 0;
  double last_loss = 0;            // a sanity figure: ~log(V) for a fresh model on random tokens
  // Inside forward + backward of the timed steps (Transformer::set_phase_times): seconds per step of each phase
  // ("mla fwd", "moe bwd", "head + loss fwd", ...), averaged over the timed steps.
  std::vector<std::pair<std::string, double>> phase_s;
};
// `warmup` untimed then `steps` timed steps of Transformer<float> on one random batch (tokens uniform in [0, V),
// targets likewise, all valid), weights from init_weights(seed), AdamW with cfg.train's settings, on `device`.
// `on_step(i)` (may be empty) is called after each step i (0-based, warmup included) for progress output.
// On cuda a launch returns before its kernel has run: each step's time ends with cuda::synchronize(). With
// `profile` the device is also synchronised at the four step phases and at every model phase (PhaseTimes::sync),
// so that forward_s ... adamw_s and phase_s are the kernels' times; without it only step_s is meaningful on cuda.
StepTimes time_training_steps(const Config& cfg, int warmup, int steps, uint64_t seed,
                              void (*on_step)(int i, int total) = nullptr, Device device = Device::cpu,
                              bool profile = false);

// The median of a non-empty list (the mean of the two middle values for an even count).
double median_of(std::vector<double> v);

}  // namespace tinyds

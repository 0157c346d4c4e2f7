// tinyds/cli/cmd_bench.cpp — `tinyds bench`: training throughput against the machine's GEMM peak and against the
// PyTorch twin, with a per-op profile of one step.
//
// Shapes: B batch, T time, N = B*T, C d_model, V vocab, H heads, D head_dim, F ffn_hidden.
// Four parts, run one after another (never two timings at once: they would share the cores):
//   1. the machine: CPU, OpenMP threads, Eigen fp32 GEMM GFLOP/s for n = 256, 512, 1024; the max is "GEMM peak"
//   2. tinyds: median time of full training steps -> tokens/s = B*T / median; achieved GFLOP/s with
//      FLOPs/token = 6 * N_matmul + 3*2*2 * n_layer * T * H * D / 2 (tinyds/train/bench.h), as a fraction of the
//      GEMM peak (llm.c's MFU with the measured peak in place of the datasheet one)
//   3. each op of a step timed in isolation at the model's shapes, times its calls per step (bench_profile.h)
//   4. tests/reference/bench_torch.py on the same model, B, T and thread count (skipped with --no-torch)
// `tinyds bench --kernels` instead times every version of the CUDA kernels (kernels/bench.h); the command links
// them under the CPU emulation, so those times are not GPU figures.
// `tinyds bench --device cuda` instead times the training step on the CUDA device, or with --analysis prints the
// roofline bound of each of its kernels on a GPU (cmd_bench_device.cpp).
// `tinyds bench --rollout` instead times the RL stage's sampling: batched rollouts of B = 8 prompts x 8
// completions x 96 new tokens (train/bench_rollout.h) against the PyTorch twin's kv-cache decode of the same batch
// (bench_torch.py --rollout), after checking that both decode greedily to the same tokens; tinyds twice, as the RL
// stage runs it (a group's copies of one prompt prefilled once) and with every row prefilled, as the twin does.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

#include "kernels/bench.h"
#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/core/error.h"
#include "tinyds/device/device.h"
#include "tinyds/model/config.h"
#include "tinyds/train/bench.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/train/bench_profile.h"
#include "tinyds/train/bench_rollout.h"
#include "tinyds/train/bench_torch.h"
#include "tinyds/train/checkpoint.h"

namespace tinyds {

namespace {

using json = nlohmann::json;

// OpenMP threads spin-wait between parallel regions unless OMP_WAIT_POLICY=PASSIVE. On cores shared with other
// busy processes a spinning thread burns the time slices its partner needs: measured here on 2 shared cores, an
// (N 2048, C 256) rmsnorm took ~12 ms per call spinning and ~0.1 ms passive. libgomp reads the variable when it is
// loaded, so the bench can only report it, not change it for itself.
bool omp_threads_spin(const MachineInfo& mi) {
  std::string p = mi.omp_wait_policy;
  for (char& c : p) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return p != "passive";
}

// The value of "--name X" / "--name=X" in argv, else `fallback` (read before parsing: --device picks the bench).
std::string scan_option(int argc, char** argv, const std::string& name, const std::string& fallback) {
  const std::string with_eq = name + "=";
  for (int i = 1; i < argc; i++) {
    if (argv[i] == name && i + 1 < argc) return argv[i + 1];
    if (std::string(argv[i]).rfind(with_eq, 0) == 0) return argv[i] + with_eq.size();
  }
  return fallback;
}

void note(json& out, const std::string& text) {
  std::printf("  note: %s\n", text.c_str());
  out["notes"].push_back(text);
}

void progress_dot(int i, int total) {
  std::printf(".");
  if (i + 1 == total) std::printf("\n");
  std::fflush(stdout);
}

// Part 1. Returns the GEMM peak in GFLOP/s.
double bench_machine(const MachineInfo& mi, json& out) {
  std::printf("measuring GEMM peak (Eigen sgemm, square row-major fp32)...\n");
  std::fflush(stdout);
  json gemm = json::object();
  double peak = 0;
  std::string line;
  for (int n : {256, 512, 1024}) {
    // A few reps each, median time; more for the small sizes, whose single product (~0.3 ms at n = 256) is
    // short enough for one preemption on shared cores to swamp it.
    const double g = gemm_gflops(n, n <= 256 ? 20 : n <= 512 ? 10 : 3);
    gemm[std::to_string(n)] = g;
    peak = std::max(peak, g);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%sn=%d %.1f", line.empty() ? "" : ", ", n, g);
    line += buf;
  }
  std::printf("\nmachine\n");
  std::printf("  CPU              %s (%d logical CPUs)\n", mi.cpu_model.c_str(), mi.logical_cpus);
  std::printf("  OpenMP threads   %d\n", mi.omp_threads);
  std::printf("  OMP_WAIT_POLICY  %s\n", mi.omp_wait_policy.empty()
                                             ? "unset (OpenMP default: idle threads spin a while before sleeping)"
                                             : mi.omp_wait_policy.c_str());
  std::printf("  load average     %.2f (1 min; on shared cores other work slows every figure below)\n",
              mi.load_avg_1min);
  std::printf("  Eigen SIMD       %s\n", Eigen::SimdInstructionSetsInUse());
  std::printf("  sgemm GFLOP/s    %s   (2 n^3 / median time)\n", line.c_str());
  std::printf("  GEMM peak        %.1f GFLOP/s\n", peak);
  if (omp_threads_spin(mi) && mi.load_avg_1min >= mi.logical_cpus)
    note(out, "the load is at least the CPU count and OpenMP threads spin-wait (OMP_WAIT_POLICY is not PASSIVE): "
              "spinning threads lose their cores to the other processes and every parallel op slows down; "
              "`OMP_WAIT_POLICY=PASSIVE tinyds bench` measures a shared machine more fairly");
  out["machine"] = {{"cpu_model", mi.cpu_model}, {"logical_cpus", mi.logical_cpus},
                    {"omp_threads", mi.omp_threads}, {"omp_wait_policy", mi.omp_wait_policy},
                    {"load_avg_1min_start", mi.load_avg_1min}, {"eigen_simd", Eigen::SimdInstructionSetsInUse()}};
  out["gemm_gflops"] = gemm;
  out["gemm_peak_gflops"] = peak;
  return peak;
}

// Part 2. Returns tinyds's tokens/s; *median_step_s gets the median step time.
// Where forward + backward spend their time inside real training steps, by phase (attention / MLA, dense FFN /
// MoE, head + loss), measured with timers in the model itself: the profile that holds for every architecture.
void print_phase_profile(const StepTimes& st, json& out) {
  const double fb = median_of(st.forward_s) + median_of(st.backward_s);
  std::printf("  inside forward + backward (%.1f ms, timers in the model, mean of the timed steps):\n", 1e3 * fb);
  double sum = 0;
  json rows = json::array();
  std::vector<std::pair<std::string, double>> sorted = st.phase_s;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [name, sec] : sorted) {
    std::printf("    %-18s %8.1f ms  %5.1f%%\n", name.c_str(), 1e3 * sec, 100 * sec / fb);
    rows.push_back({{"phase", name}, {"ms_per_step", 1e3 * sec}, {"percent_of_fwd_bwd", 100 * sec / fb}});
    sum += sec;
  }
  std::printf("    %-18s %8.1f ms  %5.1f%%  (embedding, MTP norms/projection/head/loss; the phases are means, forward + backward a median: on a noisy machine this can go negative)\n", "other",
              1e3 * (fb - sum), 100 * (fb - sum) / fb);
  out["tinyds"]["phases"] = rows;
}

double bench_training(const Config& cfg, int warmup, int steps, double peak, double* median_step_s, json& out) {
  const ModelConfig& m = cfg.model;
  const int B = cfg.train.batch_size, T = cfg.train.seq_len;
  std::printf("\nmeasuring tinyds training steps (%d warmup + %d timed)", warmup, steps);
  std::fflush(stdout);
  const StepTimes st = time_training_steps(cfg, warmup, steps, cfg.train.seed, progress_dot);
  const double med = median_of(st.step_s), tps = B * T / med;
  const FlopCount f = training_flops_per_token(m, T);
  const double gflops = f.per_token() * B * T / med / 1e9;
  *median_step_s = med;
  const auto [lo, hi] = std::minmax_element(st.step_s.begin(), st.step_s.end());

  std::printf("\ntinyds training (%s: %lld params, %lld in matmuls; B %d, T %d; loss %.3f)\n", cfg.name.c_str(),
              (long long)st.num_params, (long long)f.matmul_params, B, T, st.last_loss);
  std::printf("  step time        %.1f ms median (min %.1f, max %.1f over %d steps)\n", 1e3 * med, 1e3 * *lo,
              1e3 * *hi, steps);
  std::printf("    phases         forward %.1f + backward %.1f + norm/clip %.1f + adamw %.1f ms (medians)\n",
              1e3 * median_of(st.forward_s), 1e3 * median_of(st.backward_s), 1e3 * median_of(st.clip_s),
              1e3 * median_of(st.adamw_s));
  std::printf("  throughput       %.0f tokens/s (B*T / median step)\n", tps);
  std::printf("  FLOPs/token      6 * N_active + attention = %.2f + %.2f = %.2f MFLOP\n", f.matmul_flops / 1e6,
              f.attention_flops / 1e6, f.per_token() / 1e6);
  std::printf("                   (N_active = %lld: every matrix but the embed lookup, K/E of the routed experts,\n"
              "                    the head once more per MTP module; attention: fwd+bwd, QK^T and PV, causal half,\n"
              "                    over %d blocks)\n", (long long)f.matmul_params, m.n_layer + m.mtp_depth);
  std::printf("  achieved         %.1f GFLOP/s = %.1f%% of the GEMM peak (%.1f)\n", gflops, 100 * gflops / peak, peak);
  print_phase_profile(st, out);
  out["tinyds"] = {{"tokens_per_s", tps}, {"median_step_s", med}, {"step_s", st.step_s},
                   {"median_forward_s", median_of(st.forward_s)}, {"median_backward_s", median_of(st.backward_s)},
                   {"median_clip_s", median_of(st.clip_s)}, {"median_adamw_s", median_of(st.adamw_s)},
                   {"params", st.num_params}, {"matmul_params", f.matmul_params},
                   {"flops_per_token", f.per_token()}, {"matmul_flops_per_token", f.matmul_flops},
                   {"attention_flops_per_token", f.attention_flops},
                   {"flops_formula", "6 * N_active + 3*2 * (n_layer + mtp_depth) * T/2 * H * (dqk + dv)"},
                   {"achieved_gflops", gflops}, {"fraction_of_gemm_peak", gflops / peak},
                   {"warmup", warmup}, {"steps", steps}, {"last_loss", st.last_loss}};
  return tps;
}

// Part 3.
void bench_profile(const Config& cfg, double median_step_s, json& out) {
  std::printf("\nprofiling each op in isolation at the model's shapes...\n");
  std::fflush(stdout);
  std::vector<OpProfileRow> rows = profile_training_ops(cfg);
  std::sort(rows.begin(), rows.end(), [](const OpProfileRow& a, const OpProfileRow& b) {
    return a.ms_per_step() > b.ms_per_step();
  });
  double sum = 0;
  for (const OpProfileRow& r : rows) sum += r.ms_per_step();
  const double step_ms = 1e3 * median_step_s, other = step_ms - sum;
  std::printf("\nper-op profile of one training step (median of repeated isolated calls x calls per step)\n");
  std::printf("  %-18s %-36s %5s %9s %9s %7s  %s\n", "op", "shape", "calls", "ms/call", "ms/step", "%", "where");
  json jrows = json::array();
  for (const OpProfileRow& r : rows) {
    std::printf("  %-18s %-36s %5d %9.3f %9.2f %6.1f%%  %s\n", r.op.c_str(), r.shape.c_str(), r.calls, r.ms_per_call,
                r.ms_per_step(), 100 * r.ms_per_step() / sum, r.what.c_str());
    jrows.push_back({{"op", r.op}, {"shape", r.shape}, {"where", r.what}, {"calls", r.calls},
                     {"ms_per_call", r.ms_per_call}, {"ms_per_step", r.ms_per_step()}, {"reps", r.reps},
                     {"percent_of_sum", 100 * r.ms_per_step() / sum}});
  }
  std::printf("  %-18s %-36s %5s %9s %9.2f %6.1f%%\n", "sum of ops", "", "", "", sum, 100.0);
  std::printf("  %-18s %-36s %5s %9s %9.2f\n", "measured step", "(median, part 2)", "", "", step_ms);
  std::printf("  %-18s %-36s %5s %9s %9.2f %6.1f%%  of the measured step\n", "other", "(step - sum of ops)", "", "",
              other, 100 * other / step_ms);
  if (std::abs(other) > 0.25 * step_ms) {
    char load[32];
    std::snprintf(load, sizeof load, "%.2f", load_average_1min());
    note(out, std::string("the isolated ops and the measured step disagree by more than 25%: the machine's load "
                          "changed between the two measurements (load average now ") + load +
              "), or threads spin-wait on busy cores; the per-op shares are still indicative");
  }
  out["profile"] = jrows;
  out["profile_sum_ms"] = sum;
  out["profile_other_ms"] = other;
}

// Part 4. Returns the torch tokens/s, or 0 when there is no result.
double bench_torch(const Config& cfg, int threads, int warmup, int steps, json& out) {
  const double flops_per_token = training_flops_per_token(cfg.model, cfg.train.seq_len).per_token();
  const std::string script = std::string(TINYDS_SOURCE_DIR) + "/tests/reference/bench_torch.py";
  std::printf("\nrunning the PyTorch reference (after tinyds, never alongside)...\n");
  std::printf("  %s\n", torch_bench_command("/usr/bin/python3", script, cfg, threads, warmup, steps).c_str());
  std::fflush(stdout);
  const TorchBenchResult r = run_torch_bench("/usr/bin/python3", script, cfg, threads, warmup, steps);
  std::printf("\nPyTorch reference\n");
  for (const std::string& line : r.notes) std::printf("  (bench_torch.py) %s\n", line.c_str());
  if (!r.ok) {
    std::printf("  unavailable: %s\n", r.why.c_str());
    out["torch"] = {{"skipped", r.why}, {"command", r.command}};
    return 0;
  }
  const json& j = r.result;
  const double tps = j["tokens_per_s"].get<double>();
  std::printf("  torch            %s, %d threads\n", j.value("torch", std::string("?")).c_str(), j.value("threads", 0));
  std::printf("  BLAS             %s\n", j.value("blas", std::string("?")).c_str());
  std::printf("  step time        %.1f ms median (%d steps)\n", 1e3 * j.value("median_step_s", 0.0),
              j.value("steps", 0));
  std::printf("  throughput       %.0f tokens/s (%.1f GFLOP/s by tinyds's FLOP count above)\n", tps,
              tps * flops_per_token / 1e9);
  std::printf("  torch GEMM 512   %.1f GFLOP/s\n", j.value("gemm512_gflops", 0.0));
  std::printf("  its environment  OMP_WAIT_POLICY=%s OPENBLAS_THREAD_TIMEOUT=%s, load average %.2f at its end\n",
              j.value("omp_wait_policy", std::string("?")).c_str(),
              j.value("openblas_thread_timeout", std::string("?")).c_str(), j.value("load_avg_1min", -1.0));
  const std::string theirs = j.value("omp_wait_policy", std::string("?"));
  const char* ours = std::getenv("OMP_WAIT_POLICY");
  if (theirs != (ours ? ours : ""))
    note(out, "bench_torch.py ran with OMP_WAIT_POLICY=" + theirs + ", tinyds with " +
              (ours ? std::string("OMP_WAIT_POLICY=") + ours : std::string("it unset")) +
              ": on busy shared cores that alone can change the ratio below");
  out["torch"] = j;
  out["torch"]["command"] = r.command;
  return tps;
}


// ---- tinyds bench --rollout ----

struct RolloutBenchArgs {
  std::string ckpt;         // a checkpoint to time, or "" for the preset freshly initialised
  int prompts = 8, group = 8, max_new_tokens = 96, warmup = 1, repeats = 5;
  bool no_torch = false;
};

// Prints and records one side's figures; returns its tokens/s.
double report_rollout_side(const char* who, long tokens, const std::vector<double>& wall_s,
                           const std::vector<double>& cpu_s, json& into) {
  const double med = median_of(wall_s), cpu = median_of(cpu_s);
  const auto [lo, hi] = std::minmax_element(wall_s.begin(), wall_s.end());
  std::printf("  %-7s rollout %8.1f ms median (min %.1f, max %.1f over %zu), CPU %8.1f ms: %8.0f tokens/s, "
              "%8.0f tokens per CPU-second\n", who, 1e3 * med, 1e3 * *lo, 1e3 * *hi, wall_s.size(), 1e3 * cpu,
              tokens / med, tokens / cpu);
  into["tokens_per_s"] = tokens / med;
  into["tokens_per_cpu_s"] = tokens / cpu;
  into["median_s"] = med;
  into["median_cpu_s"] = cpu;
  into["wall_s"] = wall_s;
  into["cpu_s"] = cpu_s;
  into["tokens"] = tokens;
  return tokens / med;
}

// --json: opened before measuring (a bad path fails before a minute of work, not after), written at the end.
std::ofstream open_json(const std::string& path) {
  std::ofstream f;
  if (!path.empty()) {
    f.open(path);
    if (!f) throw_error("option --json: cannot open '", path, "' for writing");
  }
  return f;
}

void write_json(std::ofstream& f, const json& out, const std::string& path) {
  if (!f.is_open()) return;
  f << out.dump(2) << "\n";
  if (!f) throw_error("option --json: writing '", path, "' failed");
  std::printf("\nwrote %s\n", path.c_str());
}

int bench_rollout(const std::string& preset, const RolloutBenchArgs& ra, std::ofstream& json_file,
                  const std::string& json_path) {
  namespace fs = std::filesystem;
  Config cfg;
  std::string ckpt = ra.ckpt;
  const Tokenizer tok;
  char dir_template[] = "/tmp/tinyds_bench_rollout_XXXXXX";
  if (!mkdtemp(dir_template)) throw_error("bench --rollout: cannot create a folder under /tmp");
  const fs::path dir = dir_template;
  struct RemoveDir {  // the checkpoint and spec written for the twin go when the bench ends, however it ends
    fs::path d;
    ~RemoveDir() { std::error_code ec; fs::remove_all(d, ec); }
  } remove_dir{dir};
  std::unique_ptr<Transformer<float>> model;
  if (ckpt.empty()) {
    cfg = Config::preset(preset);
    model = std::make_unique<Transformer<float>>(cfg.model);
    model->init_weights(cfg.train.seed);
    ckpt = (dir / "model.safetensors").string();  // the twin loads exactly these weights
    save_checkpoint(ckpt, cfg, tok, *model, nullptr, TrainState{});
  } else {
    const LoadedCheckpoint ck = load_checkpoint(ckpt);
    cfg = ck.config;
    model = std::make_unique<Transformer<float>>(cfg.model);
    load_params_into(ck, *model);
  }
  const ModelConfig& m = cfg.model;
  const int n_tokens = tok.vocab_size();
  const std::vector<std::vector<int>> prompts = rollout_bench_prompts(ra.prompts, ra.group, 2, 1);
  std::size_t lo = prompts[0].size(), hi = lo;
  for (const auto& p : prompts) { lo = std::min(lo, p.size()); hi = std::max(hi, p.size()); }
  const MachineInfo mi = machine_info();
  std::printf("tinyds bench --rollout: %s (C %d, %d layers, %s, V %d), %s\n", ckpt == ra.ckpt ? ckpt.c_str() :
              (cfg.name + ", freshly initialised").c_str(), m.d_model, m.n_layer, attention_kind_name(m.attention),
              m.vocab_size, m.n_routed_experts > 0 ? "MoE" : "dense FFN");
  std::printf("  batch            B %zu = %d level-2 problems x %d, prompts %zu..%zu tokens, %d new tokens each "
              "(no stop at <eos>), temperature 1\n", prompts.size(), ra.prompts, ra.group, lo, hi, ra.max_new_tokens);
  std::printf("  machine          %s, %d logical CPUs, %d OpenMP threads, OMP_WAIT_POLICY %s, load average %.2f\n",
              mi.cpu_model.c_str(), mi.logical_cpus, mi.omp_threads,
              mi.omp_wait_policy.empty() ? "unset" : mi.omp_wait_policy.c_str(), mi.load_avg_1min);
  json out = {{"preset", cfg.name}, {"ckpt", ra.ckpt}, {"config", config_to_json(cfg)}, {"notes", json::array()},
              {"batch", prompts.size()}, {"prompts", ra.prompts}, {"group", ra.group},
              {"max_new_tokens", ra.max_new_tokens}, {"prompt_len_min", lo}, {"prompt_len_max", hi}};
  out["machine"] = {{"cpu_model", mi.cpu_model}, {"logical_cpus", mi.logical_cpus}, {"omp_threads", mi.omp_threads},
                    {"omp_wait_policy", mi.omp_wait_policy}, {"load_avg_1min_start", mi.load_avg_1min}};

  // Greedy check prompts: the first two distinct problems, 16 new tokens (fewer if --max-new-tokens is smaller).
  const std::vector<std::vector<int>> check = {prompts[0], prompts[std::min<std::size_t>(ra.group, prompts.size() - 1)]};
  const int check_new = std::min(16, ra.max_new_tokens);
  const Rollout greedy_rollout = rollout(*model, check, rollout_bench_options(check_new, n_tokens, 0.0f, 1));
  std::vector<std::vector<int>> greedy;
  std::vector<std::vector<float>> greedy_lp;  // log-probs of the greedy tokens (tau 1): the twin compares them too
  for (int b = 0; b < greedy_rollout.B; b++) {
    greedy.push_back(greedy_rollout.completion_ids(b));
    const float* lp = greedy_rollout.logprob_row(b) + greedy_rollout.prompt_len[b];
    greedy_lp.emplace_back(lp, lp + greedy_rollout.completion_len[b]);
  }

  std::printf("\nmeasuring tinyds rollouts (%d warmup + %d timed)...\n", ra.warmup, ra.repeats);
  std::fflush(stdout);
  const RolloutTimes t =
      time_rollouts(*model, prompts, rollout_bench_options(ra.max_new_tokens, n_tokens, 1.0f, 1), ra.warmup, ra.repeats);
  const double tps = report_rollout_side("tinyds", t.tokens, t.wall_s, t.cpu_s, out["tinyds"]);
  // The same rollouts with every row prefilled on its own, as the twin does: the part of the ratio that is the
  // shared prefill of a group's copies of one prompt, and the part that is the decoding itself.
  RolloutOptions unshared = rollout_bench_options(ra.max_new_tokens, n_tokens, 1.0f, 1);
  unshared.share_prefills = false;
  const RolloutTimes u = time_rollouts(*model, prompts, unshared, ra.warmup, ra.repeats);
  std::printf("  the same, every row prefilled on its own (as the twin does):\n");
  const double tps_unshared = report_rollout_side("tinyds", u.tokens, u.wall_s, u.cpu_s, out["tinyds_unshared_prefills"]);

  int status = 0;
  if (ra.no_torch) {
    std::printf("  PyTorch twin: skipped (--no-torch)\n");
    out["torch"] = {{"skipped", "--no-torch"}};
  } else {
    const fs::path spec = dir / "rollout_spec.json";
    std::ofstream(spec) << json{{"ckpt", ckpt}, {"prompts", prompts}, {"max_new_tokens", ra.max_new_tokens},
                                {"n_tokens", n_tokens}, {"temperature", 1.0}, {"repeats", ra.repeats},
                                {"warmup", ra.warmup}, {"seed", 1}, {"check_prompts", check},
                                {"check_new_tokens", check_new}, {"tinyds_greedy", greedy},
                                {"tinyds_greedy_logprobs", greedy_lp}}.dump();
    const std::string python = "/usr/bin/python3", script = std::string(TINYDS_SOURCE_DIR) + "/tests/reference/bench_torch.py";
    const std::string command = shell_quote(python) + " " + shell_quote(script) + " --json --threads " +
                                std::to_string(mi.omp_threads) + " --rollout " + shell_quote(spec.string());
    std::printf("running the PyTorch twin (after tinyds, never alongside)...\n  %s\n", command.c_str());
    std::fflush(stdout);
    const TorchBenchResult r = run_torch_command(python, script, command);
    for (const std::string& line : r.notes) std::printf("  (bench_torch.py) %s\n", line.c_str());
    if (!r.ok) {
      std::printf("  PyTorch twin unavailable: %s\n", r.why.c_str());
      out["torch"] = {{"skipped", r.why}, {"command", command}};
      // A twin that ran but disagreed exits 1 after its JSON line; one that did not run at all is not a failure.
      status = 0;
    } else {
      const json& j = r.result;
      const double torch_tps = report_rollout_side("PyTorch", j.value("tokens", 0L), j["times_s"].get<std::vector<double>>(),
                                                   j["cpu_s"].get<std::vector<double>>(), out["torch"]);
      out["torch"]["result"] = j;
      out["torch"]["command"] = command;
      std::printf("          torch %s, %d threads, %s; OMP_WAIT_POLICY=%s, load average %.2f at its end\n",
                  j.value("torch", std::string("?")).c_str(), j.value("threads", 0),
                  j.value("blas", std::string("?")).c_str(), j.value("omp_wait_policy", std::string("?")).c_str(),
                  j.value("load_avg_1min", -1.0));
      const bool same_recompute = j.value("greedy_cache_equals_recompute", false);
      const bool same_tinyds = j.value("greedy_equals_tinyds", false);
      std::printf("  greedy check     twin's kv-cache decode == its full recompute: %s; tinyds == twin: %s "
                  "(%zu prompts x %d tokens; tokens equal, log-probs within %.0e: max diff %.1e and %.1e)\n",
                  same_recompute ? "yes" : "NO", same_tinyds ? "yes" : "NO", check.size(), check_new,
                  j.value("logprob_tolerance", 0.0), j.value("logprob_max_diff_recompute", -1.0),
                  j.value("logprob_max_diff_tinyds", -1.0));
      if (j.value("tokens", 0L) != t.tokens)
        note(out, "the twin sampled " + std::to_string(j.value("tokens", 0L)) + " tokens, tinyds " +
                  std::to_string(t.tokens) + ": not the same work");
      if (!same_recompute || !same_tinyds) {
        std::fprintf(stderr, "error: greedy decoding disagrees (first difference at [completion, token] %s)\n",
                     j["first_difference"].dump().c_str());
        status = 1;
      }
      std::printf("\ntinyds / PyTorch    %.2fx wall (%.0f vs %.0f tokens/s), %.2fx per CPU-second; every row "
                  "prefilled on its own, as the twin: %.2fx wall\n", tps / torch_tps, tps, torch_tps,
                  out["tinyds"]["tokens_per_cpu_s"].get<double>() / out["torch"]["tokens_per_cpu_s"].get<double>(),
                  tps_unshared / torch_tps);
      out["tinyds_over_torch"] = tps / torch_tps;
      out["tinyds_unshared_over_torch"] = tps_unshared / torch_tps;
    }
  }
  out["machine"]["load_avg_1min_end"] = load_average_1min();
  write_json(json_file, out, json_path);
  return status;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  // `tinyds bench --device cuda ...` is the device bench (cmd_bench_device.cpp), with options of its own.
  const std::string device_arg = scan_option(argc, argv, "--device", "cpu");
  if (parse_device(device_arg, "--device") == Device::cuda) return cmd_bench_device(argc, argv);
  Args a("tinyds bench",
         "Training throughput of tinyds against the machine's measured fp32 GEMM peak and the PyTorch twin "
         "(tests/reference/bench_torch.py), with a per-op profile of one step. Takes about a minute on 2 cores.");
  std::string preset = "base", json_path;
  int steps = 10, warmup = 3;
  bool no_torch = false, kernels = false;
  a.add("--preset", preset, "model and batch (B, T) to time: nano, small, base (DeepSeek-style) or their -dense twins (with --rollout: default small)");
  a.add("--steps", steps, "timed training steps (median taken)");
  a.add("--warmup", warmup, "untimed training steps first");
  a.add_flag("--no-torch", no_torch, "skip the PyTorch reference");
  a.add("--json", json_path, "also write every figure to this JSON file");
  std::string device = "cpu";
  a.add("--device", device, "cpu (this bench) or cuda: the training step on the CUDA device, with MFU against its "
                            "datasheet peak, or its roofline analysis (`tinyds bench --device cuda --help`)");
  a.add_flag("--kernels", kernels,
             "instead, time every CUDA kernel version (--steps calls each); under the CPU emulation these are not "
             "GPU figures");
  bool rollout_mode = false;
  RolloutBenchArgs ra;
  a.add_flag("--rollout", rollout_mode,
             "instead, time rollouts (the RL stage's sampling) against the PyTorch twin's kv-cache decode; "
             "preset small unless --preset or --ckpt says otherwise");
  a.add("--ckpt", ra.ckpt, "with --rollout: time this checkpoint instead of a freshly initialised preset");
  a.add("--rollouts", ra.repeats, "with --rollout: timed rollouts per side (median taken), after one untimed");
  a.add("--prompts", ra.prompts, "with --rollout: distinct generated level-2 problems");
  a.add("--group", ra.group, "with --rollout: completions per problem (B = prompts x group)");
  a.add("--max-new-tokens", ra.max_new_tokens, "with --rollout: tokens sampled per sequence (no stop at <eos>)");
  if (!a.parse(argc, argv)) return 0;
  if (steps < 1) throw_error("option --steps: ", steps, " must be at least 1");
  if (kernels) {
    cuda::bench_kernels(steps);
    return 0;
  }
  if (rollout_mode) {
    if (ra.repeats < 1 || ra.prompts < 1 || ra.group < 1 || ra.max_new_tokens < 1)
      throw_error("bench --rollout: --rollouts, --prompts, --group and --max-new-tokens must be at least 1");
    ra.no_torch = no_torch;
    std::ofstream json_file = open_json(json_path);
    return bench_rollout(a.given("--preset") ? preset : "small", ra, json_file, json_path);
  }
  if (warmup < 0) throw_error("option --warmup: ", warmup, " must not be negative");
  const Config cfg = Config::preset(preset);  // an unknown name is an error listing the presets
  std::ofstream json_file = open_json(json_path);

  const ModelConfig& m = cfg.model;
  std::printf("tinyds bench: preset %s (C %d, %d layers, %s H %d Hkv %d D %d, F %d, V %d), B %d, T %d\n",
              cfg.name.c_str(), m.d_model, m.n_layer, attention_kind_name(m.attention), m.n_head, m.n_kv_head,
              m.head_dim, m.ffn_hidden, m.vocab_size, cfg.train.batch_size, cfg.train.seq_len);
  if (m.attention == AttentionKind::mla)
    std::printf("  MLA              Q %d, L %d, R %d\n", m.q_lora_rank, m.kv_lora_rank, m.rope_dim);
  if (m.n_routed_experts > 0)
    std::printf("  MoE              %d routed experts top-%d + %d shared, F %d, first %d layer(s) dense, balance %s\n",
                m.n_routed_experts, m.n_activated_experts, m.n_shared_experts, m.moe_inter_dim, m.n_dense_layers,
                m.balance.c_str());
  if (m.mtp_depth > 0) std::printf("  MTP              depth %d, lambda %.2f\n", m.mtp_depth, m.mtp_lambda);
  json out = {{"preset", cfg.name}, {"config", config_to_json(cfg)}, {"notes", json::array()}};
  const MachineInfo mi = machine_info();
  const double peak = bench_machine(mi, out);
  double median_step_s = 0;
  const double tps = bench_training(cfg, warmup, steps, peak, &median_step_s, out);
  // The isolated-op profile knows the dense block's ops and shapes; the in-model phase profile above covers MLA,
  // MoE and MTP.
  if (m.attention != AttentionKind::mla && m.n_routed_experts == 0 && m.mtp_depth == 0)
    bench_profile(cfg, median_step_s, out);
  if (no_torch) {
    std::printf("\nPyTorch reference: skipped (--no-torch)\n");
    out["torch"] = {{"skipped", "--no-torch"}};
  } else if (const double torch_tps = bench_torch(cfg, mi.omp_threads, warmup, steps, out); torch_tps > 0) {
    std::printf("\ntinyds / PyTorch    %.2fx  (%.0f vs %.0f tokens/s)\n", tps / torch_tps, tps, torch_tps);
    out["tinyds_over_torch"] = tps / torch_tps;
  }
  out["machine"]["load_avg_1min_end"] = load_average_1min();
  write_json(json_file, out, json_path);
  return 0;
}

}  // namespace tinyds

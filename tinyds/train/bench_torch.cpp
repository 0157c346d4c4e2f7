// tinyds/train/bench_torch.cpp — see bench_torch.h. Shapes: B batch, T time.
#include "tinyds/train/bench_torch.h"

#include <cstdio>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace tinyds {

// 'text' for /bin/sh: single quotes, and each ' inside closed, escaped and reopened.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

namespace {

std::string trim(const std::string& s) {
  const std::size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

std::string torch_bench_command(const std::string& python, const std::string& script, const Config& cfg,
                                int threads, int warmup, int steps) {
  const ModelConfig& m = cfg.model;
  std::ostringstream os;
  os.precision(9);  // floats (rope_theta, norm_eps) round-trip through the text
  // --config names the preset for the report; every model field is then given explicitly, so the twin runs
  // this exact model even if its presets (tests/reference/config.py) were to differ from Config::preset.
  os << shell_quote(python) << " " << shell_quote(script) << " --json --config " << shell_quote(cfg.name)
     << " --batch " << cfg.train.batch_size << " --seq " << cfg.train.seq_len << " --threads " << threads
     << " --warmup " << warmup << " --steps " << steps << " --vocab-size " << m.vocab_size << " --max-seq-len "
     << m.max_seq_len << " --n-layer " << m.n_layer << " --d-model " << m.d_model << " --attention "
     << attention_kind_name(m.attention) << " --n-head " << m.n_head << " --n-kv-head " << m.n_kv_head
     << " --head-dim " << m.head_dim << " --q-lora-rank " << m.q_lora_rank << " --kv-lora-rank " << m.kv_lora_rank
     << " --rope-dim " << m.rope_dim << " --ffn-hidden " << m.ffn_hidden << " --rope-theta " << m.rope_theta
     << " --norm-eps " << m.norm_eps << " --n-routed-experts " << m.n_routed_experts << " --n-activated-experts "
     << m.n_activated_experts << " --n-shared-experts " << m.n_shared_experts << " --moe-inter-dim " << m.moe_inter_dim
     << " --n-dense-layers " << m.n_dense_layers << " --score-func " << shell_quote(m.score_func) << " --route-scale "
     << m.route_scale << " --n-expert-groups " << m.n_expert_groups << " --n-limited-groups " << m.n_limited_groups
     << " --balance " << shell_quote(m.balance) << " --bias-update-speed " << m.bias_update_speed
     << " --seq-aux-alpha " << m.seq_aux_alpha << " --aux-alpha " << m.aux_alpha << " --mtp-depth " << m.mtp_depth
     << " --mtp-lambda " << m.mtp_lambda;
  return os.str();
}

TorchBenchResult run_torch_bench(const std::string& python, const std::string& script, const Config& cfg,
                                 int threads, int warmup, int steps) {
  return run_torch_command(python, script, torch_bench_command(python, script, cfg, threads, warmup, steps));
}

TorchBenchResult run_torch_command(const std::string& python, const std::string& script, const std::string& command) {
  TorchBenchResult r;
  r.command = command;
  if (access(python.c_str(), X_OK) != 0) {
    r.why = python + " not found or not executable (install python3 and python3-torch: make deps)";
    return r;
  }
  if (access(script.c_str(), R_OK) != 0) {
    r.why = script + " not found (TINYDS_SOURCE_DIR points at a different checkout?)";
    return r;
  }
  std::fflush(stdout);  // our own lines first: the child writes to a pipe, we print after it ends
  FILE* pipe = popen((r.command + " 2>&1").c_str(), "r");
  if (!pipe) {
    r.why = "could not start: " + r.command;
    return r;
  }
  std::string out;
  char buf[4096];
  for (std::size_t got; (got = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, got);
  const int status = pclose(pipe);

  std::istringstream lines(out);
  std::string json_line, last_line;
  for (std::string line; std::getline(lines, line);) {
    line = trim(line);
    if (line.empty()) continue;
    if (line.front() == '{') json_line = line;
    else r.notes.push_back(line);
    last_line = line;
  }
  const bool exited_ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!exited_ok || json_line.empty()) {
    // A missing torch shows up as a Python traceback whose last line names the module.
    std::ostringstream why;
    why << "bench_torch.py " << (exited_ok ? "printed no JSON line" : "failed");
    if (status != -1 && WIFEXITED(status)) why << " (exit status " << WEXITSTATUS(status) << ")";
    if (!last_line.empty()) why << ": " << last_line;
    r.why = why.str();
    return r;
  }
  try {
    r.result = nlohmann::json::parse(json_line);
  } catch (const nlohmann::json::exception& e) {
    r.why = std::string("bench_torch.py's JSON line did not parse: ") + e.what();
    return r;
  }
  if (!r.result.contains("tokens_per_s") || !r.result["tokens_per_s"].is_number()) {
    r.why = "bench_torch.py's JSON line has no numeric tokens_per_s: " + json_line;
    return r;
  }
  r.ok = true;
  return r;
}

}  // namespace tinyds

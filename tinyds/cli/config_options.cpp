// tinyds/cli/config_options.cpp — see config_options.h.
#include "tinyds/cli/config_options.h"

#include <cstring>

namespace tinyds {

std::string scan_preset(int argc, char** argv, const std::string& fallback) {
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--preset") && i + 1 < argc) return argv[i + 1];
    if (!std::strncmp(argv[i], "--preset=", 9)) return argv[i] + 9;
  }
  return fallback;
}

void add_device_option(Args& a, std::string& device) {
  a.add("--device", device,
        "where the model runs: cpu (Eigen + OpenMP) | cuda (the kernels of kernels/; in the default build the CUDA "
        "emulation on the CPU, slow)");
}

void ConfigOptions::add_to(Args& a, Config& cfg) {
  add_model_to(a, cfg);
  TrainConfig& t = cfg.train;
  a.add("--batch-size", t.batch_size, "sequences per step B");
  a.add("--seq-len", t.seq_len, "max tokens per sequence T");
  a.add("--steps", t.steps, "optimizer steps");
  a.add("--lr", t.lr, "peak learning rate");
  a.add("--min-lr", t.min_lr, "cosine schedule floor");
  a.add("--warmup", t.warmup_steps, "linear warmup steps");
  a.add("--beta1", t.beta1, "AdamW first-moment decay");
  a.add("--beta2", t.beta2, "AdamW second-moment decay");
  a.add("--weight-decay", t.weight_decay, "AdamW decoupled weight decay (matrices only)");
  a.add("--grad-clip", t.grad_clip, "global grad-norm clip (0 = off)");
  a.add("--eval-every", t.eval_every, "steps between held-out evaluations (0 = only at the end)");
  a.add("--eval-problems", t.eval_problems, "held-out problems per level");
  a.add("--ckpt-every", t.ckpt_every, "steps between checkpoints (0 = only at the end)");
  a.add("--seed", t.seed, "seed for initialisation and data order");
  a.add("--levels", cfg.data.levels, "difficulty levels to train on, e.g. 1,2");
  a.add("--level-weights", cfg.data.level_weights,
        "share of each level among the training problems, one integer per --levels entry, e.g. 2,1 (empty = equal)");
  a.add("--n-train", cfg.data.n_train, "generated training problems");
  a.add_flag("--pad-drills", cfg.data.pad_drills,
             "fill each row's padding with calculator drills <<a op b=c>> from the training answers (no extra compute)");
  a.add_flag("--no-pad-drills", no_pad_drills, "turn padding drills off (the small preset has them on)");
  a.add("--drill-columns", cfg.data.drill_columns, "with --pad-drills: columns added to every batch for more drills");
  a.add("--distractors", cfg.data.distractors,
        "share of generated training questions given an irrelevant sentence (data/distractors.h), 0..1");
}

void ConfigOptions::add_model_to(Args& a, Config& cfg) {
  preset = cfg.name;
  attention = attention_kind_name(cfg.model.attention);
  // Registers one model option and remembers its name (a command can then tell whether any was given).
  auto add = [&](const char* name, auto& field, const char* help) {
    a.add(name, field, help);
    model_option_names.push_back(name);
  };
  add("--preset", preset, "model/training preset: nano | small | base");
  ModelConfig& m = cfg.model;
  add("--n-layer", m.n_layer, "transformer blocks");
  add("--d-model", m.d_model, "model width C");
  add("--attention", attention, "attention kind: mha | gqa | mqa | mla");
  add("--n-head", m.n_head, "query heads H");
  add("--n-kv-head", m.n_kv_head, "key/value heads (gqa/mqa)");
  add("--head-dim", m.head_dim, "head dimension D (mla: content and value dim)");
  add("--q-lora-rank", m.q_lora_rank, "mla: query latent rank Q");
  add("--kv-lora-rank", m.kv_lora_rank, "mla: key/value latent rank L");
  add("--rope-dim", m.rope_dim, "mla: decoupled RoPE dim R");
  add("--ffn-hidden", m.ffn_hidden, "SwiGLU hidden width F");
  add("--n-routed-experts", m.n_routed_experts, "MoE: routed experts E (0 = dense FFN everywhere)");
  add("--n-activated-experts", m.n_activated_experts, "MoE: routed experts per token K");
  add("--n-shared-experts", m.n_shared_experts, "MoE: shared experts Ns");
  add("--moe-inter-dim", m.moe_inter_dim, "MoE: hidden width of one expert");
  add("--n-dense-layers", m.n_dense_layers, "MoE: the first blocks that keep a dense FFN");
  add("--score-func", m.score_func, "MoE router scores: sigmoid | softmax");
  add("--route-scale", m.route_scale, "MoE: routing weights are scaled by this");
  add("--n-expert-groups", m.n_expert_groups, "MoE group-limited routing: groups (1 = off)");
  add("--n-limited-groups", m.n_limited_groups, "MoE group-limited routing: eligible groups per token");
  add("--balance", m.balance, "MoE load balancing: none | bias, seqaux, aux joined by '+'");
  add("--bias-update-speed", m.bias_update_speed, "MoE: gamma of the aux-loss-free bias update");
  add("--seq-aux-alpha", m.seq_aux_alpha, "MoE: alpha of the sequence-wise balance loss (balance seqaux)");
  add("--aux-alpha", m.aux_alpha, "MoE: alpha of the expert-level balance loss (balance aux)");
  add("--mtp-depth", m.mtp_depth, "multi-token prediction modules D (0 = none)");
  add("--mtp-lambda", m.mtp_lambda, "weight of the MTP loss");
  add("--max-seq-len", m.max_seq_len, "longest sequence (RoPE positions)");
  add("--rope-theta", m.rope_theta, "RoPE base: pair i turns by theta^(-2i/dim) radians per position");
}

void ConfigOptions::finish(Config& cfg) {
  if (no_pad_drills) cfg.data.pad_drills = false;
  cfg.model.attention = parse_attention_kind(attention);
  cfg.validate();
}

}  // namespace tinyds

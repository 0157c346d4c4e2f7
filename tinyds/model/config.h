// tinyds/model/config.h — one plain configuration struct, grouped by subsystem, with named presets.
//
// Shape legend used across tinyds: B batch, T time, C model width, V vocab, H heads, D head dim,
// F feed-forward hidden width, N = B*T rows.
//
// Presets (`Config::preset(name)`):
//   nano   tests: a training step in milliseconds
//   small  the demo: trains to high level-1 accuracy on 2 cores in minutes
//   base   the benchmark: C 256, 4 layers, B 16, T 128
// All three are DeepSeek-style (MLA + fine-grained MoE with a shared expert and bias balancing + one MTP module);
// "nano-dense", "small-dense", "base-dense" are the same sizes with the baseline architecture (MHA/GQA, dense FFN).
// A config is validated on load (Config::validate) with errors that name the field and the value.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace tinyds {

// Attention kind: multi-head, grouped-query (n_kv_head < n_head), multi-query (n_kv_head = 1) — these differ
// only in the number of key/value heads — or Multi-head Latent Attention (DESIGN 4.1, model/mla.h).
enum class AttentionKind { mha, gqa, mqa, mla };

struct ModelConfig {
  int vocab_size = 128;      // V, e.g. 128 (character vocab padded to a multiple of 64 for GEMM)
  int max_seq_len = 256;     // longest sequence the model is used with (RoPE positions), e.g. 256
  int n_layer = 4;           // transformer blocks, e.g. 4
  int d_model = 256;         // C, e.g. 256
  AttentionKind attention = AttentionKind::mha;
  int n_head = 8;            // H query heads, e.g. 8
  int n_kv_head = 8;         // key/value heads: H for mha, 1 < n_kv < H for gqa, 1 for mqa
  int head_dim = 32;         // D, e.g. 32 (C / H by default); for mla the content and value head dim
  // Multi-head Latent Attention (attention = mla only; 0 otherwise)
  int q_lora_rank = 0;       // Q query latent rank (d_c'), e.g. 128
  int kv_lora_rank = 0;      // L key/value latent rank (d_c), e.g. 64 — with rope_dim, all an MLA kv-cache holds
  int rope_dim = 0;          // R decoupled RoPE dim of queries and the one shared rope key, even, e.g. 16
  int ffn_hidden = 683;      // F of the dense SwiGLU FFN, e.g. 683 (~ 8C/3)
  // Fine-grained MoE with shared experts (DESIGN 4.2; model/moe_layer.h). n_routed_experts = 0: every FFN dense.
  int n_routed_experts = 0;     // E routed experts, e.g. 16 (0 = dense model)
  int n_activated_experts = 2;  // K routed experts per token, e.g. 2
  int n_shared_experts = 1;     // Ns shared experts every token uses, e.g. 1
  int moe_inter_dim = 128;      // hidden width of one expert, e.g. 128
  int n_dense_layers = 1;       // the first n_dense_layers blocks keep the dense FFN (V3: 3 of 61), e.g. 1
  std::string score_func = "sigmoid";  // router scores: sigmoid (V3) | softmax (DeepSeekMoE, V2)
  float route_scale = 1.0f;     // routing weights g *= route_scale (V3 671B: 2.5)
  int n_expert_groups = 1;      // group-limited routing: experts in groups (1 = off), e.g. 4
  int n_limited_groups = 1;     // ... and only the best n_limited_groups groups are eligible, e.g. 2
  // Load balancing (DESIGN 4.3): "none" or a '+'-joined combination of bias | seqaux | aux, e.g. "bias+seqaux".
  std::string balance = "bias";
  float bias_update_speed = 1e-3f;  // gamma of the auxiliary-loss-free bias update (V3: 0.001)
  float seq_aux_alpha = 1e-4f;      // alpha of the sequence-wise balance loss (V3 Eq. 17; V3: 0.0001)
  float aux_alpha = 1e-2f;          // alpha of the expert-level balance loss (DeepSeekMoE)
  // Multi-Token Prediction (DESIGN 4.4; model/mtp.h)
  int mtp_depth = 0;            // D extra-token modules (0 = none), e.g. 1
  float mtp_lambda = 0.3f;      // weight lambda of the MTP loss (V3: 0.3 early, 0.1 late)
  float rope_theta = 10000.0f;
  float norm_eps = 1e-5f;
  float init_std = 0.02f;    // normal init of every matrix; output projections scaled by 1/sqrt(2 n_layer)
};

struct TrainConfig {
  int batch_size = 16;       // B sequences per step
  int seq_len = 128;         // T tokens per sequence (problems are padded / truncated to T)
  int steps = 1000;          // optimizer steps
  float lr = 3e-3f;          // peak learning rate
  float min_lr = 3e-4f;      // cosine floor
  int warmup_steps = 50;     // linear warmup from 0 to lr
  float beta1 = 0.9f, beta2 = 0.95f, adam_eps = 1e-8f;
  float weight_decay = 0.1f; // decoupled (AdamW); matrices only, not norms
  float grad_clip = 1.0f;    // global L2 norm clip; 0 disables
  int eval_every = 200;      // steps between held-out evaluations; 0 disables
  int eval_problems = 200;   // held-out problems per evaluation
  int ckpt_every = 500;      // steps between checkpoints; 0 = only at the end
  int log_every = 10;        // steps between progress lines
  uint64_t seed = 1337;      // initialisation and data order
};

struct DataConfig {
  std::vector<int> levels = {1};  // difficulty levels mixed in training (DESIGN section 5), e.g. {1}
  // Share of each level among the generated problems, one integer per entry of levels (empty = equal shares):
  // levels {1, 2} with weights {2, 1} generate 2/3 of n_train at level 1 and 1/3 at level 2.
  std::vector<int> level_weights;
  int n_train = 20000;            // generated training problems
  bool pad_drills = false;        // fill each row's padding with calculator drills "<<a op b=c>>" (data/pad_drills.h)
  int drill_columns = 0;          // with pad_drills: columns added to every batch (more room for drills), e.g. 16
  double distractors = 0;         // share of generated training questions given an irrelevant sentence, 0..1
                                  // (data/distractors.h: length stops saying how many steps a question takes)
};

struct Config {
  std::string name = "custom";
  ModelConfig model;
  TrainConfig train;
  DataConfig data;

  // A named preset: "nano", "small" or "base". Unknown names are an error listing the known ones.
  static Config preset(const std::string& name);
  static std::vector<std::string> preset_names();
  // Throws tinyds::Error naming the field and the value when the config is inconsistent.
  void validate() const;
  // Number of parameters of the model this config describes.
  int64_t num_params() const;
};

// Is layer l (0-based; n_layer + k is MTP module k's block) an MoE layer?
bool is_moe_layer(const ModelConfig& m, int l);
// The balance modes of m.balance (validated by Config::validate).
struct BalanceModes { bool bias = false, seqaux = false, aux = false; };
BalanceModes parse_balance(const std::string& s);  // throws naming the bad part

const char* attention_kind_name(AttentionKind k);
// The training levels as printed: "[1,2]", or "[1,2] (2:1)" with level weights.
std::string levels_text(const DataConfig& d);
AttentionKind parse_attention_kind(const std::string& s);  // "mha" | "gqa" | "mqa" | "mla"

// JSON (stored in checkpoint metadata). from_json validates and names unknown or ill-typed fields.
nlohmann::json model_config_to_json(const ModelConfig& m);
ModelConfig model_config_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::json config_to_json(const Config& c);
Config config_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace tinyds

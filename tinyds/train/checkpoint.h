// tinyds/train/checkpoint.h — model checkpoints in the safetensors format.
//
// A checkpoint holds the parameters (names from params.h), optionally the AdamW moments ("adam_m.<name>",
// "adam_v.<name>"), the model's non-parameter buffers (the MoE router biases "<layer>.ffn.gate.bias") and the
// training state, and in __metadata__: "format" = "tinyds", "format_version" = "1",
// "config" (the Config as JSON), "tokenizer" (the vocab as JSON), "train_state" ({"step", "adam_t"}).
// Written to a temporary file and renamed (safetensors.cpp), so an interrupted write never leaves a
// half-written checkpoint. Loading checks every tensor's presence and shape against the stored config and
// reports a truncated, corrupted or mismatched file as a tinyds::Error naming the file and the problem.
// A model (and optimizer) on cuda is saved and loaded through host copies of its tensors: the same file either way,
// so a checkpoint written by a cuda run resumes on the CPU and the other way round.
#pragma once
#include <string>
#include <vector>

#include "tinyds/data/tokenizer.h"
#include "tinyds/model/config.h"
#include "tinyds/model/transformer.h"
#include "tinyds/train/optimizer.h"

namespace tinyds {

struct TrainState {
  int step = 0;    // optimizer steps completed
  int adam_t = 0;  // AdamW's bias-correction step counter
};

struct LoadedCheckpoint {
  std::string path;
  Config config;
  Tokenizer tokenizer;
  std::vector<float> params;  // in the layout of ParamLayout(config.model)
  std::vector<float> buffers; // the MoE router biases, (num_moe_layers, E) in Transformer::moe_bias_names() order
  bool has_optimizer = false;
  std::vector<float> adam_m, adam_v;
  TrainState state;
};

// Refuses (an error naming the tensor) to write a model or optimizer state holding NaN or Inf.
void save_checkpoint(const std::string& path, const Config& config, const Tokenizer& tok,
                     const Transformer<float>& model, const AdamW* opt, const TrainState& state);
// Refuses a value outside its domain, naming the file and the tensor or field: a NaN or Inf in a parameter, a
// buffer or AdamW's m; a negative or non-finite AdamW v; train_state.step or adam_t outside [0, 2^31). Checks
// every tensor's presence and shape against the config before allocating anything.
LoadedCheckpoint load_checkpoint(const std::string& path);
// A checkpoint a pretrain/sft run can continue: it has the optimizer state and its step is within its schedule.
void check_resumable(const LoadedCheckpoint& ck);
// Copies the checkpoint's parameters and router biases into a model built from the same model config (error if
// they differ), in the model's place (device memory on cuda).
void load_params_into(const LoadedCheckpoint& ck, Transformer<float>& model);
// Copies the checkpoint's AdamW moments (into the optimizer's place) and its step counter t (error if it has none).
void load_optimizer_into(const LoadedCheckpoint& ck, AdamW& opt);

}  // namespace tinyds

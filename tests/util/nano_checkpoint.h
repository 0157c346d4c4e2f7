// tests/util/nano_checkpoint.h — the nano models and checkpoints the post-training trainer tests start from
// (header only): a fresh one written straight to disk, or one after a short SFT run.
//
// Shapes: nano preset (C 32, 2 layers, V 128); max_seq_len as each test needs (level-1 prompts are ~60-90
// characters, a level-1 problem with its worked answer up to ~150).
#pragma once
#include <cstdint>
#include <string>

#include "tinyds/data/tokenizer.h"
#include "tinyds/model/config.h"
#include "tinyds/model/transformer.h"
#include "tinyds/train/checkpoint.h"
#include "tinyds/train/trainer.h"

namespace tinyds::test {

// The nano preset with a context of max_seq_len tokens.
inline Config nano_config(int max_seq_len) {
  Config c = Config::preset("nano");
  c.model.max_seq_len = max_seq_len;
  return c;
}

// A freshly initialised model of c (weights seed `seed`) saved with the default tokenizer at `path`, no optimizer
// state; returns path.
inline std::string write_fresh_checkpoint(const std::string& path, const Config& c, uint64_t seed = 7) {
  Transformer<float> m(c.model);
  m.init_weights(seed);
  save_checkpoint(path, c, Tokenizer(), m, nullptr, TrainState{});
  return path;
}

// nano (context max_seq_len) set up for a short, quiet SFT run: `steps` steps of batch_size rows of 128 tokens,
// no held-out evaluation.
inline Config short_sft_config(int max_seq_len, int steps, int batch_size) {
  Config c = nano_config(max_seq_len);
  c.train.steps = steps;
  c.train.seq_len = 128;
  c.train.batch_size = batch_size;
  c.train.eval_problems = 0;
  return c;
}

// Runs SFT of c into out_dir (quietly) and returns the final checkpoint's path.
inline std::string sft_checkpoint(const Config& c, const std::string& out_dir) {
  TrainOptions o;
  o.out_dir = out_dir;
  o.quiet = true;
  return run_training(c, o).final_ckpt;
}

}  // namespace tinyds::test

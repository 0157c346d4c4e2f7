// tinyds/train/batch_source.h — the batches `tinyds pretrain` and `tinyds sft` train on: one per step, from the
// training problems, in a seeded order that depends only on (seed, step), so a resumed run sees exactly the batches
// an uninterrupted one would.
//
// Shapes: B = train.batch_size rows, T = the batch's columns (its longest row, at most train.seq_len).
//
// What it owns, so the training loop only asks for "the batch of step s":
//   order        a seeded permutation of the problems per epoch (data/batch_order.h)
//   padding      data.pad_drills: a row's padding is filled with calculator drills (data/pad_drills.h); the
//                candidates for step s are positions s*K .. s*K+K-1 of their own seeded order, K enough for every
//                row of the batch to be filled with the shortest drills.
#pragma once
#include <string>
#include <vector>

#include "tinyds/data/batch.h"
#include "tinyds/data/batch_order.h"
#include "tinyds/data/pad_drills.h"
#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"
#include "tinyds/model/config.h"

namespace tinyds {

struct StepBatch {
  Batch batch;          // inputs, targets (B, T)
  int pad_drills = -1;  // drills placed in its padding (-1: padding drills are off)
};

class BatchSource {
 public:
  // problems: the word problems to train on (non-empty); mask_prompt: loss on the answer only (sft) or on the whole
  // sequence (pretrain).
  BatchSource(const Config& cfg, std::vector<Problem> problems, const Tokenizer& tok, bool mask_prompt);

  // The batch of step `step`.
  StepBatch batch(int step);

  const std::vector<Problem>& problems() const { return problems_; }
  std::size_t num_pad_drills() const { return pad_drills_.size(); }

 private:
  DataConfig data_;
  TrainConfig train_;
  const Tokenizer& tok_;
  bool mask_prompt_;
  std::vector<Problem> problems_;
  BatchOrder order_;
  std::vector<PadDrill> pad_drills_;   // empty unless data.pad_drills
  BatchOrder pad_order_;
  int pad_candidates_;                 // K above
};

// Word problems: generated for cfg.data.levels (problems_per_level of each, seeded by train.seed and the level), or
// read from train_file (GSM8K JSONL, typographic characters folded to ASCII with ascii_fold) when it is not empty.
// Throws if there are none.
std::vector<Problem> training_problems(const Config& cfg, const std::string& train_file, bool ascii_fold = false);

// How many problems are longer than seq_len + 1 tokens (<bos> q \n a <eos>): they lose the tail of their answer.
int count_cut_off(const std::vector<Problem>& problems, int seq_len);

}  // namespace tinyds

// tinyds/train/batch_source.cpp — see batch_source.h.
#include "tinyds/train/batch_source.h"

#include <algorithm>

#include "tinyds/core/error.h"
#include "tinyds/data/distractors.h"
#include "tinyds/data/generator.h"
#include "tinyds/data/gsm8k.h"
#include "tinyds/train/trainer.h"

namespace tinyds {

std::vector<Problem> training_problems(const Config& cfg, const std::string& train_file, bool ascii_fold) {
  std::vector<Problem> all;
  if (!train_file.empty()) {
    all = read_gsm8k_jsonl(train_file, ascii_fold);
  } else {
    const std::vector<int> counts = problems_per_level(cfg.data);
    for (std::size_t i = 0; i < cfg.data.levels.size(); i++) {
      const int level = cfg.data.levels[i];
      std::vector<Problem> p = generate_problems(level, counts[i], cfg.train.seed + 7919ull * level, Split::train);
      add_distractors(p, cfg.data.distractors, cfg.train.seed + 7919ull * level, cfg.train.seq_len + 1);
      all.insert(all.end(), p.begin(), p.end());
    }
  }
  if (all.empty()) throw_error("no training problems");
  return all;
}

int count_cut_off(const std::vector<Problem>& problems, int seq_len) {
  int n = 0;
  for (const Problem& p : problems)
    n += static_cast<int>(p.question.size() + p.answer.size()) + 3 > seq_len + 1;  // <bos> q \n a <eos>
  return n;
}

BatchSource::BatchSource(const Config& cfg, std::vector<Problem> problems, const Tokenizer& tok, bool mask_prompt)
    : data_(cfg.data),
      train_(cfg.train),
      tok_(tok),
      mask_prompt_(mask_prompt),
      problems_(std::move(problems)),
      order_(static_cast<int>(problems_.size()), train_.seed),
      pad_drills_(data_.pad_drills ? annotation_drills(problems_, tok_) : std::vector<PadDrill>{}),
      pad_order_(static_cast<int>(std::max<std::size_t>(1, pad_drills_.size())), train_.seed + 2),
      pad_candidates_(train_.batch_size * (train_.seq_len / 10 + 1)) {
  if (problems_.empty()) throw_error("no training problems");
}

StepBatch BatchSource::batch(int step) {
  const int B = train_.batch_size;
  const std::vector<int> rows = order_.rows(step, B);
  // The batch is cut to its longest row, plus room for padding drills when they are on.
  const int drill_cols = pad_drills_.empty() ? 0 : data_.drill_columns;
  StepBatch sb;
  sb.batch = make_batch(problems_, rows, tok_, std::min(train_.seq_len, batch_columns(problems_, rows, train_.seq_len) + drill_cols),
                        mask_prompt_);
  if (!pad_drills_.empty())
    sb.pad_drills = fill_padding_with_drills(sb.batch, pad_drills_, pad_order_.rows(step, pad_candidates_));
  return sb;
}

}  // namespace tinyds

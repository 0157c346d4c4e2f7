// tinyds/data/batch.h — turning problems into (inputs, targets) training batches.
//
// Each row is <bos> question '\n' answer <eos>, then <pad> up to T+1 tokens; inputs = seq[0:T],
// targets = seq[1:T+1]. Target positions on padding are -1 (masked); with mask_prompt, targets inside the
// prompt (<bos> question '\n') are -1 too, so the loss covers exactly the completion answer <eos>.
// A sequence longer than T+1 tokens is truncated (its tail is lost; count_truncated reports how many).
#pragma once
#include <vector>

#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"

namespace tinyds {

struct Batch {
  int B = 0, T = 0;
  std::vector<int> inputs;   // (B, T) token ids
  std::vector<int> targets;  // (B, T) next-token ids, -1 where masked
  int truncated = 0;         // rows that did not fit in T+1 tokens
};

// Builds a batch from problems[idx[0..B)]
Batch make_batch(const std::vector<Problem>& problems, const std::vector<int>& idx, const Tokenizer& tok, int T,
                 bool mask_prompt);
// The columns T a batch of problems[idx] needs: its longest sequence <bos> question '\n' answer <eos> minus one
// (inputs are the sequence without its last token), at least 2, capped at max_T, so that short problems do not pay
// for padding. (The tokenizer is character-level: one token per character.)
int batch_columns(const std::vector<Problem>& problems, const std::vector<int>& idx, int max_T);
// Prompt tokens: <bos> question '\n'
std::vector<int> encode_prompt(const Problem& p, const Tokenizer& tok);

}  // namespace tinyds

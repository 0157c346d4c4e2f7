// tinyds/data/batch.cpp — problems -> (inputs, targets) batches for next-token training (see batch.h).
//
// Shapes: B rows (problems), T time steps. inputs (B, T), targets (B, T), both row-major: [b * T + t].
// Row b is the sequence  seq = <bos> question '\n' answer <eos> <pad>...  of T+1 tokens:
//   inputs[b, t]  = seq[t]       t = 0..T-1
//   targets[b, t] = seq[t + 1]   or -1 when seq[t + 1] is padding, or (mask_prompt) part of the prompt.
// Example, question "1+1?", answer "2", T = 8, mask_prompt:
//   seq      <bos> 1  +  1  ?  \n  2  <eos> <pad>
//   inputs   <bos> 1  +  1  ?  \n  2  <eos>
//   targets   -1  -1 -1 -1  -1  2 <eos> -1        (first unmasked target: the first answer character)
#include "tinyds/data/batch.h"

#include <algorithm>

#include "tinyds/core/error.h"

namespace tinyds {

std::vector<int> encode_prompt(const Problem& p, const Tokenizer& tok) {
  std::vector<int> ids = {Tokenizer::BOS};
  std::vector<int> text = tok.encode(prompt_text(p));
  ids.insert(ids.end(), text.begin(), text.end());
  return ids;
}

int batch_columns(const std::vector<Problem>& problems, const std::vector<int>& idx, int max_T) {
  int longest = 2;
  for (int i : idx) {
    const int len = static_cast<int>(problems[i].question.size() + problems[i].answer.size()) + 3;  // <bos> q \n a <eos>
    longest = std::max(longest, len - 1);
  }
  return std::min(longest, max_T);
}

namespace {

// Encodes one field of problem `row`, naming the problem and the field if a character is not in the vocab.
std::vector<int> encode_field(const Tokenizer& tok, const std::string& text, int row, const char* field) {
  try {
    return tok.encode(text);
  } catch (const Error& e) {
    throw_error("make_batch: problem ", row, " ", field, ": ", e.what());
  }
}

}  // namespace

Batch make_batch(const std::vector<Problem>& problems, const std::vector<int>& idx, const Tokenizer& tok, int T,
                 bool mask_prompt) {
  if (T < 1) throw_error("make_batch: T = ", T, " must be >= 1");
  Batch batch;
  batch.B = static_cast<int>(idx.size());
  batch.T = T;
  batch.inputs.assign(static_cast<size_t>(batch.B) * T, Tokenizer::PAD);
  batch.targets.assign(static_cast<size_t>(batch.B) * T, -1);
  for (int b = 0; b < batch.B; b++) {
    int row = idx[b];
    if (row < 0 || row >= static_cast<int>(problems.size()))
      throw_error("make_batch: idx[", b, "] = ", row, " is outside the ", problems.size(), " problems");
    const Problem& p = problems[row];
    std::vector<int> seq = {Tokenizer::BOS};
    std::vector<int> q = encode_field(tok, p.question, row, "question");
    std::vector<int> a = encode_field(tok, p.answer, row, "answer");
    seq.insert(seq.end(), q.begin(), q.end());
    seq.push_back(tok.encode("\n")[0]);
    const int prompt_len = static_cast<int>(seq.size());  // <bos> question '\n'
    seq.insert(seq.end(), a.begin(), a.end());
    seq.push_back(Tokenizer::EOS);
    if (static_cast<int>(seq.size()) > T + 1) {
      batch.truncated++;
      seq.resize(T + 1);  // the tail (often the final answer and <eos>) is lost; callers report the count
    }
    const int len = static_cast<int>(seq.size());
    int* in = &batch.inputs[static_cast<size_t>(b) * T];
    int* tg = &batch.targets[static_cast<size_t>(b) * T];
    for (int t = 0; t < T; t++) {
      in[t] = t < len ? seq[t] : Tokenizer::PAD;
      // Target t predicts seq[t+1]: masked where that token is padding, or (mask_prompt) still the prompt,
      // so that the SFT loss covers exactly answer <eos>.
      bool is_pad = t + 1 >= len;
      bool in_prompt = mask_prompt && t + 1 < prompt_len;
      tg[t] = (is_pad || in_prompt) ? -1 : seq[t + 1];
    }
  }
  return batch;
}

}  // namespace tinyds

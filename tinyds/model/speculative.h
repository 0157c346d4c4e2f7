// tinyds/model/speculative.h — greedy self-speculative decoding with the Multi-Token Prediction module as the
// drafter (DeepSeek-V3 arXiv 2412.19437 §2.2 and §5.4.3; DESIGN 4.4): the model drafts with its own MTP module 0
// and verifies with its main trunk, so no second model is needed.
//
// Shapes: one sequence (batch 1: a batch would need per-sequence positions, and the Decoder keeps one position
// for all its sequences), P prompt tokens, V vocab, n_tokens the real vocabulary (ids >= n_tokens are padding).
//
// One round, with the main model having decoded positions 0..p and chosen t_{p+1} = argmax main logits at p:
//   draft    d_{p+2} = argmax MTP(x_L[p], t_{p+1})                        one MTP step (Decoder::mtp_step)
//   verify   main model on [t_{p+1}, d_{p+2}] at positions p+1, p+2       ONE call (Decoder::step_many, T = 2)
//            a_{p+2} = argmax main logits at p+1   (what plain greedy decoding would choose next)
//   accept   if a_{p+2} == d_{p+2}: both tokens are kept, and the logits at p+2 give t_{p+3} for free:
//            2 tokens for one main-model call; the MTP cache gets rows p+1 and p+2 in one call.
//   reject   otherwise truncate the main cache to p+2 (forget the draft's row), emit a_{p+2}: 1 token per call.
// Every emitted token is the main model's argmax given the tokens before it, so the output equals plain greedy
// decoding token for token (in exact arithmetic; in fp32 the T = 2 call sums in another order than two T = 1
// steps, so a near-tie of the top two logits within ~1e-6 could in principle flip: the tests check identity).
// The speedup is 2x per accepted draft minus the MTP step and the wider verification call; the report is the
// acceptance rate (V3 §5.4.3 reports 85-90% for its second-token prediction).
#pragma once
#include <vector>

#include "tinyds/core/ledger.h"
#include "tinyds/model/decoder.h"
#include "tinyds/model/transformer.h"

namespace tinyds {

struct SpeculativeStats {
  int tokens = 0;          // new tokens generated
  int proposed = 0;        // drafts verified
  int accepted = 0;        // drafts the main model agreed with
  int main_calls = 0;      // main-model decode calls after the prompt (plain greedy: one per token)
  double seconds = 0;      // wall time of the whole decode, prompt included
  double acceptance_rate() const { return proposed ? static_cast<double>(accepted) / proposed : 0.0; }
  double tokens_per_second() const { return seconds > 0 ? tokens / seconds : 0.0; }
};

struct DecodeResult {
  std::vector<int> tokens;  // the new tokens (ending with eos if it was produced)
  SpeculativeStats stats;
};

struct GreedyOptions {
  int max_new_tokens = 64;  // longest completion; also stops at eos (included) or at the model's max_seq_len
  int n_tokens = 0;         // argmax over ids [0, n_tokens) (the tokenizer's vocabulary); 0 = the model's V
  int eos = -1;             // stop token (-1: none)
  MlaPath path = MlaPath::absorbed;
  Role role = Role::policy;
  // A deliberately WRONG mode: keep every draft without checking it. Exists so a test can show that the
  // verification is what makes the output equal greedy decoding (it must then differ).
  bool skip_verification = false;
};

// Plain greedy decoding of one prompt with the kv-cache Decoder (the prompt in one step_many, then one step per
// token): the baseline speculative_decode must equal. stats.proposed / accepted stay 0.
DecodeResult greedy_decode(const Transformer<float>& model, const std::vector<int>& prompt, const GreedyOptions& o);

// Greedy self-speculative decoding of one prompt (header comment). Throws if the model has mtp_depth 0 or the
// prompt is empty. Stops exactly where greedy_decode stops.
DecodeResult speculative_decode(const Transformer<float>& model, const std::vector<int>& prompt,
                                const GreedyOptions& o);

}  // namespace tinyds

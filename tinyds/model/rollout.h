// tinyds/model/rollout.h — batched sampling of completions with the kv-cache Decoder: the "rollout" of
// R1-Zero-style RL (posttrain/) and the greedy decoding of held-out evaluation (train/evaluate.h).
// posttrain/policy_batch.h packs a rollout into a teacher-forced batch for the policy's forward pass.
//
// Shapes: B sequences (prompts), T columns = the longest a sequence may get (max prompt + max_new_tokens,
// capped at the model's max_seq_len), P_b prompt length and L_b completion length of sequence b, V vocab.
//
// Prompts of different lengths, one Decoder position for all B sequences. The Decoder steps every sequence at
// the same position, so the prompts are LEFT-ALIGNED (all start at position 0, the way they are stored here)
// and while sequence b is still inside its prompt its next input is forced to the prompt's next token instead
// of a sampled one:
//
//   step p (p = 0, 1, ...):  logits_b = Decoder.step(tokens[b][p])        predicts the token at position p+1
//                            p+1 <  P_b            -> tokens[b][p+1] is the prompt's (nothing sampled)
//                            p+1 >= P_b, not done  -> tokens[b][p+1] = sample(logits_b), its log-prob kept;
//                                                     done at <eos>, at max_new_tokens or at max_seq_len
//                            done                  -> no longer decoded: the Decoder steps only the unfinished
//                                                     rows, moved to its first rows (Decoder::move_sequence)
//
// Steps 0..P_min-2 (P_min the shortest prompt of a Decoder's chunk) only read prompts, so they run as a prefill:
// a few Decoder calls of several positions each, the same rows as the single steps (their logits up to fp32
// summation order, unused anyway); the PyTorch twin (tests/reference/decode.py) has the same schedule. Sequences
// whose prefills are equal (the G copies of a GRPO prompt) are prefilled once and copy the cache rows
// (Decoder::prefill_shared), so a group's prompt costs one sequence's prefill, not G.
//
// The alternative, right-aligning prompts behind left padding, would need a padding mask inside attention that
// the Decoder does not have; forcing prompt tokens needs none and leaves every sequence at its true positions
// (RoPE sees the same positions as in the teacher-forced forward). The cost: a short prompt starts sampling
// while a long one is still being read, so a chunk runs max_b(P_b + L_b) - P_min steps after the prefill (the
// chunks take the sequences in order of prompt length to keep that spread small), each over its unfinished rows.
//
// Log-probs. lp[b][t] = log softmax(logits / tau)[token] with tau = the sampling temperature (1 when greedy),
// over the full vocabulary V, from the very logits the token was sampled from. That is exactly what the
// policy's teacher-forced forward recomputes (log_softmax of its logits row over V, divided by the same tau,
// as trl's GRPO does), so lp_old is consistent with lp and the first PPO/GRPO ratio exp(lp - lp_old) is 1 up to
// rounding. It deliberately ignores the top-k / top-p truncation and the restriction to ids < n_tokens (the
// model's vocab is padded past the tokenizer's, see sampling.h): those change the distribution the token was
// drawn from, not the policy being trained (trl and verl make the same choice).
//
// Randomness. Sequence b (its index in the `prompts` argument) draws the token at position t from
// Rng(seed, b) at counter t: a pure function of (seed, b, t), so a rollout is the same whatever the thread
// count or the batch size it is split into. G copies of one prompt (GRPO) are different indices, so they get
// different samples.
//
// Device. With a cuda model (Transformer::device()) the Decoder's cache and scratch are device memory and every
// op of a step is a kernel; the next tokens are chosen by the sampling kernel (kernels/sampling.cu) from the
// uniforms drawn on the host exactly as above, and their log-probs by the logprobs kernel (in float, where the
// CPU's token_logprob works in double). The chosen tokens (and log-probs) are copied to the host after each step:
// the loop needs them for the next input and the <eos> test, and the Rollout below is host memory on both devices
// (rewards are rules on the decoded text). Same seed, same logits -> same tokens on both devices.
//
// Memory: tokens, masks and log-probs are ledgered as Category::rollout under the given role (host memory); on
// cuda the sampler's per-step arrays are Category::rollout in device memory.
#pragma once
#include <cstdint>
#include <vector>

#include "tinyds/core/ledger.h"
#include "tinyds/core/rng.h"
#include "tinyds/model/decoder.h"
#include "tinyds/model/sampling.h"
#include "tinyds/model/transformer.h"

namespace tinyds {

struct Rollout {
  int B = 0;                        // sequences
  int T = 0;                        // columns of each row (the longest any sequence could become)
  float logprob_temperature = 1.0f; // tau the log-probs were taken at (see the header)
  Buffer<int> tokens;               // (B, T) prompt then completion, then <pad>
  Buffer<float> mask;               // (B, T) 1 exactly at sampled positions [P_b, P_b + L_b) (<eos> included)
  Buffer<float> logprobs;           // (B, T) lp of the token at that position given the earlier ones; 0 where mask is 0
  std::vector<int> prompt_len;      // (B) P_b
  std::vector<int> completion_len;  // (B) L_b, <eos> included when it was sampled
  std::vector<char> ended_with_eos; // (B) 1 when the completion's last token is <eos> (not cut off)

  int length(int b) const { return prompt_len[b] + completion_len[b]; }
  const int* row(int b) const { return tokens.data() + static_cast<std::size_t>(b) * T; }          // (T)
  const int* completion(int b) const { return row(b) + prompt_len[b]; }                            // (L_b)
  std::vector<int> completion_ids(int b) const { return {completion(b), completion(b) + completion_len[b]}; }
  const float* logprob_row(int b) const { return logprobs.data() + static_cast<std::size_t>(b) * T; }  // (T)
  const float* mask_row(int b) const { return mask.data() + static_cast<std::size_t>(b) * T; }         // (T)
};

struct RolloutOptions {
  SamplingParams sampling;  // temperature (0 = greedy), top_k, top_p, max_new_tokens, seed
  int n_tokens = 0;         // only ids < n_tokens are sampled (the tokenizer's vocab_size); required
  int eos = 2;              // Tokenizer::EOS: stops a sequence, and is part of its completion
  int pad = 0;              // Tokenizer::PAD: fills rows past their end, and is the input of finished sequences
  int batch = 64;           // most sequences one Decoder decodes together (chunks run one per thread; see rollout())
  MlaPath mla_path = MlaPath::absorbed;
  bool share_prefills = true;  // prefill equal prompts of a chunk once (false: every row its own, for benchmarks)
  Role role = Role::policy; // ledger role of the rollout buffers and the Decoder's cache
};

// Samples a completion for every prompt (token ids, each starting with <bos>). Throws if a prompt is empty,
// a prompt token is outside [0, V), or n_tokens is outside [1, V] (naming the value and the prompt). A prompt
// that already fills max_seq_len gets an empty completion (as in generate()).
Rollout rollout(const Transformer<float>& model, const std::vector<std::vector<int>>& prompts,
                const RolloutOptions& opt);

// One row of a rollout: sequence b of *from.
struct RolloutRow {
  const Rollout* from;
  int b;
};

// A rollout made of rows of other rollouts, in the given order (GRPO's dynamic sampling keeps some groups of several
// rollouts): every row's tokens, mask, log-probs and lengths as in its source, T the largest source T (shorter rows
// padded with `pad`, mask and log-probs 0 there). Throws if the list is empty, a row is out of range, or the
// sources' log-prob temperatures differ (their log-probs would not be one policy's).
Rollout gather_rows(const std::vector<RolloutRow>& rows, int pad, Role role = Role::policy);

// The generator sequence b draws its token at position t from: Rng(seed, stream b) at counter t.
Rng rollout_rng(uint64_t seed, int sequence, int position);

// log softmax(logits / tau)[token] over V logits, in double (the log-prob rollout() records).
double token_logprob(const float* logits, int V, int token, float tau);

}  // namespace tinyds

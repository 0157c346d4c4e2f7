// tinyds/posttrain/preference.h — preference pairs from generated problems, for the reward model (`tinyds rm`),
// DPO (`tinyds dpo`) and the DPO step of `tinyds memory`: the right solution (chosen) against the same solution
// with one result made wrong (rejected).
//
// Shapes: P pairs; a pair batch has B = 2P rows, rows [0, P) chosen and rows [P, 2P) rejected (pair p is rows p
// and P + p), T columns.
//
// Corruptions of a solution "12+7=<<12+7=19>>19\n19*3=<<19*3=57>>57\n#### 57":
//   final_answer   the number after "####" is wrong:            "... #### 61"
//   intermediate   one step's result is wrong where it is written (annotation and text), the following steps
//                  unchanged; when that step is the last one, the "####" number follows it:
//                                                               "12+7=<<12+7=22>>22\n19*3=<<19*3=57>>57\n#### 57"
//   mixed          either of the two, chosen per pair
// The wrong value is v + d with d = +-1..9 (never v itself, never negative), drawn from the pair's seeded draw,
// so a pair depends only on (problem, seed, index).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/data/batch.h"
#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"

namespace tinyds {

enum class PairCorruption { final_answer, intermediate, mixed };
const char* pair_corruption_name(PairCorruption c);          // "final", "intermediate", "mixed"
PairCorruption parse_pair_corruption(const std::string& s);   // error naming the value and the choices

// p with its solution corrupted as above; `draw` (any 64-bit value) picks the step and the offset.
// final_answer of the result is the number its "####" line now says.
Problem corrupt_solution(const Problem& p, PairCorruption kind, uint64_t draw);

// 2P problems: chosen[0..P) as given, then each one corrupted (pair p: draw Rng(seed, stream).at(p)).
std::vector<Problem> preference_rows(const std::vector<Problem>& chosen, PairCorruption kind, uint64_t seed);

// True when `rejected` differs from `chosen` only after the last "####" (a final_answer corruption, which comparing
// the "####" number with the last line's result detects); false when a step's result differs (an intermediate one,
// which only redoing the step's arithmetic detects) or the two are the same.
bool only_final_line_differs(const Problem& chosen, const Problem& rejected);

// The teacher-forced batch of rows (prompt masked: targets cover answer <eos> only), T = the longest row minus 1,
// capped at max_T. Rows that do not fit are truncated (Batch::truncated counts them).
Batch preference_batch(const std::vector<Problem>& rows, const Tokenizer& tok, int max_T);

// The characters [begin, end) of a rejected answer whose targets a DPO pair leaves out: the results (StepCheck
// spans, reward.h) of its calculator lines that hold, from the first character where it differs from the chosen
// answer on. A wrong answer's right arithmetic ("27-5=<<27-5=22>>22" after choosing '-' where '*' was due) is not
// what made it wrong, as GRPO's credit by line (grpo_trainer.h, spare_steps); lines before the difference are the
// chosen row's too and cancel in the pair anyway.
std::vector<std::pair<std::size_t, std::size_t>> spared_results(const std::string& chosen, const std::string& rejected);

// Masks (targets -1) answer characters [begin, end) of row r for each span of spans[r], in a batch made by
// preference_batch from rows (the character tokenizer: one token per character).
void mask_answer_spans(Batch& b, const std::vector<Problem>& rows,
                       const std::vector<std::vector<std::pair<std::size_t, std::size_t>>>& spans);

// Row b's last unmasked target position (the state that has read the whole answer and predicts <eos>), or -1 if
// the row has no unmasked target. The reward model reads its score there (as PPOTrainer's reward model does).
std::vector<int> last_target_positions(const Batch& b);

// True when the whole sequence <bos> question '\n' answer <eos>, with `spare` characters more, fits in a row of
// max_seq_len inputs (so a corrupted answer, up to `spare` characters longer, is never truncated).
bool fits_in_context(const Problem& p, int max_seq_len, int spare);

}  // namespace tinyds

// tinyds/data/distractors.h — irrelevant sentences in training questions, so that a question's length says
// nothing about how many steps it takes.
//
// Shapes: none (text only).
// The demo's SFT data has one-, two- and four-step problems (levels 1, 2, 4), and their questions differ in length as
// much as in steps. The SFT model learns the shortcut: asked a three-step question (level 3, never trained on), it
// writes two lines when the question is short and four when it is long, and almost never three; an irrelevant sentence
// of 19 or 31 characters after the first sentence of the same questions turns most two-line answers into four-line ones
// (notebooks/EXPERIMENTS.md, "Question length and step count"). An irrelevant sentence (GSM-IC, Shi et al. 2023, arXiv
// 2302.00093: "It is a sunny day.") changes a question's length and not its answer; put into a share of the training
// questions at one of the sentence boundaries, it leaves the clauses as the only thing that says how many lines to
// write. The sentences hold no number and no verb of the templates' clauses. Held-out questions are never changed. At
// share 0.5 on four seeds, GRPO's level-3 gain rose from +2.0 / +1.1 / +24.2 / +0.2 to +22.3 / +29.6 / +32.5 / 0.0
// points, but level 2 after SFT fell 2-5 points, and to 71.9% on one seed (under the demo's 75%); on that seed
// share 1, or 0.5 always before the question asked, left level 2 at 38.5 and 48.5%, and share 0.25 gave seeds 2 and
// 7 no level-3 gain: not the demo's default (ibid.).
// In RL prompts (`grpo --prompt-distractors`, posttrain/rl_common.h) the sentence goes just before the question
// asked, where it changes the SFT models' answers most: they then solve 12-44% of level-3 questions (~1% as
// generated). GRPO learns level 3 on such prompts (seed 7: 41.5 -> 68.5%) and not on the held-out questions as
// generated (+1.0 and +1.6 points on two seeds): the three-line habit stays tied to the prompts it was sampled on.
// Off by default (ibid., "Irrelevant sentences in the RL prompts").
#pragma once
#include <cstdint>
#include <vector>

#include "tinyds/data/problem.h"

namespace tinyds {

// The irrelevant sentences, 11 to 56 characters, each ending in '.'.
const std::vector<const char*>& distractor_sentences();

// Puts one irrelevant sentence into each problem with probability `share` (0..1): a sentence and a boundary
// (before the first sentence, or after any sentence but the last) drawn with Rng(seed); the answer is unchanged.
// A problem is left as it is when the longer one would not fit max_tokens (<bos> question '\n' answer <eos>, one
// token per character). Deterministic in (problems, share, seed). Returns how many problems changed. Errors name
// a share outside [0, 1]. before_question: the sentence goes just before the question's last sentence (the
// question asked) instead of at a drawn boundary; the same draws are made either way.
int add_distractors(std::vector<Problem>& problems, double share, uint64_t seed, int max_tokens,
                    bool before_question = false);

}  // namespace tinyds

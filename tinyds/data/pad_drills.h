// tinyds/data/pad_drills.h — calculator drills packed into the padding of a batch.
//
// A batch is cut to its longest row (data/batch.h), so every shorter row ends in padding: on levels 1-2 with B 8
// about a fifth of the computed positions. Those positions cost the same whether they hold <pad> or tokens, so
// data.pad_drills fills them with bare calculator annotations taken from the training problems' own answers:
//   < < 6 7 * 7 = 4 6 9 > >       loss on  4 6 9 > >  (the result and the closing marks)
// back to back after the problem's <eos> (no <bos>/<eos> of their own: ~17% more drills fit), in
// the exact context in which a word problem's answer computes its result ("67*7=<<67*7=" -> "469"). Every
// annotation of every problem is a drill (a level-2 problem gives two, the second on a running result), so the
// drills carry the same arithmetic as the problems, without the story. Rows are not lengthened and no word problem
// loses a token: a drill goes in only where it fits whole. Causal attention means the word problem in front of
// the drills is unchanged by them (its positions never see later ones); a drill does see the problem before it.
// Drills come from TRAINING problems only; evaluation is on held-out word problems. The logged loss is the mean over
// every trained target, drills included, so it is not comparable with a run without them.
// Why: the word-problem errors were wrong arithmetic, and a model this size learns it from the number of
// calculations it sees; ~14 drills join the ~12 of a step's 8 problems (notebooks/EXPERIMENTS.md, "Padding drills").
#pragma once
#include <vector>

#include "tinyds/data/batch.h"
#include "tinyds/data/problem.h"
#include "tinyds/data/tokenizer.h"

namespace tinyds {

struct PadDrill {
  std::vector<int> tokens;  // "<<a op b=" result ">>"
  int prompt_len = 0;       // tokens of "<<a op b=": the targets predicting them are masked
};

// One drill per "<<expr=result>>" annotation in every answer, in order. Errors name the problem and position if
// an annotation is not closed.
std::vector<PadDrill> annotation_drills(const std::vector<Problem>& problems, const Tokenizer& tok);

// Appends drills[candidates[0]], drills[candidates[1]], ... to the padding of rows 0..B-1 in turn, each where it
// fits whole (a drill that does not fit ends that row, and the next row tries it). Returns how many
// were placed. Rows without padding (or truncated) are left alone.
int fill_padding_with_drills(Batch& batch, const std::vector<PadDrill>& drills, const std::vector<int>& candidates);

}  // namespace tinyds

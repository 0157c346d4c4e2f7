// tinyds/data/drills.h — arithmetic drills: a curriculum aid for the toy model.
//
// A drill is the first calculation of a generated problem posed bare, with the problem's own answer format:
//   question "67*7"   answer "67*7=<<67*7=469>>469\n#### 469"
// It teaches the same arithmetic as the word problem in a third of the tokens (no story to read), so a model
// that trains for minutes on a CPU sees several times more calculations. Drills are derived from TRAINING
// problems only; evaluation always uses held-out word problems.
// data.pad_drills (data/pad_drills.h) is the variant that helped: shorter drills packed into the padding of the
// word-problem batches, at no extra cost per step.
#pragma once
#include <vector>

#include "tinyds/data/problem.h"

namespace tinyds {

// The drill of one problem (its first answer line). Errors name the problem if its answer has no
// "a op b=<<...>>c" first line.
Problem drill_from(const Problem& p);
// n drills from problems[0], problems[1], ... (cycling).
std::vector<Problem> make_drills(const std::vector<Problem>& problems, int n);

}  // namespace tinyds

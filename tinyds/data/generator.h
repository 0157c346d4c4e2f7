// tinyds/data/generator.h — GSM8K-style arithmetic word problems from templates (DESIGN section 5).
//
// Levels (fixed, so accuracy figures mean the same everywhere):
//   1: one operation. + and -: operands 2..99; x and /: one operand 2..9, exact division, results <= 999
//   2: two operations, each step uses the previous result; same ranges
//   3: three operations; same
//   4: four operations; + and - operands up to 999
// Every problem is deterministic given (level, seed, index). Train and test never share a problem: a problem
// belongs to the split chosen by a hash of its question text, and the generator draws until it has n problems
// of the requested split (so the two splits are disjoint by construction, whatever the seeds).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tinyds/data/problem.h"

namespace tinyds {

enum class Split { train, test };
Split parse_split(const std::string& s);  // "train" | "test", else an error naming the value

// n problems of the given level (1..4) and split. Errors (level out of range, n < 0) name the value.
std::vector<Problem> generate_problems(int level, int n, uint64_t seed, Split split);
// True if this question text belongs to the test split (the hash rule above).
bool is_test_question(const std::string& question);
// Number of distinct scenario templates (>= 8).
int num_templates();

}  // namespace tinyds

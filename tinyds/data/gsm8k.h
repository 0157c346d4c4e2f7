// tinyds/data/gsm8k.h — reading and writing GSM8K JSONL files (one {"question", "answer"} object per line).
//
// Reads the real GSM8K files too. Errors carry FILE:LINE and the reason: bad JSON, a missing or non-string
// field, no "####" in the answer, a non-integer final answer, an empty file, a file that cannot be opened.
// Blank lines are skipped. Extra fields are ignored (real dumps sometimes carry ids).
#pragma once
#include <string>
#include <vector>

#include "tinyds/data/problem.h"

namespace tinyds {

std::vector<Problem> read_gsm8k_jsonl(const std::string& path);
// Writes atomically (temporary file + rename).
void write_gsm8k_jsonl(const std::string& path, const std::vector<Problem>& problems);

}  // namespace tinyds

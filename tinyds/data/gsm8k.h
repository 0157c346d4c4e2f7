// tinyds/data/gsm8k.h — reading and writing GSM8K JSONL files (one {"question", "answer"} object per line).
//
// Reads the real GSM8K files too. Errors carry FILE:LINE and the reason: bad JSON, a missing or non-string
// field, no "####" in the answer, a non-integer final answer, an empty file, a file that cannot be opened.
// Blank lines are skipped. Extra fields are ignored (real dumps sometimes carry ids).
#pragma once
#include <istream>
#include <string>
#include <vector>

#include "tinyds/data/problem.h"

namespace tinyds {

// Every character of a question or answer must be in the tokenizer's alphabet (data/gsm8k_text.h): those that
// are not are reported together as FILE:LINE:COLUMN. ascii_fold maps typographic quotes, dashes, currency
// signs, x, /, no-break space and tab to ASCII first.
std::vector<Problem> read_gsm8k_jsonl(const std::string& path, bool ascii_fold = false);
// The same from a stream (errors name `path`).
std::vector<Problem> read_gsm8k_jsonl(std::istream& in, const std::string& path, bool ascii_fold = false);
// Writes atomically (temporary file + rename).
void write_gsm8k_jsonl(const std::string& path, const std::vector<Problem>& problems);

}  // namespace tinyds

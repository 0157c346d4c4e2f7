// tinyds/data/gsm8k_text.h — the characters of a GSM8K JSONL line, checked against the tokenizer's alphabet.
//
// The character-level tokenizer (data/tokenizer.h) knows '\n' and the printable ASCII characters ' '..'~'.
// Real GSM8K-style files also hold typographic characters; without a check they fail only when their row is
// drawn, mid-training. check_gsm8k_line() scans the raw JSON line — raw UTF-8 bytes and \t, \r, \uXXXX escapes
// alike — in the values of "question" and "answer" and reports every character outside the alphabet as
// FILE:LINE:COLUMN (1-based; COLUMN counts characters of the raw line, a multi-byte UTF-8 character as one).
// With ascii_fold, the common typographic characters are accepted and ascii_fold() maps them to ASCII:
//   ’ ‘ -> '    “ ” -> "    – — -> -    € -> EUR    £ -> GBP    × -> *    ÷ -> /    no-break space, tab -> ' '
#pragma once
#include <string>

namespace tinyds {

// Throws a tinyds::Error listing every character of the question/answer values outside the alphabet (after
// folding, if ascii_fold) as "FILE:LINE:COLUMN: character U+XXXX (name) is not in the tokenizer's alphabet".
void check_gsm8k_line(const std::string& raw_line, const std::string& path, int line, bool ascii_fold);

// A decoded question or answer: the first character outside the alphabet, as an error starting with `where`
// (the safety net behind check_gsm8k_line, for JSON it cannot place, such as a key spelled with escapes).
void check_alphabet(const std::string& text, const std::string& where);

// The text with the characters listed above replaced by their ASCII forms (other characters unchanged).
std::string ascii_fold(const std::string& text);

}  // namespace tinyds

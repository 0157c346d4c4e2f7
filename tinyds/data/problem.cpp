// tinyds/data/problem.cpp — the final-answer parser and the prompt format (see problem.h).
//
// Shapes: none (text only).
// Accepted after the LAST "####":  optional spaces, an optional '-', then either plain digits ("1000") or
// digits in groups of three separated by commas ("1,000", "12,345,678"), then only whitespace to the end.
// Rejected (std::nullopt): decimals "12.5", words "abc", nothing at all, malformed groups "1,00" / "1000,000",
// trailing text "72 dollars", and numbers too large for int64.
#include "tinyds/data/problem.h"

#include <cctype>

namespace tinyds {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads a run of digits starting at s[i]; returns how many there were.
size_t digit_run(const std::string& s, size_t i) {
  size_t n = 0;
  while (i + n < s.size() && is_digit(s[i + n])) n++;
  return n;
}

}  // namespace

std::optional<int64_t> parse_final_answer(const std::string& text) {
  size_t hash = text.rfind("####");
  if (hash == std::string::npos) return std::nullopt;
  size_t i = hash + 4;
  while (i < text.size() && text[i] == ' ') i++;
  bool negative = false;
  if (i < text.size() && text[i] == '-') { negative = true; i++; }

  std::string digits;  // the number with separators removed
  size_t first = digit_run(text, i);
  if (first == 0) return std::nullopt;  // "#### ", "#### abc", "#### -"
  digits = text.substr(i, first);
  i += first;
  if (i < text.size() && text[i] == ',') {
    // Thousands separators: the leading group has 1-3 digits, every later group exactly 3.
    if (first > 3) return std::nullopt;
    while (i < text.size() && text[i] == ',') {
      size_t group = digit_run(text, i + 1);
      if (group != 3) return std::nullopt;  // "1,00", "1,0000", "1,"
      digits += text.substr(i + 1, 3);
      i += 4;
    }
  }
  // Only whitespace may follow: "12.5" and "72 dollars" are not integer answers.
  for (; i < text.size(); i++)
    if (!std::isspace(static_cast<unsigned char>(text[i]))) return std::nullopt;
  // 18 digits always fit in int64 (max ~9.22e18); longer numbers are not answers we can represent.
  size_t start = digits.find_first_not_of('0');
  if (start != std::string::npos && digits.size() - start > 18) return std::nullopt;

  int64_t value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  return negative ? -value : value;
}

std::string prompt_text(const Problem& p) { return p.question + "\n"; }

std::vector<Annotation> find_annotations(const std::string& text, std::size_t* bad_at) {
  std::vector<Annotation> out;
  *bad_at = std::string::npos;
  for (std::size_t open = text.find("<<"); open != std::string::npos; open = text.find("<<", open + 2)) {
    const std::size_t close = text.find(">>", open + 2);
    const std::size_t eq = close == std::string::npos ? std::string::npos : text.rfind('=', close);
    if (close == std::string::npos || eq == std::string::npos || eq < open + 2) {
      *bad_at = open;
      break;
    }
    out.push_back({open, eq, close});
    open = close;
  }
  return out;
}

}  // namespace tinyds

// tinyds/data/problem.h — a GSM8K-style problem and the prompt/completion format used for training.
//
// GSM8K format: {"question": "...", "answer": "step lines with <<a*b=c>> annotations ...\n#### 72"}.
// A training sequence is  <bos> question '\n' answer <eos>:  the prompt is <bos> question '\n' (masked out of
// the SFT loss), the completion is answer <eos>.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tinyds {

struct Problem {
  std::string question;   // "Tom has 12 apples and buys 7 more. How many apples does he have?"
  std::string answer;     // "12+7=<<12+7=19>>19\n#### 19"
  int64_t final_answer = 0;  // the integer after the last ####
  int level = 0;          // 1..4 for generated problems, 0 when read from a file
};

// The integer after the LAST "####" in text (optional spaces; thousands separators "1,000" accepted; a leading
// '-' accepted). std::nullopt when there is no ####, or what follows is not an integer (e.g. "12.5", "abc").
std::optional<int64_t> parse_final_answer(const std::string& text);

// The prompt text the model is conditioned on (without <bos>): question + "\n".
std::string prompt_text(const Problem& p);

}  // namespace tinyds

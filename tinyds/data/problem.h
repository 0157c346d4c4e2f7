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

// One calculator annotation "<<expr=result>>" of an answer: "<<" at open, the last '=' inside at eq, ">>" at close.
struct Annotation { std::size_t open, eq, close; };
// Every annotation of text, in order, up to the first malformed one (a "<<" with no ">>" after it, or no '=' between
// them), whose "<<" position goes to *bad_at; *bad_at = std::string::npos when every one is well formed.
std::vector<Annotation> find_annotations(const std::string& text, std::size_t* bad_at);

// The prompt text the model is conditioned on (without <bos>): question + "\n".
std::string prompt_text(const Problem& p);

}  // namespace tinyds

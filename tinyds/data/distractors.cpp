// tinyds/data/distractors.cpp — see distractors.h.
#include "tinyds/data/distractors.h"

#include <string>

#include "tinyds/core/error.h"
#include "tinyds/core/rng.h"

namespace tinyds {

const std::vector<const char*>& distractor_sentences() {
  static const std::vector<const char*> s = {
      "Birds sing.",
      "It is sunny.",
      "The sky is clear.",
      "The clock on the wall ticks.",
      "Everyone is in a good mood.",
      "The room smells of fresh bread.",
      "A dog barks somewhere down the street.",
      "It rained all night, and the roads are wet.",
      "The radio plays an old song while the kettle boils.",
      "Nobody remembers when the town was last this quiet.",
  };
  return s;
}

namespace {

// Where a sentence may go: 0 (before the first sentence) and just after every ". " (a sentence's end, the
// following space included), so that the question's last sentence stays last.
std::vector<std::size_t> sentence_boundaries(const std::string& q) {
  std::vector<std::size_t> at = {0};
  for (std::size_t i = q.find(". "); i != std::string::npos; i = q.find(". ", i + 2)) at.push_back(i + 2);
  return at;
}

}  // namespace

int add_distractors(std::vector<Problem>& problems, double share, uint64_t seed, int max_tokens,
                    bool before_question) {
  if (!(share >= 0 && share <= 1)) throw_error("data.distractors = ", share, " must be a share in [0, 1]");
  if (share == 0) return 0;
  const std::vector<const char*>& sentences = distractor_sentences();
  Rng rng(seed, /*stream=*/0xd157);
  int changed = 0;
  for (Problem& p : problems) {
    // Three draws per problem whatever happens, so one problem's outcome never shifts the next one's.
    const bool pick = rng.uniform_double() < share;
    const int64_t which = rng.randint(0, static_cast<int64_t>(sentences.size()) - 1);
    const std::string sentence = std::string(sentences[which]) + " ";
    const std::vector<std::size_t> at = sentence_boundaries(p.question);
    const std::size_t drawn = at[rng.randint(0, static_cast<int64_t>(at.size()) - 1)];
    const std::size_t where = before_question ? at.back() : drawn;
    if (!pick) continue;
    if (static_cast<int>(p.question.size() + sentence.size() + p.answer.size()) + 3 > max_tokens) continue;
    p.question.insert(where, sentence);
    changed++;
  }
  return changed;
}

}  // namespace tinyds

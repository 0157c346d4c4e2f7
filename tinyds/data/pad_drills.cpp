// tinyds/data/pad_drills.cpp — see pad_drills.h.
//
// Shapes: batch.inputs, batch.targets (B, T) row-major. A row holds seq[0..len) = <bos> question '\n' answer <eos>
// then <pad>; inputs[t] = seq[t], targets[t] = seq[t+1] (or -1). Appending drill tokens d[0..m) extends seq to
// seq[len + j] = d[j], so inputs[len + j] = d[j] and the target at len + j is d[j + 1] when d[j + 1] is past the
// drill's prompt, else -1. The target at len - 1 (input <eos>, next token the drill's first '<') stays -1, and so
// does the target of the drill's last '>' (the next drill's '<', or padding).
#include "tinyds/data/pad_drills.h"

#include "tinyds/core/error.h"

namespace tinyds {

std::vector<PadDrill> annotation_drills(const std::vector<Problem>& problems, const Tokenizer& tok) {
  std::vector<PadDrill> out;
  for (std::size_t i = 0; i < problems.size(); i++) {
    const std::string& a = problems[i].answer;
    std::size_t bad_at;
    const std::vector<Annotation> annotations = find_annotations(a, &bad_at);
    if (bad_at != std::string::npos)
      throw_error("annotation_drills: problem ", i, ": annotation at answer position ", bad_at,
                  " is not of the form <<expr=result>>");
    for (const auto [open, eq, close] : annotations) {
      PadDrill d;
      const std::vector<int> prompt = tok.encode(a.substr(open, eq + 1 - open));  // "<<a op b="
      const std::vector<int> result = tok.encode(a.substr(eq + 1, close + 2 - (eq + 1)));  // "c>>"
      d.tokens.insert(d.tokens.end(), prompt.begin(), prompt.end());
      d.prompt_len = static_cast<int>(d.tokens.size());
      d.tokens.insert(d.tokens.end(), result.begin(), result.end());
      out.push_back(std::move(d));
    }
  }
  return out;
}

int fill_padding_with_drills(Batch& batch, const std::vector<PadDrill>& drills, const std::vector<int>& candidates) {
  const int T = batch.T;
  std::size_t next = 0;
  int placed = 0;
  for (int b = 0; b < batch.B && next < candidates.size(); b++) {
    int* in = &batch.inputs[static_cast<std::size_t>(b) * T];
    int* tg = &batch.targets[static_cast<std::size_t>(b) * T];
    int len = 0;  // tokens of the row's sequence held in inputs (the problem ends with <eos> at len - 1)
    while (len < T && in[len] != Tokenizer::PAD) len++;
    if (len == T) continue;  // no padding (or truncated)
    while (next < candidates.size()) {
      const int c = candidates[next];
      if (c < 0 || c >= static_cast<int>(drills.size()))
        throw_error("fill_padding_with_drills: candidate ", next, " = ", c, " is outside the ", drills.size(), " drills");
      const PadDrill& d = drills[c];
      const int m = static_cast<int>(d.tokens.size());
      if (len + m > T) break;  // does not fit whole: this row is full, the next row tries this drill
      for (int j = 0; j < m; j++) {
        in[len + j] = d.tokens[j];
        tg[len + j] = (j + 1 < m && j + 1 >= d.prompt_len) ? d.tokens[j + 1] : -1;
      }
      len += m;
      next++;
      placed++;
    }
  }
  return placed;
}

}  // namespace tinyds

// tinyds/model/speculative.cpp — plain greedy and MTP self-speculative greedy decoding (see speculative.h).
//
// Shapes: one sequence; P prompt tokens; V vocab; logits rows (V); limit = the longest the sequence may grow
// (min(max_seq_len, P + max_new_tokens)).
#include "tinyds/model/speculative.h"

#include <algorithm>

#include "tinyds/core/error.h"
#include "tinyds/core/timer.h"

namespace tinyds {

namespace {

// The greedy choice among the real tokens [0, n): the first maximum (as sample_token's greedy branch).
int argmax(const float* logits, int n) { return static_cast<int>(std::max_element(logits, logits + n) - logits); }

// The bookkeeping both decoders share: where to stop and what was emitted.
struct Emitter {
  std::vector<int>& out;
  int len;    // tokens in the sequence (prompt + emitted)
  int limit;  // the longest the sequence may grow
  int eos;
  bool done = false;
  // Appends a token; true if decoding must stop after it (eos, or no room for another).
  bool emit(int token) {
    out.push_back(token);
    len++;
    done = token == eos || len >= limit;
    return done;
  }
};

struct Setup {
  int P, n_tokens, limit;
};

Setup check_and_size(const Transformer<float>& model, const std::vector<int>& prompt, const GreedyOptions& o,
                     const char* where) {
  const ModelConfig& m = model.config();
  // The acceptance test and the argmax read the logits on the host: CPU models only (rollout() decodes on cuda).
  if (model.device() != Device::cpu)
    throw_error(where, ": runs on the CPU only (it reads the logits on the host); the model is on ",
                device_name(model.device()));
  if (prompt.empty()) throw_error(where, ": the prompt is empty (it needs at least <bos>)");
  if (o.max_new_tokens < 0) throw_error(where, ": max_new_tokens = ", o.max_new_tokens, " must be >= 0");
  if (o.n_tokens < 0 || o.n_tokens > m.vocab_size)
    throw_error(where, ": n_tokens = ", o.n_tokens, " must be in [0, vocab_size = ", m.vocab_size, "] (0 = all)");
  Setup s;
  s.P = static_cast<int>(prompt.size());
  s.n_tokens = o.n_tokens ? o.n_tokens : m.vocab_size;
  s.limit = static_cast<int>(std::min<long>(m.max_seq_len, static_cast<long>(s.P) + o.max_new_tokens));
  return s;
}

}  // namespace

DecodeResult greedy_decode(const Transformer<float>& model, const std::vector<int>& prompt, const GreedyOptions& o) {
  const Setup s = check_and_size(model, prompt, o, "greedy_decode");
  DecodeResult r;
  if (s.P >= s.limit) return r;  // no room for a new token (generate() does the same)
  Timer timer;
  const int V = model.config().vocab_size;
  Decoder dec(model, 1, s.limit, o.path, o.role);
  Emitter em{r.tokens, s.P, s.limit, o.eos};
  const float* lg = dec.step_many(prompt.data(), s.P);  // the prompt in one call (prefill)
  int next = argmax(lg + static_cast<std::size_t>(s.P - 1) * V, s.n_tokens);
  while (!em.emit(next)) {
    lg = dec.step(&next);
    r.stats.main_calls++;
    next = argmax(lg, s.n_tokens);
  }
  r.stats.tokens = static_cast<int>(r.tokens.size());
  r.stats.seconds = timer.seconds();
  return r;
}

DecodeResult speculative_decode(const Transformer<float>& model, const std::vector<int>& prompt,
                                const GreedyOptions& o) {
  const Setup s = check_and_size(model, prompt, o, "speculative_decode");
  const ModelConfig& m = model.config();
  if (m.mtp_depth < 1)
    throw_error("speculative_decode: the model has mtp_depth = ", m.mtp_depth,
                ": self-speculative decoding drafts with the MTP module; train with mtp_depth >= 1");
  DecodeResult r;
  if (s.P >= s.limit) return r;
  Timer timer;
  const int V = m.vocab_size, P = s.P;
  Decoder dec(model, 1, s.limit, o.path, o.role);
  Emitter em{r.tokens, P, s.limit, o.eos};

  // Prompt: main positions 0..P-1 in one call -> t_P; then MTP rows 0..P-1 in one call: row i pairs x_L[i] with
  // the token at i+1 (prompt[i+1], and t_P for the last row), whose last row drafts the token at P+1.
  const float* lg = dec.step_many(prompt.data(), P);
  int next = argmax(lg + static_cast<std::size_t>(P - 1) * V, s.n_tokens);
  if (em.emit(next)) { r.stats.tokens = 1; r.stats.seconds = timer.seconds(); return r; }
  std::vector<int> mtp_in(prompt.begin() + 1, prompt.end());
  mtp_in.push_back(next);
  const float* dl = dec.mtp_step(dec.hidden(), mtp_in.data(), P);
  int draft = argmax(dl + static_cast<std::size_t>(P - 1) * V, s.n_tokens);

  // Invariant at the top of a round: the main model has decoded 0..p (pos() = p+1) and `next` = t_{p+1} is
  // emitted but not decoded; the MTP cache holds rows 0..p; `draft` = d_{p+2}. em.len = p+2 < limit, so
  // position p+2 fits in the cache (Tmax = limit).
  while (!em.done) {
    const int pair[2] = {next, draft};
    lg = dec.step_many(pair, 2);  // positions p+1 (input t_{p+1}) and p+2 (input d_{p+2})
    r.stats.main_calls++;
    r.stats.proposed++;
    const int verified = argmax(lg, s.n_tokens);  // a_{p+2}: plain greedy's choice after t_{p+1}
    if (verified == draft || o.skip_verification) {
      r.stats.accepted++;
      if (em.emit(draft)) break;
      next = argmax(lg + V, s.n_tokens);  // t_{p+3} from the logits at p+2: the free token
      if (em.emit(next)) break;
      // MTP rows p+1 (x_L[p+1], d_{p+2}) and p+2 (x_L[p+2], t_{p+3}); the last drafts d_{p+4}.
      const int in[2] = {draft, next};
      dl = dec.mtp_step(dec.hidden(), in, 2);
      draft = argmax(dl + V, s.n_tokens);
    } else {
      dec.truncate(dec.pos() - 1);  // forget position p+2 (the rejected draft); MTP rows 0..p stay valid
      next = verified;
      if (em.emit(next)) break;
      // MTP row p+1 (x_L[p+1] = hidden row 0, t_{p+2}) drafts d_{p+3}.
      dl = dec.mtp_step(dec.hidden(), &next, 1);
      draft = argmax(dl, s.n_tokens);
    }
  }
  r.stats.tokens = static_cast<int>(r.tokens.size());
  r.stats.seconds = timer.seconds();
  return r;
}

}  // namespace tinyds

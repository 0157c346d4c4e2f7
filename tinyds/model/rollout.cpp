// tinyds/model/rollout.cpp — see rollout.h.
//
// Shapes: B sequences (a chunk of Bc <= opt.batch of them per Decoder), T columns per row, V vocab.
#include "tinyds/model/rollout.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/device/losses.h"
#include "tinyds/device/memory.h"
#include "tinyds/device/ops.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace tinyds {

double token_logprob(const float* logits, int V, int token, float tau) {
  // Max subtraction: every exponent is <= 0, so the sum cannot overflow, and it is >= 1 (the max's own term).
  const double mx = *std::max_element(logits, logits + V);
  double sum = 0;
  for (int v = 0; v < V; v++) sum += std::exp((logits[v] - mx) / tau);
  return (logits[token] - mx) / tau - std::log(sum);
}

Rng rollout_rng(uint64_t seed, int sequence, int position) {
  Rng rng(seed, static_cast<uint64_t>(sequence));
  rng.set_counter(static_cast<uint64_t>(position));  // sample_token's one draw is at(position)
  return rng;
}

namespace {

void check_inputs(const Transformer<float>& model, const std::vector<std::vector<int>>& prompts,
                  const RolloutOptions& opt) {
  const int V = model.config().vocab_size;
  if (prompts.empty()) throw_error("rollout: no prompts");
  if (opt.n_tokens < 1 || opt.n_tokens > V)
    throw_error("rollout: n_tokens ", opt.n_tokens, " must be in [1, vocab_size = ", V, "]");
  if (opt.batch < 1) throw_error("rollout: batch ", opt.batch, " must be at least 1");
  if (opt.sampling.max_new_tokens < 0)
    throw_error("rollout: max_new_tokens ", opt.sampling.max_new_tokens, " must be >= 0");
  for (std::size_t i = 0; i < prompts.size(); i++) {
    if (prompts[i].empty()) throw_error("rollout: prompt ", i, " is empty (it needs at least <bos>)");
    for (std::size_t t = 0; t < prompts[i].size(); t++)
      if (prompts[i][t] < 0 || prompts[i][t] >= V)
        throw_error("rollout: prompt ", i, " token ", t, " is ", prompts[i][t], ", outside [0, vocab_size = ", V, ")");
  }
  // sample_token validates temperature / top_k / top_p itself, but only once it is first called: check now,
  // so that bad parameters fail even when no sequence reaches a sampling step.
  std::vector<float> one(1, 0.0f);
  Rng probe(0);
  sample_token(one.data(), 1, opt.sampling, probe);
}

// One step's choice for the rows of a chunk that sample: the tokens and their log-probs, on the host.
// The uniforms are drawn on the host, one per (sequence, position) from rollout_rng, on both devices, and the
// CPU's sample_token and the sampling kernel pick the same token from the same uniform (kernels/sampling.cu sums
// in the CPU's order for this): a seed gives the same rollout on both devices as long as the logits agree.
//   cpu:  sample_token_given on each logits row, token_logprob in double (as rollout.h describes);
//   cuda: the rows' first n_tokens logits gathered into one (K, n_tokens) device array, sample_tokens kernel;
//         the tokens copied to the host (the loop needs them: the next input, <eos>), then the log-probs of the
//         chunk's rows by the logprobs kernel (targets -1 where nothing was sampled), copied back.
class StepSampler {
 public:
  StepSampler(const Transformer<float>& model, int Bc, const RolloutOptions& opt, float tau)
      : V_(model.config().vocab_size), Bc_(Bc), opt_(opt), tau_(tau), cuda_(model.device() == Device::cuda) {
    if (!cuda_) return;
    const Place d = Place::device;
    logits_.reset(static_cast<std::size_t>(Bc) * opt.n_tokens, opt.role, Category::rollout, d);
    uniforms_.reset(Bc, opt.role, Category::rollout, d);
    tokens_.reset(Bc, opt.role, Category::rollout, d);
    targets_.reset(Bc, opt.role, Category::rollout, d);
    lp_.reset(Bc, opt.role, Category::rollout, d);
  }

  // logits (Bc, V) of the step in the model's place; rows (K) the chunk rows that sample, uniforms (K) their draws.
  // next (K) and lp (Bc; lp[rows[k]] is set) written on the host.
  void choose(std::vector<int>& next, std::vector<float>& lp, const float* logits, const std::vector<int>& rows,
              const std::vector<double>& uniforms) {
    const int K = static_cast<int>(rows.size());
    next.resize(K);
    if (!cuda_) {
      for (int k = 0; k < K; k++) {
        const float* row = logits + static_cast<std::size_t>(rows[k]) * V_;
        next[k] = sample_token_given(row, opt_.n_tokens, opt_.sampling, uniforms[k]);  // ids >= n_tokens: padding
        lp[rows[k]] = static_cast<float>(token_logprob(row, V_, next[k], tau_));
      }
      return;
    }
    const std::size_t n = opt_.n_tokens;
    for (int k = 0; k < K; k++) dev::copy(logits_.data() + k * n, logits + static_cast<std::size_t>(rows[k]) * V_, n);
    dev::from_host(uniforms_.data(), uniforms.data(), K);
    const SamplingParams& sp = opt_.sampling;
    dev::sample_tokens(tokens_.data(), logits_.data(), uniforms_.data(), K, opt_.n_tokens, sp.temperature, sp.top_k,
                       sp.top_p);
    dev::to_host(next.data(), tokens_.data(), K);
    std::vector<int> targets(Bc_, -1);
    for (int k = 0; k < K; k++) targets[rows[k]] = next[k];
    dev::from_host(targets_.data(), targets.data(), Bc_);
    dev::logprobs_forward(lp_.data(), logits, targets_.data(), Bc_, V_, static_cast<double>(tau_));
    dev::to_host(lp.data(), lp_.data(), Bc_);
  }

 private:
  int V_, Bc_;
  const RolloutOptions& opt_;
  float tau_;
  bool cuda_;
  Buffer<float> logits_;     // (Bc, n_tokens) cuda: the sampling rows' logits, gathered
  Buffer<double> uniforms_;  // (Bc) cuda
  Buffer<int> tokens_;       // (Bc) cuda: the sampled ids
  Buffer<int> targets_;      // (Bc) cuda: the sampled id of each chunk row, -1 where none
  Buffer<float> lp_;         // (Bc) cuda
};

// The Decoder row of each of a chunk's Bc sequences, so that sequences with equal prefills share one:
// seq (Bc) the sequence index in r of Decoder row i; source (Bc) the row whose prefill rows row i takes. The rows
// 0..U-1 are one sequence of each distinct prefill (its tokens at positions 0..pre-1: the G copies of a GRPO
// prompt, or prompts that begin alike), in the order they first appear; each is its own source. The other rows
// follow in order. Distinct prompts (evaluation) keep their order, and every row its own source; so does every
// row when `share` is false (RolloutOptions::share_prefills).
void shared_prefills(std::vector<int>& seq, std::vector<int>& source, const Rollout& r, const std::vector<int>& chunk,
                     int pre, bool share) {
  const auto prefill = [&](int b) { return r.tokens.data() + static_cast<std::size_t>(b) * r.T; };
  std::vector<int> rest, rest_source;  // rows after the sources: sequence, and its source row
  seq.clear();
  for (const int b : chunk) {
    int u = 0;
    while (share && u < static_cast<int>(seq.size()) &&
           !std::equal(prefill(b), prefill(b) + std::max(pre, 0), prefill(seq[u])))
      u++;
    if (!share) u = static_cast<int>(seq.size());
    if (u == static_cast<int>(seq.size())) seq.push_back(b);
    else { rest.push_back(b); rest_source.push_back(u); }
  }
  source.resize(seq.size());
  for (std::size_t u = 0; u < seq.size(); u++) source[u] = static_cast<int>(u);
  seq.insert(seq.end(), rest.begin(), rest.end());
  source.insert(source.end(), rest_source.begin(), rest_source.end());
}

// Decodes the sequences `chunk` (Bc indices into r, their prompts already in r.tokens) with dec (a Decoder of Bc
// rows) until each is done.
void rollout_chunk(Rollout& r, const Transformer<float>& model, Decoder& dec, const std::vector<int>& chunk,
                   const RolloutOptions& opt) {
  const int Bc = static_cast<int>(chunk.size());
  const ModelConfig& m = model.config();
  const SamplingParams& sp = opt.sampling;
  const int T = r.T;
  const float tau = r.logprob_temperature;
  // Prefill: positions 0..pre-1 (pre = P_min - 1, P_min the shortest prompt of the chunk), where every sequence is
  // still reading its own prompt, go through the Decoder in a few calls of several positions each (row-wise GEMMs
  // over many rows instead of one step of Bc rows per position); their logits predict prompt tokens and are not
  // needed. Sequences with equal prefills (a GRPO group) are decoded once and the others copy its cache rows
  // (Decoder::prefill_shared): U distinct prefills cost U rows per position, not Bc. A call has up to kPrefillRows
  // rows: the cap keeps the Decoder's scratch, which grows to the largest call's rows, near what the steps need
  // (notebooks/EXPERIMENTS.md, "Sampling speed"). Then one step per position for the unfinished rows (below).
  int pre = m.max_seq_len;
  for (const int b : chunk) pre = std::min(pre, r.prompt_len[b]);
  pre -= 1;
  std::vector<int> seq, source;  // (Bc) Decoder row i decodes sequence seq[i]; its prefill is row source[i]'s
  shared_prefills(seq, source, r, chunk, pre, opt.share_prefills);
  int U = 0;  // distinct prefills: rows 0..U-1
  while (U < Bc && source[U] == U) U++;
  std::vector<int> len(Bc);        // current length of each row's sequence (prompt + sampled so far)
  std::vector<char> done(Bc, 0);
  for (int i = 0; i < Bc; i++) {
    len[i] = r.prompt_len[seq[i]];
    // A prompt that fills the context, or no new tokens allowed: nothing to sample (generate() agrees).
    if (len[i] >= m.max_seq_len || sp.max_new_tokens == 0) done[i] = 1;
  }
  constexpr int kPrefillRows = 512;
  const int span = std::max(1, kPrefillRows / U);
  std::vector<int> head;  // (U, t) the distinct prefills' tokens at positions p0..p0+t-1
  for (int p0 = 0; p0 < pre; p0 += span) {
    const int t = std::min(span, pre - p0);
    head.resize(static_cast<std::size_t>(U) * t);
    for (int i = 0; i < U; i++)
      std::copy_n(r.tokens.data() + static_cast<std::size_t>(seq[i]) * T + p0, t,
                  head.data() + static_cast<std::size_t>(i) * t);
    dec.prefill_shared(head.data(), t, source);
  }
  // Rows 0..active-1 are the unfinished sequences. A finished one is swapped with the last unfinished row, whose
  // cache rows it takes (Decoder::move_sequence; ~(L+R) * n_layer values per position, far less than a step), so
  // each step decodes only the unfinished rows (Decoder::step_first): a batch whose answers end at different
  // lengths costs the sum of their lengths, not the longest times the batch.
  int active = Bc;
  const auto compact = [&] {
    for (int i = 0; i < active; i++) {
      if (!done[i]) continue;
      while (active > i + 1 && done[active - 1]) active--;  // finished rows at the end just leave
      if (active == i + 1) { active = i; break; }
      const int last = --active;  // unfinished: it moves into row i
      dec.move_sequence(last, i);
      std::swap(seq[i], seq[last]);
      std::swap(len[i], len[last]);
      std::swap(done[i], done[last]);
    }
  };
  compact();
  std::vector<int> in(Bc);         // (active) this step's input tokens, all at position p
  StepSampler sampler(model, Bc, opt, tau);
  std::vector<int> rows, next;     // this step's sampling rows and their new tokens
  std::vector<double> uniforms;    // (rows) their draws
  std::vector<float> lp(Bc);       // (Bc) the log-prob of each sampling row's new token
  for (int p = std::max(pre, 0); active > 0; p++) {
    // Every unfinished row has its token at position p (len > p): a prompt token, or the one sampled last step.
    for (int i = 0; i < active; i++) in[i] = r.tokens[static_cast<std::size_t>(seq[i]) * T + p];
    const float* logits = dec.step_first(in.data(), active);  // (active, V) in the model's place: row i predicts p+1
    rows.clear();
    uniforms.clear();
    for (int i = 0; i < active; i++) {
      if (p + 1 < len[i]) continue;  // still reading its prompt (its next input is the prompt's, above)
      rows.push_back(i);
      // The draw for (seed, sequence seq[i], position p+1); greedy draws nothing (the uniform is unused).
      Rng rng = rollout_rng(sp.seed, seq[i], p + 1);
      uniforms.push_back(sp.temperature > 0.0f ? rng.uniform_double() : 0.0);
    }
    // Serial on purpose on the CPU: one sort of V ids per sequence is small next to the Decoder step, and a plain
    // loop cannot make the result depend on the thread count (the randomness is keyed anyway, see rollout.h).
    sampler.choose(next, lp, logits, rows, uniforms);
    for (std::size_t k = 0; k < rows.size(); k++) {
      const int i = rows[k], b = seq[i];
      const std::size_t at = static_cast<std::size_t>(b) * T + (p + 1);
      r.tokens[at] = next[k];
      r.mask[at] = 1.0f;
      r.logprobs[at] = lp[i];
      len[i]++;
      r.completion_len[b]++;
      if (next[k] == opt.eos) { done[i] = 1; r.ended_with_eos[b] = 1; }
      if (r.completion_len[b] >= sp.max_new_tokens || len[i] >= m.max_seq_len) done[i] = 1;
    }
    compact();
  }
}

}  // namespace

Rollout rollout(const Transformer<float>& model, const std::vector<std::vector<int>>& prompts,
                const RolloutOptions& opt) {
  check_inputs(model, prompts, opt);
  const ModelConfig& m = model.config();
  Rollout r;
  r.B = static_cast<int>(prompts.size());
  int max_prompt = 0;
  for (const auto& p : prompts) max_prompt = std::max(max_prompt, static_cast<int>(p.size()));
  // Room for the longest prompt plus max_new_tokens, but no sequence grows past max_seq_len.
  r.T = std::max(max_prompt, std::min(m.max_seq_len, max_prompt + opt.sampling.max_new_tokens));
  r.logprob_temperature = opt.sampling.temperature > 0 ? opt.sampling.temperature : 1.0f;
  const std::size_t BT = static_cast<std::size_t>(r.B) * r.T;
  r.tokens.reset(BT, opt.role, Category::rollout);
  r.mask.reset(BT, opt.role, Category::rollout);      // zero-filled by the ledger
  r.logprobs.reset(BT, opt.role, Category::rollout);
  std::fill(r.tokens.data(), r.tokens.data() + BT, opt.pad);
  r.prompt_len.resize(r.B);
  r.completion_len.assign(r.B, 0);
  r.ended_with_eos.assign(r.B, 0);
  for (int b = 0; b < r.B; b++) {
    r.prompt_len[b] = static_cast<int>(prompts[b].size());
    std::copy(prompts[b].begin(), prompts[b].end(), r.tokens.data() + static_cast<std::size_t>(b) * r.T);
  }
  // Chunks of at most opt.batch sequences, and at least one per OpenMP thread when there are enough: each chunk
  // has its own Decoder and runs on one thread (the ops' parallel regions inside are nested and run on that thread
  // alone). A decode step is a chain of small ops on one token per sequence, most too small to split across
  // threads, so one chunk per thread keeps both cores busy where one Decoder of 2x the rows did not (1.7x on the
  // demo's evaluation: notebooks/EXPERIMENTS.md, "Performance"). Chunks write disjoint rows of r, and the
  // tokens do not depend on the split (the randomness is keyed by sequence, tested).
  // On cuda one chunk runs at a time (the device does the parallel work; the kernels' launches come from one
  // host thread) and every op inside runs on the model's device.
  const bool on_cuda = model.device() == Device::cuda;
  int threads = 1;
#ifdef _OPENMP
  if (!omp_in_parallel() && !on_cuda) threads = omp_get_max_threads();
#endif
  // Equal chunks, their count a multiple of the threads (200 sequences, batch 64, 2 threads: 4 of 50, not
  // 64 + 64 + 64 + 8, which would leave one thread idle for the last 8).
  int n_chunks = (r.B + opt.batch - 1) / opt.batch;
  n_chunks = std::min(r.B, (n_chunks + threads - 1) / threads * threads);
  const int per_chunk = (r.B + n_chunks - 1) / n_chunks;
  n_chunks = (r.B + per_chunk - 1) / per_chunk;
  // Chunk c decodes order[c * per_chunk ...]: the sequences by prompt length (stable), so that each chunk's prompts
  // are alike in length. A chunk runs from its shortest prompt's end (its prefill) to its longest sequence's end,
  // and a short prompt in a chunk of long ones would start sampling while the rest are still read one step at a
  // time. Copies of one prompt stay together, and share their prefill.
  std::vector<int> order(r.B);
  for (int b = 0; b < r.B; b++) order[b] = b;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return r.prompt_len[a] < r.prompt_len[b]; });
  // Every chunk's Decoder (its kv-cache) exists before any chunk runs, so the memory a rollout holds is all chunks'
  // caches whatever the threads' timing (`tinyds memory` measures it; a chunk made when its thread got to it would
  // overlap the others' or not by chance).
  std::vector<std::unique_ptr<Decoder>> decoders;
  for (int c = 0; c < n_chunks; c++)
    decoders.push_back(std::make_unique<Decoder>(model, std::min(per_chunk, r.B - c * per_chunk),
                                                 std::min(r.T, m.max_seq_len), opt.mla_path, opt.role));
  std::vector<std::exception_ptr> failed(n_chunks);  // an exception must not leave an OpenMP region
#pragma omp parallel for schedule(dynamic, 1) if (n_chunks > 1 && !on_cuda)
  for (int c = 0; c < n_chunks; c++) {
    try {
      OnDevice scope(model.device());  // this thread's ops (the sampler's) on the model's device
      const int first = c * per_chunk;
      const std::vector<int> chunk(order.begin() + first, order.begin() + std::min(r.B, first + per_chunk));
      rollout_chunk(r, model, *decoders[c], chunk, opt);
    } catch (...) {
      failed[c] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : failed)
    if (e) std::rethrow_exception(e);
  return r;
}

Rollout gather_rows(const std::vector<RolloutRow>& rows, int pad, Role role) {
  if (rows.empty()) throw_error("gather_rows: no rows to gather");
  Rollout r;
  r.B = static_cast<int>(rows.size());
  r.logprob_temperature = rows[0].from->logprob_temperature;
  for (std::size_t i = 0; i < rows.size(); i++) {
    const Rollout& src = *rows[i].from;
    if (rows[i].b < 0 || rows[i].b >= src.B)
      throw_error("gather_rows: row ", i, " asks for sequence ", rows[i].b, " of a rollout of ", src.B);
    if (src.logprob_temperature != r.logprob_temperature)
      throw_error("gather_rows: row ", i, " comes from a rollout at temperature ", src.logprob_temperature,
                  ", row 0 from one at ", r.logprob_temperature);
    r.T = std::max(r.T, src.T);
  }
  const std::size_t BT = static_cast<std::size_t>(r.B) * r.T;
  r.tokens.reset(BT, role, Category::rollout);
  r.mask.reset(BT, role, Category::rollout);      // zero-filled by the ledger
  r.logprobs.reset(BT, role, Category::rollout);  // zero-filled by the ledger
  std::fill(r.tokens.data(), r.tokens.data() + BT, pad);
  for (int i = 0; i < r.B; i++) {
    const Rollout& src = *rows[i].from;
    const int b = rows[i].b;
    const std::size_t at = static_cast<std::size_t>(i) * r.T;
    std::copy(src.row(b), src.row(b) + src.T, r.tokens.data() + at);
    std::copy(src.mask_row(b), src.mask_row(b) + src.T, r.mask.data() + at);
    std::copy(src.logprob_row(b), src.logprob_row(b) + src.T, r.logprobs.data() + at);
    r.prompt_len.push_back(src.prompt_len[b]);
    r.completion_len.push_back(src.completion_len[b]);
    r.ended_with_eos.push_back(src.ended_with_eos[b]);
  }
  return r;
}

}  // namespace tinyds

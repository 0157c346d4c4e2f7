// tests/model/speculative_test.cpp — MTP drafting in the kv-cache Decoder (Decoder::mtp_step), multi-position decoding
// (Decoder::step_many) and greedy self-speculative decoding (model/speculative.h).
//
// Shapes: nano preset (MLA Q 8, L 12, R 4; MoE E 4 top-2 + 1 shared; MTP depth 1; C 32, 2 layers, V 128,
// max_seq_len 64); B 2 sequences of T 10 positions for the logit checks; batch 1 for speculative decoding.
// Weights for the logit and random-model checks: init_std 0.2 instead of 0.02 (as tests/decoder.cpp), so the
// attention is far from uniform and logits are O(1): a wrong cached row or position then changes them by O(0.1).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/util/float_util.h"
#include "tinyds/core/ledger.h"
#include "tinyds/core/rng.h"
#include "tinyds/model/config.h"
#include "tinyds/model/decoder.h"
#include "tinyds/model/kv_cache.h"
#include "tinyds/model/sampling.h"
#include "tinyds/model/speculative.h"
#include "tinyds/model/transformer.h"
#include "tinyds/train/optimizer.h"

using namespace tinyds;
using tinyds::test::max_abs;
using tinyds::test::max_diff;

namespace {

constexpr int kB = 2, kT = 10;

// Bound on |decoded - full| for O(1) logits in fp32: the same sums in another order (GEMV- vs GEMM-shaped
// products, per-token softmax), ~6e-8 relative per rounding over a few hundred operations through 3 blocks
// (2 main + the MTP block) on logits up to ~4: ~1e-6 expected. 1e-4 leaves a wide margin; a wrong cached row,
// RoPE position, concatenation order or embedded token changes the logits by O(0.1-1).
constexpr double kLogitTol = 1e-4;

ModelConfig nano(float init_std = 0.2f) {
  ModelConfig m = Config::preset("nano").model;
  m.init_std = init_std;
  return m;
}

std::vector<int> random_tokens(int n, int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int> t(n);
  for (int& x : t) x = static_cast<int>(rng.next_u64() % static_cast<uint64_t>(V));
  return t;
}


// Column t of tokens (B, T): the B tokens at position t.
std::vector<int> column(const std::vector<int>& tokens, int t) {
  std::vector<int> c(kB);
  for (int b = 0; b < kB; b++) c[b] = tokens[b * kT + t];
  return c;
}

// The full forward WITH targets (MTP runs only then) of tokens (B, T); returns mtp_logits(0) (B, T, V).
// Position i of module 0 embeds tokens[i+1], and token 0 at i = T-1 (mtp.cpp): the decoder is fed the same.
std::vector<float> full_mtp_logits(Transformer<float>& model, const std::vector<int>& tokens) {
  const int V = model.config().vocab_size;
  std::vector<int> targets(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); i++) targets[i] = (tokens[i] + 1) % V;  // any valid targets
  model.forward(tokens.data(), targets.data(), kB, kT);
  return std::vector<float>(model.mtp_logits(0), model.mtp_logits(0) + static_cast<std::size_t>(kB) * kT * V);
}

// MTP logits (B, T, V) decoded one position at a time, interleaved with the main steps as a drafter runs them:
// after the main step at position t, MTP position t-1 (x_L[t-1], token t) can run.
std::vector<float> decode_mtp_stepwise(const Transformer<float>& model, const std::vector<int>& tokens,
                                       MlaPath path) {
  const int V = model.config().vocab_size, C = model.config().d_model;
  Decoder dec(model, kB, kT, path);
  std::vector<float> out(static_cast<std::size_t>(kB) * kT * V), prev_hidden(kB * C);
  for (int t = 0; t <= kT; t++) {
    std::vector<int> next = t < kT ? column(tokens, t) : std::vector<int>(kB, 0);
    if (t >= 1) {  // MTP position t-1: x_L[t-1] and the token at t (0 past the end, as in training)
      REQUIRE(dec.mtp_pos() == t - 1);
      const float* lg = dec.mtp_step(prev_hidden.data(), next.data());
      for (int b = 0; b < kB; b++) std::copy(lg + b * V, lg + (b + 1) * V, out.begin() + (b * kT + t - 1) * V);
    }
    if (t < kT) {
      dec.step(next.data());
      std::copy(dec.hidden(), dec.hidden() + kB * C, prev_hidden.begin());
    }
  }
  return out;
}

// The main logits and MTP logits (B, T, V) decoded in chunks of several positions (step_many / mtp_step T > 1).
void decode_chunked(const Transformer<float>& model, const std::vector<int>& tokens, MlaPath path,
                    const std::vector<int>& chunks, std::vector<float>& main, std::vector<float>& mtp) {
  const int V = model.config().vocab_size;
  Decoder dec(model, kB, kT, path);
  main.assign(static_cast<std::size_t>(kB) * kT * V, 0.f);
  mtp = main;
  int t0 = 0;
  for (int T : chunks) {
    std::vector<int> in(kB * T), nxt(kB * T);
    for (int b = 0; b < kB; b++)
      for (int t = 0; t < T; t++) {
        in[b * T + t] = tokens[b * kT + t0 + t];
        nxt[b * T + t] = t0 + t + 1 < kT ? tokens[b * kT + t0 + t + 1] : 0;
      }
    const float* lg = dec.step_many(in.data(), T);
    REQUIRE(dec.last_T() == T);
    for (int b = 0; b < kB; b++)
      std::copy(lg + b * T * V, lg + (b + 1) * T * V, main.begin() + (b * kT + t0) * V);
    const float* ml = dec.mtp_step(dec.hidden(), nxt.data(), T);
    for (int b = 0; b < kB; b++)
      std::copy(ml + b * T * V, ml + (b + 1) * T * V, mtp.begin() + (b * kT + t0) * V);
    t0 += T;
  }
  REQUIRE(t0 == kT);
}

}  // namespace

TEST_CASE("model/speculative: MTP decode logits equal Transformer::mtp_logits(0) at every position, naive and absorbed") {
  const ModelConfig m = nano();
  REQUIRE(m.attention == AttentionKind::mla);
  REQUIRE(m.n_routed_experts > 0);
  REQUIRE(m.mtp_depth == 1);
  Transformer<float> model(m);
  model.init_weights(51);
  const std::vector<int> tokens = random_tokens(kB * kT, m.vocab_size, 52);
  const std::vector<float> full = full_mtp_logits(model, tokens);
  const std::size_t n = full.size();
  for (MlaPath path : {MlaPath::naive, MlaPath::absorbed}) {
    const std::vector<float> dec = decode_mtp_stepwise(model, tokens, path);
    const double diff = max_diff(dec.data(), full.data(), n), mx = max_abs(full.data(), n);
    MESSAGE("MTP decode (", std::string(mla_path_name(path)), "): max |decoded - full mtp_logits(0)| = ", diff, " over ", kT,
            " positions x ", kB, " sequences (max |logit| ", mx, ")");
    CHECK(mx > 0.3);  // O(1) logits: the absolute bound means something
    CHECK(diff <= kLogitTol);
  }
}

TEST_CASE("model/speculative: step_many and multi-position mtp_step equal the full forward, mla and gqa") {
  for (bool dense : {false, true}) {
    ModelConfig m = nano();
    if (dense) {  // a dense-attention model with MTP: exercises dense_attention_decode with T > 1
      m.attention = AttentionKind::gqa; m.n_kv_head = 2; m.q_lora_rank = m.kv_lora_rank = m.rope_dim = 0;
    }
    Transformer<float> model(m);
    model.init_weights(61);
    const std::vector<int> tokens = random_tokens(kB * kT, m.vocab_size, 62);
    const std::vector<float> full_mtp = full_mtp_logits(model, tokens);
    const std::vector<float> full_main(model.logits(), model.logits() + full_mtp.size());
    for (MlaPath path : {MlaPath::naive, MlaPath::absorbed}) {
      std::vector<float> main, mtp;
      decode_chunked(model, tokens, path, {3, 1, 4, 2}, main, mtp);
      const double dm = max_diff(main.data(), full_main.data(), main.size());
      const double dt = max_diff(mtp.data(), full_mtp.data(), mtp.size());
      const std::string kind = dense ? "gqa" : "mla";
      MESSAGE(kind, " ", std::string(mla_path_name(path)), " chunks 3,1,4,2: max |main - full| = ", dm,
              ", max |mtp - full| = ", dt);
      CHECK(dm <= kLogitTol);
      CHECK(dt <= kLogitTol);
      if (dense) break;  // the MLA path is ignored by dense attention
    }
  }
}

TEST_CASE("model/speculative: truncate keeps the MTP cache consistent: rolled-back decoding equals a fresh decoder") {
  const ModelConfig m = nano();
  Transformer<float> model(m);
  model.init_weights(71);
  const int V = m.vocab_size;
  Decoder rolled(model, 1, 8), fresh(model, 1, 8);
  const int a[5] = {3, 14, 15, 92, 65}, c[3] = {35, 89, 79};
  rolled.step_many(a, 5);
  rolled.mtp_step(rolled.hidden(), a + 1, 4);  // MTP rows 0..3
  CHECK(rolled.mtp_pos() == 4);
  rolled.truncate(3);  // keep tokens a[0..2]; MTP row 2 embedded a[3], which is forgotten -> keep rows 0, 1
  CHECK(rolled.pos() == 3);
  CHECK(rolled.mtp_pos() == 2);
  fresh.step_many(a, 3);
  fresh.mtp_step(fresh.hidden(), a + 1, 2);  // MTP rows 0, 1
  // Continue both with tokens c at positions 3..5, and MTP rows 2..4 (tokens a[3]->c[0], c[1], c[2]).
  // Not bitwise: the kept rows 0..2 came from a 5-row call in `rolled` and a 3-row call in `fresh` (GEMMs of
  // different shapes may round differently); kLogitTol is far below the O(0.1) a stale row would cause.
  const float* r = rolled.step_many(c, 3);
  const std::vector<float> rolled_main(r, r + 3 * V);
  const float* f = fresh.step_many(c, 3);
  CHECK(max_diff(rolled_main.data(), f, 3 * V) <= kLogitTol);
  // MTP row 2 pairs x_L[2] (from the kept prefix: re-derive it from a fresh prefill) with token c[0].
  Decoder ref(model, 1, 8);
  const int seq[6] = {a[0], a[1], a[2], c[0], c[1], c[2]};
  ref.step_many(seq, 6);
  const int nxt[3] = {c[0], c[1], c[2]};
  std::vector<float> h2(ref.hidden() + 2 * m.d_model, ref.hidden() + 5 * m.d_model);  // x_L rows 2, 3, 4
  const float* rm = rolled.mtp_step(h2.data(), nxt, 3);
  const std::vector<float> rolled_mtp(rm, rm + 3 * V);
  const float* fm = fresh.mtp_step(h2.data(), nxt, 3);
  // A stale MTP row 2 or 3 (embedding a[3], a[4]) in the rolled cache would change these by O(0.1).
  const double dm = max_diff(rolled_mtp.data(), fm, 3 * V);
  MESSAGE("truncate: max |rolled - fresh| MTP logits = ", dm);
  CHECK(dm <= kLogitTol);
  CHECK_THROWS_WITH(rolled.mtp_step(h2.data(), nxt, 2), doctest::Contains("has decoded only positions 0..5"));
}

TEST_CASE("model/speculative: the MTP cache is one layer of the model's kind, allocated on the first draft") {
  const ModelConfig m = nano();
  Transformer<float> model(m);
  model.init_weights(75);
  const int B = 2, Tmax = 9;
  Ledger& L = Ledger::global();
  const std::size_t before = L.current(Role::reference, Category::kv_cache);
  Decoder dec(model, B, Tmax, MlaPath::absorbed, Role::reference);
  const std::size_t main_bytes = L.current(Role::reference, Category::kv_cache) - before;
  CHECK(main_bytes == dec.cache().bytes());
  CHECK(dec.mtp_cache() == nullptr);  // a decoder that never drafts pays nothing for the MTP module
  const int t[B] = {1, 2};
  dec.step(t);
  dec.mtp_step(dec.hidden(), t);
  REQUIRE(dec.mtp_cache() != nullptr);
  const std::size_t per = kv_cache_bytes_per_token_per_layer(KvCacheKind::mla, kv_cache_dims_of(m, B, Tmax));
  CHECK(L.current(Role::reference, Category::kv_cache) - before - main_bytes == per * Tmax * B);  // one layer
  CHECK(dec.mtp_cache()->bytes() * m.n_layer == dec.cache().bytes());
}

TEST_CASE("model/speculative: no MTP module, bad tokens, positions past the cache") {
  ModelConfig dense = Config::preset("nano-dense").model;
  Transformer<float> no_mtp(dense);
  Decoder dec(no_mtp, 1, 4);
  const int t[2] = {1, 2};
  dec.step(t);
  CHECK_FALSE(dec.has_mtp());
  CHECK_THROWS_WITH(dec.mtp_step(dec.hidden(), t), doctest::Contains("mtp_depth = 0"));
  CHECK_THROWS_WITH(speculative_decode(no_mtp, {1, 2}, GreedyOptions{}), doctest::Contains("mtp_depth = 0"));
  CHECK_THROWS_WITH(dec.step_many(t, 0), doctest::Contains("T = 0"));
  const int far[4] = {1, 2, 3, 4};
  CHECK_THROWS_WITH(dec.step_many(far, 4), doctest::Contains("position 4 is past the cache (Tmax = 4)"));
  Transformer<float> model(nano());
  Decoder d2(model, 1, 4);
  const int bad[2] = {1, 999};
  CHECK_THROWS_WITH(d2.step_many(bad, 2), doctest::Contains("token 999 of sequence 0 at position 1"));
  CHECK_THROWS_WITH(speculative_decode(model, {}, GreedyOptions{}), doctest::Contains("prompt is empty"));
}

namespace {

// Plain greedy by full recomputation (sampling.h generate(), temperature 0): the reference of both decoders.
std::vector<int> generate_greedy(Transformer<float>& model, const std::vector<int>& prompt, int max_new) {
  SamplingParams sp;
  sp.temperature = 0.f;
  sp.max_new_tokens = max_new;
  return generate(model, {prompt}, sp, model.config().vocab_size, /*eos*/ -1, /*pad*/ 0)[0];
}

}  // namespace

TEST_CASE("model/speculative: output equals plain greedy token for token on random nano models") {
  int total_proposed = 0, total_accepted = 0;
  for (uint64_t seed : {81, 82, 83}) {
    Transformer<float> model(nano());
    model.init_weights(seed);
    for (int plen : {1, 5, 11}) {
      std::vector<int> prompt = random_tokens(plen, model.config().vocab_size, seed * 100 + plen);
      for (MlaPath path : {MlaPath::naive, MlaPath::absorbed}) {
        GreedyOptions o;
        o.max_new_tokens = 30;
        o.path = path;
        const DecodeResult g = greedy_decode(model, prompt, o);
        const DecodeResult s = speculative_decode(model, prompt, o);
        CAPTURE(seed);
        CAPTURE(plen);
        CHECK(g.tokens.size() == 30u);
        CHECK(s.tokens == g.tokens);
        CHECK(s.stats.tokens == 30);
        // every round emits 1 (rejected) or 2 (accepted) tokens with one main call; the first comes from the prompt
        CHECK(s.stats.main_calls == s.stats.proposed);
        CHECK(s.stats.main_calls + s.stats.accepted >= 29);
        total_proposed += s.stats.proposed;
        total_accepted += s.stats.accepted;
        if (path == MlaPath::absorbed) CHECK(g.tokens == generate_greedy(model, prompt, 30));
      }
    }
  }
  MESSAGE("random nano models: ", total_accepted, " of ", total_proposed, " drafts accepted");
}

TEST_CASE("model/speculative: stops where greedy stops: eos, max_new_tokens, max_seq_len") {
  Transformer<float> model(nano());
  model.init_weights(91);
  const std::vector<int> prompt = {1, 7, 3};
  GreedyOptions o;
  o.max_new_tokens = 200;  // capped by max_seq_len 64: 61 new tokens
  const DecodeResult g = greedy_decode(model, prompt, o);
  CHECK(g.tokens.size() == 61u);
  CHECK(speculative_decode(model, prompt, o).tokens == g.tokens);
  o.eos = g.tokens[9];  // stop at the first occurrence of the 10th token (included)
  const DecodeResult ge = greedy_decode(model, prompt, o), se = speculative_decode(model, prompt, o);
  CHECK(ge.tokens.size() <= 10u);
  CHECK(ge.tokens.back() == o.eos);
  CHECK(se.tokens == ge.tokens);
  o.eos = -1;
  for (int n : {0, 1, 2, 3}) {
    o.max_new_tokens = n;
    CHECK(speculative_decode(model, prompt, o).tokens == greedy_decode(model, prompt, o).tokens);
    CHECK(static_cast<int>(speculative_decode(model, prompt, o).tokens.size()) == n);
  }
}

TEST_CASE("model/speculative: accepting drafts without verification breaks the identity") {
  int differ = 0;
  for (uint64_t seed : {81, 82, 83}) {
    Transformer<float> model(nano());
    model.init_weights(seed);
    const std::vector<int> prompt = random_tokens(5, model.config().vocab_size, seed);
    GreedyOptions o;
    o.max_new_tokens = 30;
    const DecodeResult g = greedy_decode(model, prompt, o);
    o.skip_verification = true;
    const DecodeResult s = speculative_decode(model, prompt, o);
    CHECK(s.stats.accepted == s.stats.proposed);
    if (s.tokens != g.tokens) differ++;
  }
  CHECK(differ == 3);  // an untrained MTP module guesses wrong, and nothing catches it
}

namespace {

// Trains the nano model for `steps` AdamW steps on a repeating sequence (period 7 over tokens 10..16), so both
// the main head (next token) and the MTP module (the token after) become accurate. Returns the final objective.
double train_on_cycle(Transformer<float>& model, int steps) {
  const int B = 4, T = 32;
  std::vector<int> tokens(B * T), targets(B * T);
  const int cycle[7] = {10, 13, 11, 16, 12, 15, 14};
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) tokens[b * T + t] = cycle[(b + t) % 7];
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) targets[b * T + t] = t + 1 < T ? tokens[b * T + t + 1] : -1;
  AdamW opt(model.layout(), Role::policy);
  AdamWSettings s;
  s.lr = 1e-2f;
  s.weight_decay = 0.f;
  double loss = 0;
  for (int i = 0; i < steps; i++) {
    model.zero_grad();
    loss = model.forward(tokens.data(), targets.data(), B, T);
    model.backward();
    opt.step(model.params(), model.grads(), s);
    model.update_moe_bias();
  }
  return loss;
}

}  // namespace

TEST_CASE("model/speculative: a briefly trained model accepts drafts and still equals plain greedy") {
  Transformer<float> model(nano(0.02f));
  model.init_weights(101);
  const double loss = train_on_cycle(model, 40);
  MESSAGE("trained nano on a period-7 cycle for 40 steps: objective ", loss, " (main ", model.main_loss(),
          ", mtp ", model.mtp_loss(), ")");
  int proposed = 0, accepted = 0;
  for (const std::vector<int>& prompt : {std::vector<int>{10, 13, 11}, std::vector<int>{16, 12}, std::vector<int>{14}}) {
    for (MlaPath path : {MlaPath::naive, MlaPath::absorbed}) {
      GreedyOptions o;
      o.max_new_tokens = 40;
      o.path = path;
      const DecodeResult g = greedy_decode(model, prompt, o);
      const DecodeResult s = speculative_decode(model, prompt, o);
      CHECK(s.tokens == g.tokens);
      if (path == MlaPath::absorbed) CHECK(g.tokens == generate_greedy(model, prompt, 40));
      proposed += s.stats.proposed;
      accepted += s.stats.accepted;
      CHECK(s.stats.main_calls < g.stats.main_calls);  // accepted drafts save main-model calls
    }
  }
  const double rate = proposed ? static_cast<double>(accepted) / proposed : 0.0;
  MESSAGE("trained model: ", accepted, " of ", proposed, " drafts accepted (", 100.0 * rate, "%)");
  CHECK(accepted > 0);
  CHECK(rate > 0.5);  // the cycle is trivially predictable two tokens ahead
}

// tests/model/decoder_test.cpp — Decoder (model/decoder.h): decoding a whole model token by token through the
// kv-cache gives the full forward's logits at EVERY position, for every attention kind and both MLA paths.
//
// Shapes: nano preset (C 32, 2 layers, H 4, D 8, F 64, V 128); B 2 sequences, T 10 positions; MLA Q 8, L 12, R 4.
// Weights: random init with init_std 0.2 instead of the preset's 0.02, so attention scores are O(1) and the
// softmax is far from uniform: with near-uniform attention a decoder that read the wrong cached rows or rotated
// at the wrong position could still match. Logits then are O(1) (max |logit| is printed).
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
#include "tinyds/model/transformer.h"

using namespace tinyds;
using tinyds::test::max_abs;
using tinyds::test::max_diff;

namespace {

constexpr int kB = 2, kT = 10;

// The nano preset with the given attention kind (for mla: n_kv_head = n_head, Q 8, L 12, R 4).
ModelConfig nano_with(AttentionKind kind) {
  ModelConfig m = Config::preset("nano-dense").model;
  m.attention = kind;
  m.init_std = 0.2f;  // see the file header
  if (kind == AttentionKind::mha || kind == AttentionKind::mla) m.n_kv_head = m.n_head;
  if (kind == AttentionKind::mqa) m.n_kv_head = 1;
  if (kind == AttentionKind::mla) { m.q_lora_rank = 8; m.kv_lora_rank = 12; m.rope_dim = 4; }
  return m;
}

// tokens (B, T) drawn uniformly from [0, V), deterministic in the seed.
std::vector<int> random_tokens(int V, uint64_t seed) {
  Rng rng(seed);
  std::vector<int> t(kB * kT);
  for (int& x : t) x = static_cast<int>(rng.next_u64() % static_cast<uint64_t>(V));
  return t;
}

// logits (B, T, V) of decoding tokens (B, T) position by position.
std::vector<float> decode_all(const Transformer<float>& model, const std::vector<int>& tokens, MlaPath path) {
  const int V = model.config().vocab_size;
  Decoder dec(model, kB, kT, path);
  std::vector<float> out(static_cast<std::size_t>(kB) * kT * V);
  for (int t = 0; t < kT; t++) {
    const int step_tokens[kB] = {tokens[0 * kT + t], tokens[1 * kT + t]};
    REQUIRE(dec.pos() == t);
    const float* lg = dec.step(step_tokens);
    for (int b = 0; b < kB; b++) std::copy(lg + b * V, lg + (b + 1) * V, out.begin() + (b * kT + t) * V);
  }
  return out;
}


// Bound on |decoded - full| for O(1) logits in fp32: both compute the same sums in another order (GEMV-shaped
// vs GEMM-shaped matmuls, a per-token softmax), ~6e-8 relative per rounding over a few hundred operations
// through 2 layers on logits up to ~4: ~1e-6 expected (observed <= 5e-6). 1e-4 leaves a 20x margin; a wrong cached row, a wrong RoPE
// position or a swapped W_UK / W_UV changes logits by O(0.1-1).
constexpr double kLogitTol = 1e-4;

void check_kind(AttentionKind kind, MlaPath path, uint64_t seed) {
  const ModelConfig m = nano_with(kind);
  Transformer<float> model(m);
  model.init_weights(seed);
  const std::vector<int> tokens = random_tokens(m.vocab_size, seed + 1);
  model.forward(tokens.data(), nullptr, kB, kT);
  const std::size_t n = static_cast<std::size_t>(kB) * kT * m.vocab_size;
  const std::vector<float> full(model.logits(), model.logits() + n);
  const std::vector<float> dec = decode_all(model, tokens, path);
  const double diff = max_diff(dec.data(), full.data(), n), mx = max_abs(full.data(), n);
  MESSAGE("decoder ", std::string(attention_kind_name(kind)), (kind == AttentionKind::mla ? std::string(" ") + mla_path_name(path) : ""),
          ": max |decoded - full| = ", diff, " over ", kT, " positions x ", kB, " sequences (max |logit| ", mx, ")");
  CHECK(mx > 0.3);  // the logits are O(1), so the absolute bound means something
  CHECK(diff <= kLogitTol);
}

}  // namespace

TEST_CASE("model/decoder: step-by-step logits equal the full forward at every position: mha, gqa, mqa") {
  check_kind(AttentionKind::mha, MlaPath::absorbed, 11);
  check_kind(AttentionKind::gqa, MlaPath::absorbed, 12);
  check_kind(AttentionKind::mqa, MlaPath::absorbed, 13);
}

TEST_CASE("model/decoder: step-by-step logits equal the full forward at every position: mla naive and absorbed") {
  check_kind(AttentionKind::mla, MlaPath::naive, 14);
  check_kind(AttentionKind::mla, MlaPath::absorbed, 14);
}

TEST_CASE("model/decoder: mla naive and absorbed paths give the same logits") {
  const ModelConfig m = nano_with(AttentionKind::mla);
  Transformer<float> model(m);
  model.init_weights(21);
  const std::vector<int> tokens = random_tokens(m.vocab_size, 22);
  const std::vector<float> a = decode_all(model, tokens, MlaPath::naive);
  const std::vector<float> b = decode_all(model, tokens, MlaPath::absorbed);
  const double diff = max_diff(a.data(), b.data(), a.size());
  MESSAGE("decoder mla naive vs absorbed: max |diff| = ", diff, " (max |logit| ", max_abs(a.data(), a.size()), ")");
  CHECK(diff <= kLogitTol);  // same fp32 argument as kLogitTol: two summation orders of the same math
}

TEST_CASE("model/decoder: kv-cache ledger bytes equal bytes per token per layer * Tmax * B * n_layer") {
  for (AttentionKind kind : {AttentionKind::mha, AttentionKind::gqa, AttentionKind::mqa, AttentionKind::mla}) {
    const ModelConfig m = nano_with(kind);
    Transformer<float> model(m);
    const int B = 3, Tmax = 17;
    const std::size_t before = Ledger::global().current(Role::policy, Category::kv_cache);
    Decoder dec(model, B, Tmax);
    const std::size_t got = Ledger::global().current(Role::policy, Category::kv_cache) - before;
    // Expected from the per-token formula (kv_cache.h, tested against V2 Table 1 in tests/model/kv_cache_test.cpp).
    const std::size_t per = kv_cache_bytes_per_token_per_layer(kv_cache_kind_of(kind), kv_cache_dims_of(m, B, Tmax));
    const std::string kind_name = attention_kind_name(kind);
    CAPTURE(kind_name);
    CHECK(got == per * Tmax * B * m.n_layer);
    CHECK(dec.cache().bytes() == got);
    // The role argument tags the cache: a reference model's decoder lands in the reference row.
    const std::size_t ref_before = Ledger::global().current(Role::reference, Category::kv_cache);
    Decoder ref(model, B, Tmax, MlaPath::absorbed, Role::reference);
    CHECK(Ledger::global().current(Role::reference, Category::kv_cache) - ref_before == got);
  }
}

TEST_CASE("model/decoder: reset restarts at position 0 and reproduces the same logits") {
  const ModelConfig m = nano_with(AttentionKind::gqa);
  Transformer<float> model(m);
  model.init_weights(31);
  Decoder dec(model, kB, 4);
  const int t0[kB] = {5, 9}, t1[kB] = {7, 2};
  dec.step(t0);
  const float* lg = dec.step(t1);
  const std::vector<float> first(lg, lg + kB * m.vocab_size);
  dec.reset();
  CHECK(dec.pos() == 0);
  dec.step(t0);
  lg = dec.step(t1);
  // Bitwise: the same operations on the same inputs in the same order (deterministic CPU code).
  CHECK(std::equal(first.begin(), first.end(), lg));
}

TEST_CASE("model/decoder: errors name the bad value") {
  const ModelConfig m = nano_with(AttentionKind::mqa);
  Transformer<float> model(m);
  Decoder dec(model, kB, 2);
  const int bad[kB] = {3, m.vocab_size};
  CHECK_THROWS_WITH(dec.step(bad), doctest::Contains("token 128 of sequence 1"));
  const int ok[kB] = {1, 2};
  dec.step(ok);
  dec.step(ok);
  CHECK_THROWS_WITH(dec.step(ok), doctest::Contains("position 2 is past the cache (Tmax = 2)"));
  CHECK_THROWS_WITH(Decoder(model, kB, m.max_seq_len + 1), doctest::Contains("Tmax = 65"));
  CHECK_THROWS_WITH(Decoder(model, 0, 4), doctest::Contains("B = 0"));
}

TEST_CASE("model/decoder: truncate rolls back: decoding on from the kept rows equals decoding from scratch") {
  const ModelConfig m = nano_with(AttentionKind::mla);
  Transformer<float> model(m);
  model.init_weights(41);
  const int V = m.vocab_size;
  const int a[4][kB] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}}, c[2][kB] = {{9, 10}, {11, 12}};
  Decoder rolled(model, kB, 4, MlaPath::absorbed), fresh(model, kB, 4, MlaPath::absorbed);
  for (const auto& t : a) rolled.step(t);  // positions 0..3 with tokens a
  rolled.truncate(2);                      // keep a[0], a[1]; positions 2, 3 are decoded again with tokens c
  CHECK(rolled.pos() == 2);
  fresh.step(a[0]);
  fresh.step(a[1]);
  for (const auto& t : c) {
    const float* r = rolled.step(t);
    const float* f = fresh.step(t);
    // Bitwise: same operations, same inputs; a stale row 2 or 3 (from tokens a) would change the logits.
    CHECK(std::equal(r, r + kB * V, f));
  }
  CHECK_THROWS_WITH(rolled.truncate(5), doctest::Contains("position 5 is outside [0, 4]"));
}

TEST_CASE("model/decoder: prefill_shared: sequences that copy a source's prefill decode on as if prefilled themselves") {
  // 4 sequences, the last two reading the same 5 prompt tokens as the first two (a group of two copies each):
  // prefill_shared decodes sequences 0 and 1 and copies their cache rows to 2 and 3. Then 3 steps with a different
  // token in every sequence, so every row attends over its own copied rows. The reference prefills all four with
  // step_many. Bound kLogitTol as above (the same sums over GEMMs of 10 rows instead of 20); a row copied from the
  // wrong sequence, position or layer changes the logits by O(0.1-1).
  for (const AttentionKind kind : {AttentionKind::mla, AttentionKind::gqa}) {
    INFO("attention ", attention_kind_name(kind));
    const ModelConfig m = nano_with(kind);
    Transformer<float> model(m);
    model.init_weights(43);
    const int V = m.vocab_size, B = 4, P = 5;
    const std::vector<int> source = {0, 1, 0, 1};
    std::vector<int> heads(2 * P), all(B * P);  // (2, P) the sources' tokens; (B, P) every sequence's
    for (int s = 0; s < 2; s++)
      for (int t = 0; t < P; t++) heads[s * P + t] = 3 + 11 * s + 2 * t;
    for (int b = 0; b < B; b++) std::copy_n(heads.begin() + source[b] * P, P, all.begin() + b * P);
    Decoder shared(model, B, P + 3), full(model, B, P + 3);
    shared.prefill_shared(heads.data(), P, source);
    full.step_many(all.data(), P);
    CHECK(shared.pos() == P);
    double diff = 0;
    for (int t = 0; t < 3; t++) {
      const int step[4] = {20 + t, 30 + t, 40 + t, 50 + t};
      const float* a = shared.step(step);
      const std::vector<float> s(a, a + B * V);
      const float* f = full.step(step);
      diff = std::max(diff, max_diff(s.data(), f, static_cast<std::size_t>(B) * V));
    }
    MESSAGE(std::string(attention_kind_name(kind)), ": max |shared - full| = ", diff);
    CHECK(diff <= kLogitTol);
  }
  const ModelConfig m = nano_with(AttentionKind::mla);
  Transformer<float> model(m);
  Decoder dec(model, 4, 8);
  const int t[4] = {1, 2, 3, 4};
  CHECK_THROWS_WITH(dec.prefill_shared(t, 1, {0, 1, 0}), doctest::Contains("3 entries for 4 sequences"));
  CHECK_THROWS_WITH(dec.prefill_shared(t, 1, {0, 1, 1, 3}), doctest::Contains("sequence 3 takes its rows from 3"));
  CHECK_THROWS_WITH(dec.prefill_shared(t, 1, {0, 2, 0, 0}), doctest::Contains("sequence 1 takes its rows from 2"));
}

TEST_CASE("model/decoder: move_sequence and step_first: a moved sequence decodes on as it would have in place") {
  // 3 sequences decoded 4 positions; sequence 2 moves into row 0 and row 0 alone (step_first, n = 1) decodes 2 more
  // positions. The reference decodes all 3 in place with the same tokens: its row 2 must match row 0 within
  // kLogitTol (the same sums, in GEMMs of 1 row instead of 3: observed ~1e-6). A copy that missed a position or a
  // layer changes the logits by O(0.1-1).
  const ModelConfig m = nano_with(AttentionKind::mla);
  Transformer<float> model(m);
  model.init_weights(47);
  const int V = m.vocab_size;
  const int a[4][3] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}};
  Decoder moved(model, 3, 6), ref(model, 3, 6);
  for (const auto& t : a) { moved.step(t); ref.step(t); }
  moved.move_sequence(2, 0);
  double diff = 0;
  for (int t = 0; t < 2; t++) {
    const int one[1] = {20 + t}, all[3] = {30, 31, 20 + t};
    const float* lm = moved.step_first(one, 1);
    const std::vector<float> row(lm, lm + V);
    const float* lr = ref.step(all);
    diff = std::max(diff, max_diff(row.data(), lr + 2 * V, static_cast<std::size_t>(V)));
  }
  MESSAGE("max |moved - in place| = ", diff);
  CHECK(diff <= kLogitTol);
  CHECK(moved.pos() == 6);
  Decoder dec(model, 3, 4);
  const int t[3] = {1, 2, 3};
  CHECK_THROWS_WITH(dec.step_first(t, 0), doctest::Contains("n = 0"));
  CHECK_THROWS_WITH(dec.step_first(t, 4), doctest::Contains("n = 4"));
  CHECK_THROWS_WITH(dec.move_sequence(0, 3), doctest::Contains("must be in [0, B = 3)"));
}

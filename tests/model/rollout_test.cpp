// tests/model/rollout_test.cpp — batched rollouts with the kv-cache Decoder (model/rollout.h).
//
// Shapes: nano-dense preset (C 32, 2 layers, V 128, max_seq_len 64); B 3..8 prompts of different lengths.
// Weights: random init with init_std 0.2 instead of the preset's 0.02, so logits are O(1) and far from uniform
// (as in tests/model/decoder_test.cpp): greedy choices are then not near-ties that decoding-order rounding could flip, and a
// log-prob taken from the wrong logits row or at the wrong temperature is visibly wrong.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tests/util/error_util.h"
#include "tinyds/model/config.h"
#include "tinyds/model/sampling.h"
#include "tinyds/model/transformer.h"
#include "tinyds/model/rollout.h"
#include "tests/util/rollout_util.h"

using namespace tinyds;
using namespace tinyds::test;

namespace {

// Prompts of lengths 4, 2, 7 and 60 (the last leaves 4 positions before max_seq_len 64), all starting with <bos>.
std::vector<std::vector<int>> mixed_prompts() {
  std::vector<int> long_prompt = {1};
  for (int i = 0; i < 59; i++) long_prompt.push_back(5 + i);
  return {{1, 40, 41, 42}, {1, 50}, {1, 60, 61, 62, 63, 64, 65}, long_prompt};
}

// <bos> then len - 1 tokens 3 + (offset + stride * i) % 90: distinct prompts of a chosen length.
std::vector<int> synthetic_prompt(int len, int offset, int stride) {
  std::vector<int> q = {1};
  for (int i = 1; i < len; i++) q.push_back(3 + (offset + stride * i) % 90);
  return q;
}

bool same_tokens(const Rollout& a, const Rollout& b) {
  if (a.B != b.B || a.T != b.T) return false;
  for (std::size_t i = 0; i < static_cast<std::size_t>(a.B) * a.T; i++)
    if (a.tokens[i] != b.tokens[i]) return false;
  return a.completion_len == b.completion_len;
}
bool same_logprobs(const Rollout& a, const Rollout& b) {
  for (std::size_t i = 0; i < static_cast<std::size_t>(a.B) * a.T; i++)
    if (a.logprobs[i] != b.logprobs[i] || a.mask[i] != b.mask[i]) return false;
  return true;
}

}  // namespace

TEST_CASE("model/rollout: greedy decoding equals generate() token for token") {
  Transformer<float> model(rollout_nano());
  model.init_weights(11);
  const auto prompts = mixed_prompts();
  const int n_tokens = 101, pad = 0;
  SamplingParams sp;
  sp.max_new_tokens = 12;
  // First with an <eos> that never occurs (-1): every sequence runs to max_new_tokens or max_seq_len.
  // Then <eos> := the 4th greedy token of prompt 0, so at least that sequence stops early at it.
  auto reference = generate(model, prompts, sp, n_tokens, /*eos=*/-1, pad);
  REQUIRE(reference[0].size() >= 4);
  const int eos = reference[0][3];
  for (int e : {-1, eos}) {
    INFO("eos ", e);
    const auto expected = generate(model, prompts, sp, n_tokens, e, pad);
    const Rollout r = rollout(model, prompts, rollout_options(0.0f, sp.max_new_tokens, n_tokens, e));
    REQUIRE(r.B == static_cast<int>(prompts.size()));
    for (int b = 0; b < r.B; b++) {
      INFO("sequence ", b);
      CHECK(r.completion_ids(b) == expected[b]);
      CHECK(r.prompt_len[b] == static_cast<int>(prompts[b].size()));
      CHECK(std::vector<int>(r.row(b), r.row(b) + r.prompt_len[b]) == prompts[b]);
    }
    CHECK(r.completion_len[3] == 4);  // the 60-token prompt hits max_seq_len 64 after 4 new tokens
    if (e == eos) CHECK(r.completion_len[0] <= 4);
  }
}

TEST_CASE("model/rollout: prompts read in a prefill of several step_many calls still decode as generate() does") {
  // 64 prompts of 40..47 tokens: every chunk prefills its first 39 positions in calls of at most 512 rows
  // (rollout.cpp), several calls whatever the thread count (1 thread: 64 rows per position, 8 positions per call).
  // A prefill that skipped, repeated or shifted a position would change the greedy continuations.
  Transformer<float> model(rollout_nano());
  model.init_weights(5);
  std::vector<std::vector<int>> prompts;
  for (int b = 0; b < 64; b++) prompts.push_back(synthetic_prompt(40 + b % 8, 7 * b, 3));
  SamplingParams sp;
  sp.max_new_tokens = 10;
  const int n_tokens = 101, pad = 0, eos = -1;
  const auto expected = generate(model, prompts, sp, n_tokens, eos, pad);
  const Rollout r = rollout(model, prompts, rollout_options(0.0f, sp.max_new_tokens, n_tokens, eos));
  for (int b = 0; b < r.B; b++) {
    INFO("sequence ", b);
    CHECK(r.completion_ids(b) == expected[b]);
  }
}

TEST_CASE("model/rollout: GRPO groups share one prefill and sample as each sequence alone would") {
  // 3 prompts of 30, 34 and 38 tokens, 4 copies each, interleaved, and a fourth prompt that begins as the first
  // and goes on: every chunk's prefill (positions 0..28) is decoded once per distinct prefix and copied to the
  // other rows (Decoder::prefill_shared), the rows reordered so that one of each prefix comes first. The same
  // prompts decoded one sequence per Decoder (batch 1: no sharing, no reordering) must give the same tokens: a
  // copied row from the wrong sequence or position, or a sample written back to the wrong sequence, changes them.
  Transformer<float> model(rollout_nano());
  model.init_weights(13);
  std::vector<std::vector<int>> distinct;
  for (int k = 0; k < 3; k++) distinct.push_back(synthetic_prompt(30 + 4 * k, 5 * k, 7));
  std::vector<int> longer = distinct[0];
  for (int i = 0; i < 6; i++) longer.push_back(40 + i);
  std::vector<std::vector<int>> prompts;
  for (int g = 0; g < 4; g++)
    for (const auto& q : distinct) prompts.push_back(q);
  prompts.push_back(longer);
  for (const float temperature : {0.0f, 1.0f}) {
    INFO("temperature ", temperature);
    const RolloutOptions o = rollout_options(temperature, 12, 101, -1, /*seed=*/77);
    RolloutOptions alone = o;
    alone.batch = 1;
    const Rollout shared = rollout(model, prompts, o), single = rollout(model, prompts, alone);
    CHECK(same_tokens(shared, single));
  }
}

TEST_CASE("model/rollout: the mask covers exactly the sampled tokens, <eos> included, nothing after it") {
  // 8 ids and <eos> = 2: each step ends a sequence with probability ~1/8, so within 20 new tokens some
  // sequences stop at <eos> and some are cut off (both are REQUIREd below for this seed).
  Transformer<float> model(rollout_nano());
  model.init_weights(3);
  const auto prompts = short_prompts();
  const int eos = 2, max_new = 20;
  const Rollout r = rollout(model, prompts, rollout_options(1.0f, max_new, 8, eos));
  int stopped = 0, cut = 0;
  for (int b = 0; b < r.B; b++) {
    INFO("sequence ", b);
    const int P = r.prompt_len[b], L = r.completion_len[b];
    REQUIRE(L >= 1);
    for (int t = 0; t < r.T; t++) {
      const bool sampled = t >= P && t < P + L;
      CHECK(r.mask_row(b)[t] == (sampled ? 1.0f : 0.0f));
      if (sampled) CHECK(r.logprob_row(b)[t] < 0.0f);
      else CHECK(r.logprob_row(b)[t] == 0.0f);
      if (t >= P + L) CHECK(r.row(b)[t] == 0);  // <pad> after the end
    }
    for (int j = 0; j + 1 < L; j++) CHECK(r.completion(b)[j] != eos);  // the first <eos> ends it
    if (r.ended_with_eos[b]) {
      CHECK(r.completion(b)[L - 1] == eos);
      stopped++;
    } else {
      CHECK(L == max_new);
      cut++;
    }
  }
  REQUIRE(stopped >= 1);
  REQUIRE(cut >= 1);
}

TEST_CASE("model/rollout: deterministic for a seed, whatever the batch split or the thread count") {
  Transformer<float> model(rollout_nano());
  model.init_weights(9);
  const auto prompts = short_prompts();
  RolloutOptions o = rollout_options(1.0f, 12, 40, 2, /*seed=*/123);
  o.sampling.top_p = 0.95f;
  const Rollout a = rollout(model, prompts, o);
  const Rollout again = rollout(model, prompts, o);
  CHECK(same_tokens(a, again));
  CHECK(same_logprobs(a, again));
  RolloutOptions one_at_a_time = o;
  one_at_a_time.batch = 1;  // sequence b keeps its index, hence its random stream
  const Rollout split = rollout(model, prompts, one_at_a_time);
  CHECK(same_tokens(a, split));
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const Rollout single = rollout(model, prompts, o);
  omp_set_num_threads(4);  // more threads than cores is fine: only the split of the work changes
  const Rollout four = rollout(model, prompts, o);
  omp_set_num_threads(3);  // the 8 sequences in uneven chunks of 3, 3 and 2, one Decoder per thread
  const Rollout three = rollout(model, prompts, o);
  omp_set_num_threads(saved);
  CHECK(same_tokens(single, four));
  CHECK(same_tokens(single, three));
  CHECK(same_tokens(a, single));
#endif
  // A different seed gives different samples (sanity: the seed is used at all).
  RolloutOptions other = o;
  other.sampling.seed = 124;
  CHECK_FALSE(same_tokens(a, rollout(model, prompts, other)));
  // Identical prompts in one batch (a GRPO group) are different streams: not all the same completion.
  const std::vector<std::vector<int>> group(4, prompts[3]);
  const Rollout g = rollout(model, group, o);
  bool differ = false;
  for (int b = 1; b < g.B; b++) differ = differ || g.completion_ids(b) != g.completion_ids(0);
  CHECK(differ);
}

TEST_CASE("model/rollout: every (sequence, position) has its own random draw") {
  // A draw reused across positions (the counter ignored) or across sequences (the stream ignored) would repeat
  // here; 64-bit values from distinct (stream, counter) pairs collide with probability ~1e-15.
  std::set<uint64_t> draws;
  for (int b = 0; b < 16; b++)
    for (int t = 0; t < 64; t++) draws.insert(rollout_rng(7, b, t).next_u64());
  CHECK(draws.size() == 16u * 64u);
  CHECK(rollout_rng(7, 3, 5).next_u64() != rollout_rng(8, 3, 5).next_u64());  // and the seed matters
  CHECK(rollout_rng(7, 3, 5).next_u64() == Rng(7, 3).at(5));                   // the documented key
}

TEST_CASE("model/rollout: top-k 1 at temperature 1 equals greedy") {
  Transformer<float> model(rollout_nano());
  model.init_weights(13);
  const auto prompts = mixed_prompts();
  const Rollout greedy = rollout(model, prompts, rollout_options(0.0f, 10, 101, 2));
  RolloutOptions o = rollout_options(1.0f, 10, 101, 2);
  o.sampling.top_k = 1;
  const Rollout k1 = rollout(model, prompts, o);
  CHECK(same_tokens(greedy, k1));
  CHECK(same_logprobs(greedy, k1));  // both at tau 1 (greedy records log-probs at temperature 1)
}

TEST_CASE("model/rollout: gather_rows copies each chosen row of several rollouts, padded to the longest T") {
  Transformer<float> model(rollout_nano());
  model.init_weights(3);
  // Two rollouts of different T (the long prompt of mixed_prompts() caps its row at max_seq_len; the short ones
  // leave room for max_new): rows taken out of order and from both.
  const Rollout a = rollout(model, short_prompts(), rollout_options(1.0f, 6, 101, 2));
  const Rollout b = rollout(model, mixed_prompts(), rollout_options(1.0f, 9, 101, 2));
  REQUIRE(a.T != b.T);
  const std::vector<RolloutRow> rows = {{&b, 3}, {&a, 0}, {&b, 1}, {&a, a.B - 1}};
  const int pad = 0;
  const Rollout g = gather_rows(rows, pad);
  REQUIRE(g.B == 4);
  CHECK(g.T == std::max(a.T, b.T));
  CHECK(g.logprob_temperature == a.logprob_temperature);
  for (int i = 0; i < g.B; i++) {
    INFO("gathered row ", i);
    const Rollout& src = *rows[i].from;
    const int sb = rows[i].b;
    CHECK(g.prompt_len[i] == src.prompt_len[sb]);
    CHECK(g.completion_len[i] == src.completion_len[sb]);
    CHECK(g.ended_with_eos[i] == src.ended_with_eos[sb]);
    for (int t = 0; t < g.T; t++) {
      const bool inside = t < src.T;  // past the source's T: padding, nothing sampled
      CHECK(g.row(i)[t] == (inside ? src.row(sb)[t] : pad));
      CHECK(g.mask_row(i)[t] == (inside ? src.mask_row(sb)[t] : 0.0f));
      CHECK(g.logprob_row(i)[t] == (inside ? src.logprob_row(sb)[t] : 0.0f));
    }
  }
  using tinyds_test::error_of;
  using tinyds_test::has;
  CHECK(has(error_of([&] { gather_rows({}, pad); }), "no rows"));
  CHECK(has(error_of([&] { gather_rows({{&a, a.B}}, pad); }), "row 0 asks for sequence"));
  const Rollout hot = rollout(model, short_prompts(), rollout_options(2.0f, 6, 101, 2));
  CHECK(has(error_of([&] { gather_rows({{&a, 0}, {&hot, 0}}, pad); }), "row 1 comes from a rollout at temperature 2"));
}

TEST_CASE("model/rollout: bad inputs are errors naming them") {
  Transformer<float> model(rollout_nano());
  model.init_weights(1);
  using tinyds_test::error_of;
  using tinyds_test::has;
  CHECK(has(error_of([&] { rollout(model, {{1, 5}, {}}, rollout_options(0, 4, 101, 2)); }), "prompt 1 is empty"));
  CHECK(has(error_of([&] { rollout(model, {{1, 500}}, rollout_options(0, 4, 101, 2)); }), "token 1 is 500"));
  CHECK(has(error_of([&] { rollout(model, {{1}}, rollout_options(0, 4, 0, 2)); }), "n_tokens 0"));
  CHECK(has(error_of([&] { rollout(model, {{1}}, rollout_options(-1, 4, 101, 2)); }), "temperature"));
}

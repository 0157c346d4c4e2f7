// tinyds/cli/cmd_kvcache.cpp — `tinyds kvcache`: key/value cache sizes of MHA / GQA / MQA / MLA (DESIGN 4.1,
// DeepSeek-V2 Table 1) for a preset's dimensions and for DeepSeek-V3's, then measured decode speed of the
// naive vs absorbed MLA paths (and MHA) through model/decoder.h.
//
// Shapes: C d_model, H heads, D head dim, Hkv GQA kv heads, L MLA kv latent rank, R MLA rope dim, Q MLA query
// latent rank, B sequences decoded together, P context length (cached positions before the timed steps).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tinyds/cli/args.h"
#include "tinyds/cli/commands.h"
#include "tinyds/core/error.h"
#include "tinyds/core/ledger.h"
#include "tinyds/core/rng.h"
#include "tinyds/core/timer.h"
#include "tinyds/model/config.h"
#include "tinyds/model/decoder.h"
#include "tinyds/model/kv_cache.h"
#include "tinyds/model/transformer.h"

namespace tinyds {

namespace {

// The four kinds of one set of dims: the elements each caches per token per layer (kv_cache.h).
void print_size_table(const char* title, const KvCacheDims& d, int n_layer) {
  std::printf("%s\n", title);
  std::printf("  %-4s %-12s %12s %14s %14s %16s %16s %10s\n", "kind", "kv heads", "elems/tok/lay", "fp32 B/tok/lay",
              "bf16 B/tok/lay", "fp32 B/tok (all)", "bf16 B/tok (all)", "vs MHA");
  const std::size_t mha = kv_cache_elems_per_token_per_layer(KvCacheKind::mha, d);
  for (KvCacheKind k : {KvCacheKind::mha, KvCacheKind::gqa, KvCacheKind::mqa, KvCacheKind::mla}) {
    const std::size_t e = kv_cache_elems_per_token_per_layer(k, d);
    const std::string heads = k == KvCacheKind::mla ? "latent L+R" : std::to_string(kv_cache_heads(k, d));
    std::printf("  %-4s %-12s %12zu %14zu %14zu %16zu %16zu %9.1f%%\n", kv_cache_kind_name(k), heads.c_str(), e,
                4 * e, 2 * e, 4 * e * n_layer, 2 * e * n_layer, 100.0 * (double(e) / double(mha) - 1.0));
  }
  const std::size_t mla = kv_cache_elems_per_token_per_layer(KvCacheKind::mla, d);
  std::printf("  MLA caches %zu vs MHA %zu elements per token per layer: %.1f%% smaller (%.1fx)\n\n", mla, mha,
              100.0 * (1.0 - double(mla) / double(mha)), double(mha) / double(mla));
}

// The largest divisor of H that is <= want (GQA needs Hkv | H).
int gqa_heads(int want, int H) {
  int g = std::max(1, std::min(want, H));
  while (H % g) g--;
  return g;
}

struct BenchOpts {
  int B, steps, reps, threads;
  std::vector<int> contexts;
  uint64_t seed;
};

// Median decode tokens/s (B * steps / seconds) at each context length: prefill by stepping P tokens (untimed),
// then reps times: truncate back to P and time `steps` more steps.
// cache_bytes: what the decoder's kv-cache holds (its ledgered kv_cache allocation).
std::vector<double> bench_decoder(const Transformer<float>& model, MlaPath path, const BenchOpts& o,
                                  std::size_t& cache_bytes) {
  const int V = model.config().vocab_size, maxP = *std::max_element(o.contexts.begin(), o.contexts.end());
  Decoder dec(model, o.B, maxP + o.steps, path);
  cache_bytes = dec.cache().bytes();
  Rng rng(o.seed);
  std::vector<int> tok(o.B);
  auto step = [&] {
    for (int& t : tok) t = static_cast<int>(rng.next_u64() % static_cast<uint64_t>(V));
    dec.step(tok.data());
  };
  std::vector<double> out;
  for (int P : o.contexts) {
    dec.reset();
    for (int p = 0; p < P; p++) step();
    std::vector<double> rate;
    for (int r = 0; r < o.reps; r++) {
      dec.truncate(P);
      Timer tm;
      for (int s = 0; s < o.steps; s++) step();
      rate.push_back(double(o.B) * o.steps / std::max(tm.seconds(), 1e-9));
    }
    std::sort(rate.begin(), rate.end());
    out.push_back(rate[rate.size() / 2]);
  }
  return out;
}

void print_bench(const ModelConfig& mla, const ModelConfig& mha, const BenchOpts& o) {
  std::printf("(c) measured decode speed: C %d, %d layers, H %d, D %d, F %d, V %d; MLA Q %d, L %d, R %d; "
              "random init, B %d\n", mla.d_model, mla.n_layer, mla.n_head, mla.head_dim, mla.ffn_hidden,
              mla.vocab_size, mla.q_lora_rank, mla.kv_lora_rank, mla.rope_dim, o.B);
  std::printf("    What is timed: Decoder::step (embed, all layers with kv-cache attention and FFN, head) for %d steps\n"
              "    after P cached positions; tokens/s = B * steps / time, median of %d reps (fp32 CPU, %d thread(s)).\n"
              "    naive rebuilds k_C, v = W_UK c_KV, W_UV c_KV for every cached row (O(P L D) per head);\n"
              "    absorbed folds W_UK into the query and W_UV into the output (O(L (D + P)) per head).\n",
              o.steps, o.reps, o.threads);
  Transformer<float> m_mla(mla), m_mha(mha);
  m_mla.init_weights(o.seed);
  m_mha.init_weights(o.seed);
  std::size_t mla_bytes = 0, mha_bytes = 0;
  const std::vector<double> naive = bench_decoder(m_mla, MlaPath::naive, o, mla_bytes);
  const std::vector<double> absorbed = bench_decoder(m_mla, MlaPath::absorbed, o, mla_bytes);
  const std::vector<double> dense = bench_decoder(m_mha, MlaPath::absorbed, o, mha_bytes);
  std::printf("  %8s %14s %14s %14s %18s\n", "context", "MLA naive", "MLA absorbed", "MHA", "absorbed/naive");
  for (std::size_t i = 0; i < o.contexts.size(); i++)
    std::printf("  %8d %10.0f t/s %10.0f t/s %10.0f t/s %17.2fx\n", o.contexts[i], naive[i], absorbed[i], dense[i],
                absorbed[i] / naive[i]);
  const int T = *std::max_element(o.contexts.begin(), o.contexts.end()) + o.steps;
  std::printf("  kv-cache allocated by these decoders (B %d, Tmax %d, all layers, fp32): MLA %s, MHA %s\n\n", o.B, T,
              format_bytes(mla_bytes).c_str(), format_bytes(mha_bytes).c_str());
}

}  // namespace

int cmd_kvcache(int argc, char** argv) {
  Args a("tinyds kvcache", "Key/value cache size per token of MHA / GQA / MQA / MLA for a preset's dimensions and for "
                           "DeepSeek-V3's, and measured decode tokens/s of naive vs absorbed MLA (and MHA).");
  std::string preset = "small";
  int L = 64, R = 16, gqa = 8, Q = 0;
  BenchOpts o{8, 16, 5, 1, {32, 64, 128}, 1337};
  bool no_bench = false;
  a.add("--preset", preset, "model dimensions (C, H, D, F, layers) from this preset: nano, small, base");
  a.add("--kv-lora-rank", L, "MLA kv latent rank L (the preset's own if it is an mla preset)");
  a.add("--rope-dim", R, "MLA rope dim R, even (the preset's own if it is an mla preset)");
  a.add("--q-lora-rank", Q, "MLA query latent rank Q for the timed model; 0 = the preset's own, or C/2");
  a.add("--gqa-kv-heads", gqa, "GQA kv heads (clipped to the largest divisor of H not above it)");
  a.add("--batch", o.B, "sequences decoded together in the timing");
  a.add("--contexts", o.contexts, "context lengths P to time at, comma list");
  a.add("--steps", o.steps, "timed decode steps after each context");
  a.add("--reps", o.reps, "repetitions per timing (the median is printed)");
  a.add("--threads", o.threads, "OpenMP threads while timing (1: a decode step is too small to split)");
  a.add("--seed", o.seed, "random init and token seed");
  a.add_flag("--no-bench", no_bench, "print the size tables only");
  if (!a.parse(argc, argv)) return 0;
  ModelConfig m = Config::preset(preset).model;
  if (m.attention == AttentionKind::mla) {  // an mla preset brings its own ranks unless overridden
    if (!a.given("--kv-lora-rank")) L = m.kv_lora_rank;
    if (!a.given("--rope-dim")) R = m.rope_dim;
    if (!Q) Q = m.q_lora_rank;
  }
  if (L < 1) throw_error("option --kv-lora-rank: ", L, " must be positive");
  if (R < 2 || R % 2) throw_error("option --rope-dim: ", R, " must be a positive even number");
  if (gqa < 1) throw_error("option --gqa-kv-heads: ", gqa, " must be positive");
  if (o.B < 1 || o.steps < 1 || o.reps < 1 || o.threads < 1)
    throw_error("options --batch (", o.B, "), --steps (", o.steps, "), --reps (", o.reps, "), --threads (", o.threads,
                ") must be positive");
  if (o.contexts.empty()) throw_error("option --contexts: give at least one context length");
  for (int P : o.contexts)
    if (P < 0) throw_error("option --contexts: context length ", P, " must not be negative");

  std::printf("KV-cache per token (DeepSeek-V2 Table 1): MHA 2*H*D, GQA 2*Hkv*D, MQA 2*D, MLA L+R elements per layer.\n"
              "bf16 columns are for reference (tinyds caches fp32); 'all' = times the number of layers.\n\n");
  KvCacheDims d = kv_cache_dims_of(m, 1, 1);
  d.n_kv_head = gqa_heads(gqa, m.n_head); d.L = L; d.R = R;
  const std::string t1 = "(a) preset '" + preset + "': C " + std::to_string(m.d_model) + ", H " + std::to_string(m.n_head) +
                         ", D " + std::to_string(m.head_dim) + ", " + std::to_string(m.n_layer) + " layers; GQA " +
                         std::to_string(d.n_kv_head) + " kv heads; MLA L " + std::to_string(L) + ", R " + std::to_string(R);
  print_size_table(t1.c_str(), d, m.n_layer);
  if (d.n_kv_head == m.n_head)
    std::printf("  (GQA with %d kv heads = MHA here: H is only %d; try --gqa-kv-heads 2)\n\n", d.n_kv_head, m.n_head);
  KvCacheDims v3;
  v3.n_layer = 61; v3.H = 128; v3.D = 128; v3.n_kv_head = 8; v3.L = 512; v3.R = 64;
  print_size_table("(b) DeepSeek-V3 dimensions: C 7168, H 128, D 128, Q 1536, L 512, R 64, 61 layers; GQA 8 kv heads",
                   v3, 61);
  if (no_bench) return 0;

  ModelConfig mla = m, mha = m;
  mla.attention = AttentionKind::mla; mla.n_kv_head = m.n_head;
  mla.q_lora_rank = Q ? Q : std::max(1, m.d_model / 2); mla.kv_lora_rank = L; mla.rope_dim = R;
  mha.attention = AttentionKind::mha; mha.n_kv_head = m.n_head; mha.q_lora_rank = mha.kv_lora_rank = mha.rope_dim = 0;
  const int need = *std::max_element(o.contexts.begin(), o.contexts.end()) + o.steps;
  mla.max_seq_len = mha.max_seq_len = std::max(m.max_seq_len, need);  // room for the longest timed context
  // One decode step is a few rows per GEMM and B*H small attention loops: forking threads for it costs more
  // than it saves, and on cores shared with other work a spinning OpenMP barrier made timings 5-100x noisier.
#ifdef _OPENMP  // (the debug build has no OpenMP: one thread already)
  omp_set_num_threads(o.threads);
#endif
  print_bench(mla, mha, o);
  return 0;
}

}  // namespace tinyds

// tinyds/model/decoder.h — incremental (kv-cache) decoding of a whole Transformer<float>: one token per
// sequence per step (or T consecutive tokens per sequence with step_many), the decode twin of
// Transformer::forward; and MTP module 0 as a drafter for self-speculative decoding (mtp_step, below).
//
// Shapes: B sequences decoded together, T new tokens per sequence in one call (1 for step()), Tmax positions the
// cache holds, C d_model, V vocab, F ffn_hidden.
//
//   x = embed[tokens]                                         (B, T, C) the new tokens, at positions pos()..pos()+T-1
//   for each layer:  h = x + AttnDecode(RMSNorm(x), cache)    dense kinds: dense_attention_decode (decode_dense.h)
//                                                             mla: mla_decode_naive / mla_decode_absorbed
//                    x = h + FFN(RMSNorm(h))                  dense FFN(a) = w2(silu(w1 a) * w3 a), or the MoE
//                                                             layer (moe_layer.h) on the B rows
//   logits = head(RMSNorm(x))                                 (B, T, V)
//
// Step p writes cache row p of every layer and reads rows 0..p, so the logits of step p equal the full
// forward's logits at position p (tests/model/decoder_test.cpp checks this at every position for every kind).
// step_many(tokens, T) runs T consecutive positions of every sequence in one call: every projection and FFN is
// one GEMM over the B*T rows, and new token t attends over cached rows 0..pos()+t (causal within the T).
//
// MTP drafting (model/mtp.h; DeepSeek-V3 §2.2 and §5.4.3). Only module 0 (depth 1, what the presets use) is
// decoded; deeper modules are ignored. Its block (layer n_layer of the model) has its own one-layer kv-cache,
// holding one row per position p whose MTP input is known:
//   cat = [RMSNorm(x_L[p]; hnorm), RMSNorm(embed[token[p+1]]; enorm)]     V3 Eq. 21
//   h   = Block_0(cat @ proj^T)     attends over MTP rows 0..p           V3 Eq. 22
//   draft logits for position p+2 = head(RMSNorm(h; norm))               V3 Eq. 23 (Transformer::mtp_logits(0)[p])
// x_L[p] is the main model's final hidden state at p (hidden() after the step that decoded p), token[p+1] the
// token at p+1 (known once the main model chose it). mtp_step fills MTP rows mtp_pos()..mtp_pos()+T-1.
// Memory: the cache is one ledgered allocation (Category::kv_cache), the per-token scratch another
// (Category::activations), both under the role given to the constructor. The model is only read and must
// outlive the Decoder.
// Device: a Decoder of a cuda model (Transformer::device()) keeps its cache and scratch in device memory
// (Place::device) and runs every op as a CUDA kernel (tinyds/device/ops.h; MLA's absorbed attention is
// kernels/mla_decode.cu). Tokens arrive on the host and are uploaded; the logits, hidden() and the caches are
// device pointers then (read them with tinyds/device/memory.h). On cuda only MLA models decode, on the absorbed
// path (the naive path and the dense kinds' decode attention have no kernel; the constructor says so).
#pragma once
#include <memory>
#include <vector>

#include "tinyds/core/ledger.h"
#include "tinyds/model/kv_cache.h"
#include "tinyds/model/transformer.h"

namespace tinyds {

// Which MLA decode path a Decoder uses (ignored for mha/gqa/mqa); DESIGN section 4.1.
enum class MlaPath { naive, absorbed };
const char* mla_path_name(MlaPath p);

// The cache kind of a model's attention kind (mha -> mha, ...) and the cache dims of a model decoded with
// B sequences of up to Tmax positions.
KvCacheKind kv_cache_kind_of(AttentionKind a);
KvCacheDims kv_cache_dims_of(const ModelConfig& m, int B, int Tmax);

class Decoder {
 public:
  // Throws if B < 1 or Tmax is outside [1, model.max_seq_len] (naming the value). role tags the ledgered cache
  // and scratch (the model's own role, e.g. Role::reference when decoding with a reference model).
  Decoder(const Transformer<float>& model, int B, int Tmax, MlaPath path = MlaPath::absorbed,
          Role role = Role::policy);

  // tokens (B), a host array: one new token per sequence, all at position pos(). Returns logits (B, V) in the
  // model's place (device memory on cuda), valid until the next
  // step() or reset(). Throws if pos() == Tmax or a token is outside [0, V), naming the value and the sequence.
  const float* step(const int* tokens) { return step_many(tokens, 1); }
  // tokens (B, T): T consecutive new tokens per sequence at positions pos()..pos()+T-1 (a prefill, or the two
  // positions a speculative verification checks). Returns logits (B, T, V); logits row (b, t) equals what T
  // single steps would give at position pos()+t (up to fp32 summation order). Throws if T < 1 or
  // pos() + T > Tmax, or for a token outside the vocab (naming it, its sequence and position).
  const float* step_many(const int* tokens, int T);
  // A prefill shared by sequences that read the same tokens (a GRPO group's G copies of one prompt): source (B)
  // names, for each sequence b, the sequence s = source[b] whose rows it takes; the sources are the first n
  // sequences (source[s] == s for s < n, source[b] < n for every b). tokens (n, T): the sources' tokens at
  // positions pos()..pos()+T-1, decoded as step_many would (one call over n*T rows instead of B*T); every other
  // sequence then gets its source's cache rows there (KvCache::copy_rows), as if it had been decoded itself.
  // Returns nothing: a prefill's logits predict known tokens. hidden() is then the n sources' only. Throws as
  // step_many does, and for a source map that is not of that form (naming the sequence).
  void prefill_shared(const int* tokens, int T, const std::vector<int>& source);
  // One step of the first n sequences only (1 <= n <= B): tokens (n), logits (n, V) returned as step() does. The
  // other sequences' cache rows at pos() are not written, so they must never be decoded again (finished ones: a
  // rollout moves its unfinished sequences to the front with move_sequence and steps only those).
  const float* step_first(const int* tokens, int n);
  // Sequence src's cache rows 0..pos()-1 become sequence dst's (src's are left as they were): dst now decodes on as
  // src would have. Throws for a sequence outside [0, B).
  void move_sequence(int src, int dst);
  // (B, T, C) x_L, the residual stream after the last main block (before the final norm), of the last
  // step/step_many: the MTP module's input. Valid until the next step, step_many or reset() (mtp_step keeps it).
  const float* hidden() const { return hidden_; }
  int last_T() const { return last_T_; }  // T of the last step/step_many (rows of hidden() per sequence)
  int pos() const { return pos_; }        // positions decoded so far (the next step's position)
  void reset() { pos_ = 0; mtp_pos_ = 0; }  // start new sequences (old cache rows are overwritten as we go)
  // Forget positions >= pos: the next step decodes at pos again, reusing the cached rows 0..pos-1 (the rollback
  // of speculative decoding; also lets a benchmark time steps at one context length repeatedly). The MTP cache
  // keeps rows p <= pos-2 only: MTP row p embedded the token at p+1, and the token at pos is forgotten.
  // Throws unless 0 <= pos <= pos().
  void truncate(int pos);

  // ---- MTP module 0 as the drafter (see the header comment) ----
  bool has_mtp() const { return model_.config().mtp_depth >= 1; }  // the model has an MTP module to draft with
  int mtp_pos() const { return mtp_pos_; }                 // MTP rows filled (the next mtp_step's position)
  // hidden (B, T, C): x_L at positions mtp_pos()..mtp_pos()+T-1 (e.g. hidden(), or rows of it);
  // next_tokens (B, T): the tokens at those positions + 1. Returns the MTP logits (B, T, V) predicting the tokens
  // at those positions + 2, valid until the next mtp_step or reset(). Needs mtp_pos() + T <= pos() (the main
  // model has decoded those positions) and throws otherwise, if the model has no MTP module, or for a token
  // outside the vocab.
  const float* mtp_step(const float* hidden, const int* next_tokens, int T = 1);

  int batch() const { return B_; }
  int max_positions() const { return Tmax_; }
  MlaPath path() const { return path_; }
  const KvCache<float>& cache() const { return cache_; }
  // MTP module 0's one-layer cache: nullptr until the first mtp_step (allocated then, in the ledger's kv_cache
  // cell under the decoder's role), so decoders that never draft do not pay for it.
  const KvCache<float>* mtp_cache() const { return mtp_cache_.get(); }

 private:
  // The main model on T new tokens (n, T) of the first n sequences: x_L into hidden_, logits into logits_.
  void run(const int* tokens, int T, int n, const char* where);
  // One block (layer l of the model) on the n*T rows in x_ (the first n sequences), attending with `cache` layer
  // `cache_layer` from pos.
  void layer_step(int l, KvCache<float>& cache, int cache_layer, int pos, int T, int n);
  void ensure_rows(int rows);  // scratch for `rows` = B*T rows (grows; views re-carved)
  void check_tokens(const int* tokens, int n, int T, int pos, const char* where) const;
  const Transformer<float>& model_;
  ModelParams<float> p_;
  int B_, Tmax_;
  MlaPath path_;
  Role role_;
  Place place_;  // where the cache and scratch live: the model's place
  int pos_ = 0, mtp_pos_ = 0, last_T_ = 1, rows_ = 0;
  KvCache<float> cache_;
  std::unique_ptr<KvCache<float>> mtp_cache_;  // one layer: MTP module 0's block (made by the first mtp_step)
  Buffer<float> scratch_;
  Buffer<int> tokens_;  // (rows) the input tokens of the last step / mtp_step, where the embedding reads them
  MoeBuffers<float> moe_;  // the MoE layers' routing and expert activations of one step (reused by every layer)
  // views into scratch_ for rows_ rows (see ensure_rows)
  float *x_, *h_, *xn_, *tmp_, *rstd_, *a1_, *a3_, *act_, *logits_, *hidden_, *cat_, *mtp_logits_;
};

}  // namespace tinyds

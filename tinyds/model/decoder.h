// tinyds/model/decoder.h — incremental (kv-cache) decoding of a whole Transformer<float>: one token per
// sequence per step, the decode twin of Transformer::forward.
//
// Shapes: B sequences decoded together, Tmax positions the cache holds, C d_model, V vocab, F ffn_hidden.
//
//   x = embed[tokens]                                         (B, C)   the B new tokens, all at position pos()
//   for each layer:  h = x + AttnDecode(RMSNorm(x), cache)    dense kinds: dense_attention_decode (decode_dense.h)
//                                                             mla: mla_decode_naive / mla_decode_absorbed
//                    x = h + FFN(RMSNorm(h))                  dense FFN(a) = w2(silu(w1 a) * w3 a), or the MoE
//                                                             layer (moe_layer.h) on the B rows
//   logits = head(RMSNorm(x))                                 (B, V)
//
// Step p writes cache row p of every layer and reads rows 0..p, so the logits of step p equal the full
// forward's logits at position p (tests/test_decoder.cpp checks this at every position for every kind).
// Memory: the cache is one ledgered allocation (Category::kv_cache), the per-token scratch another
// (Category::activations), both under the role given to the constructor. The model is only read and must
// outlive the Decoder.
#pragma once
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

  // tokens (B): one new token per sequence, all at position pos(). Returns logits (B, V), valid until the next
  // step() or reset(). Throws if pos() == Tmax or a token is outside [0, V), naming the value and the sequence.
  const float* step(const int* tokens);
  int pos() const { return pos_; }        // positions decoded so far (the next step's position)
  void reset() { pos_ = 0; }              // start new sequences (old cache rows are overwritten as we go)
  // Forget positions >= pos: the next step decodes at pos again, reusing the cached rows 0..pos-1 (the rollback
  // of speculative decoding; also lets a benchmark time steps at one context length repeatedly).
  // Throws unless 0 <= pos <= pos().
  void truncate(int pos);

  int batch() const { return B_; }
  int max_positions() const { return Tmax_; }
  MlaPath path() const { return path_; }
  const KvCache<float>& cache() const { return cache_; }

 private:
  void layer_step(int l);
  const Transformer<float>& model_;
  ModelParams<float> p_;
  int B_, Tmax_;
  MlaPath path_;
  int pos_ = 0;
  KvCache<float> cache_;
  Buffer<float> scratch_;
  MoeBuffers<float> moe_;  // the MoE layers' routing and expert activations of one step (reused by every layer)
  float *x_, *h_, *xn_, *tmp_, *rstd_, *a1_, *a3_, *gate_, *logits_;  // views into scratch_ (see decoder.cpp)
};

}  // namespace tinyds

// tinyds/model/mtp.h — Multi-Token Prediction (DeepSeek-V3 arXiv 2412.19437 §2.2, Eq. 21-25; DESIGN 4.4).
//
// Shapes: B batch, T time, N = B*T rows, C d_model, V vocab, D = mtp_depth modules.
//
// Module k = 1..D predicts the token k+1 places ahead. At position i, with h^0 = x_L (the main model's residual
// stream after its last block, before the final norm):
//   emb_tok[i]    = tokens[i + k]            (0 when i + k >= T: that position's target is masked anyway)
//   cat[i]        = [RMSNorm(h^{k-1}[i]; hnorm_k), RMSNorm(embed[emb_tok[i]]; enorm_k)]     (N, 2C)   Eq. 21
//   h^k           = Block_k(cat @ proj_k^T)                 one transformer block, causal, RoPE at i   Eq. 22
//   logits_k      = RMSNorm(h^k; norm) @ head^T             the main model's final norm and head: shared  Eq. 23
//   target_k[i]   = targets[i + k]           (-1 = masked when i + k >= T, or when that target is masked)
//   L_MTP         = lambda / D * sum_k mean CE(logits_k, target_k)                                 Eq. 24-25
// Concatenation order: [h; emb] as the paper writes Eq. 21 (the released V3 weights concatenate [emb; h]).
// Causality: position i of module k sees tokens up to i + k, and predicts i + k + 1: no position sees its target.
//
// Backward (Transformer::mtp_backward, module D down to 1): d(logits_k) -> head, norm -> d(h^k) (+ what module
// k+1 sent back through its hnorm) -> Block_k backward -> d(cat) -> enorm -> embed; hnorm -> d(h^{k-1}). What
// reaches h^0 joins the main model's d(x_L) (Transformer::backward_trunk).
//
// The implementation is two Transformer members in mtp.cpp (mtp_forward, mtp_backward): a module's block is
// layer n_layer + k - 1 of the model, so it reuses the model's own block forward and backward.
// Self-speculative decoding with module 1 as the drafter: model/speculative.h.
#pragma once

// tinyds/posttrain/losses/sft.h — supervised fine-tuning loss: masked mean cross-entropy over completion tokens.
//
// Shapes: n token positions (B*T). DESIGN 6: L = mean over completion tokens of -lp (prompt tokens masked).
//   L = -sum_i m[i] lp[i] / max(sum_i m[i], 1)
// A thin layer over logprobs.h: logits -> logprobs_forward -> lp -> sft_loss_forward -> L, and back through
// sft_loss_backward -> dlp -> logprobs_backward -> dlogits. (At temperature 1 this is ops/cross_entropy with a
// masked mean; the test checks that.)
// Conventions: dlp WRITTEN (=); masks are 0/1 (other values throw tinyds::Error naming the position).
#pragma once

namespace tinyds {

// Returns L.   lp (n), mask (n) 0/1
template <typename real>
double sft_loss_forward(const real* lp, const real* mask, long n);

// dlp (n) written: -dloss * m[i] / max(sum m, 1).
template <typename real>
void sft_loss_backward(real* dlp, double dloss, const real* mask, long n);

}  // namespace tinyds

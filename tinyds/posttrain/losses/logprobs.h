// tinyds/posttrain/losses/logprobs.h — per-token log-probabilities of the sampled tokens, and per-token entropy.
//
// Shapes: N rows (B*T token positions), V vocab. A target < 0 is masked (a prompt or padding position, as in
// ops/cross_entropy.h): its lp and entropy are 0 and its dlogits row is 0.
// Every RL loss in tinyds/posttrain (sft, dpo, ppo, grpo) takes these lp as its input and returns dlp; the chain
// to the model is logprobs_backward (dlp -> dlogits).
// Temperature: the policy samples from softmax(logits / temperature), so its log-probs must be taken at the same
// temperature (trl divides the logits by `temperature`, default 1.0, before log_softmax).
// Conventions (DESIGN 3): outputs first, gradients prefixed d, activation gradients WRITTEN (=).
// Errors: bad sizes, a target >= V or temperature <= 0 throw tinyds::Error naming the field and value.
#pragma once

namespace tinyds {

// lp (N) = log softmax(logits[n] / temperature)[targets[n]]   (0 where targets[n] < 0)
//   logits (N, V), targets (N), temperature > 0 (trl default 1.0)
template <typename real>
void logprobs_forward(real* lp, const real* logits, const int* targets, int N, int V, double temperature = 1.0);

// dlogits (N, V) written: dlp[n] * (onehot(targets[n]) - p[n]) / temperature, p = softmax(logits[n] / T);
// 0 rows where targets[n] < 0.   dlp (N)
template <typename real>
void logprobs_backward(real* dlogits, const real* dlp, const real* logits, const int* targets, int N, int V,
                       double temperature = 1.0);

// entropy (N) = -sum_v p[v] log p[v],  p = softmax(logits[n] / temperature)   (0 where targets[n] < 0)
// The targets only carry the mask here: entropy is a property of the whole distribution, not of the sample.
template <typename real>
void entropy_forward(real* entropy, const real* logits, const int* targets, int N, int V, double temperature = 1.0);

// dlogits (N, V) written: -dentropy[n] * p[v] (log p[v] + H[n]) / temperature; 0 rows where targets[n] < 0.
//   dentropy (N)  (an entropy bonus -c * mean(H) gives dentropy = -c / num_unmasked)
template <typename real>
void entropy_backward(real* dlogits, const real* dentropy, const real* logits, const int* targets, int N, int V,
                      double temperature = 1.0);

}  // namespace tinyds

// tinyds/posttrain/losses/row_softmax.h — the tempered log-softmax of one logits row, shared by logprobs and distill
// (internal to tinyds/posttrain).
//
// Shapes: V vocab.  z = x / temperature;  logp[v] = z[v] - lse(z),  lse(z) = log sum_v exp(z[v]).
// Computed in double whatever `real` is: these rows are the inputs of every RL loss, and a double row costs
// nothing next to the model that produced the logits.
#pragma once
#include <cmath>
#include <vector>

namespace tinyds::detail {

// logp (V) = log softmax(x / temperature); returns lse(x / temperature).   x (V)
template <typename real>
double row_log_softmax(double* logp, const real* x, int V, double temperature) {
  const double inv_t = 1.0 / temperature;
  // Max subtraction: every exponent z - max <= 0, so exp never overflows and the largest term is exactly 1.
  double m = static_cast<double>(x[0]) * inv_t;
  for (int v = 1; v < V; v++) m = std::max(m, static_cast<double>(x[v]) * inv_t);
  double sum = 0.0;
  for (int v = 0; v < V; v++) sum += std::exp(static_cast<double>(x[v]) * inv_t - m);
  const double lse = m + std::log(sum);
  for (int v = 0; v < V; v++) logp[v] = static_cast<double>(x[v]) * inv_t - lse;
  return lse;
}

}  // namespace tinyds::detail

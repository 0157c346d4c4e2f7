// tinyds/ops/embedding.h — token embedding lookup.
//
// Shapes: N = B*T rows, C width, V vocab.
// Convention for every op in tinyds/ops (DESIGN section 3): a pair of free functions
//   x_forward(outputs..., inputs..., weights..., dims)   x_backward(dinputs..., dweights..., dout, saved..., dims)
// Parameter gradients ACCUMULATE (+=); activation gradients are WRITTEN (=).
// Every op is a template over `real` (float for training, double for the finite-difference checks),
// explicitly instantiated for both in the .cpp.
#pragma once

namespace tinyds {

// out[n, :] = wte[tokens[n], :]
//   out (N, C), tokens (N) in [0, V), wte (V, C)
template <typename real>
void embedding_forward(real* out, const int* tokens, const real* wte, int N, int C);

// dwte[tokens[n], :] += dout[n, :]      (accumulates; rows of repeated tokens sum)
//   dwte (V, C), dout (N, C), tokens (N)
template <typename real>
void embedding_backward(real* dwte, const real* dout, const int* tokens, int N, int C);

}  // namespace tinyds

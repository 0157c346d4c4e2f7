// tinyds/ops/embedding.cpp — token embedding lookup, forward and backward (see embedding.h).
//
// Shapes: N = B*T rows, C width, V vocab.
// Gradients: dwte ACCUMULATES (+=), as every parameter gradient does.
#include "tinyds/ops/embedding.h"

#include <cstring>

#include "tinyds/core/error.h"
#include "tinyds/ops/vmath.h"

namespace tinyds {

// A negative token is a bug upstream (the tokenizer never makes one); say which row. The upper bound V is not
// passed to these functions, so the caller (the model) checks tokens < V where it knows V.
static void check_tokens(const int* tokens, int N, const char* where) {
  for (int n = 0; n < N; n++)
    if (tokens[n] < 0) throw_error(where, ": tokens[", n, "] = ", tokens[n], " is negative");
}

template <typename real>
void embedding_forward(real* out,          // (N, C)
                       const int* tokens,  // (N)
                       const real* wte,    // (V, C)
                       int N, int C) {
  check_tokens(tokens, N, "embedding_forward");
#pragma omp parallel for schedule(static) if (static_cast<long>(N) * C >= kParallelMinWork)
  for (int n = 0; n < N; n++) {
    std::memcpy(out + static_cast<long>(n) * C, wte + static_cast<long>(tokens[n]) * C, sizeof(real) * C);
  }
}

// forward was: out[n, :] = wte[tokens[n], :]
// so every row n sends its gradient to the row of its token: dwte[tokens[n], :] += dout[n, :].
// Serial on purpose: two rows with the same token write the same dwte row, and a serial loop in n order gives
// the same sum (same bits) for any thread count. It is N*C additions, cheap next to any matmul.
template <typename real>
void embedding_backward(real* dwte,         // (V, C) accumulated
                        const real* dout,   // (N, C)
                        const int* tokens,  // (N)
                        int N, int C) {
  check_tokens(tokens, N, "embedding_backward");
  for (int n = 0; n < N; n++) {
    real* drow = dwte + static_cast<long>(tokens[n]) * C;
    const real* g = dout + static_cast<long>(n) * C;
    for (int c = 0; c < C; c++) drow[c] += g[c];
  }
}

template void embedding_forward<float>(float*, const int*, const float*, int, int);
template void embedding_forward<double>(double*, const int*, const double*, int, int);
template void embedding_backward<float>(float*, const float*, const int*, int, int);
template void embedding_backward<double>(double*, const double*, const int*, int, int);

}  // namespace tinyds

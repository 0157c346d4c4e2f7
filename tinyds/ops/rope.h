// tinyds/ops/rope.h — rotary position embedding (Su et al. 2021, RoFormer Eq. 34).
//
// Shapes: B batch, T time, H heads, R rotated dim (even). Pairs are INTERLEAVED, (x[2i], x[2i+1]), as in
// DeepSeek-V3's inference code (view_as_complex); frequency of pair i: theta^(-2i/R); position of row t: pos0 + t.
// Conventions: see embedding.h.
#pragma once

namespace tinyds {

// out (B, T, H, R) = rotate(inp (B, T, H, R)) by angle (pos0 + t) * theta^(-2i/R) on pair i. out may equal inp.
template <typename real>
void rope_forward(real* out, const real* inp, int B, int T, int H, int R, int pos0, real theta);

// dinp (B, T, H, R) written: the inverse rotation (the transpose of a rotation) of dout. dinp may equal dout.
template <typename real>
void rope_backward(real* dinp, const real* dout, int B, int T, int H, int R, int pos0, real theta);

}  // namespace tinyds

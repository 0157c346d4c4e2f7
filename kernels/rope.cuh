// kernels/rope.cuh — host launchers of the rotary position embedding kernels (kernels/rope.cu); device pointers.
// Mirrors tinyds/ops/rope.h. Shapes: B batch, T time, H heads, R rotated dim (even), interleaved pairs.
#pragma once

namespace tinyds::cuda {

// out (B, T, H, R) = rotate(inp) by angle (pos0 + t) * theta^(-2i/R) on pair i. out may equal inp.
void rope_forward(float* out, const float* inp, int B, int T, int H, int R, int pos0, float theta, int version = 0);

// dinp (B, T, H, R) written: the inverse rotation of dout. dinp may equal dout.
void rope_backward(float* dinp, const float* dout, int B, int T, int H, int R, int pos0, float theta,
                   int version = 0);

}  // namespace tinyds::cuda

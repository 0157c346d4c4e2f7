// kernels/rope.cu — rotary position embedding (RoFormer Eq. 34) on the GPU, interleaved pairs, forward and
// backward. CPU reference: tinyds/ops/rope.h (same names, same argument order, device pointers).
//
// Shapes: B batch, T time, H heads, R rotated dim (even), P = R/2 pairs.   inp, out, dout, dinp (B, T, H, R).
// Pair i of row (b, t, h) is (x[2i], x[2i+1]), rotated by a = (pos0 + t) * theta^(-2i/R):
//   out[2i] = x[2i] cos a - x[2i+1] sin a;   out[2i+1] = x[2i] sin a + x[2i+1] cos a
// Backward: the Jacobian of a pair is the rotation Rot(a), so dinp = Rot(a)^T dout = Rot(-a) dout.
// Gradients: dinp WRITTEN (=). Both directions work in place.
//
// Version 1 (the only one): one thread per pair. The thread reads both members of its pair before writing either,
// and no other thread touches them, which is what makes out == inp safe. The angle is computed in double, as the
// CPU's tables are: at position 4096 with frequency 1 the angle is ~4096 rad, and a float angle would already be
// off by ~2e-4 rad before the cos. (A GPU path that cares about the cost of double sin/cos on consumer cards would
// precompute the (T, P) cos/sin tables once per step; here the kernel stays self-contained.)
#include "kernels/common.cuh"
#include "kernels/rope.cuh"
#include "tinyds/core/error.h"

namespace tinyds::cuda {

constexpr int kRopeBlock = 256;

// Rotates every pair of x by sign * angle into y (y may alias x).   x, y (B, T, H, R)
__global__ void rope_rotate_kernel1(float* y, const float* x, int B, int T, int H, int R, int pos0, float theta,
                                    float sign) {
  const int P = R / 2;
  const long p = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;  // pair index over (B, T, H, P)
  if (p >= static_cast<long>(B) * T * H * P) return;
  const int i = static_cast<int>(p % P);
  const int t = static_cast<int>((p / P / H) % T);
  const double freq = pow(static_cast<double>(theta), -2.0 * i / R);
  const double a = static_cast<double>(pos0 + t) * freq;
  const float c = static_cast<float>(cos(a));
  const float s = sign * static_cast<float>(sin(a));
  const float x0 = x[2 * p], x1 = x[2 * p + 1];  // both read before either is written (in-place safe)
  y[2 * p] = x0 * c - x1 * s;
  y[2 * p + 1] = x0 * s + x1 * c;
}

static void rope_launch(float* y, const float* x, int B, int T, int H, int R, int pos0, float theta, float sign,
                        int version, const char* where) {
  if (R % 2 != 0) throw_error(where, ": rotated dim R = ", R, " must be even (pairs (x[2i], x[2i+1]))");
  if (version != 0 && version != 1) throw_error(where, ": no kernel version ", version);
  const long pairs = static_cast<long>(B) * T * H * (R / 2);
  if (pairs == 0) return;  // empty batch: nothing to launch
  launch(rope_rotate_kernel1, dim3(ceil_div(pairs, kRopeBlock)), dim3(kRopeBlock), 0, y, x, B, T, H, R, pos0, theta,
         sign);
}

void rope_forward(float* out, const float* inp, int B, int T, int H, int R, int pos0, float theta, int version) {
  rope_launch(out, inp, B, T, H, R, pos0, theta, 1.0f, version, "rope_forward");
}

// forward was: out_pair = Rot(a) x_pair;  so dinp_pair = Rot(-a) dout_pair.
void rope_backward(float* dinp, const float* dout, int B, int T, int H, int R, int pos0, float theta, int version) {
  rope_launch(dinp, dout, B, T, H, R, pos0, theta, -1.0f, version, "rope_backward");
}

}  // namespace tinyds::cuda

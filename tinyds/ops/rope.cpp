// tinyds/ops/rope.cpp — rotary position embedding, interleaved pairs (see rope.h).
//
// Shapes: B batch, T time, H heads, R rotated dim (even).
// Pair i of row (b, t, h) is (x[2i], x[2i+1]); it is rotated by the angle a = (pos0 + t) * theta^(-2i/R):
//   out[2i]   = x[2i] cos a - x[2i+1] sin a
//   out[2i+1] = x[2i] sin a + x[2i+1] cos a
// Gradients: dinp WRITTEN (=). Both functions work in place (out == inp, dinp == dout are allowed).
#include "tinyds/ops/rope.h"

#include <cmath>
#include <vector>

#include "tinyds/core/error.h"
#include "tinyds/ops/vmath.h"

namespace tinyds {

// cos/sin tables (T, R/2), shared by every batch row and head. Angles are computed in double: at position 4096
// with freq 1 the angle is ~4096 rad, and float would lose ~3 digits of it before the cos.
template <typename real>
static void rope_tables(std::vector<real>& cosv, std::vector<real>& sinv, int T, int R, int pos0, double theta) {
  const int P = R / 2;
  cosv.resize(static_cast<size_t>(T) * P);
  sinv.resize(static_cast<size_t>(T) * P);
  for (int i = 0; i < P; i++) {
    const double freq = std::pow(theta, -2.0 * i / R);
    for (int t = 0; t < T; t++) {
      const double a = static_cast<double>(pos0 + t) * freq;
      cosv[static_cast<size_t>(t) * P + i] = static_cast<real>(std::cos(a));
      sinv[static_cast<size_t>(t) * P + i] = static_cast<real>(std::sin(a));
    }
  }
}

// Rotates every pair of x (B, T, H, R) by +angle (sign = +1) or -angle (sign = -1), writing y (may alias x).
template <typename real>
static void rope_rotate(real* y, const real* x, int B, int T, int H, int R, int pos0, real theta, real sign,
                        const char* where) {
  if (R % 2 != 0) throw_error(where, ": rotated dim R = ", R, " must be even (pairs (x[2i], x[2i+1]))");
  std::vector<real> cosv, sinv;
  rope_tables(cosv, sinv, T, R, pos0, static_cast<double>(theta));
  const int P = R / 2;
#pragma omp parallel for schedule(static) if (static_cast<long>(B) * T * H * R >= kParallelMinWork)
  for (int bt = 0; bt < B * T; bt++) {
    const int t = bt % T;
    const real* c = cosv.data() + static_cast<size_t>(t) * P;
    const real* s = sinv.data() + static_cast<size_t>(t) * P;
    for (int h = 0; h < H; h++) {
      const long off = (static_cast<long>(bt) * H + h) * R;
      for (int i = 0; i < P; i++) {
        // Read both members of the pair before writing either: that is what makes y == x safe.
        const real x0 = x[off + 2 * i], x1 = x[off + 2 * i + 1];
        const real si = sign * s[i];
        y[off + 2 * i] = x0 * c[i] - x1 * si;
        y[off + 2 * i + 1] = x0 * si + x1 * c[i];
      }
    }
  }
}

template <typename real>
void rope_forward(real* out,        // (B, T, H, R), may be inp
                  const real* inp,  // (B, T, H, R)
                  int B, int T, int H, int R, int pos0, real theta) {
  rope_rotate(out, inp, B, T, H, R, pos0, theta, real(1), "rope_forward");
}

// forward was: out_pair = Rot(a) x_pair with Rot(a) = [[cos a, -sin a], [sin a, cos a]].
// The Jacobian of each pair is Rot(a), so dinp_pair = Rot(a)^T dout_pair = Rot(-a) dout_pair.
template <typename real>
void rope_backward(real* dinp,        // (B, T, H, R) written, may be dout
                   const real* dout,  // (B, T, H, R)
                   int B, int T, int H, int R, int pos0, real theta) {
  rope_rotate(dinp, dout, B, T, H, R, pos0, theta, real(-1), "rope_backward");
}

template void rope_forward<float>(float*, const float*, int, int, int, int, int, float);
template void rope_forward<double>(double*, const double*, int, int, int, int, int, double);
template void rope_backward<float>(float*, const float*, int, int, int, int, int, float);
template void rope_backward<double>(double*, const double*, int, int, int, int, int, double);

}  // namespace tinyds

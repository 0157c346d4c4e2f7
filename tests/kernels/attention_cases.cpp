// tests/kernels/attention_cases.cpp — kernel table rows for kernels/attention.cu against tinyds/ops/attention.h.
// Shapes: B batch, T time, H query heads, Hkv kv heads (MHA Hkv = H, GQA, MQA Hkv = 1), Dk, Dv head dims.
// T runs past multiples of the flash kernel's 8-row blocks and 32-key tiles (33, 65); Dk = 96, Dv = 64 is MLA's
// shape (keys of width D + R).
#include <cmath>

#include "kernels/attention.cuh"
#include "tests/kernels/kernel_util.h"
#include "tinyds/ops/attention.h"

namespace {

using tinyds::test::CaseResult;
using tinyds::test::DeviceBuffer;
using tinyds::test::random_floats;

struct AttShape {
  int B, T, H, Hkv, Dk, Dv;
  std::string name() const {
    return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " H=" + std::to_string(H) + " Hkv=" +
           std::to_string(Hkv) + " Dk=" + std::to_string(Dk) + " Dv=" + std::to_string(Dv);
  }
  size_t q() const { return static_cast<size_t>(B) * T * H * Dk; }
  size_t k() const { return static_cast<size_t>(B) * T * Hkv * Dk; }
  size_t v() const { return static_cast<size_t>(B) * T * Hkv * Dv; }
  size_t out() const { return static_cast<size_t>(B) * T * H * Dv; }
  size_t att() const { return static_cast<size_t>(B) * H * T * T; }
  float scale() const { return 1.0f / std::sqrt(static_cast<float>(Dk)); }
};

// q, k, v in [-2, 2]: scores up to ~2.3 sqrt(Dk) spread the softmax well away from uniform.
CaseResult attention_forward_case(const AttShape& s, int version) {
  const std::vector<float> q = random_floats(s.q(), 1, -2.0f, 2.0f), k = random_floats(s.k(), 2, -2.0f, 2.0f);
  const std::vector<float> v = random_floats(s.v(), 3);
  std::vector<float> out(s.out()), att(s.att());
  tinyds::attention_forward(out.data(), att.data(), q.data(), k.data(), v.data(), s.B, s.T, s.H, s.Hkv, s.Dk, s.Dv,
                            s.scale());
  DeviceBuffer<float> d_out(s.out()), d_att(s.att()), d_q(q), d_k(k), d_v(v);
  tinyds::cuda::attention_forward(d_out.get(), d_att.get(), d_q.get(), d_k.get(), d_v.get(), s.B, s.T, s.H, s.Hkv,
                                  s.Dk, s.Dv, s.scale(), version);
  return {{{"out", d_out.download(), out}, {"att", d_att.download(), att}}};
}

CaseResult attention_backward_case(const AttShape& s) {
  const std::vector<float> q = random_floats(s.q(), 4, -2.0f, 2.0f), k = random_floats(s.k(), 5, -2.0f, 2.0f);
  const std::vector<float> v = random_floats(s.v(), 6), dout = random_floats(s.out(), 7);
  std::vector<float> out(s.out()), att(s.att()), dq(s.q()), dk(s.k()), dv(s.v());
  // Both sides get the CPU forward's att, so this row tests the backward alone.
  tinyds::attention_forward(out.data(), att.data(), q.data(), k.data(), v.data(), s.B, s.T, s.H, s.Hkv, s.Dk, s.Dv,
                            s.scale());
  tinyds::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), att.data(),
                             s.B, s.T, s.H, s.Hkv, s.Dk, s.Dv, s.scale());
  DeviceBuffer<float> d_dq(s.q()), d_dk(s.k()), d_dv(s.v()), d_dout(dout), d_q(q), d_k(k), d_v(v), d_att(att);
  tinyds::cuda::attention_backward(d_dq.get(), d_dk.get(), d_dv.get(), d_dout.get(), d_q.get(), d_k.get(), d_v.get(),
                                   d_att.get(), s.B, s.T, s.H, s.Hkv, s.Dk, s.Dv, s.scale());
  return {{{"dq", d_dq.download(), dq}, {"dk", d_dk.download(), dk}, {"dv", d_dv.download(), dv}}};
}

}  // namespace

TINYDS_KERNEL_CASES(attention) {
  // Forward: dot products of Dk <= 96 terms and sums of T <= 65 weighted values, in float, in another order than
  // Eigen's GEMM (and, in version 2, rescaled by exp(m_old - m_new) tile by tile): each is off by at most
  // ~n eps max|term|; |scores| <= ~20, |out| <= 1, probabilities <= 1. Typical errors are ~1e-7.
  const char* fwd = "float dots (Dk <= 96) and sums (T <= 65) in another order than Eigen's GEMM";
  // Backward: the same, plus dk / dv summed over group * T <= 260 rows by atomics in a varying order.
  const char* bwd = "float sums of <= group*T = 260 terms, dk/dv by atomics in a varying order";
  for (const AttShape& s : {AttShape{1, 1, 1, 1, 8, 8}, AttShape{2, 7, 4, 4, 16, 16}, AttShape{1, 33, 4, 2, 24, 20},
                            AttShape{2, 65, 4, 1, 32, 32}, AttShape{1, 40, 2, 2, 96, 64}}) {
    add({"attention_forward", 1, s.name(), 2e-6, 1e-5, fwd, [=] { return attention_forward_case(s, 1); }});
    add({"attention_forward", 2, s.name(), 2e-6, 1e-5, fwd, [=] { return attention_forward_case(s, 2); }});
    add({"attention_backward", 1, s.name(), 1e-5, 1e-5, bwd, [=] { return attention_backward_case(s); }});
  }
}

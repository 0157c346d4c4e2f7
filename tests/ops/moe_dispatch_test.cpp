// tests/ops/moe_dispatch_test.cpp — MoE dispatch and combine (tinyds/ops/moe_dispatch.h): the sort by expert, the
// gather into expert order and the weighted combine, forward against the per-token definition, backward against
// finite differences, and bitwise determinism across thread counts.
//
// Shapes: N tokens, C width, E experts, K slots per token, P = N*K sorted rows.
#include <doctest/doctest.h>

#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tests/util/ops_util.h"
#include "tinyds/core/error.h"
#include "tinyds/ops/moe_dispatch.h"
#include "tinyds/ops/moe_router.h"

using namespace tinyds;
using namespace tinyds::test;
using vec = std::vector<double>;

namespace {

// A real routing (N, K) from the router on random logits: K distinct experts per token, uneven loads.
std::vector<int> route(int N, int E, int K, uint64_t stream) {
  const vec logits = randn(static_cast<std::size_t>(N) * E, stream, 2.0);
  vec s(static_cast<std::size_t>(N) * E), w(static_cast<std::size_t>(N) * K);
  std::vector<int> idx(static_cast<std::size_t>(N) * K);
  moe_router_forward<double>(s.data(), idx.data(), w.data(), logits.data(), nullptr, N, E, K, ScoreFunc::sigmoid, 1.0,
                             1, 1);
  return idx;
}

struct Dispatch {
  std::vector<int> offsets, token, slot, pos;
  Dispatch(const std::vector<int>& idx, int N, int K, int E)
      : offsets(E + 1), token(N * K), slot(N * K), pos(N * K) {
    moe_dispatch_sort(offsets.data(), token.data(), slot.data(), pos.data(), idx.data(), N, K, E);
  }
};

}  // namespace

TEST_CASE("ops/moe_dispatch: every (token, slot) appears exactly once, grouped by expert, in stable order") {
  const int N = 37, E = 8, K = 3;
  std::vector<int> idx = route(N, E, K, 1);
  // Make expert 3 unused (its pairs go to expert 7), so an empty slice is covered. A token may then name expert 7
  // twice: the sort does not need distinct experts per token, each pair still gets its own row.
  for (int& e : idx)
    if (e == 3) e = 7;
  const Dispatch d(idx, N, K, E);
  CHECK(d.offsets[0] == 0);
  CHECK(d.offsets[E] == N * K);
  CHECK(d.offsets[3] == d.offsets[4]);  // expert 3's slice is empty
  std::vector<int> seen(N * K, 0);
  for (int e = 0; e < E; e++) {
    int count = 0;  // load counted directly from topk_idx
    for (int v : idx) count += v == e;
    CHECK(d.offsets[e + 1] - d.offsets[e] == count);
    for (int r = d.offsets[e]; r < d.offsets[e + 1]; r++) {
      const int n = d.token[r], k = d.slot[r];
      REQUIRE((n >= 0 && n < N && k >= 0 && k < K));
      CHECK(idx[n * K + k] == e);       // the row belongs to its expert's slice
      CHECK(d.pos[n * K + k] == r);     // pair_pos is the inverse permutation
      seen[n * K + k]++;
      if (r > d.offsets[e]) CHECK(d.token[r - 1] * K + d.slot[r - 1] < n * K + k);  // stable: (n, k) order kept
    }
  }
  for (int p = 0; p < N * K; p++) CHECK(seen[p] == 1);

  // An expert index outside [0, E) is an error naming the pair.
  idx[5 * K + 1] = E;
  std::string msg;
  try {
    Dispatch bad(idx, N, K, E);
  } catch (const Error& e) {
    msg = e.what();
  }
  CHECK(msg.find("topk_idx[5, 1]") != std::string::npos);
}

TEST_CASE("ops/moe_dispatch: gather -> experts -> combine matches the per-token formula and finite differences") {
  const int N = 9, C = 5, E = 4, K = 2, P = N * K;
  const std::vector<int> idx = route(N, E, K, 2);
  const Dispatch d(idx, N, K, E);
  // A stand-in "expert e": y = tanh(x * A[e]) elementwise (A (E, C)), so each expert computes something different
  // and a row sent to the wrong expert or back to the wrong token changes the output.
  const vec A = randn(E * C, 3);
  vec x = randn(N * C, 4), w = randn(N * K, 5), R = randn(N * C, 6);
  vec xe(P * C), ye(P * C), out(N * C), dout(N * C), dye(P * C), dxe(P * C), dx(N * C), dw(N * K);
  auto expert_of_row = [&](int r) { return idx[d.token[r] * K + d.slot[r]]; };
  auto experts_forward = [&] {
    for (int r = 0; r < P; r++)
      for (int c = 0; c < C; c++) ye[r * C + c] = std::tanh(xe[r * C + c] * A[expert_of_row(r) * C + c]);
  };
  auto loss = [&] {
    moe_gather_forward(xe.data(), x.data(), d.token.data(), P, C);
    experts_forward();
    moe_combine_forward(out.data(), ye.data(), w.data(), d.pos.data(), N, K, C);
    return dot(out.data(), R.data(), out.size());
  };
  loss();
  // Forward against the definition: out[n] = sum_k w[n,k] * expert_{idx[n,k]}(x[n]), without any sorting.
  for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++) {
      double ref = 0;
      for (int k = 0; k < K; k++) ref += w[n * K + k] * std::tanh(x[n * C + c] * A[idx[n * K + k] * C + c]);
      CHECK(out[n * C + c] == doctest::Approx(ref).epsilon(1e-14));  // same terms, same order: ~1 ulp
    }
  // Backward of the whole pipeline; the stand-in expert's backward is written here: dxe = dye * (1 - y^2) * A.
  auto backward = [&] {
    moe_combine_backward(dye.data(), dw.data(), R.data(), ye.data(), w.data(), d.pos.data(), N, K, C);
    for (int r = 0; r < P; r++)
      for (int c = 0; c < C; c++)
        dxe[r * C + c] = dye[r * C + c] * (1 - ye[r * C + c] * ye[r * C + c]) * A[expert_of_row(r) * C + c];
    moe_gather_backward(dx.data(), dxe.data(), d.pos.data(), N, K, C);
  };
  run_gradcheck(loss, backward, {{"dx", &x, &dx, false}, {"dtopk_w", &w, &dw, false}});

  // Combine alone, differentiated w.r.t. the expert outputs ye (checks dye row by row).
  vec ye_in = randn(P * C, 7), dye2(P * C), dw2(N * K);
  auto loss2 = [&] {
    moe_combine_forward(out.data(), ye_in.data(), w.data(), d.pos.data(), N, K, C);
    return dot(out.data(), R.data(), out.size());
  };
  auto backward2 = [&] {
    moe_combine_backward(dye2.data(), dw2.data(), R.data(), ye_in.data(), w.data(), d.pos.data(), N, K, C);
  };
  run_gradcheck(loss2, backward2, {{"dye", &ye_in, &dye2, false}, {"dtopk_w", &w, &dw2, false}});
}

TEST_CASE("ops/moe_dispatch: combine and the gather backward give the same bits for any thread count") {
  const int N = 256, C = 32, E = 16, K = 4, P = N * K;
  const Dispatch d(route(N, E, K, 8), N, K, E);
  const std::vector<float> x = to_float(randn(N * C, 9)), ye = to_float(randn(P * C, 10)),
                           w = to_float(randn(N * K, 11)), g = to_float(randn(N * C, 12));
  struct Result {
    std::vector<float> xe, out, dye, dw, dx;
  };
  auto run = [&] {
    Result r{std::vector<float>(P * C), std::vector<float>(N * C), std::vector<float>(P * C),
             std::vector<float>(N * K), std::vector<float>(N * C)};
    moe_gather_forward(r.xe.data(), x.data(), d.token.data(), P, C);
    moe_combine_forward(r.out.data(), ye.data(), w.data(), d.pos.data(), N, K, C);
    moe_combine_backward(r.dye.data(), r.dw.data(), g.data(), ye.data(), w.data(), d.pos.data(), N, K, C);
    moe_gather_backward(r.dx.data(), r.dye.data(), d.pos.data(), N, K, C);
    return r;
  };
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const Result one = run();
  omp_set_num_threads(4);  // more threads than this machine's cores is fine: only the split of tokens changes
  const Result four = run();
  omp_set_num_threads(saved);
#else
  const Result one = run(), four = run();  // without OpenMP there is one thread: checks run-to-run repeatability
#endif
  CHECK(one.xe == four.xe);
  CHECK(one.out == four.out);
  CHECK(one.dye == four.dye);
  CHECK(one.dw == four.dw);
  CHECK(one.dx == four.dx);
}

#!/usr/bin/python3
"""tests/python/test_bindings_kernels.py — tinyds.kernels (CUDA kernels under the CPU emulation) and tinyds.ops.

    PYTHONPATH=build/python /usr/bin/python3 tests/python/test_bindings_kernels.py

  1. each kernel version through Python equals the CPU op (tinyds.ops) and a float64 numpy formula, within the
     kernel table's tolerance for that op (tests/kernels/<op>_cases.cpp, which states why);
  2. the per-block trace of the tiled matmuls names the block that matmul.cu's index arithmetic assigns to each
     output element (tile 16 for versions 1 and 2, 64 for version 3);
  3. the block reduction with its barrier gives the exact sums; without it every block adds the NaN its shared array
     starts with (the emulation fills every block's shared memory with NaN), so every block's sum is NaN, every run
     (tests/kernels/emulation_test.cpp's reasoning);
  4. a wrong shape raises tinyds.Error naming the argument, an unknown version the kernel's error.
"""
import numpy as np

import tinyds

K, O = tinyds.kernels, tinyds.ops
rng = np.random.default_rng(0)


def within(got, ref, atol, rtol, what):
    err = np.abs(got.astype(np.float64) - ref)
    bad = err > atol + rtol * np.abs(ref)
    assert not bad.any() and np.isfinite(got).all(), f"{what}: max error {err.max():.3g} (atol {atol}, rtol {rtol})"


# 1. kernels against the CPU ops and numpy
# matmul: fp32 dot products of K <= 257 terms in [-1, 1] summed in different orders (matmul_cases.cpp): 3e-5, 1e-5.
for N, IC, OC in ((1, 1, 1), (37, 70, 45), (130, 257, 65)):
    inp = rng.uniform(-1, 1, (N, IC)).astype(np.float32)
    w = rng.uniform(-1, 1, (OC, IC)).astype(np.float32)
    b = rng.uniform(-1, 1, OC).astype(np.float32)
    ref = inp.astype(np.float64) @ w.astype(np.float64).T
    within(O.matmul(inp, w), ref, 3e-5, 1e-5, f"ops.matmul {N}x{IC}x{OC}")
    for version in (0, 1, 2, 3):
        within(K.matmul(inp, w, version=version), ref, 3e-5, 1e-5, f"matmul v{version} {N}x{IC}x{OC}")
        within(K.matmul(inp, w, b, version=version), ref + b, 3e-5, 1e-5, f"matmul+bias v{version}")
# rmsnorm forward: a same-sign fp32 sum of C squares vs double (rmsnorm_cases.cpp): atol 1e-6, rtol 5e-5.
for N, C in ((1, 1), (7, 33), (65, 768)):
    x = rng.uniform(-1, 1, (N, C)).astype(np.float32)
    g = rng.uniform(0.5, 1.5, C).astype(np.float32)
    rstd = 1.0 / np.sqrt((x.astype(np.float64) ** 2).mean(1) + 1e-5)
    ref = x * rstd[:, None] * g
    out, r = O.rmsnorm(x, g, 1e-5)
    within(out, ref, 1e-6, 5e-5, "ops.rmsnorm")
    for version in (0, 1, 2, 3):
        out, r = K.rmsnorm(x, g, 1e-5, version=version)
        within(out, ref, 1e-6, 5e-5, f"rmsnorm v{version} N={N} C={C}")
        within(r, rstd, 1e-6, 5e-5, f"rmsnorm rstd v{version}")
# swiglu: one product of float32 values, an exp and a division (swiglu_cases.cpp): 1e-6, 1e-6.
a = rng.uniform(-12, 12, 1000).astype(np.float32)
bb = rng.uniform(-2, 2, 1000).astype(np.float32)
ref = a.astype(np.float64) / (1 + np.exp(-a.astype(np.float64))) * bb
within(O.swiglu(a, bb), ref, 1e-6, 1e-6, "ops.swiglu")
within(K.swiglu(a, bb), ref, 1e-6, 1e-6, "swiglu kernel")
print("ok: matmul v0-3, rmsnorm v0-3, swiglu: kernels == CPU ops == numpy within the kernel table's tolerances")

# 2. the per-block trace
N, IC, OC = 40, 24, 50
inp = rng.uniform(-1, 1, (N, IC)).astype(np.float32)
w = rng.uniform(-1, 1, (OC, IC)).astype(np.float32)
for version, tile in ((1, 16), (2, 16), (3, 64)):
    t = K.matmul_trace(inp, w, version=version)
    gx, gy = -(-OC // tile), -(-N // tile)
    assert t["grid"] == (gx, gy), (version, t["grid"])
    m, p = np.meshgrid(np.arange(N), np.arange(OC), indexing="ij")
    assert (t["block"] == p // tile + gx * (m // tile)).all(), f"version {version}: a block wrote outside its tile"
    assert (t["out"] == K.matmul(inp, w, version=version)).all()  # the trace changes nothing in the result
print("ok: matmul_trace: block (bx, by) writes out[16 by : 16 by + 16, 16 bx : 16 bx + 16] (64 for version 3)")

# 3. the barrier
B = 6
x = (np.arange(B * 256) % 97).astype(np.float32).reshape(B, 256)  # small integers: exact fp32 sums in any order
x[:, 200] += 1000.0 * np.arange(1, B + 1)  # every block's upper half sums differently
exact = x.sum(1)
for run in range(3):
    assert (K.block_sum(x) == exact).all()
    bad = K.block_sum(x, with_barrier=False)
    assert np.isnan(bad).all(), (run, bad)  # thread 0 read partial[128] before thread 128 wrote it
print("ok: block_sum: exact with the barrier; without it every block's sum is NaN, every run")

# 4. errors
for fn, needle in ((lambda: K.matmul(np.zeros((2, 3)), np.zeros((4, 5))), "weight"),
                   (lambda: K.block_sum(np.zeros((2, 100))), "256"),
                   (lambda: K.rmsnorm(np.zeros((2, 3)), np.zeros(4)), "weight")):
    try:
        fn()
        raise AssertionError(f"no tinyds.Error mentioning {needle}")
    except tinyds.Error as e:
        assert needle in str(e), str(e)
try:
    K.matmul(np.zeros((2, 3), np.float32), np.zeros((4, 3), np.float32), version=9)
    raise AssertionError("matmul version 9 ran")
except RuntimeError as e:
    assert "no kernel version 9" in str(e), str(e)
print("ok: wrong shapes and versions raise with the argument's name")

# %% [markdown]
# # 8. CUDA kernels under the emulation
#
# tinyds's CUDA kernels (`kernels/*.cu`) are compiled twice: by nvcc for a GPU, and by g++ as plain C++ against a
# CPU emulation of CUDA (`kernels/emulation/cuda_emulation.h`), so that they run, exactly as written, on a machine
# without one. The emulation runs each block of a grid on one OS thread, and each CUDA thread of the block as a
# fiber: a thread runs until it finishes or reaches a barrier (`__syncthreads()`), then the next thread runs. A
# `__shared__` array exists once per OS thread, so the threads of a block share it and the next block on the same
# OS thread finds what the last one left there.
#
# `tinyds.kernels` runs a kernel on numpy arrays through the emulation (`tinyds/python/kernels.cpp`), and
# `tinyds.ops` runs the CPU op the kernel tests compare it with. This notebook looks at a tiled matmul block by
# block, at what one `__syncthreads()` prevents, and at each kernel's error against its CPU op.
#
# Source files: `kernels/matmul.cu`, `kernels/block_sum.cu`, `kernels/rmsnorm.cu`, `kernels/swiglu.cu`,
# `kernels/emulation/cuda_emulation.h`, `tests/kernels/` (the kernel table and its tolerances), `kernels/README.md`.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

# One OpenMP thread: the emulation then runs the blocks one after the other on this thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import tinyds  # noqa: E402

K, O = tinyds.kernels, tinyds.ops
start = time.time()


def show_source(path, first_line):
    """Prints the function of `path` that starts with `first_line`, up to its closing brace at column 0."""
    lines = open(os.path.join(tinyds.SOURCE_DIR, path)).read().split("\n")
    i = next(n for n, line in enumerate(lines) if line.startswith(first_line))
    while lines[i - 1].startswith("//"):  # with the comment above it
        i -= 1
    print("\n".join(lines[i:lines.index("}", i) + 1]))


# %% [markdown]
# ## A tiled matmul, block by block
# `out (N, OC) = inp (N, IC) @ W^T` (the linear layer, `kernels/matmul.cu`). Version 2 launches a grid of 16x16
# blocks of 16x16 threads; thread `(tx, ty)` of block `(bx, by)` computes `out[16 by + ty, 16 bx + tx]`:

# %%
show_source("kernels/matmul.cu", "__global__ void matmul_kernel2")

# %% [markdown]
# `tinyds.kernels.matmul_trace` runs the kernel with the blocks one at a time, in order, and records after each
# block which output elements it wrote (the output starts as NaN; an element the block wrote is no longer NaN).
# Each colour below is one block; the number is `blockIdx.x + grid_x * blockIdx.y`, the order the blocks ran in.
# Version 3 computes a 64x64 tile per block (256 threads, a 4x4 grid of outputs each), so the same output takes
# far fewer blocks.

# %%
rng = np.random.default_rng(0)
N, IC, OC = 100, 40, 120
inp = rng.uniform(-1, 1, (N, IC)).astype(np.float32)
W = rng.uniform(-1, 1, (OC, IC)).astype(np.float32)
fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
for ax, version in zip(axes, (2, 3)):
    t = K.matmul_trace(inp, W, version=version)
    gx, gy = t["grid"]
    ax.imshow(t["block"], cmap="tab20", interpolation="nearest", aspect="auto")
    tile = 16 if version == 2 else 64
    for bx in range(gx):
        for by in range(gy):
            cx, cy = min(bx * tile + tile / 2, (bx * tile + OC) / 2), min(by * tile + tile / 2, (by * tile + N) / 2)
            ax.text(cx - 0.5, cy - 0.5, str(bx + gx * by), ha="center", va="center", fontsize=7)
    ax.set_title(f"version {version}: grid {gx} x {gy} blocks of {tile}x{tile} outputs")
    ax.set_xlabel("output column (OC)")
    ax.set_ylabel("output row (N)")
    err = np.abs(t["out"] - O.matmul(inp, W)).max()
    m, p = np.meshgrid(np.arange(N), np.arange(OC), indexing="ij")
    own_tile = (t["block"] == p // tile + gx * (m // tile)).all()
    print(f"version {version}: {gx * gy} blocks; each element written by the block of its tile: {own_tile}; "
          f"max |kernel - CPU op| {err:.1e}")
plt.tight_layout()

# %% [markdown]
# The blocks at the right and bottom edges are partly outside the output: their threads still load tile elements
# (zeros outside the matrix) and reach both barriers, but write nothing.
#
# ## What a block's shared-memory tiles hold
# Block `(bx, by)` walks the reduction dimension 16 at a time. At step `k0` its 256 threads each load one element of
# `a_tile = inp[16 by : 16 by + 16, k0 : k0 + 16]` and one of `b_tile[i][j] = W[16 bx + j, k0 + i]` (a 16x16 slice
# of W, transposed by the indexing), zero outside the matrices; after the first barrier every thread reads a row of
# `a_tile` and a column of `b_tile` 16 times from shared memory. Below, the tiles of block (1, 2) at each step, from
# the kernel's index arithmetic, and the check that the sum of their products is what the kernel wrote into that
# block's output tile.

# %%
bx, by, T = 1, 2, 16
steps = range(0, IC, T)
fig, axes = plt.subplots(2, len(steps), figsize=(3.2 * len(steps), 6))
acc = np.zeros((T, T), np.float64)
for s, k0 in enumerate(steps):
    a_tile, b_tile = np.zeros((T, T), np.float32), np.zeros((T, T), np.float32)
    rows, cols = slice(by * T, min(by * T + T, N)), slice(bx * T, min(bx * T + T, OC))
    ks = slice(k0, min(k0 + T, IC))
    a_part = inp[rows, ks]
    a_tile[:a_part.shape[0], :a_part.shape[1]] = a_part
    b_part = W[cols, ks].T
    b_tile[:b_part.shape[0], :b_part.shape[1]] = b_part
    acc += a_tile.astype(np.float64) @ b_tile
    axes[0, s].imshow(a_tile, cmap="RdBu", vmin=-1, vmax=1)
    axes[0, s].set_title(f"a_tile at k0 = {k0}\ninp[{by * T}:{by * T + T}, {k0}:{k0 + T}]", fontsize=9)
    axes[1, s].imshow(b_tile, cmap="RdBu", vmin=-1, vmax=1)
    axes[1, s].set_title(f"b_tile at k0 = {k0}\nW[{bx * T}:{bx * T + T}, {k0}:{k0 + T}]^T", fontsize=9)
    for ax in axes[:, s]:
        ax.set_xticks(range(0, T, 4))
        ax.set_yticks(range(0, T, 4))
plt.tight_layout()
out = K.matmul(inp, W, version=2)
print(f"block ({bx}, {by}): max |sum_k0 a_tile @ b_tile - kernel's out tile| = "
      f"{np.abs(acc - out[by * T:by * T + T, bx * T:bx * T + T]).max():.1e}")
print(f"the last step's tiles are zero past column {IC % T or T}: IC = {IC} is not a multiple of 16")

# %% [markdown]
# Why bother: in version 1 every thread reads its `2 IC` operands from global memory; in version 2 a block reads
# each global element once per 16 uses, and in version 3 once per 64. The floats each version loads from global
# memory for this product, counted from the loops (the tiles' zero padding counted as loads):

# %%
for version, tile in ((1, 1), (2, 16), (3, 64)):
    if version == 1:
        loads = 2 * N * OC * IC
    else:
        gx, gy = -(-OC // tile), -(-N // tile)
        loads = gx * gy * 2 * tile * (-(-IC // (16 if version == 2 else 8)) * (16 if version == 2 else 8))
    print(f"version {version}: {loads:>9,d} floats loaded from global memory, {2 * N * OC * IC / loads:5.1f}x fewer "
          f"than version 1")

# %% [markdown]
# ## What `__syncthreads()` prevents
# `kernels/block_sum.cu` sums 256 numbers per block with a tree in shared memory. Its first barrier makes every
# thread's `partial[t]` visible before thread `t < 128` reads `partial[t + 128]`. The same kernel without it:

# %%
show_source("kernels/block_sum.cu", "__global__ void block_sum_missing_barrier_kernel")

# %% [markdown]
# Under the emulation the threads run in order up to their next barrier, so thread 0 adds `partial[128]` before
# thread 128 has stored anything. The emulation starts every block's shared arrays as NaN, so that reading a slot
# no thread of the block wrote shows: thread 0 reads NaN and the block's sum is NaN. (On a GPU it is whatever the
# warps that happened to run first left there: a plausible number, wrong, different from run to run.) Five runs of
# each kernel on the same inputs, small integers so that every correct sum is exact in float32:

# %%
B = 8
x = (np.arange(B * 256) % 97).astype(np.float32).reshape(B, 256)
x[:, 200] += 100.0 * np.arange(1, B + 1)  # every block's upper half sums differently
exact = x.sum(1)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
for run in range(5):
    good, bad = K.block_sum(x), K.block_sum(x, with_barrier=False)
    axes[0].plot(good - exact, "o-", label=f"run {run}")
    axes[1].plot(np.isnan(bad) + 0.02 * run, "o-", label=f"run {run}")
    print(f"run {run}: with barrier {'all exact' if (good == exact).all() else 'WRONG'};  without: "
          f"NaN in {np.isnan(bad).sum()} of {B} blocks, exact in {(bad == exact).sum()}")
axes[0].set_title("with __syncthreads(): sum - exact")
axes[1].set_title("without the first __syncthreads(): is the sum NaN? (runs offset)")
axes[1].set_yticks([0, 1], ["no", "yes"])
for ax in axes:
    ax.set_xlabel("block")
axes[0].axhline(0, color="gray", lw=0.5)
axes[1].legend(fontsize=8)
plt.tight_layout()

# %% [markdown]
# `tests/kernels/emulation_test.cpp` checks both kernels the same way, and the emulation also reports a barrier
# that only part of a block reaches.
#
# ## Kernels against their CPU ops
# Every kernel version is checked against its CPU op in `tinyds/ops/` on random inputs (the kernel table,
# `tests/kernels/*_cases.cpp`), elementwise: `|kernel - op| <= atol + rtol |op|`, with each tolerance derived in the
# case file's header from the sums involved (fp32 sums in a different order, or fp32 against the CPU's double
# accumulator). Here a few of them, the error as a fraction of what the tolerance allows at each element (below 1
# passes; a wrong index or a missing term would be far above 1):

# %%
rows = []
x_mm = rng.uniform(-1, 1, (130, 257)).astype(np.float32)
w_mm = rng.uniform(-1, 1, (65, 257)).astype(np.float32)
ref = O.matmul(x_mm, w_mm)
for v in (1, 2, 3):
    rows.append((f"matmul v{v}", K.matmul(x_mm, w_mm, version=v), ref, 3e-5, 1e-5))
x_rn = rng.uniform(-1, 1, (65, 768)).astype(np.float32)
g_rn = rng.uniform(0.5, 1.5, 768).astype(np.float32)
ref, _ = O.rmsnorm(x_rn, g_rn, 1e-5)
for v in (1, 2, 3):
    rows.append((f"rmsnorm v{v}", K.rmsnorm(x_rn, g_rn, 1e-5, version=v)[0], ref, 1e-6, 5e-5))
a_sw, b_sw = rng.uniform(-12, 12, 4096).astype(np.float32), rng.uniform(-2, 2, 4096).astype(np.float32)
rows.append(("swiglu", K.swiglu(a_sw, b_sw), O.swiglu(a_sw, b_sw), 1e-6, 1e-6))
names, ratios = [], []
for name, got, ref, atol, rtol in rows:
    err = np.abs(got.astype(np.float64) - ref)
    ratio = (err / (atol + rtol * np.abs(ref))).max()
    names.append(name)
    ratios.append(max(ratio, 1e-3))  # an exact match drawn at the plot's floor
    print(f"{name:11s} max |kernel - op| {err.max():.1e}   atol {atol:.0e} rtol {rtol:.0e}   "
          f"max error / allowed {ratio:.3f}")
fig, ax = plt.subplots(figsize=(8, 3.4))
ax.bar(names, ratios)
ax.axhline(1.0, color="red", ls="--", label="tolerance")
ax.set_yscale("log")
ax.set_ylim(1e-3, 10)
ax.set_ylabel("max |kernel - op| / (atol + rtol |op|)")
ax.legend()
plt.xticks(rotation=30)
plt.tight_layout()
print(f"notebook ran in {time.time() - start:.1f} s")

# %% [markdown]
# What to notice: a tiled kernel's blocks partition the output, and all the tiling changes is how often each input
# is read from global memory, not the arithmetic; the result is the CPU op's up to the order of fp32 sums. A missing
# barrier does not crash: on a GPU it returns a plausible number that is wrong, so the kernel tests compare every
# output with the CPU op, and the emulation makes the race reproducible (its NaN fill turns it into NaN, every run). The tolerances are derived, not tuned: each
# kernel stays well below its bound, and a real bug would be orders of magnitude above it.

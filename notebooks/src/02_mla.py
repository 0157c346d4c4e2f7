# %% [markdown]
# # 2. Multi-head Latent Attention and its kv-cache
#
# MLA (DeepSeek-V2 §2.1) caches, per token and layer, one normed latent `c_KV` (L values) and one rotated rope key
# `k_R` (R values) instead of a key and a value for every head; keys and values are rebuilt from `c_KV` by `W_UK`,
# `W_UV`. Decoding can either rebuild them ("naive") or fold `W_UK` into the query and `W_UV` into the output
# ("absorbed") and read only the cache. This notebook measures the cache sizes, checks that both decode paths write
# the same tokens, and times them against the context length.
#
# Source files: `tinyds/model/mla.h` (training block), `tinyds/model/mla_decode.h` (naive and absorbed side by
# side), `tinyds/model/kv_cache.h` (bytes per token), `tinyds/model/decoder.h`.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

# One OpenMP thread: nano-sized matrices are too small for a second thread to pay for its synchronisation.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import tinyds  # noqa: E402

# %% [markdown]
# ## Cache bytes per token per layer
# Computed by `kv_cache_bytes_per_token_per_layer` (fp32), for DeepSeek-V3's attention dimensions
# (H 128, D 128, L 512, R 64) and for the `small` preset's.

# %%
def cache_bytes(H, D, L, R, n_kv):
    f = tinyds.kv_cache_bytes_per_token_per_layer
    return {"MHA": f("mha", H=H, D=D), f"GQA ({n_kv} kv heads)": f("gqa", H=H, n_kv_head=n_kv, D=D),
            "MQA": f("mqa", H=H, D=D), "MLA": f("mla", L=L, R=R)}

v3 = cache_bytes(H=128, D=128, L=512, R=64, n_kv=8)
small = tinyds.Config.preset("small").model
sm = cache_bytes(H=small.n_head, D=small.head_dim, L=small.kv_lora_rank, R=small.rope_dim, n_kv=2)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, (title, d) in zip(axes, (("DeepSeek-V3 dims", v3), ("small preset dims", sm))):
    ax.bar(list(d.keys()), list(d.values()), color=["C0", "C0", "C0", "C3"])
    ax.set_yscale("log")
    ax.set_title(title)
    ax.set_ylabel("bytes per token per layer (fp32)")
    ax.tick_params(axis="x", labelsize=8)
plt.tight_layout()
for k, v in v3.items():
    print(f"V3 {k:20s} {v:8d} bytes  ({v // 4} values)   {100 * (1 - v / v3['MHA']):5.1f}% less than MHA")

# %% [markdown]
# The 576 against 32768 values per token is the 98.2% of DESIGN §4.1. GQA with 8 kv heads saves 94%, but then the
# 128 query heads share 8 keys; MLA keeps a distinct key and value per head, rebuilt from the latent.
#
# ## The latent in a forward pass
# `Model.layer(l)["c_kv"]` is what the cache would hold for each position: L values, from `RMSNorm(x W_DKV)`.

# %%
model = tinyds.Model.preset("nano", seed=2)
mc = model.config.model
tokens, _ = tinyds.make_batch(tinyds.generate_problems(1, 2, seed=4), max_T=48)
model.forward(tokens)
layer = model.layer(0)
print("c_kv", layer["c_kv"].shape, " k_rope", layer["k_rope"].shape, " att", layer["att"].shape)
print(f"per token: MLA caches L + R = {mc.kv_lora_rank} + {mc.rope_dim} values; "
      f"full keys and values would be 2 H D = {2 * mc.n_head * mc.head_dim}")
plt.figure(figsize=(9, 2.5))
plt.imshow(layer["c_kv"][0].T, aspect="auto", cmap="RdBu_r")
plt.xlabel("position")
plt.ylabel("latent dim")
plt.title("c_KV of one sequence, layer 0 (normed: each column has unit RMS times the kv_norm gain)")
plt.colorbar()
plt.tight_layout()

# %% [markdown]
# ## Naive and absorbed decoding give the same tokens
# Both paths through the kv-cache decoder, on an MLA model trained for a few steps so that its greedy
# completions are not constant.

# %%
cfg = tinyds.Config.preset("nano")
cfg.model.max_seq_len = 128  # a level-1 problem is up to ~105 tokens
cfg.train.steps = 150
model = tinyds.Model(cfg, seed=2)
train = tinyds.generate_problems(1, 1200, seed=2)
for step in range(cfg.train.steps):
    model.train_step(*tinyds.make_batch(train[8 * step:8 * step + 8], max_T=112))
tok = model.tokenizer
for p in tinyds.generate_problems(1, 3, seed=9, split="test"):
    prompt = tinyds.prompt_tokens(p)
    naive = model.greedy_decode(prompt, max_new_tokens=30, path="naive")["tokens"]
    absorbed = model.greedy_decode(prompt, max_new_tokens=30, path="absorbed")["tokens"]
    print(f"same tokens: {naive == absorbed}   {p['question'][:50]}... -> {tok.decode(absorbed)!r}")

# Logits of the two paths, step by step on one sequence: equal up to fp32 summation order.
dn, da = tinyds.Decoder(model, 1, 128, "naive"), tinyds.Decoder(model, 1, 128, "absorbed")
diff = max(np.abs(dn.step(np.array([t], np.int32)) - da.step(np.array([t], np.int32))).max() for t in prompt)
print(f"max |logits naive - logits absorbed| over {len(prompt)} steps: {diff:.1e}")

# %% [markdown]
# ## Decode speed against context length
# One decode step at context p: naive rebuilds `k_C, v` for all p cached rows of every head (O(p L D H)); absorbed
# scores the query against the cached latents directly (O(H L (D + p))). A wider MLA model (C 256, 8 heads, L 128)
# and a longer context make the difference visible; each point is the median of 15 single-token steps at that
# position (`Decoder.truncate` rewinds to it).

# %%
cfg = tinyds.Config.preset("nano")
m = cfg.model
m.d_model, m.n_head, m.n_kv_head, m.head_dim, m.kv_lora_rank, m.q_lora_rank, m.rope_dim = 256, 8, 8, 32, 128, 96, 16
m.n_layer, m.n_routed_experts, m.mtp_depth, m.ffn_hidden, m.max_seq_len = 2, 0, 0, 512, 1024
wide = tinyds.Model(cfg, seed=1)
contexts = [32, 128, 256, 512, 768, 1000]
ms = {}
for path in ("naive", "absorbed"):
    dec = tinyds.Decoder(wide, 1, m.max_seq_len, path)
    ids = np.random.default_rng(0).integers(5, 90, size=(1, max(contexts) + 1), dtype=np.int32)
    dec.step_many(ids[:, :max(contexts)])  # prefill the longest context once
    at = {}
    for p in sorted(contexts, reverse=True):  # truncate only rewinds: longest context first
        times = []
        for _ in range(15):
            dec.truncate(p)
            t0 = time.perf_counter()
            dec.step(ids[:, p])
            times.append(time.perf_counter() - t0)
        at[p] = 1e3 * np.median(times)
    ms[path] = [at[p] for p in contexts]
plt.figure(figsize=(6, 3.5))
for path in ms:
    plt.plot(contexts, ms[path], "o-", label=path)
plt.xlabel("context length (cached positions)")
plt.ylabel("ms per decode step")
plt.legend()
plt.title("MLA decode step, 2 layers, C 256, H 8, L 128")
plt.tight_layout()
for p, a, b in zip(contexts, ms["naive"], ms["absorbed"]):
    print(f"context {p:5d}: naive {a:6.3f} ms, absorbed {b:6.3f} ms ({a / b:4.1f}x)")

# %% [markdown]
# What to notice: the naive step's time grows with the context at a slope set by L·D·H (it re-expands every cached
# latent each step), the absorbed one's much more slowly; at short contexts the two are close, because the
# projections of the new token dominate. Both read the same cache: the saving in memory does not depend on the
# path, only the arithmetic does.

# %% [markdown]
# # 1. The transformer and its backward pass
#
# tinyds's model is a pre-norm residual transformer (`tinyds/model/transformer.h`): every block does
# `h = x + Attn(RMSNorm(x))`, then `x = h + FFN(RMSNorm(h))`, and a final RMSNorm and output head give the logits.
# Every forward function in `tinyds/ops/` has its hand-written backward right below it. This notebook runs one
# forward, redoes the backward of the head and of one whole block (attention, SwiGLU, RMSNorm, residuals) line by
# line in numpy against tinyds's gradients, checks whole-model gradients against finite differences live, and
# trains for a few hundred steps.
#
# Source files: `tinyds/model/transformer.cpp`, `tinyds/model/ffn.cpp`, `tinyds/ops/rmsnorm.cpp`,
# `tinyds/ops/attention.cpp`, `tinyds/ops/rope.cpp`, `tinyds/ops/swiglu.cpp`, `tinyds/ops/cross_entropy.cpp`,
# `tinyds/train/trainer.cpp`.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

# One OpenMP thread: nano-sized matrices are too small for a second thread to pay for its synchronisation.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import tinyds  # noqa: E402

cfg = tinyds.Config.preset("nano")
cfg.model.mtp_depth = 0  # no multi-token prediction here: the head's gradient then comes from the main loss only
cfg.model.max_seq_len = 128  # a level-1 problem is up to ~105 tokens (nano's 64 would cut the answers)
print(cfg.model)
model = tinyds.Model(cfg, seed=1)
print(f"{model.num_params} parameters")

# %% [markdown]
# ## One forward pass
# A batch is GSM8K-style problems as characters: inputs `<bos> question \n answer`, targets shifted by one, with
# the question masked (-1) so the loss covers the answer only (supervised fine-tuning).

# %%
problems = tinyds.generate_problems(level=1, n=4, seed=3)
tokens, targets = tinyds.make_batch(problems, max_T=112)
tok = tinyds.Tokenizer()
print(problems[0]["question"], "->", problems[0]["answer"])
print("tokens", tokens.shape, " masked targets:", (targets < 0).sum(), "of", targets.size)
loss = model.forward(tokens, targets)
print(f"loss {loss:.4f}   (log V = {np.log(cfg.model.vocab_size):.4f}: an untrained model guesses uniformly)")

# %% [markdown]
# The attention probabilities the forward saved for the backward (`LayerActivations::att` / MLA's `att`):
# causal, so each row only looks left, and each row sums to one.

# %%
att = model.layer(0)["att"]  # (B, H, T, T)
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for h, ax in enumerate(axes):
    ax.imshow(att[0, h], cmap="viridis")
    ax.set_title(f"layer 0, head {h}")
    ax.set_xlabel("key position j")
axes[0].set_ylabel("query position t")
plt.tight_layout()

# %% [markdown]
# ## The backward pass of one block, line by line
# The C++ backward (`Transformer::backward`, `layer_backward` in `tinyds/model/transformer.cpp`) starts at the
# cross-entropy and walks down, each line undoing one forward line. Here the same walk in numpy, through the head,
# the final norm and the whole last block, compared with the gradients tinyds computed. To keep every line short the
# model is the `nano-dense` preset with plain multi-head attention (`mha`) and a dense SwiGLU FFN, in float64
# (`tinyds.Model64`), so the two sides should agree to float64 rounding. (MLA and MoE have their own backwards,
# `model/mla.cpp` and `model/moe_layer.cpp`, built from the same pieces.)
#
# ```
# block l:  a_in = RMSNorm(x)            q, k, v = a_in @ {wq, wk, wv}^T     q, k = RoPE(q), RoPE(k)
#           P = causal_softmax(q k^T / sqrt(D))    o = P v                   h = x + o @ wo^T
#           f_in = RMSNorm(h)            a1, a3 = f_in @ {w1, w3}^T          act = silu(a1) * a3
#           out = h + act @ w2^T
# head:     z = RMSNorm(x_L)             logits = z @ head^T                 loss = mean CE(logits, targets)
# ```
# First the forward of the last block, redone in numpy from its input (the previous block's output) and its
# parameters, checked against the activations tinyds saved:

# %%
dcfg = tinyds.Config.preset("nano-dense")
dcfg.model.attention, dcfg.model.n_kv_head = "mha", dcfg.model.n_head  # one k, v head per query head
dcfg.model.max_seq_len = 128
m64 = tinyds.Model64(dcfg, seed=1)
m64.zero_grad()
m64.forward(tokens, targets)
m64.backward()
B, T = tokens.shape
N, C, H, D, V = B * T, dcfg.model.d_model, dcfg.model.n_head, dcfg.model.head_dim, dcfg.model.vocab_size
eps, theta, scale = dcfg.model.norm_eps, dcfg.model.rope_theta, 1.0 / np.sqrt(D)
l = dcfg.model.n_layer - 1
w = {n: m64.param(f"layers.{l}.{n}") for n in
     ("attn_norm", "attn.wq", "attn.wk", "attn.wv", "attn.wo", "ffn_norm", "ffn.w1", "ffn.w3", "ffn.w2")}


def rmsnorm(x, g):
    rstd = 1.0 / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    return x * rstd * g, rstd


def rmsnorm_backward(dy, x, g, rstd):
    """forward: y = x * rstd * g, rstd = (mean(x^2) + eps)^(-1/2)  ->  (dx, dg)"""
    dxhat = dy * g
    dx = rstd * dxhat - x * rstd**3 * (dxhat * x).mean(-1, keepdims=True)
    return dx, (dy * x * rstd).sum(0)


def rope(x, sign=1.0):
    """Rotates pair i = (x[2i], x[2i+1]) of x (B, T, H, D) by sign * t * theta^(-2i/D) (tinyds/ops/rope.cpp)."""
    angle = np.arange(T)[:, None] * theta ** (-2.0 * np.arange(D // 2) / D)  # (T, D/2)
    c, s = np.cos(angle)[None, :, None, :], sign * np.sin(angle)[None, :, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = x[..., 0::2] * c - x[..., 1::2] * s
    out[..., 1::2] = x[..., 0::2] * s + x[..., 1::2] * c
    return out


def block_forward(x):
    """The block's forward in numpy; returns out and the saved tensors the backward needs."""
    f = {"x": x}
    f["a_in"], f["rstd1"] = rmsnorm(x, w["attn_norm"])
    q, k, v = (f["a_in"] @ w[n].T for n in ("attn.wq", "attn.wk", "attn.wv"))
    f["q"], f["k"], f["v"] = rope(q.reshape(B, T, H, D)), rope(k.reshape(B, T, H, D)), v.reshape(B, T, H, D)
    S = np.einsum("bthd,bshd->bhts", f["q"], f["k"]) * scale
    S = np.where(np.tril(np.ones((T, T), bool)), S, -np.inf)  # causal: query t sees keys s <= t
    P = np.exp(S - S.max(-1, keepdims=True))
    f["P"] = P / P.sum(-1, keepdims=True)
    f["o"] = np.einsum("bhts,bshd->bthd", f["P"], f["v"]).reshape(N, H * D)
    f["h"] = x + f["o"] @ w["attn.wo"].T
    f["f_in"], f["rstd2"] = rmsnorm(f["h"], w["ffn_norm"])
    f["a1"], f["a3"] = f["f_in"] @ w["ffn.w1"].T, f["f_in"] @ w["ffn.w3"].T
    f["sig"] = 1.0 / (1.0 + np.exp(-f["a1"]))
    f["act"] = f["a1"] * f["sig"] * f["a3"]  # silu(a1) * a3
    return f["h"] + f["act"] @ w["ffn.w2"].T, f


saved_prev, saved = m64.layer(l - 1), m64.layer(l)
x_in = saved_prev["out"].reshape(N, C)  # the block's input: the previous block's output
out, f = block_forward(x_in)
for name, mine, theirs in (("h", f["h"], saved["h"]), ("out", out, saved["out"]), ("att", f["P"], saved["att"])):
    print(f"forward {name:3s} max |numpy - tinyds| = {np.abs(mine - theirs.reshape(mine.shape)).max():.1e}")

# %% [markdown]
# Now the backward, from the loss down to the block's input. The head and the final norm first: they give
# `d out`, the gradient of the loss with respect to the block's output `x_L`.

# %%
logits = m64.logits.reshape(N, V)
y = targets.reshape(-1)
keep = y >= 0
z, rstd_f = rmsnorm(out, m64.param("norm"))
# forward: loss = mean over kept positions of -log softmax(logits)[y]
dlogits = np.exp(logits - logits.max(-1, keepdims=True))
dlogits /= dlogits.sum(-1, keepdims=True)  # softmax
dlogits[keep, y[keep]] -= 1.0
dlogits[~keep] = 0.0  # masked targets contribute nothing
dlogits /= keep.sum()
# forward: logits = z @ head^T
dhead = dlogits.T @ z
dz = dlogits @ m64.param("head")
# forward: z = RMSNorm(x_L)
dout, dnorm = rmsnorm_backward(dz, out, m64.param("norm"), rstd_f)
grads = {"head": dhead, "norm": dnorm}

# %% [markdown]
# Then the block, bottom half first (the FFN), as `layer_backward` does. A residual `h + F(h)` sends its gradient
# both ways: straight through to `h`, and into `F`; the two are added.

# %%
def block_backward(dout, f):
    g = {}
    # forward: out = h + act @ w2^T
    dh = dout.copy()  # the residual path
    dact = dout @ w["ffn.w2"]
    g["ffn.w2"] = dout.T @ f["act"]
    # forward: act = silu(a1) * a3,  silu(a) = a sigmoid(a),  silu'(a) = sigmoid(a) (1 + a (1 - sigmoid(a)))
    da3 = dact * f["a1"] * f["sig"]
    da1 = dact * f["a3"] * f["sig"] * (1.0 + f["a1"] * (1.0 - f["sig"]))
    # forward: a1 = f_in @ w1^T,  a3 = f_in @ w3^T   (f_in feeds both: the gradients add)
    g["ffn.w1"], g["ffn.w3"] = da1.T @ f["f_in"], da3.T @ f["f_in"]
    df_in = da1 @ w["ffn.w1"] + da3 @ w["ffn.w3"]
    # forward: f_in = RMSNorm(h)
    dh_norm, g["ffn_norm"] = rmsnorm_backward(df_in, f["h"], w["ffn_norm"], f["rstd2"])
    dh += dh_norm  # the residual path plus the FFN branch
    # forward: h = x + o @ wo^T
    dx = dh.copy()
    do = (dh @ w["attn.wo"]).reshape(B, T, H, D)
    g["attn.wo"] = dh.T @ f["o"]
    # forward: o = P v
    dP = np.einsum("bthd,bshd->bhts", do, f["v"])
    dv = np.einsum("bhts,bthd->bshd", f["P"], do)
    # forward: P = softmax(S) by rows  ->  dS = P * (dP - rowsum(dP * P))  (masked entries: P = 0, so dS = 0)
    dS = f["P"] * (dP - (dP * f["P"]).sum(-1, keepdims=True))
    # forward: S = scale q k^T
    dq = scale * np.einsum("bhts,bshd->bthd", dS, f["k"])
    dk = scale * np.einsum("bhts,bthd->bshd", dS, f["q"])
    # forward: q = RoPE(q), k = RoPE(k): a rotation, undone by the opposite rotation
    dq, dk = rope(dq, -1.0).reshape(N, H * D), rope(dk, -1.0).reshape(N, H * D)
    dv = dv.reshape(N, H * D)
    # forward: q, k, v = a_in @ {wq, wk, wv}^T   (a_in feeds all three)
    g["attn.wq"], g["attn.wk"], g["attn.wv"] = dq.T @ f["a_in"], dk.T @ f["a_in"], dv.T @ f["a_in"]
    da_in = dq @ w["attn.wq"] + dk @ w["attn.wk"] + dv @ w["attn.wv"]
    # forward: a_in = RMSNorm(x)
    dx_norm, g["attn_norm"] = rmsnorm_backward(da_in, f["x"], w["attn_norm"], f["rstd1"])
    dx += dx_norm  # the residual path plus the attention branch
    return dx, g


dx_in, g = block_backward(dout, f)
grads.update({f"layers.{l}.{n}": v for n, v in g.items()})
for name, mine in grads.items():
    theirs = m64.grad(name)
    print(f"{name:24s} max |numpy - tinyds| = {np.abs(mine - theirs).max():.1e}   "
          f"(max |grad| {np.abs(theirs).max():.1e})")

# %% [markdown]
# The gradient with respect to the block's input, `dx_in`, is what `layer_backward` hands to the block below; no
# parameter of this block shows it, so check it live by central finite differences of the numpy forward: with a
# fixed `dout`, `sum(out(x) * dout)` has gradient `dx_in` with respect to `x`.

# %%
fd_rng = np.random.default_rng(0)
worst = 0.0
for i in fd_rng.choice(x_in.size, 8, replace=False):
    n, c = divmod(int(i), C)
    xp, xm = x_in.copy(), x_in.copy()
    xp[n, c] += 1e-6
    xm[n, c] -= 1e-6
    fd = ((block_forward(xp)[0] - block_forward(xm)[0]) * dout).sum() / 2e-6
    worst = max(worst, abs(fd - dx_in[n, c]) / max(abs(fd), 1e-12))
    print(f"x[{n:3d}, {c:2d}]  finite difference {fd:+.8e}   backward {dx_in[n, c]:+.8e}")
print(f"worst relative error {worst:.1e}")

# %% [markdown]
# The C++ that did the same for every RMSNorm in the model (`tinyds/ops/rmsnorm.cpp`): the backward names the
# forward line it differentiates.

# %%
lines = open(os.path.join(tinyds.SOURCE_DIR, "tinyds/ops/rmsnorm.cpp")).read().split("\n")
first = last = next(i for i, line in enumerate(lines) if line.startswith("void rmsnorm_backward"))
while lines[first - 1].startswith(("//", "template")):  # the derivation in the comment above it
    first -= 1
print("\n".join(lines[first:lines.index("}", last) + 1]))

# %% [markdown]
# ## A finite-difference check, live
# `tinyds.Model64` is the same transformer in float64. For a few entries of every kind of tensor, nudge the
# parameter by ±h and compare `(L(p+h) - L(p-h)) / 2h` with the backward's gradient. In float64 the two agree to
# better than 1e-4 relative (the smallest gradients, ~1e-6, set that floor: the difference quotient's error is
# ~1e-11 absolute); a missing term in a backward would show as an error of order one.

# %%
m64 = tinyds.Model64(cfg, seed=1)
m64.zero_grad()
m64.forward(tokens, targets)
m64.backward()
rng = np.random.default_rng(0)
names = [n for n in m64.param_names() if n.split(".")[-1] in ("embed", "wq_a", "wkv_b", "wo", "w1", "gate", "w2", "head", "attn_norm")]
rel = {}
for name in names:
    flat, grad = m64.param(name).reshape(-1), m64.grad(name).reshape(-1)
    errs = []
    for i in rng.choice(flat.size, 3, replace=False):
        old, h = flat[i], 1e-5
        flat[i] = old + h; up = m64.forward(tokens, targets)
        flat[i] = old - h; down = m64.forward(tokens, targets)
        flat[i] = old
        fd = (up - down) / (2 * h)
        errs.append(abs(fd - grad[i]) / max(abs(fd), abs(grad[i]), 1e-8))
    rel[name] = max(errs)
fig, ax = plt.subplots(figsize=(9, 3.5))
ax.bar(range(len(rel)), list(rel.values()))
ax.set_yscale("log")
ax.set_xticks(range(len(rel)), list(rel.keys()), rotation=60, ha="right", fontsize=8)
ax.set_ylabel("relative error")
ax.set_title("backward vs central finite differences (float64)")
plt.tight_layout()
print(f"worst relative error {max(rel.values()):.1e}")

# %% [markdown]
# ## Training
# `Model.train_step` is the trainer's step (`tinyds/train/trainer.cpp`): zero the gradients, forward, backward,
# clip the global gradient norm, AdamW with warmup and cosine decay, then move the MoE router biases.

# %%
cfg.train.steps, cfg.train.lr, cfg.train.warmup_steps, cfg.train.min_lr = 300, 3e-3, 20, 3e-4
model = tinyds.Model(cfg, seed=1)
train = tinyds.generate_problems(level=1, n=2000, seed=1)
order = np.random.default_rng(1).permutation(len(train))
losses, start = [], time.time()
for step in range(cfg.train.steps):
    rows = [train[i] for i in order[(step * 8) % 1992:(step * 8) % 1992 + 8]]
    losses.append(model.train_step(*tinyds.make_batch(rows, max_T=112))["loss"])
print(f"{cfg.train.steps} steps in {time.time() - start:.1f} s, loss {losses[0]:.3f} -> {np.mean(losses[-20:]):.3f}")
plt.figure(figsize=(7, 3.5))
plt.plot(losses, lw=0.8)
plt.xlabel("step")
plt.ylabel("loss on the answer (nats per token)")
plt.title("nano model, level-1 problems, batch 8")
plt.tight_layout()

# %% [markdown]
# What to notice: the loss starts at log V (uniform guessing), falls fast while the model learns the answer
# format and the digits' frequencies, then slowly: the arithmetic itself takes the `small` preset and thousands of
# steps (`make demo`).

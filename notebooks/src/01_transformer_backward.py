# %% [markdown]
# # 1. The transformer and its backward pass
#
# tinyds's model is a pre-norm residual transformer (`tinyds/model/transformer.h`): every block does
# `h = x + Attn(RMSNorm(x))`, then `x = h + FFN(RMSNorm(h))`, and a final RMSNorm and output head give the logits.
# Every forward function in `tinyds/ops/` has its hand-written backward right below it. This notebook runs one
# forward, redoes the last two backward steps by hand in numpy, checks whole-model gradients against finite
# differences live, and trains for a few hundred steps.
#
# Source files: `tinyds/model/transformer.cpp`, `tinyds/ops/rmsnorm.cpp`, `tinyds/ops/cross_entropy.cpp`,
# `tinyds/ops/attention.cpp`, `tinyds/train/trainer.cpp`.

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
# ## The backward pass, the last two steps by hand
# The C++ backward starts at the cross-entropy and walks down. Here its first two steps in numpy, each line
# undoing one forward line, compared with the gradients tinyds computed:
#
# ```
# forward:  z = RMSNorm(x_L) = x_L * rstd * w      logits = z @ head^T      loss = mean CE(logits, targets)
# backward: dlogits = (softmax(logits) - onehot) / n        dhead = dlogits^T @ z
#           dz = dlogits @ head                              dw = sum_rows dz * x_L * rstd
# ```

# %%
model.zero_grad()
model.forward(tokens, targets)
model.backward()
V, C = cfg.model.vocab_size, cfg.model.d_model
logits = model.logits.reshape(-1, V).astype(np.float64)
y = targets.reshape(-1)
keep = y >= 0
x = model.final_hidden.reshape(-1, C).astype(np.float64)
w, head = model.param("norm").astype(np.float64), model.param("head").astype(np.float64)
rstd = 1.0 / np.sqrt((x * x).mean(-1, keepdims=True) + cfg.model.norm_eps)
z = x * rstd * w
p = np.exp(logits - logits.max(-1, keepdims=True))  # minus the row max: exp never overflows
p /= p.sum(-1, keepdims=True)
dlogits = p.copy()
dlogits[keep, y[keep]] -= 1.0
dlogits[~keep] = 0.0  # masked targets contribute nothing
dlogits /= keep.sum()
dhead = dlogits.T @ z
dz = dlogits @ head
dw = (dz * x * rstd).sum(0)
for name, mine in (("head", dhead), ("norm", dw)):
    theirs = model.grad(name)
    print(f"{name:5s} max |numpy - tinyds| = {np.abs(mine - theirs).max():.2e}   (max |grad| {np.abs(theirs).max():.2e})")

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
